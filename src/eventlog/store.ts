/**
 * The event store contract. SQLite (`sqlite.ts`) is the embedded default and answers reads
 * synchronously; Postgres (`postgres.ts`) answers them asynchronously. Code written against
 * {@link EventStore} `await`s reads and uses `for await` over iterators, which works for both; both
 * stores pass the same store test suite (`test/eventlog/contract.ts`).
 */
import type { EventClass, KeelEvent, KeelEventType, NewEvent } from './events.js';

/** A committed event together with its place in the hash chain of its class. */
export interface ChainedEvent<T extends KeelEventType = KeelEventType> {
  event: KeelEvent<T>;
  /** Hex sha256 of the previous event of the same class (or of the retention anchor / genesis). */
  prevHash: string;
  /** Hex sha256(prevHash || canonical form of this event). */
  hash: string;
}

/** Filter for queries and cursors. Every field narrows; all are optional. */
export interface EventFilter {
  workflowId?: string;
  /** One type or a list of types. */
  type?: KeelEventType | readonly KeelEventType[];
  class?: EventClass;
  /** Inclusive lower bound on `ts` (ms since epoch). */
  fromTs?: number;
  /** Exclusive upper bound on `ts` (ms since epoch). */
  toTs?: number;
  /** Only events with `seq` greater than this (cursor position). */
  afterSeq?: number;
  /** At most this many events (queries only). */
  limit?: number;
}

/** Outcome of {@link EventStore.verify}. */
export type VerifyResult =
  | { ok: true; events: number; heads: ChainHeads }
  | {
      ok: false;
      events: number;
      /** The first seq at which the chain breaks. */
      seq: number;
      /**
       * `modified`, `missing`, `reordered`, `anchor_mismatch`: the hash chains break (see
       * `ChainVerifier`); `anchor_implausible`: a retention anchor claims what the log contradicts;
       * `schema`: the append-only triggers or the schema were removed or altered.
       */
      reason: 'modified' | 'missing' | 'reordered' | 'anchor_mismatch' | 'anchor_implausible' | 'schema';
      detail: string;
    };

/** Head (last seq and hash) of each class chain: what `keel audit anchor` prints. */
export type ChainHeads = Record<EventClass, { seq: number; hash: string }>;

/** What retention removed. */
export interface PruneResult {
  class: EventClass;
  pruned: number;
  /** Last seq removed (0 when nothing was). */
  throughSeq: number;
  /** The anchor event written, when anything was pruned. */
  anchorSeq?: number;
  /**
   * SQLite (schema 5), when anything was pruned: the dictionary strings no remaining event refers to
   * that were deleted with it (`deleted`), or why none was (`kept`: a remaining row's payload could
   * not be read, so what it refers to is unknown — `keel audit verify` names the row).
   */
  strings?: { deleted: number } | { kept: string };
}

/** How a batch was committed (for metrics). */
export interface CommitInfo {
  /** Time the transaction took, ms. */
  commitMs: number;
}

/** Listener for committed batches: called once per transaction, in seq order. */
export type CommitListener = (events: readonly KeelEvent[], info?: CommitInfo) => void;

/** A value, or a promise of it: SQLite answers reads synchronously, Postgres asynchronously. */
export type Awaitable<T> = T | Promise<T>;

/** A stream of events: synchronous from SQLite, asynchronous from Postgres. `for await` reads both. */
export type EventStream<T> = Iterable<T> | AsyncIterable<T>;

/**
 * An append-only, hash-chained event log.
 *
 * `append` is durable-before-acknowledged: its promise resolves only after the events are
 * committed. Concurrent appends share one transaction (group commit).
 */
export interface EventStore {
  /** Appends events in order; resolves with them as committed (seq assigned) once durable. */
  append(events: readonly NewEvent[]): Promise<KeelEvent[]>;
  /**
   * Appends one event without a result of its own: resolves once the transaction holding it has
   * committed, with the same promise for every `appendOne` of that transaction (so a producer of
   * single events — the runtime — allocates no promise per event). Optional; `append([event])` is
   * the general form.
   */
  appendOne?(event: NewEvent): Promise<void>;
  /**
   * Appends a `workflow.started` only if the log holds none for its workflow id yet, decided inside
   * the transaction that would write it (so two processes starting one id cannot both succeed):
   * resolves once committed, rejects with `WorkflowAlreadyStartedError` (nothing written) when the
   * id was started already. Optional: the runtime claims the id first on a store without it.
   */
  appendStart?(event: NewEvent): Promise<void>;
  /** Registers a listener for every committed batch; returns an unsubscribe function. */
  onCommit(listener: CommitListener): () => void;
  /** Events matching the filter, in seq order. */
  query(filter?: EventFilter): Awaitable<KeelEvent[]>;
  /** Streams events matching the filter in seq order without loading them all (keyset pages). */
  iterate(filter?: EventFilter): EventStream<KeelEvent>;
  /** Like `iterate`, with each event's chain hashes. */
  iterateChained(filter?: EventFilter): EventStream<ChainedEvent>;
  /** Highest committed seq (0 for an empty log). */
  lastSeq(): Awaitable<number>;
  /** Head of each class chain. */
  heads(): Awaitable<ChainHeads>;
  /** Walks every chain and reports the first break. */
  verify(): Awaitable<VerifyResult>;
  /** Retention: removes `class` events older than `olderThan` (ms since epoch) through the sanctioned path. */
  prune(options: { olderThan: number; class: EventClass }): Promise<PruneResult>;
  /** Commits anything pending, then closes. Idempotent. */
  close(): Promise<void>;
  /** True when opened for reading only (auditors). */
  readonly readonly: boolean;
  /**
   * Leases and claims of durable execution (`rt.resume()`), kept beside the log in two small tables
   * that are not part of the hash chain. Both stores have it; a custom store without it cannot resume.
   */
  ownership?(): OwnershipStore;
}

/** A runtime instance's lease: it is alive while `expiresAt` (ms since epoch) is in the future. */
export interface OwnerLease {
  owner: string;
  expiresAt: number;
}

/** A workflow claimed for resumption by `owner` (held while the owner's lease is live). */
export interface WorkflowClaim {
  workflowId: string;
  owner: string;
  claimedAt: number;
}

/** A workflow `claim` may take over: its id and the owner the log records for it. */
export interface ClaimCandidate {
  workflowId: string;
  /** The owner recorded at its start (or last resume); absent when it has none (older log, a wait). */
  owner?: string;
}

/**
 * Ownership of running workflows across processes. Each runtime renews one lease row
 * (`heartbeat`: one upsert per interval, whatever the number of workflows it runs); a workflow it
 * starts names it as `owner` in `workflow.started`. Only resumed workflows get a claim row.
 *
 * `claim` is atomic across processes: SQLite runs it in one `BEGIN IMMEDIATE` transaction; Postgres
 * locks the candidates' claim rows with `FOR UPDATE SKIP LOCKED`, so processes claiming at once
 * take disjoint sets. A claim whose owner's lease lapsed (the resumer died) can be claimed again.
 */
export interface OwnershipStore {
  /** Creates or renews `owner`'s lease until `expiresAt` (ms since epoch). */
  heartbeat(owner: string, expiresAt: number): Promise<void>;
  /** Ends `owner`'s lease and drops its claims (a clean shutdown: its workflows ended or were cancelled). */
  retire(owner: string): Promise<void>;
  /**
   * Claims for `claimant`, in order and at most `limit` (default all), the candidates whose recorded
   * owner has no live lease at `now` and that no other live owner has claimed. Resolves with the ids
   * claimed.
   */
  claim(
    claimant: string,
    candidates: readonly ClaimCandidate[],
    now: number,
    limit?: number,
  ): Promise<string[]>;
  /** Drops `claimant`'s claims on these workflows (they ended, or it gave them up). */
  release(claimant: string, workflowIds: readonly string[]): Promise<void>;
  /** Every lease row (live or lapsed). Empty when nothing was ever leased. */
  leases(): Promise<OwnerLease[]>;
  /** Every claim row. */
  claims(): Promise<WorkflowClaim[]>;
}

/**
 * Collects a stream into an array (`Array.fromAsync` arrived in Node 22; Keel runs on 20).
 *
 * @example
 * const failures = await collectEvents(store.iterate({ type: 'agent.failed' }));
 */
export async function collectEvents<T>(stream: EventStream<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

/**
 * Hands `use` the whole stream as a synchronous iterable: at once for a synchronous store (streamed,
 * nothing buffered), after collecting it for an asynchronous one. Use it for bounded reads (one
 * day, one hour) that feed code written for iterables.
 *
 * @example
 * await withEvents(store.iterate({ fromTs: dayStartMs }), (events) => budgets.restore(events));
 */
export function withEvents<T>(stream: EventStream<T>, use: (events: Iterable<T>) => void): Awaitable<void> {
  if (Symbol.iterator in stream) {
    use(stream);
    return;
  }
  return collectEvents(stream).then(use);
}
