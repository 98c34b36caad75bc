/**
 * The event store contract. SQLite (`sqlite.ts`) is the embedded default; a Postgres store comes
 * later behind the same interface, and both pass the same store test suite.
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
      reason: 'modified' | 'missing' | 'reordered' | 'anchor_mismatch';
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
}

/** How a batch was committed (for metrics). */
export interface CommitInfo {
  /** Time the transaction took, ms. */
  commitMs: number;
}

/** Listener for committed batches: called once per transaction, in seq order. */
export type CommitListener = (events: readonly KeelEvent[], info?: CommitInfo) => void;

/**
 * An append-only, hash-chained event log.
 *
 * `append` is durable-before-acknowledged: its promise resolves only after the events are
 * committed. Concurrent appends share one transaction (group commit).
 */
export interface EventStore {
  /** Appends events in order; resolves with them as committed (seq assigned) once durable. */
  append(events: readonly NewEvent[]): Promise<KeelEvent[]>;
  /** Registers a listener for every committed batch; returns an unsubscribe function. */
  onCommit(listener: CommitListener): () => void;
  /** Events matching the filter, in seq order. */
  query(filter?: EventFilter): KeelEvent[];
  /** Streams events matching the filter in seq order without loading them all (keyset pages). */
  iterate(filter?: EventFilter): IterableIterator<KeelEvent>;
  /** Like `iterate`, with each event's chain hashes. */
  iterateChained(filter?: EventFilter): IterableIterator<ChainedEvent>;
  /** Highest committed seq (0 for an empty log). */
  lastSeq(): number;
  /** Head of each class chain. */
  heads(): ChainHeads;
  /** Walks every chain and reports the first break. */
  verify(): VerifyResult;
  /** Retention: removes `class` events older than `olderThan` (ms since epoch) through the sanctioned path. */
  prune(options: { olderThan: number; class: EventClass }): Promise<PruneResult>;
  /** Commits anything pending, then closes. Idempotent. */
  close(): Promise<void>;
  /** True when opened for reading only (auditors). */
  readonly readonly: boolean;
}
