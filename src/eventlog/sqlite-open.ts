/**
 * Opening a SQLite event log: options checked and defaulted, the file checked before SQLite touches
 * it, the schema created, migrated or repaired under the lock, and better-sqlite3's errors named.
 * Its option types are re-exported by `sqlite.ts`; the rest is internal to it.
 */
import fs from 'node:fs';
import nodePath from 'node:path';
import Database from 'better-sqlite3';
import { realClock, type Clock } from '../core/clock.js';
import { ConfigError, isKeelError } from '../core/errors.js';
import { resolveFileMode } from '../core/files.js';
import {
  CorruptDatabaseError,
  DatabaseLockedError,
  DiskFullError,
  EventLogError,
  ForeignDatabaseError,
  NotADatabaseError,
  ReadOnlyDatabaseError,
  SchemaVersionError,
} from './errors.js';
import { EVENT_VERSIONS, SYSTEM_WORKFLOW_ID } from './events.js';
import type { EventPayloads, KeelEvent } from './events.js';
import {
  KEEL_APPLICATION_ID,
  SCHEMA_VERSION,
  classifyLog,
  migrate,
  restoreTriggers,
  triggerProblems,
  type LogFileKind,
} from './schema.js';
import { ChainWriter } from './sqlite-chain.js';
import { SqliteStrings, storedRows } from './sqlite-strings.js';
import { sqliteDialectFor } from './sql/dialect.js';
import { canonicalPayloadJson } from './validate.js';

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
 * Classifies the opened file ({@link classifyLog}) and refuses what Keel must not open: a foreign
 * file, or a log of a newer Keel. Reads only.
 */
export function checkKind(db: Database.Database, path: string): LogFileKind {
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
export function maintain(db: Database.Database, o: ResolvedOptions, seen: LogFileKind): void {
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
    const strings = new SqliteStrings(db);
    const chain = new ChainWriter(
      (sql, raw) => {
        const st = db.prepare<unknown[], unknown>(sql);
        if (raw === true) st.raw(true);
        return st;
      },
      sqliteDialectFor(SCHEMA_VERSION, storedRows(strings)),
      strings,
    );
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

export function retentionGateClosed(db: Database.Database): boolean {
  return db.prepare<[], number>('SELECT open FROM retention_gate WHERE id = 1').pluck().get() === 0;
}

// ── internals ─────────────────────────────────────────────────────────────────────────────────

export interface ResolvedOptions {
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

export function resolveOptions(options: SqliteStoreOptions): ResolvedOptions {
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

export function checkPageCount(pages: number, field: string): void {
  if (!Number.isInteger(pages) || pages < 1) {
    throw new ConfigError(field, `must be an integer >= 1 (pages), got ${pages}`);
  }
}

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/**
 * Checks an on-disk path before SQLite touches it. Returns why it must be opened read-only, if so.
 * A non-SQLite file is refused here, so it is never opened (let alone given a WAL) by SQLite.
 */
export function checkFile(path: string, readonly: boolean): string | undefined {
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
export function toStoreError(e: unknown, path: string, busyTimeoutMs: number): unknown {
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
