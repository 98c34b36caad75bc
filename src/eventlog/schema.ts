/**
 * The SQLite schema of the event log and its migrations. The version lives in `PRAGMA
 * user_version`; migration `i` takes a database from version `i` to `i + 1`. Add a migration at the
 * end, never edit a shipped one.
 */
import type Database from 'better-sqlite3';
import { KEEL_APPLICATION_ID } from '../core/files.js';
import { OWNERSHIP_TABLES } from './sqlite-owners.js';

/** The append-only triggers' SQL (see {@link APPEND_ONLY_TRIGGERS}). */
const APPEND_ONLY_TRIGGERS_SQL: Readonly<Record<string, string>> = {
  events_no_update: `CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
  SELECT RAISE(ABORT, 'keel: events are append-only; UPDATE is refused (the hash chain would break)');
END`,
  events_no_delete: `CREATE TRIGGER events_no_delete BEFORE DELETE ON events
WHEN (SELECT open FROM retention_gate WHERE id = 1) IS NOT 1
BEGIN
  SELECT RAISE(ABORT, 'keel: events are append-only; DELETE is refused outside retention (EventStore.prune)');
END`,
};

/**
 * Version 1: the `events` table, its query indexes, the append-only triggers and the retention gate
 * the DELETE trigger consults (only `prune` opens it, inside its own transaction).
 *
 * Secondary indexes each cost ~1–3 µs per appended event, so there is none on `class`: both classes
 * interleave densely, and the places that need one class (chain heads at open, retention) walk the
 * rowid order instead.
 */
const V1 = `
CREATE TABLE events (
  seq         INTEGER PRIMARY KEY,
  ts          INTEGER NOT NULL,
  workflow_id TEXT    NOT NULL,
  type        TEXT    NOT NULL,
  v           INTEGER NOT NULL,
  class       TEXT    NOT NULL CHECK (class IN ('audit', 'operational')),
  payload     TEXT    NOT NULL,
  prev_hash   TEXT    NOT NULL,
  hash        TEXT    NOT NULL
);
CREATE INDEX events_by_workflow ON events (workflow_id);
CREATE INDEX events_by_type     ON events (type);
CREATE INDEX events_by_ts       ON events (ts);

CREATE TABLE retention_gate (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  open INTEGER NOT NULL
);
INSERT INTO retention_gate (id, open) VALUES (1, 0);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
  SELECT RAISE(ABORT, 'keel: events are append-only; UPDATE is refused (the hash chain would break)');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
WHEN (SELECT open FROM retention_gate WHERE id = 1) IS NOT 1
BEGIN
  SELECT RAISE(ABORT, 'keel: events are append-only; DELETE is refused outside retention (EventStore.prune)');
END;
`;

/**
 * Version 2: no index on `type`. Every event paid for it (~2 µs of CPU, and a commit of a
 * workflow's events dirtied one index page per distinct type — the largest part of a small
 * commit), while only rare runtime queries used it: those read the `_system` workflow (breaker
 * transitions, retention anchors) through `events_by_workflow` now, and type queries within a time
 * window scan the seq range the `ts` index gives.
 */
const V2 = `
DROP INDEX IF EXISTS events_by_type;
`;

/**
 * Version 3: compact rows (issue 26). `hash` is 32 raw bytes instead of 64 hex characters, and
 * `prev_hash` is gone: it is the `hash` of the previous row of the same class (the retention
 * anchor's `lastPrunedHash` for the first row after a prune, else genesis), derived by the verifier
 * and by `iterateChained`. The chain is unchanged: every row keeps its hash over the same eight
 * fields (`src/eventlog/chain.ts`), so nothing the audit trail proves is lost; a row's `prev_hash`
 * was redundant with its class chain (a v2 file whose `prev_hash` column alone was altered no
 * longer shows it after migrating: the rows it would have linked are what verify checks).
 *
 * SQLite cannot change a column's type in place, so the table is copied (in seq order) into a new
 * one in the migration's transaction: a crash midway leaves the file at version 2, and the copy
 * needs free disk about the size of the events table until the old pages are reused (`VACUUM`
 * returns them to the file system at once). A hash that is not 64 hex digits keeps its bytes, so
 * verify still reports that row as modified.
 */
const V3 = `
CREATE TABLE events_v3 (
  seq         INTEGER PRIMARY KEY,
  ts          INTEGER NOT NULL,
  workflow_id TEXT    NOT NULL,
  type        TEXT    NOT NULL,
  v           INTEGER NOT NULL,
  class       TEXT    NOT NULL CHECK (class IN ('audit', 'operational')),
  payload     TEXT    NOT NULL,
  hash        BLOB    NOT NULL
);
INSERT INTO events_v3 (seq, ts, workflow_id, type, v, class, payload, hash)
  SELECT seq, ts, workflow_id, type, v, class, payload,
         CASE WHEN length(hash) = 64 AND unhex(hash) IS NOT NULL THEN unhex(hash) ELSE CAST(hash AS BLOB) END
    FROM events ORDER BY seq;
DROP TABLE events;
ALTER TABLE events_v3 RENAME TO events;
CREATE INDEX events_by_workflow ON events (workflow_id);
CREATE INDEX events_by_ts       ON events (ts);
${Object.values(APPEND_ONLY_TRIGGERS_SQL).join(';\n')};
`;

const MIGRATIONS: readonly string[] = [V1, V2, V3];

/** Schema version this Keel writes and understands. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Oldest version this Keel reads without migrating (a read-only store cannot migrate). Version 1
 * differs from 2 only by an extra index, which reads do not need; versions 1–2 store `prev_hash`
 * and hex hashes, which the reads and `verify` of a read-only store use as they are.
 */
export const MIN_READABLE_SCHEMA_VERSION = 1;

/** `PRAGMA application_id` of Keel's files (see src/core/files.ts). */
export { KEEL_APPLICATION_ID };

/**
 * The append-only triggers, by name, exactly as version 1 creates them (version 3 re-creates them
 * on its new table). `verify` checks they are present and unaltered; a writable open re-creates a
 * missing one (and logs `log.maintained`).
 */
export const APPEND_ONLY_TRIGGERS: Readonly<Record<string, string>> = APPEND_ONLY_TRIGGERS_SQL;

/** Columns of `events` in versions 1–2, and from version 3 on; `retention_gate`'s in every version. */
const EVENT_COLUMNS_V1 = ['seq', 'ts', 'workflow_id', 'type', 'v', 'class', 'payload', 'prev_hash', 'hash'];
const EVENT_COLUMNS = ['seq', 'ts', 'workflow_id', 'type', 'v', 'class', 'payload', 'hash'];
const GATE_COLUMNS = ['id', 'open'];

/** Reads `PRAGMA user_version` (a read: never modifies the file). */
export function readSchemaVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Reads `PRAGMA application_id` (a read). */
export function readApplicationId(db: Database.Database): number {
  return db.pragma('application_id', { simple: true }) as number;
}

/**
 * What a file opened as an event log holds, read without writing anything:
 * - `empty`: a new file (no schema objects, no application id, version 0): Keel may create its schema;
 * - `keel`: a Keel event log at `version` (`stamped` when it carries {@link KEEL_APPLICATION_ID};
 *   unstamped ones were written by an earlier Keel and are recognised by their tables and columns);
 * - `foreign`: anything else, with the reason.
 */
export type LogFileKind =
  { kind: 'empty' } | { kind: 'keel'; version: number; stamped: boolean } | { kind: 'foreign'; why: string };

/**
 * Classifies an open database (reads only; see {@link LogFileKind}). The reads share one read
 * transaction: read one by one, a process creating the file between them would show its tables
 * beside the version read before it committed, and look like a foreign file.
 */
export function classifyLog(db: Database.Database): LogFileKind {
  return db.inTransaction ? classifySnapshot(db) : db.transaction(classifySnapshot)(db);
}

function classifySnapshot(db: Database.Database): LogFileKind {
  const appId = readApplicationId(db);
  const version = readSchemaVersion(db);
  const objects = db
    .prepare<[], { type: string; name: string }>(
      "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
    )
    .all();
  if (appId !== 0 && appId !== KEEL_APPLICATION_ID) {
    return { kind: 'foreign', why: `its application_id is ${appId}, not Keel's ${KEEL_APPLICATION_ID}` };
  }
  if (objects.length === 0 && appId === 0 && version === 0) return { kind: 'empty' };
  // A newer Keel may have changed the tables: its version alone says what to do (upgrade Keel).
  if (appId === KEEL_APPLICATION_ID && version > SCHEMA_VERSION)
    return { kind: 'keel', version, stamped: true };
  // The ownership tables of durable execution (`sqlite-owners.ts`) are created on first use, beside these.
  const tables = objects
    .filter((o) => o.type === 'table' && !OWNERSHIP_TABLES.includes(o.name))
    .map((o) => o.name);
  const expected = ['events', 'retention_gate'];
  if (tables.join() !== expected.join()) {
    const list = tables.length === 0 ? 'no tables' : `tables ${tables.map((t) => `"${t}"`).join(', ')}`;
    return { kind: 'foreign', why: `it holds ${list}, where a Keel log holds "events" and "retention_gate"` };
  }
  const columns = (table: string): string[] =>
    db.prepare<[], string>(`SELECT name FROM pragma_table_info('${table}') ORDER BY cid`).pluck().all();
  const ec = columns('events');
  if (ec.join() !== (version >= 3 ? EVENT_COLUMNS : EVENT_COLUMNS_V1).join()) {
    return { kind: 'foreign', why: `its "events" table has columns ${ec.join(', ')}, not Keel's` };
  }
  if (columns('retention_gate').join() !== GATE_COLUMNS.join()) {
    return { kind: 'foreign', why: `its "retention_gate" table is not Keel's` };
  }
  if (appId === 0 && version < 1) {
    return { kind: 'foreign', why: 'it holds Keel-like tables without a Keel schema version' };
  }
  return { kind: 'keel', version, stamped: appId === KEEL_APPLICATION_ID };
}

/**
 * Append-only triggers that are missing or altered (compared with {@link APPEND_ONLY_TRIGGERS},
 * whitespace aside), with what is wrong with each; empty when all are in place. Reads only.
 */
export function triggerProblems(db: Database.Database): string[] {
  const rows = db
    .prepare<[], { name: string; sql: string | null }>(
      "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'",
    )
    .all();
  const found = new Map(rows.map((r) => [r.name, r.sql ?? '']));
  const problems: string[] = [];
  for (const [name, sql] of Object.entries(APPEND_ONLY_TRIGGERS)) {
    const got = found.get(name);
    if (got === undefined) problems.push(`trigger ${name} is missing`);
    else if (normaliseSql(got) !== normaliseSql(sql)) problems.push(`trigger ${name} was altered`);
  }
  for (const name of found.keys()) {
    if (!(name in APPEND_ONLY_TRIGGERS)) problems.push(`trigger ${name} on events is not Keel's`);
  }
  return problems;
}

function normaliseSql(sql: string): string {
  return sql.replace(/\s+/g, ' ').trim();
}

/**
 * Re-creates the append-only triggers that are missing or altered (an altered one is dropped
 * first; a foreign trigger on `events` is dropped) and closes the retention gate. Call inside a
 * write transaction. Returns what it repaired (empty when nothing was needed).
 */
export function restoreTriggers(db: Database.Database): string[] {
  const problems = triggerProblems(db);
  const gate = db.prepare<[], number>('SELECT open FROM retention_gate WHERE id = 1').pluck().get();
  if (problems.length === 0 && gate === 0) return [];
  const rows = db
    .prepare<[], { name: string; sql: string | null }>(
      "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'",
    )
    .all();
  for (const r of rows) {
    const want = APPEND_ONLY_TRIGGERS[r.name];
    if (want === undefined || normaliseSql(r.sql ?? '') !== normaliseSql(want)) {
      db.exec(`DROP TRIGGER "${r.name.replace(/"/g, '""')}"`);
    }
  }
  for (const [name, sql] of Object.entries(APPEND_ONLY_TRIGGERS)) {
    const exists = db
      .prepare<[string], number>("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?")
      .pluck()
      .get(name);
    if (exists === undefined) db.exec(sql);
  }
  const repaired = [...problems];
  if (gate !== 0) {
    db.exec('INSERT OR REPLACE INTO retention_gate (id, open) VALUES (1, 0)');
    repaired.push('the retention gate was left open');
  }
  return repaired;
}

/**
 * Brings the database up to {@link SCHEMA_VERSION} and stamps {@link KEEL_APPLICATION_ID}. Call
 * inside an IMMEDIATE transaction (so two processes opening a new file do not both create it),
 * after {@link classifyLog} said `empty` or `keel`. Returns the version found before migrating; the
 * caller has already refused versions above {@link SCHEMA_VERSION}.
 */
export function migrate(db: Database.Database): number {
  const found = readSchemaVersion(db);
  for (let v = found; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v] as string);
  if (found < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
  if (readApplicationId(db) !== KEEL_APPLICATION_ID) db.pragma(`application_id = ${KEEL_APPLICATION_ID}`);
  return found;
}
