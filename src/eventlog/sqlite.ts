/**
 * The embedded event store: one SQLite file (better-sqlite3), append-only, hash-chained per class,
 * written by group commit. See {@link openSqliteStore}.
 */
import fs from 'node:fs';
import nodePath from 'node:path';
import Database from 'better-sqlite3';
import { realClock, type Clock } from '../core/clock.js';
import { ConfigError, isKeelError } from '../core/errors.js';
import { createPrivateFile, enableWal, resolveFileMode } from '../core/files.js';
import { ANCHOR_CLOCK_SKEW_MS, ChainVerifier, isoTime, latestAnchors } from './chain.js';
import { checkFilter } from './filter.js';
import type { ChainLookup, ChainRow } from './chain.js';
import {
  CorruptDatabaseError,
  DatabaseLockedError,
  DiskFullError,
  EventLogError,
  ForeignDatabaseError,
  NotADatabaseError,
  ReadOnlyDatabaseError,
  SchemaVersionError,
  StoreClosedError,
} from './errors.js';
import { EVENT_VERSIONS, SYSTEM_WORKFLOW_ID } from './events.js';
import type { EventClass, EventPayloads, KeelEvent, NewEvent } from './events.js';
import {
  KEEL_APPLICATION_ID,
  SCHEMA_VERSION,
  classifyLog,
  migrate,
  restoreTriggers,
  triggerProblems,
  type LogFileKind,
} from './schema.js';
import type {
  ChainHeads,
  CommitInfo,
  ChainedEvent,
  CommitListener,
  EventFilter,
  EventStore,
  PruneResult,
  VerifyResult,
} from './store.js';
import { canonicalPayloadJson, prepareEvent, prepareEvents } from './validate.js';
import { CHAINED_COLUMNS, ChainWriter, type Head } from './sqlite-chain.js';
import { WriterThread, packRows } from './sqlite-thread.js';

/** Options of {@link openSqliteStore}. */
export interface SqliteStoreOptions {
  /** File path of the log, or `':memory:'` for tests. A missing file is created (unless `readonly`). */
  path: string;
  /** Where anchor events (retention) read their `ts` from. Default {@link realClock}. */
  clock?: Clock;
  /**
   * When a commit counts as durable. Default `'normal'`.
   * - `'normal'`: WAL + `synchronous=NORMAL`. A commit is in the WAL when `append` resolves, so a
   *   killed process loses nothing; the WAL is fsynced only at checkpoints, so a power loss or OS
   *   crash can drop the last few commits (never corrupting the file). Cheapest.
   * - `'fsync'`: WAL + `synchronous=FULL`. Every group commit fsyncs the WAL before `append`
   *   resolves, so acknowledged events survive power loss. Costs one fsync per batch (0.1–10 ms
   *   depending on the disk), shared by every append in it.
   */
  durability?: 'normal' | 'fsync';
  /**
   * Open for reading only (auditors): queries and `verify` work, `append`/`prune` reject with
   * `ReadOnlyDatabaseError`. The file must exist. Default `false`; a file without write permission
   * bits is opened read-only regardless.
   */
  readonly?: boolean;
  /**
   * How long to wait on another connection's lock before `DatabaseLockedError`, in ms. Default 5000.
   * better-sqlite3 is synchronous, so the wait blocks this thread: keep it short in services.
   */
  busyTimeoutMs?: number;
  /** Commit as soon as this many events are pending instead of waiting for the next tick. Default 1024. */
  maxBatch?: number;
  /**
   * Cap on the database size in pages (`PRAGMA max_page_count`; a page is 4096 bytes by default).
   * Writes past it fail with `DiskFullError`, exactly like a full disk. Default: SQLite's (no practical cap).
   */
  maxPageCount?: number;
  /** Receives errors thrown by `onCommit` listeners (they never break a commit). Default `console.error`. */
  onListenerError?: (error: unknown, events: readonly KeelEvent[]) => void;
  /**
   * Where appends are chained, inserted and committed. Default `'auto'`.
   * - `'inline'`: on this thread, one group commit per tick. Lowest latency for one call at a time.
   * - `'thread'`: on a writer thread with its own connection, so hashing, inserts and commits run on
   *   a second core while this thread keeps running workflows; batches grow while one commits.
   *   More throughput under concurrency, a thread hop more latency per commit; a lock held by
   *   another process waits on that thread, not on the event loop. Reads stay on this thread.
   *   Needs a file path (an in-memory database is private to its connection).
   * - `'auto'` (default): inline until two flushes in a row each fill a batch (`maxBatch`):
   *   appends keep arriving faster than a tick commits them (~400 workflows ending per tick). Then
   *   it starts a writer thread and, once it is up, commits there — every flush, until 8 in a row
   *   are smaller than a quarter batch (the load is gone); any flush made while batches are in
   *   flight on the thread goes there too. One call at a time and up to ~256 workflows in flight
   *   stay inline (no hop, no second core); from ~512 in flight it uses the second core (~25–30%
   *   more workflows/s at 1,000 in flight).
   *   A small flush waits for the thread's batches in flight (commits stay in order); if the
   *   thread stops, the store goes on inline and starts a new one when the load calls for it
   *   again (up to 3 times). In memory (`:memory:`) it is `'inline'`.
   */
  writer?: 'inline' | 'thread' | 'auto';
  /**
   * Permission bits of the log file when this open creates it (its `-wal` and `-shm` get the same
   * from SQLite). Default `0o600`: only the service's user reads the audit data. Give group read
   * (`0o640`) to let auditors of that group run the read-only `keel` commands. An existing file
   * keeps its mode.
   */
  fileMode?: number;
}

/** Counters of a {@link SqliteEventStore} since it was opened. */
export interface SqliteStoreStats {
  /** Write transactions committed (group commits and prunes). */
  transactions: number;
  /** Of those, committed by the writer thread (`writer: 'thread'` or `'auto'`). */
  threadTransactions: number;
  /**
   * Writer threads replaced after one stopped (crashed, killed, could not open the file). The
   * appends in flight on a stopped thread are rejected (`EVENTLOG_WRITER_STOPPED`); the next ones
   * go to a new thread (`'thread'`) or inline until the load calls for one (`'auto'`). After
   * {@link MAX_THREAD_RESTARTS}, `'thread'` refuses writes until reopened and `'auto'` stays inline.
   */
  threadRestarts: number;
  /** Events committed, anchors included. */
  events: number;
  /**
   * The writer thread: `'none'` (not started: `'inline'`, or `'auto'` before its first full
   * batch), `'starting'`, `'up'`, or `'stopped'` (it failed: replaced on the next flush while
   * restarts remain, for good after that; `'auto'` then goes on inline).
   */
  writerThread: 'none' | 'starting' | 'up' | 'stopped';
}

/**
 * The SQLite {@link EventStore}, with a few SQLite-specific controls. Reads answer synchronously
 * (better-sqlite3), so `store.query(...)` is an array and `store.iterate(...)` a plain iterator.
 */
export interface SqliteEventStore extends EventStore {
  /** The path it was opened with. */
  readonly path: string;
  appendOne(event: NewEvent): Promise<void>;
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
    return new SqliteStore(db, o, readOnlyReason);
  } catch (e) {
    db.close();
    throw toStoreError(e, o.path, o.busyTimeoutMs);
  }
}

/**
 * Classifies the opened file ({@link classifyLog}) and refuses what Keel must not open: a foreign
 * file, or a log of a newer Keel. Reads only.
 */
function checkKind(db: Database.Database, path: string): LogFileKind {
  const kind = classifyLog(db);
  if (kind.kind === 'foreign') throw new ForeignDatabaseError(path, kind.why);
  if (kind.kind === 'keel' && kind.version > SCHEMA_VERSION) {
    throw new SchemaVersionError(path, kind.version, SCHEMA_VERSION);
  }
  return kind;
}

/**
 * On a writable open: creates the schema of a new file, migrates (and stamps) the log of an earlier
 * Keel, and re-creates append-only triggers that are missing or altered — in one IMMEDIATE
 * transaction that checks the file again under the lock, so two processes opening a new path at
 * once create it once. A migration or a repair of an existing log is logged as a `log.maintained`
 * event of the `_system` workflow.
 */
function maintain(db: Database.Database, o: ResolvedOptions, seen: LogFileKind): void {
  const upToDate = seen.kind === 'keel' && seen.stamped && seen.version === SCHEMA_VERSION;
  if (upToDate && triggerProblems(db).length === 0 && retentionGateClosed(db)) return;
  db.transaction(() => {
    const kind = checkKind(db, o.path);
    const logged: { action: 'migrated' | 'triggers_restored'; details: string[]; from?: number }[] = [];
    if (kind.kind === 'empty') migrate(db);
    else if (kind.kind === 'keel' && (!kind.stamped || kind.version < SCHEMA_VERSION)) {
      const from = migrate(db);
      logged.push({
        action: 'migrated',
        from,
        details: [
          `schema version ${from} → ${SCHEMA_VERSION}`,
          ...(kind.stamped
            ? []
            : [`stamped application_id ${KEEL_APPLICATION_ID} (written by an earlier Keel)`]),
        ],
      });
    }
    const repaired = restoreTriggers(db);
    if (repaired.length > 0) logged.push({ action: 'triggers_restored', details: repaired });
    if (logged.length === 0) return;
    const chain = new ChainWriter((sql, raw) => {
      const st = db.prepare<unknown[], unknown>(sql);
      if (raw === true) st.raw(true);
      return st;
    });
    const ts = o.clock.now();
    for (const l of logged) {
      const payload: EventPayloads['log.maintained'] = {
        action: l.action,
        details: l.details,
        ...(l.from !== undefined ? { fromVersion: l.from, toVersion: SCHEMA_VERSION } : {}),
      };
      chain.append(
        ts,
        SYSTEM_WORKFLOW_ID,
        'log.maintained',
        EVENT_VERSIONS['log.maintained'],
        'audit',
        canonicalPayloadJson(payload),
      );
    }
    chain.flushRows();
  }).immediate();
}

function retentionGateClosed(db: Database.Database): boolean {
  return db.prepare<[], number>('SELECT open FROM retention_gate WHERE id = 1').pluck().get() === 0;
}

// ── internals ─────────────────────────────────────────────────────────────────────────────────

interface ResolvedOptions {
  path: string;
  clock: Clock;
  durability: 'normal' | 'fsync';
  readonly: boolean;
  busyTimeoutMs: number;
  maxBatch: number;
  maxPageCount: number | undefined;
  onListenerError: (error: unknown, events: readonly KeelEvent[]) => void;
  writer: 'inline' | 'thread' | 'auto';
  fileMode: number;
}

function resolveOptions(options: SqliteStoreOptions): ResolvedOptions {
  const { path } = options;
  if (typeof path !== 'string' || path.length === 0) {
    throw new ConfigError('path', `must be a file path or ':memory:', got ${JSON.stringify(path)}`);
  }
  const durability = options.durability ?? 'normal';
  if (durability !== 'normal' && durability !== 'fsync') {
    throw new ConfigError('durability', `must be 'normal' or 'fsync', got ${JSON.stringify(durability)}`);
  }
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new ConfigError('busyTimeoutMs', `must be an integer >= 0 (ms), got ${busyTimeoutMs}`);
  }
  const maxBatch = options.maxBatch ?? 1024;
  if (!Number.isInteger(maxBatch) || maxBatch < 1) {
    throw new ConfigError('maxBatch', `must be an integer >= 1 (events), got ${maxBatch}`);
  }
  const { maxPageCount } = options;
  if (maxPageCount !== undefined) checkPageCount(maxPageCount, 'maxPageCount');
  const writer = options.writer ?? 'auto';
  if (writer !== 'inline' && writer !== 'thread' && writer !== 'auto') {
    throw new ConfigError('writer', `must be 'inline', 'thread' or 'auto', got ${JSON.stringify(writer)}`);
  }
  if (writer === 'thread' && path === ':memory:') {
    throw new ConfigError(
      'writer',
      "'thread' needs a file path: an in-memory database is private to its connection; use writer: 'inline'",
    );
  }
  return {
    path,
    clock: options.clock ?? realClock,
    durability,
    readonly: options.readonly ?? false,
    busyTimeoutMs,
    maxBatch,
    maxPageCount,
    onListenerError:
      options.onListenerError ?? ((error) => console.error('keel: onCommit listener threw', error)),
    writer,
    fileMode: resolveFileMode(options.fileMode),
  };
}

function checkPageCount(pages: number, field: string): void {
  if (!Number.isInteger(pages) || pages < 1) {
    throw new ConfigError(field, `must be an integer >= 1 (pages), got ${pages}`);
  }
}

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/**
 * Checks an on-disk path before SQLite touches it. Returns why it must be opened read-only, if so.
 * A non-SQLite file is refused here, so it is never opened (let alone given a WAL) by SQLite.
 */
function checkFile(path: string, readonly: boolean): string | undefined {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(path);
  } catch {
    if (readonly) {
      throw new ConfigError('path', `${path} does not exist; a read-only store opens an existing event log`);
    }
    const dir = nodePath.dirname(nodePath.resolve(path));
    if (!fs.existsSync(dir))
      throw new ConfigError('path', `directory ${dir} does not exist; create it first`);
    return undefined;
  }
  if (!stat.isFile()) throw new NotADatabaseError(path);
  if (stat.size > 0) {
    const head = Buffer.alloc(100); // the SQLite file header
    const fd = fs.openSync(path, 'r');
    let read: number;
    try {
      read = fs.readSync(fd, head, 0, head.length, 0);
    } finally {
      fs.closeSync(fd);
    }
    if (read < SQLITE_HEADER.length || !head.subarray(0, SQLITE_HEADER.length).equals(SQLITE_HEADER)) {
      throw new NotADatabaseError(path);
    }
    // Another application's id (header offset 68): refused before SQLite opens it (or its WAL).
    const appId = read >= 72 ? head.readInt32BE(68) : 0;
    if (appId !== 0 && appId !== KEEL_APPLICATION_ID) {
      throw new ForeignDatabaseError(
        path,
        `its application_id is ${appId}, not Keel's ${KEEL_APPLICATION_ID}`,
      );
    }
  }
  // Root ignores permission bits, so honour them here: a file nobody may write is read-only.
  if ((stat.mode & 0o222) === 0) {
    return `its file mode is ${(stat.mode & 0o777).toString(8)}, without write permission`;
  }
  return undefined;
}

/** Maps a better-sqlite3 error to the event log's named errors; other errors pass through. */
function toStoreError(e: unknown, path: string, busyTimeoutMs: number): unknown {
  if (isKeelError(e) || !(e instanceof Database.SqliteError)) return e;
  const code = e.code;
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new DatabaseLockedError(path, busyTimeoutMs, { cause: e });
  }
  if (code === 'SQLITE_FULL') return new DiskFullError(path, { cause: e });
  if (code.startsWith('SQLITE_READONLY')) {
    return new ReadOnlyDatabaseError(path, `SQLite refused the write: ${e.message}`, { cause: e });
  }
  if (code.startsWith('SQLITE_CORRUPT')) return new CorruptDatabaseError(path, { cause: e });
  if (code === 'SQLITE_NOTADB') return new NotADatabaseError(path, { cause: e });
  return new EventLogError(
    'EVENTLOG_SQLITE',
    `${path}: SQLite failed (${code}: ${e.message}); nothing of this operation was written and committed events are intact.`,
    { cause: e },
  );
}

/** Columns of a KeelEvent, in {@link EventTuple} order. */
const EVENT_COLUMNS = 'seq, ts, workflow_id, type, v, class, payload';

type EventTuple = [
  seq: number,
  ts: number,
  workflowId: string,
  type: string,
  v: number,
  cls: string,
  payload: string,
];
type ChainedTuple = ChainRow;

/**
 * Times a stopped writer thread is replaced over a store's life: a thread that keeps dying (it
 * cannot open the file, say) is not restarted for ever.
 */
export const MAX_THREAD_RESTARTS = 3;

/** Full batches the writer thread may have queued at once (`writer: 'thread'`). */
const MAX_BATCHES_IN_FLIGHT = 4;

/**
 * Batches in flight below which a smaller batch is posted too (it waits otherwise). With 1, a
 * batch that filled while a full one was committing waited for that answer and then for its own
 * commit, with this thread idle meanwhile: 256 workflows in flight ran slower on the thread than
 * inline (147 vs 115 µs each); with 2 the thread commits it right after and is level with inline
 * there, and faster with 1,000 in flight (86 vs 112 µs).
 */
const MAX_PARTIAL_IN_FLIGHT = 2;

/**
 * `writer: 'auto'` moves to its thread after this many flushes in a row that each filled a batch
 * (`maxBatch`): appends keep arriving faster than a tick commits them. With 1, 256 workflows in
 * flight (one full flush and a smaller one per round) went to the thread, where they ran no faster
 * than inline and cost more CPU (7–40% in different runs).
 */
const AUTO_FULL_IN_A_ROW = 2;

/**
 * ...and back inline after this many flushes in a row smaller than a quarter batch. Staying put
 * in between matters: a version that went back on the first smaller flush alternated between the
 * connections every round at 512 in flight (168 µs per workflow, vs 125 inline and 129 on the
 * thread; each switch costs the other connection's page cache).
 */
const AUTO_SMALL_IN_A_ROW = 8;

/** Rows per keyset page for `iterate` and `verify`. */
const PAGE_SIZE = 1000;
const MAX_CACHED_STATEMENTS = 64;

function toEvent(r: EventTuple | ChainedTuple): KeelEvent {
  return {
    seq: r[0],
    ts: r[1],
    workflowId: r[2],
    type: r[3],
    v: r[4],
    class: r[5],
    payload: JSON.parse(r[6]) as unknown,
  } as KeelEvent;
}

function toChained(r: ChainedTuple): ChainedEvent {
  return { event: toEvent(r), prevHash: r[7], hash: r[8] };
}

/** An `append` call waiting for its batch: its events are `events[from, to)` of the batch. */
interface PendingAppend {
  from: number;
  to: number;
  resolve: (events: KeelEvent[]) => void;
  reject: (error: unknown) => void;
}

/**
 * The appends of one transaction, flat: events and their payload text in append order, the
 * `append` calls waiting for their share, and one promise shared by every `appendOne` of the batch
 * (so a producer of single events allocates no promise of its own per event).
 */
class Batch {
  readonly events: KeelEvent[] = [];
  readonly payloadJson: string[] = [];
  readonly waiters: PendingAppend[] = [];
  private shared: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | undefined;

  /** The promise every `appendOne` of this batch returns. */
  sharedPromise(): Promise<void> {
    if (this.shared === undefined) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.shared = { promise, resolve, reject };
    }
    return this.shared.promise;
  }

  resolve(): void {
    const { events, waiters } = this;
    for (const w of waiters)
      w.resolve(w.from === 0 && w.to === events.length ? events : events.slice(w.from, w.to));
    this.shared?.resolve();
  }

  reject(error: unknown): void {
    for (const w of this.waiters) w.reject(error);
    this.shared?.reject(error);
  }
}

/** A filter compiled to SQL conditions, plus the seq after which matches start. */
interface CompiledFilter {
  where: string[];
  params: unknown[];
  afterSeq: number;
}

/** SQL conditions of every filter field but `afterSeq`/`limit`; `undefined` when nothing can match. */
function compileFilter(filter: EventFilter): CompiledFilter | undefined {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.workflowId !== undefined) {
    where.push('workflow_id = ?');
    params.push(filter.workflowId);
  }
  const { type } = filter;
  if (typeof type === 'string') {
    where.push('type = ?');
    params.push(type);
  } else if (type !== undefined) {
    if (type.length === 0) return undefined;
    where.push(`type IN (${type.map(() => '?').join(', ')})`);
    params.push(...type);
  }
  if (filter.class !== undefined) {
    where.push('class = ?');
    params.push(filter.class);
  }
  if (filter.fromTs !== undefined) {
    where.push('ts >= ?');
    params.push(filter.fromTs);
  }
  if (filter.toTs !== undefined) {
    where.push('ts < ?');
    params.push(filter.toTs);
  }
  return { where, params, afterSeq: filter.afterSeq ?? 0 };
}

class SqliteStore implements SqliteEventStore {
  readonly path: string;
  readonly readonly: boolean;

  private readonly db: Database.Database;
  private readonly options: ResolvedOptions;
  private readonly readOnlyReason: string | undefined;
  private readonly statements = new Map<string, Database.Statement<unknown[], unknown>>();
  private readonly lookup: ChainLookup;

  /** Seq and chain heads as this connection sees them; writes rows in `writer: 'inline'` mode. */
  private readonly chain: ChainWriter;

  private queue = new Batch();
  private scheduled: NodeJS.Immediate | undefined;
  private listeners: CommitListener[] = [];
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
  private transactions = 0;
  private threadTransactions = 0;
  /** Writer threads replaced after one stopped ({@link replaceStoppedThread}). */
  private threadRestarts = 0;
  private committedEvents = 0;

  private readonly flushNow = (): void => this.flush();
  private readonly writeBatch: Database.Transaction<(batch: Batch) => void>;

  constructor(db: Database.Database, options: ResolvedOptions, readOnlyReason: string | undefined) {
    this.db = db;
    this.options = options;
    this.path = options.path;
    this.readOnlyReason = readOnlyReason;
    this.readonly = readOnlyReason !== undefined;
    this.writeBatch = db.transaction((batch: Batch) => {
      const chain = this.chain;
      chain.sync();
      const { events, payloadJson } = batch;
      for (let i = 0; i < events.length; i++) {
        const e = events[i] as KeelEvent;
        e.seq = chain.append(e.ts, e.workflowId, e.type, e.v, e.class, payloadJson[i] as string);
      }
      chain.flushRows();
    });
    this.lookup = {
      hashExistsAfter: (hash, afterSeq) =>
        this.stmt('SELECT 1 FROM events WHERE hash = ? AND seq > ? LIMIT 1').get(hash, afterSeq) !==
        undefined,
      prevHashExistsAfter: (prevHash, afterSeq) =>
        this.stmt('SELECT 1 FROM events WHERE prev_hash = ? AND seq > ? LIMIT 1').get(prevHash, afterSeq) !==
        undefined,
    };
    this.chain = new ChainWriter((sql, raw) => this.stmt(sql, raw));
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
    this.listeners = [...this.listeners, listener];
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners = [...this.listeners.slice(0, i), ...this.listeners.slice(i + 1)];
    };
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

  stats(): SqliteStoreStats {
    return {
      transactions: this.transactions,
      threadTransactions: this.threadTransactions,
      threadRestarts: this.threadRestarts,
      events: this.committedEvents,
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
    const thread = this.writerFor(batch);
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
    this.committed(batch.events, { commitMs: performance.now() - startedAt });
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
        this.chain.restore(state);
        this.threadTransactions++;
        this.committed(events, { commitMs });
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

  private pruneNow({ olderThan, class: cls }: { olderThan: number; class: EventClass }): PruneResult {
    this.assertWritable();
    if (typeof olderThan !== 'number' || Number.isNaN(olderThan)) {
      throw new ConfigError('prune.olderThan', `must be a time in ms since epoch, got ${String(olderThan)}`);
    }
    if (cls !== 'audit' && cls !== 'operational') {
      throw new ConfigError('prune.class', `must be 'audit' or 'operational', got ${JSON.stringify(cls)}`);
    }
    this.flush();
    const saved = this.chain.save();
    let result: PruneResult;
    let written: KeelEvent[] = [];
    try {
      [result, written] = this.db
        .transaction((): [PruneResult, KeelEvent[]] => this.pruneInTransaction(cls, olderThan))
        .immediate();
    } catch (e) {
      this.chain.restore(saved);
      throw toStoreError(e, this.path, this.options.busyTimeoutMs);
    }
    if (written.length > 0) this.committed(written);
    return result;
  }

  private pruneInTransaction(cls: EventClass, olderThan: number): [PruneResult, KeelEvent[]] {
    this.chain.sync();
    const cut = this.stmt('SELECT seq FROM events WHERE class = ? AND +ts >= ? ORDER BY seq LIMIT 1')
      .pluck()
      .get(cls, olderThan) as number | undefined;
    const last = this.stmt(
      'SELECT seq, hash FROM events WHERE class = ? AND seq < ? ORDER BY seq DESC LIMIT 1',
    ).get(cls, cut ?? Number.MAX_SAFE_INTEGER) as Head | undefined;
    if (last === undefined) return [{ class: cls, pruned: 0, throughSeq: 0 }, []];

    // Pruning audit may delete the anchor that the operational chain starts from: carry it forward.
    const carried = cls === 'audit' ? latestAnchors(this.chain.loadAnchors()).operational : undefined;

    this.stmt('UPDATE retention_gate SET open = 1 WHERE id = 1').run();
    const pruned = this.stmt('DELETE FROM events WHERE class = ? AND seq <= ?').run(cls, last.seq).changes;
    this.stmt('UPDATE retention_gate SET open = 0 WHERE id = 1').run();

    const now = this.options.clock.now();
    const written = [
      this.insertAnchor(now, {
        prunedClass: cls,
        prunedThroughSeq: last.seq,
        lastPrunedHash: last.hash,
        prunedCount: pruned,
        olderThanTs: olderThan,
      }),
    ];
    if (carried !== undefined && carried.intact && carried.seq <= last.seq) {
      written.push(this.insertAnchor(now, carried.payload));
    }
    const anchorSeq = (written[0] as KeelEvent).seq;
    return [{ class: cls, pruned, throughSeq: last.seq, anchorSeq }, written];
  }

  private insertAnchor(ts: number, payload: EventPayloads['log.anchor']): KeelEvent {
    const event: KeelEvent<'log.anchor'> = {
      seq: 0,
      ts,
      workflowId: SYSTEM_WORKFLOW_ID,
      type: 'log.anchor',
      v: EVENT_VERSIONS['log.anchor'],
      class: 'audit',
      payload,
    };
    event.seq = this.chain.append(
      ts,
      event.workflowId,
      event.type,
      event.v,
      event.class,
      canonicalPayloadJson(payload),
    );
    this.chain.flushRows();
    return event;
  }

  private committed(events: readonly KeelEvent[], info?: CommitInfo): void {
    this.transactions++;
    this.committedEvents += events.length;
    for (const listener of this.listeners) {
      try {
        listener(events, info);
      } catch (error) {
        try {
          this.options.onListenerError(error, events);
        } catch {
          // A failing error reporter must not break the commit either.
        }
      }
    }
  }

  // ── reads ───────────────────────────────────────────────────────────────────────────────────

  query(filter: EventFilter = {}): KeelEvent[] {
    this.assertOpen();
    checkFilter(filter);
    const c = filter.limit === 0 ? undefined : this.plan(filter);
    if (c === undefined) return [];
    const where = c.afterSeq > 0 ? [...c.where, 'seq > ?'] : c.where;
    const params = c.afterSeq > 0 ? [...c.params, c.afterSeq] : [...c.params];
    let sql = `SELECT ${EVENT_COLUMNS} FROM events`;
    if (where.length > 0) sql += ` WHERE ${where.join(' AND ')}`;
    sql += ' ORDER BY seq';
    if (filter.limit !== undefined) {
      sql += ' LIMIT ?';
      params.push(filter.limit);
    }
    const rows = this.sqlite(() => this.stmt(sql, true).all(...params) as EventTuple[]);
    const out = new Array<KeelEvent>(rows.length);
    for (let i = 0; i < rows.length; i++) out[i] = toEvent(rows[i] as EventTuple);
    return out;
  }

  iterate(filter: EventFilter = {}): IterableIterator<KeelEvent> {
    this.assertOpen();
    checkFilter(filter);
    return this.pages<EventTuple, KeelEvent>(filter, EVENT_COLUMNS, toEvent);
  }

  iterateChained(filter: EventFilter = {}): IterableIterator<ChainedEvent> {
    this.assertOpen();
    checkFilter(filter);
    return this.pages<ChainedTuple, ChainedEvent>(filter, CHAINED_COLUMNS, toChained);
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
    return this.sqlite(() => this.verifyNow());
  }

  private verifyNow(): VerifyResult {
    const verifier = new ChainVerifier(this.chain.loadAnchors(), this.lookup);
    const page = this.stmt(`SELECT ${CHAINED_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, true);
    let cursor = 0;
    for (;;) {
      const rows = page.all(cursor, PAGE_SIZE) as ChainRow[];
      for (const row of rows) {
        const failure = verifier.check(row);
        if (failure !== undefined) return failure;
      }
      if (rows.length < PAGE_SIZE) break;
      cursor = (rows[rows.length - 1] as ChainRow)[0];
    }
    const implausible = verifier.finish() ?? this.prunedStartEvidence(verifier.events);
    if (implausible !== undefined) return implausible;
    const schema = triggerProblems(this.db);
    if (!retentionGateClosed(this.db)) schema.push('the retention gate is left open (DELETE is allowed)');
    if (schema.length > 0) {
      return {
        ok: false,
        events: verifier.events,
        seq: 0,
        reason: 'schema',
        detail: `the append-only schema was changed: ${schema.join('; ')}. Open the log writable once to restore it (logged as log.maintained), and find out who changed it`,
      };
    }
    return { ok: true, events: verifier.events, heads: verifier.heads() };
  }

  /**
   * A workflow whose end is kept but whose `workflow.started` is gone was started by retention's
   * cut: its start (end `ts` − `latencyMs`) must be older than what the audit anchors say they
   * pruned. A start younger than every anchor's `olderThanTs` means the history was removed
   * outside retention (a forged anchor); see `ChainVerifier` for the other plausibility checks.
   */
  private prunedStartEvidence(events: number): VerifyResult | undefined {
    const anchors = this.chain.loadAnchors().filter((a) => a.intact && a.prunedClass === 'audit');
    if (anchors.length === 0) return undefined;
    let newest = anchors[0] as (typeof anchors)[number];
    for (const a of anchors) if (a.payload.olderThanTs > newest.payload.olderThanTs) newest = a;
    const row = this.stmt(
      `SELECT e.seq AS seq, e.workflow_id AS workflowId, e.ts AS ts, json_extract(e.payload, '$.latencyMs') AS latencyMs
         FROM events e
        WHERE e.type IN ('workflow.completed', 'workflow.failed', 'workflow.cancelled')
          AND e.ts - coalesce(json_extract(e.payload, '$.latencyMs'), 0) >= ?
          AND NOT EXISTS (SELECT 1 FROM events s WHERE s.workflow_id = e.workflow_id AND s.type = 'workflow.started')
        ORDER BY e.seq LIMIT 1`,
    ).get(newest.payload.olderThanTs + ANCHOR_CLOCK_SKEW_MS) as
      { seq: number; workflowId: string; ts: number; latencyMs: number | null } | undefined;
    if (row === undefined) return undefined;
    const started = row.ts - (row.latencyMs ?? 0);
    return {
      ok: false,
      events,
      seq: newest.seq,
      reason: 'anchor_implausible',
      detail: `seq ${newest.seq}: the retention anchor says the audit events it pruned were older than ${isoTime(newest.payload.olderThanTs)}, but workflow ${JSON.stringify(row.workflowId)}, whose workflow.started is gone, ended at seq ${row.seq} after ${row.latencyMs ?? 0} ms, so it started at ${isoTime(started)}: its start was younger than the anchor claims (history removed outside retention)`,
    };
  }

  /**
   * Streams matches in seq order by keyset pagination: one short query per page, so writes can
   * interleave and memory stays flat.
   */
  private *pages<R extends EventTuple | ChainedTuple, T>(
    filter: EventFilter,
    columns: string,
    map: (row: R) => T,
  ): Generator<T> {
    const c = this.plan(filter);
    if (c === undefined) return;
    const sql = `SELECT ${columns} FROM events WHERE ${[...c.where, 'seq > ?'].join(' AND ')} ORDER BY seq LIMIT ?`;
    let cursor = c.afterSeq;
    let remaining = filter.limit ?? Number.POSITIVE_INFINITY;
    while (remaining > 0) {
      this.assertOpen();
      const size = Math.min(PAGE_SIZE, remaining);
      const rows = this.sqlite(() => this.stmt(sql, true).all(...c.params, cursor, size) as R[]);
      for (let i = 0; i < rows.length; i++) yield map(rows[i] as R);
      if (rows.length < size) return;
      cursor = (rows[rows.length - 1] as R)[0];
      remaining -= rows.length;
    }
  }

  /**
   * Compiles a filter. Without a workflow (whose index serves it), a time window narrows the scan
   * to the seq range of the window, read from the ts index; the rest of the filter (types, class,
   * the window itself) is checked on the rows of that range, walked in seq order. `+ts` keeps
   * SQLite from reading those rows through the ts index instead, which would make it sort them.
   */
  private plan(filter: EventFilter): CompiledFilter | undefined {
    const c = compileFilter(filter);
    if (c === undefined) return undefined;
    const { fromTs, toTs } = filter;
    if ((fromTs !== undefined || toTs !== undefined) && filter.workflowId === undefined) {
      const where: string[] = [];
      const params: number[] = [];
      if (fromTs !== undefined) {
        where.push('ts >= ?');
        params.push(fromTs);
      }
      if (toTs !== undefined) {
        where.push('ts < ?');
        params.push(toTs);
      }
      const bounds = this.sqlite(
        () =>
          this.stmt(
            `SELECT MIN(seq) AS first, MAX(seq) AS last FROM events INDEXED BY events_by_ts WHERE ${where.join(' AND ')}`,
          ).get(...params) as { first: number | null; last: number | null },
      );
      if (bounds.first === null || bounds.last === null) return undefined;
      c.where = c.where.map((w) => (w.startsWith('ts ') ? `+${w}` : w));
      c.afterSeq = Math.max(c.afterSeq, bounds.first - 1);
      c.where.push('seq <= ?');
      c.params.push(bounds.last);
    }
    return c;
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
