/**
 * The SQLite schema of the event log and its migrations. The version lives in `PRAGMA
 * user_version`; migration `i` takes a database from version `i` to `i + 1`. Add a migration at the
 * end, never edit a shipped one.
 */
import type Database from 'better-sqlite3';

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

const MIGRATIONS: readonly string[] = [V1, V2];

/** Schema version this Keel writes and understands. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Oldest version this Keel reads without migrating (a read-only store cannot migrate). Version 1
 * differs from 2 only by an extra index, which reads do not need.
 */
export const MIN_READABLE_SCHEMA_VERSION = 1;

/** Reads `PRAGMA user_version` (a read: never modifies the file). */
export function readSchemaVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Brings the database up to {@link SCHEMA_VERSION} in one IMMEDIATE transaction (so two processes
 * opening a new file do not both migrate it). Returns the version found before migrating; the
 * caller has already refused versions above {@link SCHEMA_VERSION}.
 */
export function migrate(db: Database.Database): number {
  return db
    .transaction(() => {
      const found = readSchemaVersion(db);
      for (let v = found; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v] as string);
      if (found < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
      return found;
    })
    .immediate();
}
