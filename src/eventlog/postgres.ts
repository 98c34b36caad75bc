/**
 * The Postgres event store (node-postgres): the same events and the same hash chains as the SQLite
 * store, for runtimes in many processes on many hosts appending to one log. See
 * {@link openPostgresStore}.
 */
import { postgresOwnership } from './postgres-owners.js';
import type { OwnershipStore } from './store.js';
import pg from 'pg';
import type { PostgresStoreOptions, PostgresStoreStats } from './postgres-open.js';
import { isKeelError } from '../core/errors.js';
import { CommitListeners } from './commits.js';
import { EventLogError, ReadOnlyDatabaseError, StoreClosedError } from './errors.js';
import type { EventClass, KeelEvent, NewEvent } from './events.js';
import { ensureSchema, quoteSchema } from './postgres-schema.js';
import { checkStorable, resolveOptions, toStoreError, type ResolvedOptions } from './postgres-open.js';
import { EVENT_COLUMNS, postgresDialect, type SqlDialect } from './sql/dialect.js';
import { runAsync, type SqlProgram, type Step } from './sql/program.js';
import {
  KeysetPages,
  anchorHeads,
  checkFilter,
  mergeBySeq,
  planFilter,
  selectQuery,
  toChained,
  toEvent,
  typeList,
  type EventRow,
} from './sql/query.js';
import {
  anchorEvent,
  checkPruneOptions,
  headsFromEvents,
  loadAnchors,
  pruneResult,
  prunePlan,
  type ChainState,
} from './sql/retention.js';
import { verifyLog } from './sql/verify.js';
import {
  RowBuffer,
  chainBatch,
  stateOf,
  stateParams,
  writerStatements,
  type HeadsRow,
  type PendingAppend,
} from './postgres-writer.js';
import type {
  ChainHeads,
  ChainedEvent,
  CommitListener,
  EventFilter,
  EventStore,
  PruneResult,
  VerifyResult,
} from './store.js';
import { canonicalPayloadJson, prepareEvents } from './validate.js';

export type { PostgresStoreOptions, PostgresStoreStats } from './postgres-open.js';

/** The Postgres {@link EventStore}: reads answer asynchronously. */
export interface PostgresEventStore extends EventStore {
  /** `host:port/database` the store writes to (no password): what its errors name. */
  readonly target: string;
  /** The Postgres schema holding its tables. */
  readonly schema: string;
  /**
   * Connects and creates or checks the schema. Every operation does this on first use; await it at
   * start-up to fail fast. Rejects with `StoreUnavailableError` (unreachable, timed out, no such
   * database), `StoreAccessDeniedError` (login or privilege refused), `SchemaConflictError`
   * (foreign tables named like the store's) or `SchemaVersionError` (a newer Keel's schema); a
   * later call tries again.
   */
  ready(): Promise<void>;
  /** Events matching the filter, in seq order (one query). */
  query(filter?: EventFilter): Promise<KeelEvent[]>;
  /** Streams matches in seq order, one keyset page (1000 rows) per query: never the whole table. */
  iterate(filter?: EventFilter): AsyncIterableIterator<KeelEvent>;
  /** Like `iterate`, with each event's chain hashes. */
  iterateChained(filter?: EventFilter): AsyncIterableIterator<ChainedEvent>;
  /** Highest committed seq across every process (0 for an empty log). */
  lastSeq(): Promise<number>;
  /** Head of each class chain, as committed by any process. */
  heads(): Promise<ChainHeads>;
  /** Walks every chain in one consistent snapshot and reports the first break. */
  verify(): Promise<VerifyResult>;
  /** Commit counters: `events / transactions` is the average group-commit size. */
  stats(): PostgresStoreStats;
  /** Leases and claims of durable execution, in two small tables of its schema (`postgres-owners.ts`). */
  ownership(): OwnershipStore;
}

/**
 * Opens an event log in a Postgres database. Returns at once; the connection and the schema are
 * set up on first use (or by `ready()`).
 *
 * Appends are validated, queued, and committed together (group commit): each transaction locks
 * the log's heads row, reads the current heads inside the lock (another process may have appended),
 * chains and inserts the batch, and commits, so every process appends to one gap-free chain. Each
 * `append` resolves only after COMMIT, and `onCommit` listeners see this process's batches, in seq
 * order, before their appends resolve. A log copied from SQLite verifies the same way here.
 *
 * @throws ConfigError for a bad option (nothing connects before first use).
 * @example
 * const store = openPostgresStore({ url: 'postgres://keel@db.internal:5432/keel' });
 * await store.ready();
 * const [event] = await store.append([
 *   { ts: clock.now(), workflowId: 'wf-1', type: 'feedback.recorded', payload: { correct: true } },
 * ]);
 * console.log(event?.seq, (await store.verify()).ok);
 * await store.close();
 */
export function openPostgresStore(options: PostgresStoreOptions): PostgresEventStore {
  return new PostgresStore(resolveOptions(options));
}

/**
 * Short form of {@link openPostgresStore}: `createRuntime({ store: postgres(url) })`.
 *
 * @example
 * const store = postgres(process.env.DATABASE_URL ?? 'postgres://keel@127.0.0.1/keel', { schema: 'audit' });
 */
export function postgres(url: string, options: Omit<PostgresStoreOptions, 'url'> = {}): PostgresEventStore {
  return openPostgresStore({ ...options, url });
}

// ── internals ─────────────────────────────────────────────────────────────────────────────────

/**
 * Group commits in flight at once on the writer connection (Postgres's pipeline mode: the next
 * statement is sent before the previous one answers, the server runs them in order).
 */
const PIPELINE_DEPTH = 2;

/**
 * A batch of at least twice this many events, sent while nothing is in flight, goes as two commits,
 * so that the process works on the first one's workflows while the server commits the second.
 */
const SPLIT_MIN_EVENTS = 32;

/** A group commit sent on the writer connection, until its outcome is handled. */
interface InFlightCommit {
  batch: readonly PendingAppend[];
  /** The statement's answer (never an unhandled rejection: a no-op handler is attached). */
  reply: Promise<pg.QueryResult<HeadsRow & { ok: boolean; max: number }>>;
  /** Whether the statement reached the connection (for `outcomeUnknown`). */
  sent: boolean;
  /** The heads after the batch, if it writes. */
  state: ChainState;
  startedAt: number;
}

/** Named (server-side prepared) read statements kept per store. */
const MAX_NAMED_STATEMENTS = 64;

/** A client that breaks while held fails its next query; this keeps the break from crashing the process. */
const ignoreClientError = (): void => undefined;

type Queryable = Pick<pg.ClientBase, 'query'>;

class PostgresStore implements PostgresEventStore {
  readonly readonly: boolean;
  readonly target: string;
  readonly schema: string;

  private readonly options: ResolvedOptions;
  private readonly pool: pg.Pool;
  /** One pipelined connection for the group commits (`pipeline: true`). */
  private readonly writerPool: pg.Pool;
  private readonly sql: ReturnType<typeof writerStatements>;
  /** The heads after this process's last commit, while no failure made them uncertain. */
  private known: ChainState | undefined;
  /** The SQL of the log's schema version (set again once `ready`: a read-only store reads older ones). */
  private dialect: SqlDialect;
  private readonly commits: CommitListeners;
  private readonly names = new Map<string, string>();

  private initialised = false;
  private initialising: Promise<void> | undefined;

  private queue: PendingAppend[] = [];
  private queuedEvents = 0;
  private scheduled: NodeJS.Immediate | undefined;
  /** Group commits sent on the writer connection whose outcome is not handled yet. */
  private inFlight = 0;
  /** The heads after every commit in flight, if each one writes: what the next one chains onto. */
  private predicted: ChainState | undefined;
  /** Tail of the in-order handling of the pipelined commits' outcomes (never rejects). */
  private settled: Promise<void> = Promise.resolve();
  /** The writer connection while commits are in flight on it. */
  private writer: Promise<pg.PoolClient> | undefined;
  /** Whether the writer connection saw an error (it is discarded, not returned to its pool). */
  private writerBroken = false;
  /** Serial write jobs (locked commits, retries, prunes) queued or running: the pipeline waits. */
  private serialJobs = 0;
  /** Tail of the serial write jobs of this process: one runs at a time, after the pipeline settled. */
  private writes: Promise<unknown> = Promise.resolve();
  private closed = false;
  private ended = false;
  private closing: Promise<void> | undefined;

  constructor(options: ResolvedOptions) {
    this.options = options;
    this.readonly = options.readonly;
    this.target = options.target;
    this.schema = options.schema;
    this.sql = writerStatements(quoteSchema(options.schema));
    this.dialect = postgresDialect(quoteSchema(options.schema));
    this.commits = new CommitListeners(options.onListenerError);
    this.pool = new pg.Pool(options.pool);
    this.writerPool = new pg.Pool({ ...options.pool, max: 1, pipeline: true });
    // An idle connection that breaks (server restart) is dropped by the pool; the next query reconnects.
    this.pool.on('error', () => undefined);
    this.writerPool.on('error', () => undefined);
  }

  // ── lifecycle ───────────────────────────────────────────────────────────────────────────────

  ready(): Promise<void> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    return this.ensureReady();
  }

  private ensureReady(): Promise<void> {
    if (this.initialised) return Promise.resolve();
    this.initialising ??= this.initialise().then(
      () => {
        this.initialised = true;
        this.initialising = undefined;
      },
      (e: unknown) => {
        this.initialising = undefined;
        throw e;
      },
    );
    return this.initialising;
  }

  private async initialise(): Promise<void> {
    const version = await this.withClient((client) =>
      ensureSchema(client, this.target, this.schema, this.options.readonly),
    );
    this.dialect = postgresDialect(quoteSchema(this.schema), version);
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    await this.settle();
    this.ended = true;
    await Promise.all([this.pool.end(), this.writerPool.end()]);
  }

  /** Waits until every queued append, commit in flight and write job has finished. */
  private async settle(): Promise<void> {
    for (;;) {
      this.startDrain();
      const { settled, writes } = this;
      await writes;
      await settled;
      const idle = this.queue.length === 0 && this.inFlight === 0 && this.serialJobs === 0;
      if (idle && settled === this.settled && writes === this.writes) return;
    }
  }

  private owners: OwnershipStore | undefined;

  ownership(): OwnershipStore {
    return (this.owners ??= postgresOwnership({
      schema: quoteSchema(this.schema),
      readonly: this.readonly,
      ready: () => this.ensureReady(),
      withClient: (work) => this.withClient(work),
      readOnlyError: () => this.readOnlyError(),
      toError: (e) => this.toError(e),
    }));
  }

  stats(): PostgresStoreStats {
    return { transactions: this.commits.transactions, events: this.commits.events };
  }

  onCommit(listener: CommitListener): () => void {
    return this.commits.add(listener);
  }

  // ── writes ──────────────────────────────────────────────────────────────────────────────────

  append(events: readonly NewEvent[]): Promise<KeelEvent[]> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    if (this.readonly) return Promise.reject(this.readOnlyError());
    let prepared: ReturnType<typeof prepareEvents>;
    try {
      prepared = prepareEvents(events);
      checkStorable(prepared.events);
    } catch (e) {
      return Promise.reject(asError(e));
    }
    const n = prepared.events.length;
    if (n === 0) return Promise.resolve([]);
    return new Promise<KeelEvent[]>((resolve, reject) => {
      this.queue.push({ events: prepared.events, payloadJson: prepared.payloadJson, resolve, reject });
      this.queuedEvents += n;
      if (this.queuedEvents >= this.options.maxBatch) this.startDrain();
      else this.scheduled ??= setImmediate(this.startDrain);
    });
  }

  /**
   * Commits what is queued: onto known heads, pipelined (up to {@link PIPELINE_DEPTH} group
   * commits in flight on the writer connection, each chained onto the heads the one before it
   * leaves); without known heads (the first commit, after a failure), one commit at a time in
   * the serial path.
   */
  private readonly startDrain = (): void => {
    if (this.scheduled !== undefined) {
      clearImmediate(this.scheduled);
      this.scheduled = undefined;
    }
    while (this.queue.length > 0 && this.serialJobs === 0 && !this.ended) {
      if (this.inFlight === 0) this.predicted ??= this.known;
      if (this.predicted === undefined) {
        if (this.inFlight === 0) {
          const batch = this.take(this.options.maxBatch);
          void this.serial(() => this.commitBatch(batch));
        }
        return;
      }
      if (this.inFlight >= PIPELINE_DEPTH) return;
      // Into an idle pipeline a large batch goes as two commits: the process works on the
      // workflows the first one acknowledges while the server commits the second.
      const split = this.inFlight === 0 && this.queuedEvents >= 2 * SPLIT_MIN_EVENTS;
      this.sendCommit(this.take(split ? Math.ceil(this.queuedEvents / 2) : this.options.maxBatch));
    }
  };

  /** The oldest queued appends, at most `limit` events (at least one append, never split). */
  private take(limit: number): PendingAppend[] {
    let take = 0;
    let events = 0;
    while (take < this.queue.length) {
      const n = (this.queue[take] as PendingAppend).events.length;
      if (take > 0 && events + n > limit) break;
      events += n;
      take++;
    }
    this.queuedEvents -= events;
    return this.queue.splice(0, take);
  }

  /**
   * Runs a serial write job once every pipelined commit has settled; no commit is sent meanwhile.
   * One job at a time, in call order.
   */
  private serial<T>(job: () => Promise<T>): Promise<T> {
    this.serialJobs++;
    const run = this.writes.then(() => this.settled).then(job);
    this.writes = run.then(
      () => this.serialDone(),
      () => this.serialDone(),
    );
    return run;
  }

  private serialDone(): void {
    this.serialJobs--;
    this.predicted = undefined; // chained again from the known heads
    this.startDrain();
  }

  /**
   * Sends one group commit on the writer connection, chained onto the predicted heads (those the
   * commits in flight leave if they write): the statement writes only if the heads are still the
   * ones it was chained onto (./postgres-writer.ts). Its outcome is handled in order, by
   * {@link settleCommit}.
   */
  private sendCommit(batch: readonly PendingAppend[]): void {
    const { rows, state } = chainBatch(batch, this.predicted as ChainState);
    const from = this.predicted as ChainState;
    this.predicted = state;
    this.inFlight++;
    const writer = (this.writer ??= this.connectWriter());
    const commit: InFlightCommit = {
      batch,
      state,
      sent: false,
      startedAt: performance.now(), // commit duration for metrics only, never for logic
      reply: writer.then((client) => {
        commit.sent = true;
        return client.query<HeadsRow & { ok: boolean; max: number }>({
          name: 'keel_append_if_heads',
          text: this.sql.appendIfHeads,
          values: [...rows.columns(), ...stateParams(from), ...stateParams(state)],
        });
      }),
    };
    commit.reply.catch(() => undefined); // handled in order by settleCommit
    // The chain never rejects: a fault while handling one outcome fails that batch, not the next.
    this.settled = this.settled
      .then(() => this.settleCommit(commit))
      .catch((e: unknown) => {
        for (const p of commit.batch) p.reject(e);
      });
  }

  /**
   * The outcome of a pipelined commit, in send order: written (acknowledge it), refused because
   * the heads moved (chain it again in the serial path; every commit sent after it was chained
   * onto heads that will not be, and comes back refused too), or failed (reject its appends).
   */
  private async settleCommit(commit: InFlightCommit): Promise<void> {
    let found: 'written' | ChainState | undefined;
    let error: unknown;
    try {
      found = outcomeOf((await commit.reply).rows[0]);
    } catch (e) {
      error = e;
      this.writerBroken = true;
    }
    try {
      if (found === 'written') {
        this.known = commit.state;
        this.acknowledge(commit.batch, commit.startedAt);
      } else {
        this.predicted = undefined;
        this.serialJobs++; // the pipeline waits for this commit's retry
        try {
          if (error !== undefined) {
            this.known = undefined; // a lost connection may have committed it
            const named = this.toError(error, commit.sent);
            for (const p of commit.batch) p.reject(named);
          } else await this.commitBatch(commit.batch, found);
        } finally {
          this.serialJobs--;
        }
      }
    } finally {
      if (--this.inFlight === 0) this.releaseWriter();
      this.startDrain();
    }
  }

  private connectWriter(): Promise<pg.PoolClient> {
    return this.writerPool.connect().then((client) => {
      client.on('error', ignoreClientError);
      return client;
    });
  }

  /** Returns the writer connection to its pool (discarded if it saw an error). */
  private releaseWriter(): void {
    const writer = this.writer;
    const broken = this.writerBroken;
    this.writer = undefined;
    this.writerBroken = false;
    writer?.then(
      (client) => {
        client.removeListener('error', ignoreClientError);
        client.release(broken);
      },
      () => undefined,
    );
  }

  /** Tells listeners of a written batch and resolves its appends. */
  private acknowledge(batch: readonly PendingAppend[], startedAt: number): void {
    let events: KeelEvent[] = (batch[0] as PendingAppend).events;
    if (batch.length > 1) {
      events = [];
      for (const p of batch) for (const e of p.events) events.push(e);
    }
    this.commits.committed(events, { commitMs: performance.now() - startedAt });
    for (const p of batch) p.resolve(p.events);
  }

  /**
   * One group commit in the serial path: chain the batch onto the heads this process knows (or
   * `found`, the heads a refused pipelined commit saw) and commit it in one statement if they are
   * still the heads; else chain it again onto the heads the statement found and try once more;
   * else (or without heads to try) lock the heads in an explicit transaction. Then tell listeners
   * and resolve. On failure every append of the batch rejects with the same named error.
   */
  private async commitBatch(batch: readonly PendingAppend[], found?: ChainState): Promise<void> {
    const startedAt = performance.now(); // commit duration for metrics only, never for logic
    let commitSent = false;
    try {
      await this.ensureReady();
      await this.withClient(async (client) => {
        let from = fresher(this.known, found);
        this.known = undefined; // unknown until this commit's outcome is
        for (let attempt = 0; from !== undefined && attempt < 2; attempt++) {
          const { rows, state } = chainBatch(batch, from);
          commitSent = true;
          const answer = await this.appendIfHeads(client, rows, from, state);
          if (answer === 'written') {
            this.known = state;
            return;
          }
          commitSent = false;
          from = answer;
        }
        const { rows, state } = chainBatch(batch, await this.lockHeads(client));
        await this.insertRows(client, rows, state);
        commitSent = true;
        await client.query('COMMIT');
        this.known = state;
      });
    } catch (e) {
      const error = this.toError(e, commitSent);
      for (const p of batch) p.reject(error);
      return;
    }
    this.acknowledge(batch, startedAt);
  }

  /**
   * The one-statement commit: writes `rows` and moves the heads to `to` when the heads are still
   * `from`. Answers `'written'`, else the heads it found (to chain onto next), or `undefined`
   * when they cannot be trusted (no heads row, or rows beyond them): the locked path sorts it out.
   */
  private async appendIfHeads(
    client: pg.ClientBase,
    rows: RowBuffer,
    from: ChainState,
    to: ChainState,
  ): Promise<'written' | ChainState | undefined> {
    const result = await client.query<HeadsRow & { ok: boolean; max: number }>({
      name: 'keel_append_if_heads',
      text: this.sql.appendIfHeads,
      values: [...rows.columns(), ...stateParams(from), ...stateParams(to)],
    });
    return outcomeOf(result.rows[0]);
  }

  /**
   * Begins a transaction and locks the heads row: from here until COMMIT no other writer (in any
   * process) can append. Reads the heads inside the lock, and rebuilds them from the events when
   * the table's last seq disagrees (rows copied in from another log).
   */
  private async lockHeads(client: pg.ClientBase): Promise<ChainState> {
    // Three statements, one round trip; in READ COMMITTED each one reads the latest commits.
    const results = (await client.query(this.sql.beginAndLock)) as unknown as pg.QueryResult[];
    const row = results[1]?.rows[0] as HeadsRow | undefined;
    const max = (results[2]?.rows[0] as { max: number | null } | undefined)?.max ?? 0;
    if (row === undefined) {
      throw new EventLogError(
        'EVENTLOG_CORRUPT_HEADS',
        `${this.target}: the heads row of schema "${this.schema}" is missing, so no append can be chained. Restore it from a backup or re-create the schema from a copy of the events; nothing was written.`,
      );
    }
    if (row.seq === max) return stateOf(row);
    return this.run(client, headsFromEvents(this.dialect, max));
  }

  /** Inserts the buffered rows and moves the heads row to `state`, in one statement. */
  private async insertRows(client: pg.ClientBase, rows: RowBuffer, state: ChainState): Promise<void> {
    await client.query({
      name: 'keel_append',
      text: this.sql.append,
      values: [...rows.columns(), ...stateParams(state)],
    });
  }

  prune(options: { olderThan: number; class: EventClass }): Promise<PruneResult> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    if (this.readonly) return Promise.reject(this.readOnlyError());
    try {
      checkPruneOptions(options);
    } catch (e) {
      return Promise.reject(asError(e));
    }
    this.startDrain(); // appends queued before the prune commit before it
    return this.serial(async () => {
      while (this.queue.length > 0) await this.commitBatch(this.take(this.options.maxBatch));
      return this.pruneNow(options.class, options.olderThan);
    });
  }

  /**
   * Retention, in one transaction under the heads lock (see `prunePlan`): the gate is opened with
   * `SET LOCAL keel.retention`, and the anchors are chained and inserted before COMMIT.
   */
  private async pruneNow(cls: EventClass, olderThan: number): Promise<PruneResult> {
    const startedAt = performance.now();
    let written: KeelEvent[] = [];
    let commitSent = false;
    let result: PruneResult;
    try {
      await this.ensureReady();
      this.known = undefined; // unknown until this prune's outcome is
      result = await this.withClient(async (client) => {
        const state = await this.lockHeads(client);
        const done = await this.run(client, prunePlan(this.dialect, cls, olderThan));
        if (done === undefined) {
          await client.query('ROLLBACK');
          this.known = state;
          return pruneResult(cls, undefined);
        }
        const now = this.options.clock.now();
        const rows = new RowBuffer();
        written = done.anchors.map((payload) => {
          const event = anchorEvent(now, payload);
          rows.chain(state, event, canonicalPayloadJson(payload));
          return event;
        });
        await this.insertRows(client, rows, state);
        commitSent = true;
        await client.query('COMMIT');
        this.known = state;
        return pruneResult(cls, done, written[0]?.seq);
      });
    } catch (e) {
      throw this.toError(e, commitSent);
    }
    if (written.length > 0) this.commits.committed(written, { commitMs: performance.now() - startedAt });
    return result;
  }

  // ── reads ───────────────────────────────────────────────────────────────────────────────────

  async query(filter: EventFilter = {}): Promise<KeelEvent[]> {
    this.assertOpen();
    checkFilter(filter);
    await this.ready();
    const c = filter.limit === 0 ? undefined : await this.run(this.pool, planFilter(this.dialect, filter));
    if (c === undefined) return [];
    const q = selectQuery(this.dialect, EVENT_COLUMNS, c, filter.limit);
    const rows = await this.rows<EventRow>(this.pool, q.sql, q.params);
    const out = new Array<KeelEvent>(rows.length);
    for (let i = 0; i < rows.length; i++) out[i] = toEvent(rows[i] as EventRow);
    return out;
  }

  iterate(filter: EventFilter = {}): AsyncIterableIterator<KeelEvent> {
    this.assertOpen();
    checkFilter(filter);
    return this.select<EventRow, KeelEvent>(filter, EVENT_COLUMNS, toEvent);
  }

  iterateChained(filter: EventFilter = {}): AsyncIterableIterator<ChainedEvent> {
    this.assertOpen();
    checkFilter(filter);
    return this.selectChained(filter);
  }

  async lastSeq(): Promise<number> {
    this.assertOpen();
    await this.ready();
    const [row] = await this.rows<[number]>(this.pool, this.sql.lastSeq, []);
    return row?.[0] ?? 0;
  }

  async heads(): Promise<ChainHeads> {
    this.assertOpen();
    await this.ready();
    const [row] = await this.rows<[number, number, string, number, string, number]>(
      this.pool,
      this.sql.heads,
      [],
    );
    if (row !== undefined && row[0] === row[5]) {
      return { audit: { seq: row[1], hash: row[2] }, operational: { seq: row[3], hash: row[4] } };
    }
    const state = await this.run(this.pool, headsFromEvents(this.dialect, row?.[5] ?? 0));
    return { audit: state.audit, operational: state.operational };
  }

  /**
   * Walks every chain in one consistent snapshot (a REPEATABLE READ transaction, so concurrent
   * appends and prunes by other processes cannot make it see half a change).
   */
  async verify(): Promise<VerifyResult> {
    this.assertOpen();
    await this.ready();
    return this.withClient(async (client) => {
      try {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const result = await this.run(client, verifyLog(this.dialect));
        await client.query('COMMIT');
        return result;
      } catch (e) {
        // A pooled connection that broke while idle fails here: named like any other.
        throw this.toError(e);
      }
    });
  }

  private async *selectChained(filter: EventFilter): AsyncGenerator<ChainedEvent> {
    await this.ready();
    const anchored = anchorHeads(await this.run(this.pool, loadAnchors(this.dialect)));
    yield* this.select<unknown[], ChainedEvent>(filter, this.dialect.chainedColumns, (r) =>
      toChained(r, anchored),
    );
  }

  /** Streams matches in seq order; a list of types is read as one cursor per type, merged. */
  private async *select<R extends readonly unknown[], T>(
    filter: EventFilter,
    columns: string,
    map: (row: R) => T,
  ): AsyncGenerator<T> {
    await this.ready();
    if (filter.limit === 0) return;
    const types = typeList(filter);
    if (types === undefined) {
      yield* this.pages(filter, columns, map);
      return;
    }
    const sources = types.map((type) =>
      this.pages<R, R>({ ...filter, type, limit: undefined }, columns, (r) => r),
    );
    let remaining = filter.limit ?? Number.POSITIVE_INFINITY;
    for await (const row of mergeBySeq(sources)) {
      if (remaining-- <= 0) return;
      yield map(row);
    }
  }

  /** Keyset pagination: one short query per page, so memory stays flat and writes interleave. */
  private async *pages<R extends readonly unknown[], T>(
    filter: EventFilter,
    columns: string,
    map: (row: R) => T,
  ): AsyncGenerator<T> {
    const c = await this.run(this.pool, planFilter(this.dialect, filter));
    if (c === undefined) return;
    const pages = new KeysetPages(this.dialect, columns, c, filter.limit);
    for (let q = pages.next(); q !== undefined; q = pages.next()) {
      this.assertOpen();
      const rows = await this.rows<R>(this.pool, q.sql, q.params);
      for (let i = 0; i < rows.length; i++) yield map(rows[i] as R);
      if (!pages.advance(rows)) return;
    }
  }

  // ── plumbing ────────────────────────────────────────────────────────────────────────────────

  /** Runs a shared SQL procedure on `runner` (a connection in a transaction, or the pool). */
  private run<T>(runner: Queryable, program: SqlProgram<T>): Promise<T> {
    return runAsync(program, async (step: Step) => {
      if (step.kind === 'rows') return this.rows(runner, step.sql, [...step.params]);
      try {
        const r = await runner.query(step.sql, step.params.length > 0 ? [...step.params] : undefined);
        return r.rowCount ?? 0;
      } catch (e) {
        throw this.closed && !isKeelError(e) ? new StoreClosedError() : this.toError(e);
      }
    });
  }

  /** Array rows of a query, through a named (prepared once per connection) statement. */
  private async rows<R extends readonly unknown[]>(
    runner: Queryable,
    text: string,
    values: unknown[],
  ): Promise<R[]> {
    let name = this.names.get(text);
    if (name === undefined && this.names.size < MAX_NAMED_STATEMENTS) {
      name = `keel_q${this.names.size}`;
      this.names.set(text, name);
    }
    try {
      const result = await runner.query<unknown[]>({
        text,
        values,
        rowMode: 'array',
        ...(name ? { name } : {}),
      });
      return result.rows as unknown as R[];
    } catch (e) {
      throw this.closed && !isKeelError(e) ? new StoreClosedError() : this.toError(e);
    }
  }

  /**
   * Runs `work` on a pooled connection. A connection that saw an error is discarded rather than
   * returned (the server rolls back whatever transaction it had open).
   */
  private async withClient<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.ended) throw new StoreClosedError();
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw this.toError(e);
    }
    client.on('error', ignoreClientError);
    let failed = false;
    try {
      return await work(client);
    } catch (e) {
      failed = true;
      throw e;
    } finally {
      client.removeListener('error', ignoreClientError);
      client.release(failed);
    }
  }

  private toError(e: unknown, commitSent = false): unknown {
    return toStoreError(e, this.target, this.options.connectTimeoutMs, commitSent);
  }

  private readOnlyError(): ReadOnlyDatabaseError {
    return new ReadOnlyDatabaseError(this.target, 'opened with { readonly: true }', {
      fix: 'Open it without readonly to append',
    });
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }
}

/**
 * What the one-statement commit answered: `'written'`, else the heads it found (to chain onto
 * next), or `undefined` when they cannot be trusted (no heads row, or rows beyond them): the
 * locked path sorts that out.
 */
function outcomeOf(
  row: (HeadsRow & { ok: boolean; max: number }) | undefined,
): 'written' | ChainState | undefined {
  if (row?.ok === true) return 'written';
  if (row === undefined || row.max !== row.seq) return undefined;
  return stateOf(row);
}

/** Of two heads, those further along (the later commit's), or the one there is. */
function fresher(a: ChainState | undefined, b: ChainState | undefined): ChainState | undefined {
  if (a === undefined || b === undefined) return a ?? b;
  return b.seq > a.seq ? b : a;
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
