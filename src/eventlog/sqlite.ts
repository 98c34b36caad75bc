/**
 * The embedded event store: one SQLite file (better-sqlite3), append-only, hash-chained per class,
 * written by group commit. See {@link openSqliteStore}.
 */
import Database from 'better-sqlite3';
import type { SqliteStoreOptions, SqliteStoreStats } from './sqlite-open.js';
import { createPrivateFile, enableWal } from '../core/files.js';
import { ConfigError } from '../core/errors.js';
import { ForeignDatabaseError, ReadOnlyDatabaseError, StoreClosedError } from './errors.js';
import type { EventClass, KeelEvent, NewEvent } from './events.js';
import type {
  ChainHeads,
  ChainedEvent,
  CommitListener,
  EventFilter,
  EventStore,
  PruneResult,
  VerifyResult,
} from './store.js';
import { canonicalPayloadJson, prepareEvent, prepareEvents } from './validate.js';
import { CommitListeners } from './commits.js';
import { sqliteDialectFor, type SqlDialect } from './sql/dialect.js';
import { SqliteStrings, deleteUnusedStrings, storedRows } from './sqlite-strings.js';
import type { SqlProgram } from './sql/program.js';
import {
  KeysetPages,
  anchorHeads,
  checkFilter,
  planFilter,
  chainRowFor,
  eventOf,
  selectQuery,
  toChained,
} from './sql/query.js';
import { anchorEvent, checkPruneOptions, loadAnchors, pruneResult, prunePlan } from './sql/retention.js';
import { verifyLog } from './sql/verify.js';
import {
  AUTO_FULL_IN_A_ROW,
  AUTO_SMALL_IN_A_ROW,
  Batch,
  MAX_BATCHES_IN_FLIGHT,
  MAX_PARTIAL_IN_FLIGHT,
  MAX_THREAD_RESTARTS,
} from './sqlite-batch.js';
import { ChainWriter } from './sqlite-chain.js';
import {
  checkFile,
  checkKind,
  checkPageCount,
  maintain,
  resolveOptions,
  retentionGateClosed,
  toStoreError,
  type ResolvedOptions,
} from './sqlite-open.js';
import { WriterThread, packRows } from './sqlite-thread.js';
import { SCHEMA_VERSION, triggerProblems } from './schema.js';
import { sqliteOwnership } from './sqlite-owners.js';
import type { OwnershipStore } from './store.js';

export { MAX_THREAD_RESTARTS } from './sqlite-batch.js';

/** Prepared statements kept per connection. */
const MAX_CACHED_STATEMENTS = 64;

export type { SqliteStoreOptions, SqliteStoreStats } from './sqlite-open.js';

/**
 * The SQLite {@link EventStore}, with a few SQLite-specific controls. Reads answer synchronously
 * (better-sqlite3), so `store.query(...)` is an array and `store.iterate(...)` a plain iterator.
 */
export interface SqliteEventStore extends EventStore {
  /** The path it was opened with. */
  readonly path: string;
  appendOne(event: NewEvent): Promise<void>;
  appendStart(event: NewEvent): Promise<void>;
  query(filter?: EventFilter): KeelEvent[];
  iterate(filter?: EventFilter): IterableIterator<KeelEvent>;
  iterateChained(filter?: EventFilter): IterableIterator<ChainedEvent>;
  lastSeq(): number;
  heads(): ChainHeads;
  verify(): VerifyResult;
  /** Commit counters: `events / transactions` is the average group-commit size. */
  stats(): SqliteStoreStats;
  /**
   * Sets the size cap in pages (see {@link SqliteStoreOptions.maxPageCount}) and returns the cap in
   * force: SQLite never sets it below the current size. Raise it to resume after `DiskFullError`.
   */
  setMaxPageCount(pages: number): number;
  /** Leases and claims of durable execution, in two small tables of the same file (`sqlite-owners.ts`). */
  ownership(): OwnershipStore;
}

/**
 * Opens (creating and migrating when needed) a SQLite event log.
 *
 * Appends are validated, queued, and committed together on the next tick (or as soon as `maxBatch`
 * events are pending); each `append` resolves only after its transaction committed, and `onCommit`
 * listeners see every batch before any of its appends resolves. Failures are named errors from
 * `errors.ts` and never lose committed events.
 *
 * @throws NotADatabaseError, SchemaVersionError, DatabaseLockedError, CorruptDatabaseError, ConfigError
 * @example
 * const store = openSqliteStore({ path: 'keel.db' });
 * const [started] = await store.append([
 *   { ts: clock.now(), workflowId: 'wf-1', type: 'feedback.recorded', payload: { correct: true } },
 * ]);
 * console.log(started?.seq, store.verify().ok);
 * await store.close();
 */
export function openSqliteStore(options: SqliteStoreOptions): SqliteEventStore {
  const o = resolveOptions(options);
  const memory = o.path === ':memory:';
  let readOnlyReason = o.readonly ? 'opened with { readonly: true }' : undefined;
  if (memory) {
    if (o.readonly) {
      throw new ConfigError('readonly', 'an in-memory store cannot be read-only; open a file path instead');
    }
  } else {
    readOnlyReason = checkFile(o.path, o.readonly) ?? readOnlyReason;
    if (readOnlyReason === undefined) createPrivateFile(o.path, o.fileMode);
  }

  let db: Database.Database;
  try {
    db = new Database(o.path, {
      readonly: readOnlyReason !== undefined,
      fileMustExist: readOnlyReason !== undefined,
      timeout: o.busyTimeoutMs,
    });
  } catch (e) {
    throw toStoreError(e, o.path, o.busyTimeoutMs);
  }
  try {
    // Nothing is written before the file is known to be new or Keel's: a foreign file stays as it was.
    const kind = checkKind(db, o.path);
    if (readOnlyReason === undefined) {
      if (!memory) enableWal(db);
      db.pragma(`synchronous = ${o.durability === 'fsync' ? 'FULL' : 'NORMAL'}`);
      if (o.maxPageCount !== undefined) db.pragma(`max_page_count = ${o.maxPageCount}`);
      maintain(db, o, kind);
    } else if (kind.kind === 'empty') {
      throw new ForeignDatabaseError(o.path, 'it is empty: no event log was written to it yet');
    }
    // A writable store has migrated the file; a read-only one reads an older version as it is.
    const version = readOnlyReason === undefined || kind.kind !== 'keel' ? SCHEMA_VERSION : kind.version;
    const strings = version >= 4 ? new SqliteStrings(db) : undefined;
    const dialect = sqliteDialectFor(version, strings && storedRows(strings));
    return new SqliteStore(db, o, readOnlyReason, dialect, strings);
  } catch (e) {
    db.close();
    throw toStoreError(e, o.path, o.busyTimeoutMs);
  }
}

class SqliteStore implements SqliteEventStore {
  readonly path: string;
  readonly readonly: boolean;

  private readonly db: Database.Database;
  private readonly options: ResolvedOptions;
  private readonly readOnlyReason: string | undefined;
  private readonly statements = new Map<string, Database.Statement<unknown[], unknown>>();

  /** Seq and chain heads as this connection sees them; writes rows in `writer: 'inline'` mode. */
  private readonly chain: ChainWriter;

  private readonly commits: CommitListeners;
  private queue = new Batch();
  private scheduled: NodeJS.Immediate | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  /**
   * The writer thread (`writer: 'thread'`, or `'auto'` once started), its batches in flight, and
   * who waits for them to drain.
   */
  private thread: WriterThread | undefined;
  /** `writer: 'auto'` may (still) start a thread: a file, writable, and no thread has stopped. */
  private autoThread: boolean;
  /** `'auto'` gave up its thread: it stopped more than {@link MAX_THREAD_RESTARTS} times. */
  private threadDropped = false;
  /** The page cap a thread started later opens with (`setMaxPageCount` moves it). */
  private pageCap: number | undefined;
  private inFlight = 0;
  /** `'auto'`: committing on the thread; flushes in a row that filled a batch / were small. */
  private onThread = false;
  private fullInARow = 0;
  private smallInARow = 0;
  private drainWaiters: (() => void)[] = [];
  private threadTransactions = 0;
  /** Writer threads replaced after one stopped ({@link replaceStoppedThread}). */
  private threadRestarts = 0;

  private readonly flushNow = (): void => this.flush();
  private readonly writeBatch: Database.Transaction<(batch: Batch) => void>;

  constructor(
    db: Database.Database,
    options: ResolvedOptions,
    readOnlyReason: string | undefined,
    private readonly dialect: SqlDialect,
    private readonly strings: SqliteStrings | undefined,
  ) {
    this.db = db;
    this.options = options;
    this.path = options.path;
    this.readOnlyReason = readOnlyReason;
    this.readonly = readOnlyReason !== undefined;
    this.commits = new CommitListeners(options.onListenerError);
    this.writeBatch = db.transaction((batch: Batch) => {
      const chain = this.chain;
      chain.sync();
      strings?.synced(chain.seq);
      const { events, payloadJson, starts } = batch;
      if (starts.length > 0) this.writeWithStarts(batch);
      else {
        for (let i = 0; i < events.length; i++) {
          const e = events[i] as KeelEvent;
          e.seq = chain.append(e.ts, e.workflowId, e.type, e.v, e.class, payloadJson[i] as string);
        }
        chain.flushRows();
      }
      strings?.wroteThrough(chain.seq);
    });
    this.chain = new ChainWriter((sql, raw) => this.stmt(sql, raw), dialect, strings);
    this.pageCap = options.maxPageCount;
    const writable = readOnlyReason === undefined;
    this.autoThread = options.writer === 'auto' && writable && options.path !== ':memory:';
    if (options.writer === 'thread' && writable) this.thread = this.startThread();
  }

  /**
   * A thread that stopped (crashed, was killed, could not open the file) and whose batches are
   * answered is replaced, up to {@link MAX_THREAD_RESTARTS} times: `'thread'` starts the new one
   * at once, `'auto'` commits inline and starts it the next time the load calls for a thread.
   * After that, `'thread'` keeps the stopped one (writes are refused until the store is reopened)
   * and `'auto'` stays inline.
   */
  private replaceStoppedThread(): void {
    this.onThread = false;
    if (this.threadRestarts >= MAX_THREAD_RESTARTS) {
      if (this.options.writer === 'auto') {
        this.thread = undefined;
        this.autoThread = false;
        this.threadDropped = true;
      }
      return;
    }
    this.threadRestarts++;
    this.thread = this.options.writer === 'thread' ? this.startThread() : undefined;
  }

  private startThread(): WriterThread {
    return new WriterThread(
      {
        path: this.options.path,
        durability: this.options.durability,
        busyTimeoutMs: this.options.busyTimeoutMs,
        maxPageCount: this.pageCap,
      },
      (f) => {
        const e = f.code !== undefined ? new Database.SqliteError(f.message, f.code) : new Error(f.message);
        return asError(toStoreError(e, this.path, this.options.busyTimeoutMs));
      },
    );
  }

  /**
   * The thread that commits `batch`, or `undefined` to commit it on this thread. `'auto'`: after
   * {@link AUTO_FULL_IN_A_ROW} full flushes in a row it starts the thread and, once it is up, stays
   * on it until {@link AUTO_SMALL_IN_A_ROW} small flushes in a row; any flush waits behind batches
   * in flight there. `'thread'`: the thread. A stopped one is replaced first
   * ({@link replaceStoppedThread}).
   */
  private writerFor(batch: Batch): WriterThread | undefined {
    if (this.thread?.stopped === true && this.inFlight === 0) this.replaceStoppedThread();
    if (this.options.writer !== 'auto') return this.thread;
    const n = batch.events.length;
    const max = this.options.maxBatch;
    this.fullInARow = n >= max ? this.fullInARow + 1 : 0;
    if (this.inFlight > 0) return this.thread;
    if (this.onThread) {
      if (n >= max / 4) this.smallInARow = 0;
      else if (++this.smallInARow >= AUTO_SMALL_IN_A_ROW) {
        this.onThread = false;
        return undefined;
      }
      return this.thread?.ready === true ? this.thread : undefined;
    }
    if (this.fullInARow < AUTO_FULL_IN_A_ROW) return undefined;
    if (this.thread === undefined && this.autoThread) this.thread = this.startThread();
    if (this.thread?.ready !== true) return undefined;
    this.onThread = true;
    this.smallInARow = 0;
    return this.thread;
  }

  // ── writes ──────────────────────────────────────────────────────────────────────────────────

  append(events: readonly NewEvent[]): Promise<KeelEvent[]> {
    const refused = this.refuseWrite();
    if (refused) return refused;
    const batch = this.queue;
    const from = batch.events.length;
    try {
      prepareEvents(events, batch.events, batch.payloadJson);
    } catch (e) {
      return Promise.reject(asError(e));
    }
    const to = batch.events.length;
    if (to === from) return Promise.resolve([]);
    return new Promise<KeelEvent[]>((resolve, reject) => {
      batch.waiters.push({ from, to, resolve, reject });
      this.queued();
    });
  }

  appendStart(event: NewEvent): Promise<void> {
    const refused = this.refuseWrite();
    if (refused) return refused;
    if (event.type !== 'workflow.started') {
      return Promise.reject(
        new TypeError(`appendStart takes a workflow.started event, not ${String(event.type)}`),
      );
    }
    const batch = this.queue;
    const at = batch.events.length;
    try {
      prepareEvent(event, 0, batch.events, batch.payloadJson);
    } catch (e) {
      return Promise.reject(asError(e));
    }
    return new Promise<void>((resolve, reject) => {
      batch.starts.push({ at, resolve, reject });
      this.queued();
    });
  }

  /**
   * The transaction's work for a batch holding conditional starts: each `workflow.started` of
   * {@link appendStart} is written only if the file (and this batch) holds no start for its id;
   * a refused one, and any later event of its workflow in the batch, is not written (seq stays 0).
   */
  private writeWithStarts(batch: Batch): void {
    const chain = this.chain;
    const { events, payloadJson, starts } = batch;
    let refusedIds: Set<string> | undefined;
    const startedHere = new Set<string>();
    let next = 0;
    for (let i = 0; i < events.length; i++) {
      const e = events[i] as KeelEvent;
      const start = starts[next];
      if (start !== undefined && start.at === i) {
        next++;
        if (startedHere.has(e.workflowId) || this.startRecorded(e.workflowId)) {
          start.refused = true;
          (refusedIds ??= new Set()).add(e.workflowId);
          continue;
        }
      } else if (refusedIds?.has(e.workflowId) === true) continue;
      if (e.type === 'workflow.started') startedHere.add(e.workflowId);
      e.seq = chain.append(e.ts, e.workflowId, e.type, e.v, e.class, payloadJson[i] as string);
    }
    chain.flushRows();
    this.strings?.wroteThrough(chain.seq);
  }

  /** Whether the file holds a `workflow.started` for `workflowId` (inside the write transaction). */
  private startRecorded(workflowId: string): boolean {
    const strings = this.strings;
    if (strings === undefined) return false;
    const workflow = strings.find(workflowId);
    const type = strings.find('workflow.started');
    if (workflow === undefined || type === undefined) return false;
    return (
      this.stmt('SELECT 1 FROM events WHERE workflow = ? AND type = ? LIMIT 1')
        .pluck()
        .get(workflow, type) !== undefined
    );
  }

  appendOne(event: NewEvent): Promise<void> {
    const refused = this.refuseWrite();
    if (refused) return refused;
    const batch = this.queue;
    try {
      prepareEvent(event, 0, batch.events, batch.payloadJson);
    } catch (e) {
      return Promise.reject(asError(e));
    }
    const promise = batch.sharedPromise();
    this.queued();
    return promise;
  }

  /** The rejection of a write on a closed or read-only store. */
  private refuseWrite(): Promise<never> | undefined {
    if (this.closed) return Promise.reject(new StoreClosedError());
    if (this.readOnlyReason !== undefined) {
      return Promise.reject(new ReadOnlyDatabaseError(this.path, this.readOnlyReason));
    }
    return undefined;
  }

  /** After events were queued: commit a full batch now, otherwise on the next tick. */
  private queued(): void {
    if (this.queue.events.length >= this.options.maxBatch) this.flush();
    else this.scheduled ??= setImmediate(this.flushNow);
  }

  onCommit(listener: CommitListener): () => void {
    return this.commits.add(listener);
  }

  prune(options: { olderThan: number; class: EventClass }): Promise<PruneResult> {
    const run = (): PruneResult => this.pruneNow(options);
    if (this.thread) return this.drained().then(run); // after every append already made
    try {
      return Promise.resolve(run());
    } catch (e) {
      return Promise.reject(asError(e));
    }
  }

  close(): Promise<void> {
    // A second call waits for the same close: with a writer thread, appends still drain first.
    if (this.closing) return this.closing;
    this.flush();
    this.closed = true;
    const finish = (): void => {
      try {
        if (!this.readonly) this.db.pragma('optimize');
      } catch {
        // Only a planner hint: a full disk or a lock must not keep the file open.
      }
      this.db.close();
    };
    const thread = this.thread;
    if (!thread) {
      finish();
      return (this.closing = Promise.resolve());
    }
    return (this.closing = this.drained()
      .then(() => thread.close())
      .then(finish));
  }

  private owners: OwnershipStore | undefined;

  ownership(): OwnershipStore {
    return (this.owners ??= sqliteOwnership({
      db: this.db,
      assertWritable: () => this.assertWritable(),
      assertOpen: () => this.assertOpen(),
      run: (work) => this.sqlite(work),
    }));
  }

  stats(): SqliteStoreStats {
    return {
      transactions: this.commits.transactions,
      threadTransactions: this.threadTransactions,
      threadRestarts: this.threadRestarts,
      events: this.commits.events,
      writerThread: this.writerThreadState(),
    };
  }

  private writerThreadState(): SqliteStoreStats['writerThread'] {
    if (this.thread === undefined) return this.threadDropped ? 'stopped' : 'none';
    if (this.thread.stopped) return 'stopped';
    return this.thread.ready ? 'up' : 'starting';
  }

  setMaxPageCount(pages: number): number {
    checkPageCount(pages, 'pages');
    this.assertOpen();
    const cap = this.sqlite(() => this.db.pragma(`max_page_count = ${pages}`, { simple: true }) as number);
    this.pageCap = pages;
    this.thread?.setPages(pages);
    return cap;
  }

  /** Commits every queued append in one transaction, then tells listeners, then resolves. */
  private flush(): void {
    if (this.scheduled !== undefined) {
      clearImmediate(this.scheduled);
      this.scheduled = undefined;
    }
    const batch = this.queue;
    if (batch.events.length === 0) return;
    // A batch with conditional starts commits on this connection (the check reads the file in the
    // transaction that writes), after whatever the thread still has in flight.
    const thread = batch.starts.length > 0 ? undefined : this.writerFor(batch);
    if (batch.starts.length > 0 && this.inFlight > 0) return; // next() flushes it
    if (thread) {
      // A full batch (maxBatch) goes at once, up to MAX_BATCHES_IN_FLIGHT, so the thread commits
      // while this one keeps producing; a smaller one goes while fewer than MAX_PARTIAL_IN_FLIGHT
      // are in flight. Otherwise it grows (group commit) until an answer posts it.
      const full = batch.events.length >= this.options.maxBatch;
      const limit = full ? MAX_BATCHES_IN_FLIGHT : MAX_PARTIAL_IN_FLIGHT;
      if (this.inFlight < limit) this.post(thread, batch);
      return;
    }
    this.queue = new Batch();

    const saved = this.chain.save();
    const startedAt = performance.now(); // commit duration for metrics only, never for logic
    try {
      this.writeBatch.immediate(batch);
    } catch (e) {
      this.chain.restore(saved);
      batch.reject(toStoreError(e, this.path, this.options.busyTimeoutMs));
      return;
    }
    this.commits.committed(batch.written(), { commitMs: performance.now() - startedAt });
    batch.resolve();
  }

  /** Hands the queued appends to the writer thread as one batch (answers come back in order). */
  private post(thread: WriterThread, batch: Batch): void {
    this.queue = new Batch();
    this.inFlight++;
    const { events, payloadJson } = batch;
    thread.write(packRows(events, payloadJson)).then(
      ({ firstSeq, state, commitMs }) => {
        for (let i = 0; i < events.length; i++) (events[i] as KeelEvent).seq = firstSeq + i;
        this.chain.restore(state, false);
        this.threadTransactions++;
        this.commits.committed(events, { commitMs });
        batch.resolve();
        this.next();
      },
      (error: unknown) => {
        batch.reject(error);
        this.next();
      },
    );
  }

  /** After an answer from the writer thread: post what queued meanwhile, or tell who waits for a drain. */
  private next(): void {
    this.inFlight--;
    if (this.queue.events.length > 0) this.flush();
    else if (this.inFlight === 0) for (const w of this.drainWaiters.splice(0)) w();
  }

  /** Resolves once every append made so far has been answered (writer thread only). */
  private drained(): Promise<void> {
    this.flush();
    if (this.inFlight === 0 && this.queue.events.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  private pruneNow(options: { olderThan: number; class: EventClass }): PruneResult {
    this.assertWritable();
    checkPruneOptions(options);
    const { olderThan, class: cls } = options;
    this.flush();
    const saved = this.chain.save();
    let result: PruneResult;
    let written: KeelEvent[] = [];
    // What the prune deletes is overwritten with zeros, not left in free space: a pruned workflow's
    // id (and the inline strings of its payloads) must leave the file's bytes.
    const secure = this.db.pragma('secure_delete', { simple: true }) as number;
    if (secure !== 1) this.db.pragma('secure_delete = ON');
    try {
      [result, written] = this.db
        .transaction((): [PruneResult, KeelEvent[]] => {
          this.chain.sync();
          this.strings?.synced(this.chain.seq);
          const done = this.chain.run(prunePlan(this.dialect, cls, olderThan));
          const now = this.options.clock.now();
          const anchors = (done?.anchors ?? []).map((payload) => {
            const event = anchorEvent(now, payload);
            event.seq = this.chain.append(
              now,
              event.workflowId,
              event.type,
              event.v,
              event.class,
              canonicalPayloadJson(payload),
            );
            return event;
          });
          this.chain.flushRows();
          // The strings only the pruned rows used go too (after the anchors, which use theirs).
          const strings = this.strings;
          const unused =
            done !== undefined && strings !== undefined
              ? deleteUnusedStrings(this.db, strings, this.dialect.openGate, this.dialect.closeGate)
              : undefined;
          strings?.wroteThrough(this.chain.seq);
          const pruned = pruneResult(cls, done, anchors[0]?.seq);
          return [
            unused !== undefined && pruned.pruned > 0 ? { ...pruned, strings: unused } : pruned,
            anchors,
          ];
        })
        .immediate();
    } catch (e) {
      this.chain.restore(saved);
      throw toStoreError(e, this.path, this.options.busyTimeoutMs);
    } finally {
      if (secure !== 1) this.db.pragma(`secure_delete = ${secure}`);
    }
    if (written.length > 0) {
      this.truncateWal();
      this.commits.committed(written);
    }
    return result;
  }

  /**
   * After a prune: the -wal file still holds the page images from before it (with the pruned
   * strings) until a checkpoint reuses or truncates it. One truncating checkpoint, without waiting:
   * when another connection is reading or writing it does not complete, and ordinary checkpoints
   * overwrite those frames later (`PRAGMA wal_checkpoint(TRUNCATE)` removes them at once).
   */
  private truncateWal(): void {
    if (this.path === ':memory:') return;
    const timeout = this.db.pragma('busy_timeout', { simple: true }) as number;
    try {
      this.db.pragma('busy_timeout = 0');
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // Best effort: the prune has committed; a busy or full disk leaves the frames to later checkpoints.
    } finally {
      this.db.pragma(`busy_timeout = ${timeout}`);
    }
  }

  // ── reads ───────────────────────────────────────────────────────────────────────────────────

  query(filter: EventFilter = {}): KeelEvent[] {
    this.assertOpen();
    checkFilter(filter);
    const c = filter.limit === 0 ? undefined : this.run(planFilter(this.dialect, filter));
    if (c === undefined) return [];
    const d = this.dialect;
    const q = selectQuery(d, d.eventColumns, c, filter.limit);
    return this.sqlite(() => {
      const rows = this.stmt(q.sql, true).all(...q.params) as unknown[][];
      const out = new Array<KeelEvent>(rows.length);
      for (let i = 0; i < rows.length; i++) out[i] = eventOf(d, rows[i] as unknown[]);
      return out;
    });
  }

  iterate(filter: EventFilter = {}): IterableIterator<KeelEvent> {
    this.assertOpen();
    checkFilter(filter);
    const d = this.dialect;
    return this.pages<unknown[], KeelEvent>(filter, d.eventColumns, (r) => eventOf(d, r));
  }

  iterateChained(filter: EventFilter = {}): IterableIterator<ChainedEvent> {
    this.assertOpen();
    checkFilter(filter);
    const anchored = anchorHeads(this.run(loadAnchors(this.dialect)));
    const d = this.dialect;
    return this.pages<unknown[], ChainedEvent>(filter, d.chainedColumns, (r) =>
      toChained(chainRowFor(d, r), anchored),
    );
  }

  lastSeq(): number {
    this.assertOpen();
    this.sqlite(() => this.chain.sync());
    return this.chain.seq;
  }

  heads(): ChainHeads {
    this.assertOpen();
    this.sqlite(() => this.chain.sync());
    return { audit: { ...this.chain.audit }, operational: { ...this.chain.operational } };
  }

  verify(): VerifyResult {
    this.assertOpen();
    return this.sqlite(() => {
      const result = this.chain.run(verifyLog(this.dialect));
      if (!result.ok) return result;
      const schema = triggerProblems(this.db);
      if (!retentionGateClosed(this.db)) schema.push('the retention gate is left open (DELETE is allowed)');
      if (schema.length === 0) return result;
      return {
        ok: false,
        events: result.events,
        seq: 0,
        reason: 'schema',
        detail: `the append-only schema was changed: ${schema.join('; ')}. Open the log writable once to restore it (logged as log.maintained), and find out who changed it`,
      };
    });
  }

  /**
   * Streams matches in seq order by keyset pagination: one short query per page, so writes can
   * interleave and memory stays flat.
   */
  private *pages<R extends readonly unknown[], T>(
    filter: EventFilter,
    columns: string,
    map: (row: R) => T,
  ): Generator<T> {
    const c = this.run(planFilter(this.dialect, filter));
    if (c === undefined) return;
    const pages = new KeysetPages(this.dialect, columns, c, filter.limit);
    for (let q = pages.next(); q !== undefined; q = pages.next()) {
      this.assertOpen();
      const { sql, params } = q;
      const rows = this.sqlite(() => this.stmt(sql, true).all(...params) as R[]);
      for (let i = 0; i < rows.length; i++) yield map(rows[i] as R);
      if (!pages.advance(rows)) return;
    }
  }

  /** Runs a shared SQL procedure on this connection, its errors named. */
  private run<T>(program: SqlProgram<T>): T {
    return this.sqlite(() => this.chain.run(program));
  }

  // ── plumbing ────────────────────────────────────────────────────────────────────────────────

  /** A cached prepared statement (raw rows when `raw`); SQLite errors become named errors. */
  private stmt(sql: string, raw = false): Database.Statement<unknown[], unknown> {
    const key = raw ? `raw:${sql}` : sql;
    let s = this.statements.get(key);
    if (s === undefined) {
      try {
        s = this.db.prepare<unknown[], unknown>(sql);
      } catch (e) {
        throw toStoreError(e, this.path, this.options.busyTimeoutMs);
      }
      if (raw) s.raw(true);
      if (this.statements.size >= MAX_CACHED_STATEMENTS) {
        const oldest = this.statements.keys().next();
        if (oldest.done !== true) this.statements.delete(oldest.value);
      }
      this.statements.set(key, s);
    }
    return s;
  }

  /** Runs SQLite work, turning its errors into the event log's named errors. */
  private sqlite<T>(work: () => T): T {
    try {
      return work();
    } catch (e) {
      throw toStoreError(e, this.path, this.options.busyTimeoutMs);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }

  private assertWritable(): void {
    this.assertOpen();
    if (this.readOnlyReason !== undefined) throw new ReadOnlyDatabaseError(this.path, this.readOnlyReason);
  }
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
