/**
 * The SQLite schema of the event log and its migrations. The version lives in `PRAGMA
 * user_version`; migration `i` takes a database from version `i` to `i + 1`. Add a migration at the
 * end, never edit a shipped one.
 */
import type Database from 'better-sqlite3';
import { KEEL_APPLICATION_ID } from '../core/files.js';
import { canonicalJson } from '../core/json.js';
import { decodePayloadJson, encodePayload } from './codec.js';
import { OWNERSHIP_TABLES } from './sqlite-owners.js';
import { SqliteStrings } from './sqlite-strings.js';

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

/** The dictionary's append-only triggers as schema 4 created them: a changed string would change every row using it. */
const STRINGS_TRIGGERS_V4_SQL: Readonly<Record<string, string>> = {
  keel_strings_no_update: `CREATE TRIGGER keel_strings_no_update BEFORE UPDATE ON keel_strings
BEGIN
  SELECT RAISE(ABORT, 'keel: keel_strings is append-only; UPDATE is refused (the rows using a string would no longer match their hashes)');
END`,
  keel_strings_no_delete: `CREATE TRIGGER keel_strings_no_delete BEFORE DELETE ON keel_strings
BEGIN
  SELECT RAISE(ABORT, 'keel: keel_strings is append-only; DELETE is refused (the rows using a string would no longer read)');
END`,
};

/**
 * The dictionary's triggers from schema 5: UPDATE is refused as before; DELETE only through the
 * retention gate, which `prune` opens to remove the strings no remaining event refers to.
 */
const STRINGS_TRIGGERS_SQL: Readonly<Record<string, string>> = {
  keel_strings_no_update: STRINGS_TRIGGERS_V4_SQL.keel_strings_no_update as string,
  keel_strings_no_delete: `CREATE TRIGGER keel_strings_no_delete BEFORE DELETE ON keel_strings
WHEN (SELECT open FROM retention_gate WHERE id = 1) IS NOT 1
BEGIN
  SELECT RAISE(ABORT, 'keel: keel_strings is append-only; DELETE is refused outside retention (EventStore.prune removes the strings only pruned events used)');
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

/**
 * The view for people with the `sqlite3` shell (schema 4): the coded columns as text, the hash as
 * hex. Keel itself reads the tables (`sql/dialect.ts`), never this view.
 */
const READABLE_VIEW = `CREATE VIEW events_readable AS
SELECT e.seq AS seq, e.ts AS ts, w.value AS workflow_id, t.value AS type, e.v AS v,
       CASE e.class WHEN 0 THEN 'audit' WHEN 1 THEN 'operational' END AS class,
       CASE typeof(e.payload) WHEN 'blob' THEN CAST(e.payload AS TEXT) ELSE e.payload END AS payload,
       lower(hex(e.hash)) AS hash
  FROM events e LEFT JOIN keel_strings w ON w.id = e.workflow LEFT JOIN keel_strings t ON t.id = e.type`;

const V4_TABLES = `
CREATE TABLE keel_strings (
  id    INTEGER PRIMARY KEY,
  value TEXT    NOT NULL UNIQUE
);
${Object.values(STRINGS_TRIGGERS_V4_SQL).join(';\n')};
CREATE TABLE events_v4 (
  seq      INTEGER PRIMARY KEY,
  ts       INTEGER NOT NULL,
  workflow INTEGER NOT NULL,
  type     INTEGER NOT NULL,
  v        INTEGER NOT NULL,
  class    INTEGER NOT NULL CHECK (class IN (0, 1)),
  payload  TEXT    NOT NULL,
  hash     BLOB    NOT NULL
);
`;

const V4_SWAP = `
DROP TABLE events;
ALTER TABLE events_v4 RENAME TO events;
CREATE INDEX events_by_workflow ON events (workflow);
CREATE INDEX events_by_ts       ON events (ts);
${Object.values(APPEND_ONLY_TRIGGERS_SQL).join(';\n')};
${READABLE_VIEW};
`;

/** Rows the version-4 migration reads per statement. */
const MIGRATION_CHUNK = 1000;

/**
 * Version 4: dictionary-coded rows (issue 26). `keel_strings (id, value)` holds each distinct
 * workflow id, event type and the strings the payload codec (`codec.ts`) codes, once, append-only
 * (triggers refuse UPDATE and DELETE); `events` stores `workflow` and `type` as its ids, `class`
 * as 0 (audit) or 1 (operational: SQLite stores both in zero bytes), and `payload` in the codec's
 * compact form. The index on `workflow` keys integers. The chain is unchanged: each row's hash is
 * over the decoded fields, exactly as before (`chain.ts`), so a changed dictionary string shows as
 * the rows using it being modified. The view `events_readable` shows the rows as text.
 *
 * SQLite cannot run the codec, so this migration is JavaScript: it copies the rows in seq order,
 * {@link MIGRATION_CHUNK} at a time, coding them, in the opening's one transaction (a crash midway
 * leaves version 3). A payload whose text is not the canonical JSON of an object (altered by
 * hand) is kept verbatim as a BLOB, so verify still reports that row as modified. 100,008 events
 * of the stub invoice workflow (5,556 workflows) migrated in 3.7 s (27,000 events/s) on the 2-core
 * benchmark VM under a load average of 14 (`npx tsx bench/migrate-v4.ts`; with the identity codec
 * stand-in); the copy needs free disk about the size of the events table until `VACUUM`.
 */
function migrateV4(db: Database.Database): void {
  db.exec(V4_TABLES);
  const strings = new SqliteStrings(db);
  strings.begin();
  const read = db
    .prepare<[number, number], unknown[]>(
      'SELECT seq, ts, workflow_id, type, v, class, payload, hash FROM events WHERE seq > ? ORDER BY seq LIMIT ?',
    )
    .raw();
  const insert = db.prepare(
    'INSERT INTO events_v4 (seq, ts, workflow, type, v, class, payload, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  for (let cursor = 0; ;) {
    const rows = read.all(cursor, MIGRATION_CHUNK);
    for (const [seq, ts, workflowId, type, v, cls, payload, hash] of rows) {
      insert.run(
        seq,
        ts,
        strings.code(String(workflowId)),
        strings.code(String(type)),
        v,
        cls === 'audit' ? 0 : 1,
        codedPayload(String(type), payload, strings),
        hash,
      );
    }
    if (rows.length < MIGRATION_CHUNK) break;
    cursor = (rows[rows.length - 1] as unknown[])[0] as number;
  }
  db.exec(V4_SWAP);
}

/** A stored version-3 payload in version 4's form: coded when it round-trips exactly, else verbatim. */
function codedPayload(type: string, stored: unknown, strings: SqliteStrings): string | Buffer {
  const text = typeof stored === 'string' ? stored : String(stored);
  try {
    const value: unknown = JSON.parse(text);
    if (
      typeof value === 'object' &&
      value !== null &&
      !Array.isArray(value) &&
      canonicalJson(value) === text
    ) {
      const coded = encodePayload(type, value as Record<string, unknown>, strings);
      if (decodePayloadJson(type, coded, strings) === text) return coded;
    }
  } catch {
    // not JSON, or not codable: kept as it is
  }
  return Buffer.from(text, 'utf8');
}

/**
 * Version 5: retention removes dictionary strings. A prune deletes, in its transaction and through
 * the retention gate, every `keel_strings` row no remaining event refers to (as its workflow or
 * type, or from its coded payload), so a pruned workflow's id leaves the file with its events. Ids
 * are never reused: the table is rebuilt with `AUTOINCREMENT` (SQLite then remembers the highest
 * id ever assigned in `sqlite_sequence`), so a reader in another process that cached a deleted
 * id's string can never see that id name another string; a writer checks for a newer `log.anchor`
 * before trusting its cache (`sqlite-strings.ts`). The delete trigger consults the gate like the
 * events' one; UPDATE stays refused. The copy keeps every id, in the opening's one transaction
 * (the dictionary is small: a few MB at most); the view is re-created over the new table.
 */
const V5 = `
DROP VIEW IF EXISTS events_readable;
CREATE TABLE keel_strings_v5 (
  id    INTEGER PRIMARY KEY AUTOINCREMENT,
  value TEXT    NOT NULL UNIQUE
);
INSERT INTO keel_strings_v5 (id, value) SELECT id, value FROM keel_strings ORDER BY id;
DROP TABLE keel_strings;
ALTER TABLE keel_strings_v5 RENAME TO keel_strings;
${Object.values(STRINGS_TRIGGERS_SQL).join(';\n')};
${READABLE_VIEW};
`;

/** Each migration: SQL, or (version 4) a function of the connection. */
const MIGRATIONS: readonly (string | ((db: Database.Database) => void))[] = [V1, V2, V3, migrateV4, V5];

/** Schema version this Keel writes and understands. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Oldest version this Keel reads without migrating (a read-only store cannot migrate). Version 1
 * differs from 2 only by an extra index, which reads do not need; versions 1–2 store `prev_hash`
 * and hex hashes, and 1–3 text columns and JSON payloads, which the reads and `verify` of a
 * read-only store use as they are.
 */
export const MIN_READABLE_SCHEMA_VERSION = 1;

/** `PRAGMA application_id` of Keel's files (see src/core/files.ts). */
export { KEEL_APPLICATION_ID };

/**
 * The append-only triggers, by name, exactly as version 1 creates them (versions 3 and 4 re-create
 * them on their new table). `verify` checks they are present and unaltered; a writable open
 * re-creates a missing one (and logs `log.maintained`).
 */
export const APPEND_ONLY_TRIGGERS: Readonly<Record<string, string>> = APPEND_ONLY_TRIGGERS_SQL;

/**
 * The dictionary's triggers (version 5 on: DELETE through the retention gate), checked and restored
 * like the events'. A version-4 file (read-only) is checked against {@link STRINGS_TRIGGERS_V4}.
 */
export const STRINGS_TRIGGERS: Readonly<Record<string, string>> = STRINGS_TRIGGERS_SQL;

/** The dictionary's triggers of a version-4 file (DELETE always refused). */
export const STRINGS_TRIGGERS_V4: Readonly<Record<string, string>> = STRINGS_TRIGGERS_V4_SQL;

/** Columns of `events` in versions 1–2, 3 and 4; `retention_gate`'s in every version; `keel_strings`'. */
const EVENT_COLUMNS_V1 = ['seq', 'ts', 'workflow_id', 'type', 'v', 'class', 'payload', 'prev_hash', 'hash'];
const EVENT_COLUMNS_V3 = ['seq', 'ts', 'workflow_id', 'type', 'v', 'class', 'payload', 'hash'];
const EVENT_COLUMNS_V4 = ['seq', 'ts', 'workflow', 'type', 'v', 'class', 'payload', 'hash'];
const GATE_COLUMNS = ['id', 'open'];
const STRINGS_COLUMNS = ['id', 'value'];

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
  const expected = version >= 4 ? ['events', 'keel_strings', 'retention_gate'] : ['events', 'retention_gate'];
  if (tables.join() !== expected.join()) {
    const list = tables.length === 0 ? 'no tables' : `tables ${tables.map((t) => `"${t}"`).join(', ')}`;
    const want = expected.map((t) => `"${t}"`).join(', ');
    return {
      kind: 'foreign',
      why: `it holds ${list}, where a Keel log (schema version ${Math.max(version, 1)}) holds ${want}`,
    };
  }
  const columns = (table: string): string[] =>
    db.prepare<[], string>(`SELECT name FROM pragma_table_info('${table}') ORDER BY cid`).pluck().all();
  const ec = columns('events');
  const eventColumns = version >= 4 ? EVENT_COLUMNS_V4 : version >= 3 ? EVENT_COLUMNS_V3 : EVENT_COLUMNS_V1;
  if (ec.join() !== eventColumns.join()) {
    return { kind: 'foreign', why: `its "events" table has columns ${ec.join(', ')}, not Keel's` };
  }
  if (columns('retention_gate').join() !== GATE_COLUMNS.join()) {
    return { kind: 'foreign', why: `its "retention_gate" table is not Keel's` };
  }
  if (version >= 4 && columns('keel_strings').join() !== STRINGS_COLUMNS.join()) {
    return { kind: 'foreign', why: `its "keel_strings" table is not Keel's` };
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
  const want = expectedTriggers(db);
  const rows = keelTableTriggers(db);
  const found = new Map(rows.map((r) => [r.name, r.sql ?? '']));
  const problems: string[] = [];
  for (const [name, sql] of Object.entries(want)) {
    const got = found.get(name);
    if (got === undefined) problems.push(`trigger ${name} is missing`);
    else if (normaliseSql(got) !== normaliseSql(sql)) problems.push(`trigger ${name} was altered`);
  }
  for (const r of rows) {
    if (!(r.name in want)) problems.push(`trigger ${r.name} on ${r.table} is not Keel's`);
  }
  return problems;
}

/**
 * The triggers a log must have: the events' and, from version 4 (it has `keel_strings`), the
 * dictionary's (version 4's refuse every DELETE; from version 5 retention may delete through the gate).
 */
function expectedTriggers(db: Database.Database): Readonly<Record<string, string>> {
  const strings = db
    .prepare<[], number>("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'keel_strings'")
    .pluck()
    .get();
  if (strings === undefined) return APPEND_ONLY_TRIGGERS;
  const dictionary = readSchemaVersion(db) >= 5 ? STRINGS_TRIGGERS : STRINGS_TRIGGERS_V4;
  return { ...APPEND_ONLY_TRIGGERS, ...dictionary };
}

/** Every trigger on `events` and `keel_strings`. */
function keelTableTriggers(db: Database.Database): { name: string; table: string; sql: string | null }[] {
  return db
    .prepare<[], { name: string; table: string; sql: string | null }>(
      "SELECT name, tbl_name AS \"table\", sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ('events', 'keel_strings')",
    )
    .all();
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
  const expected = expectedTriggers(db);
  for (const r of keelTableTriggers(db)) {
    const want = expected[r.name];
    if (want === undefined || normaliseSql(r.sql ?? '') !== normaliseSql(want)) {
      db.exec(`DROP TRIGGER "${r.name.replace(/"/g, '""')}"`);
    }
  }
  for (const [name, sql] of Object.entries(expected)) {
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
 * caller has already refused versions above {@link SCHEMA_VERSION}. `target` (default: the current
 * version) lets tests build a file exactly as an earlier Keel left it.
 */
export function migrate(db: Database.Database, target: number = SCHEMA_VERSION): number {
  const found = readSchemaVersion(db);
  for (let v = found; v < target; v++) {
    const step = MIGRATIONS[v] as string | ((db: Database.Database) => void);
    if (typeof step === 'string') db.exec(step);
    else step(db);
  }
  if (found < target) db.pragma(`user_version = ${target}`);
  if (readApplicationId(db) !== KEEL_APPLICATION_ID) db.pragma(`application_id = ${KEEL_APPLICATION_ID}`);
  return found;
}
