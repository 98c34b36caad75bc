/**
 * The SQLite tier of the cache: one table in a file of its own (never the event log's file — the
 * cache holds raw, unredacted outputs). Internal to `src/cache`.
 */
import Database from 'better-sqlite3';
import { KEEL_APPLICATION_ID, createPrivateFile, enableWal, resolveFileMode } from '../core/files.js';
import type { CacheTier, StoredEntry } from './entry.js';
import {
  CacheError,
  CacheForeignDatabaseError,
  CacheIoError,
  CacheNotADatabaseError,
  CacheOpenError,
  CacheSchemaVersionError,
} from './errors.js';

/** Schema version written to `PRAGMA user_version`. */
const SCHEMA_VERSION = 1;

/** Created once, inside an IMMEDIATE transaction that checks again under the lock. */
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS keel_cache (
    key        TEXT PRIMARY KEY,
    agent      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    value      TEXT    NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS keel_cache_expires ON keel_cache (expires_at);
  CREATE INDEX IF NOT EXISTS keel_cache_agent ON keel_cache (agent);
  PRAGMA user_version = ${SCHEMA_VERSION};
  PRAGMA application_id = ${KEEL_APPLICATION_ID};
`;

interface Row {
  agent: string;
  created_at: number;
  expires_at: number;
  value: string;
}

function sqliteCode(e: unknown): string | undefined {
  return e instanceof Database.SqliteError ? e.code : undefined;
}

/** Turns a SQLite failure while opening into an error that says what to do. */
function openError(path: string, e: unknown): Error {
  if (e instanceof CacheError) return e;
  const code = sqliteCode(e);
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT')
    return new CacheNotADatabaseError(path, { cause: e });
  if (code?.startsWith('SQLITE_CANTOPEN') || code?.startsWith('SQLITE_READONLY') || code === 'SQLITE_PERM') {
    return new CacheOpenError(path, code, { cause: e });
  }
  return new CacheOpenError(path, e instanceof Error ? e.message : String(e), { cause: e });
}

/**
 * Opens (creating when new) the cache table in `path`. A new file is created with `fileMode`
 * (default `0o600`: it holds raw model outputs), and its table in an IMMEDIATE transaction that
 * checks again under the lock, so processes opening one new path at once never collide. A file
 * stamped by another application, or holding other tables, is refused unchanged.
 */
export function openSqliteTier(path: string, options: { fileMode?: number } = {}): CacheTier {
  const mode = resolveFileMode(options.fileMode, 'cache.fileMode');
  let db: Database.Database | undefined;
  try {
    createPrivateFile(path, mode, 'cache.path');
    db = new Database(path, { timeout: 5_000 });
    const conn = db;
    const tables = (): string[] =>
      conn
        .prepare<[], string>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .pluck()
        .all();
    const appId = db.pragma('application_id', { simple: true }) as number;
    if (appId !== 0 && appId !== KEEL_APPLICATION_ID) {
      throw new CacheForeignDatabaseError(path, [`application_id ${appId}`, ...tables()]);
    }
    const found = tables();
    if (found.length > 0 && !found.includes('keel_cache')) throw new CacheForeignDatabaseError(path, found);
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) throw new CacheSchemaVersionError(path, version, SCHEMA_VERSION);
    if (found.length === 0 || appId !== KEEL_APPLICATION_ID) {
      enableWal(db);
      db.transaction(() => {
        const now = tables();
        if (now.length > 0 && !now.includes('keel_cache')) throw new CacheForeignDatabaseError(path, now);
        conn.exec(SCHEMA);
      }).immediate();
    }
    db.pragma('synchronous = NORMAL');
    return sqliteTier(db, path);
  } catch (e) {
    db?.close();
    throw openError(path, e);
  }
}

function sqliteTier(db: Database.Database, path: string): CacheTier {
  const get = db.prepare<[string], Row>(
    'SELECT agent, created_at, expires_at, value FROM keel_cache WHERE key = ?',
  );
  const put = db.prepare<[string, string, number, number, string]>(
    `INSERT INTO keel_cache (key, agent, created_at, expires_at, value) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (key) DO UPDATE SET agent = excluded.agent, created_at = excluded.created_at,
       expires_at = excluded.expires_at, value = excluded.value`,
  );
  const deleteKey = db.prepare<[string]>('DELETE FROM keel_cache WHERE key = ?');
  const deleteAgent = db.prepare<[string]>('DELETE FROM keel_cache WHERE agent = ?');
  const deleteAll = db.prepare<[]>('DELETE FROM keel_cache');
  const purge = db
    .prepare<[number, number], string>(
      `DELETE FROM keel_cache WHERE key IN
         (SELECT key FROM keel_cache WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)
       RETURNING key`,
    )
    .pluck();

  /** Runs a (rare) delete, turning a SQLite failure into a {@link CacheIoError}. */
  const deleting = <R>(run: () => R): R => {
    try {
      return run();
    } catch (e) {
      throw new CacheIoError(path, 'delete', { cause: e });
    }
  };

  return {
    get(key) {
      let row: Row | undefined;
      try {
        row = get.get(key);
      } catch (e) {
        throw new CacheIoError(path, 'read', { cause: e });
      }
      return row === undefined
        ? undefined
        : { agent: row.agent, createdAt: row.created_at, expiresAt: row.expires_at, json: row.value };
    },
    put(key, entry: StoredEntry) {
      try {
        put.run(key, entry.agent, entry.createdAt, entry.expiresAt, entry.json);
      } catch (e) {
        throw new CacheIoError(path, 'write', { cause: e });
      }
    },
    deleteKey: (key) => deleting(() => deleteKey.run(key).changes),
    deleteAgent: (agent) => deleting(() => deleteAgent.run(agent).changes),
    deleteAll: () => deleting(() => deleteAll.run().changes),
    purge: (cutoff, limit) => deleting(() => purge.all(cutoff, limit)),
    close() {
      db.close();
    },
  };
}
