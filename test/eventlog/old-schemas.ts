/**
 * SQLite schemas as earlier Keel versions wrote them, verbatim (not derived from
 * src/eventlog/schema.ts, so a later edit there cannot change what these files look like): the
 * migration tests and `bench/migrate-v4.ts` create old files with them.
 */

/** Schema version 3 as Keel wrote it (src/eventlog/schema.ts V1–V3 applied), verbatim. */
export const SQLITE_V3 = `
CREATE TABLE events (
  seq         INTEGER PRIMARY KEY,
  ts          INTEGER NOT NULL,
  workflow_id TEXT    NOT NULL,
  type        TEXT    NOT NULL,
  v           INTEGER NOT NULL,
  class       TEXT    NOT NULL CHECK (class IN ('audit', 'operational')),
  payload     TEXT    NOT NULL,
  hash        BLOB    NOT NULL
);
CREATE INDEX events_by_workflow ON events (workflow_id);
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
PRAGMA user_version = 3;
PRAGMA application_id = 1262830924;
`;

/** Schema version 2 (text hashes and a `prev_hash` column). */
export const SQLITE_V2 = SQLITE_V3.replace(
  '  hash        BLOB    NOT NULL',
  '  prev_hash   TEXT    NOT NULL,\n  hash        TEXT    NOT NULL',
).replace('PRAGMA user_version = 3', 'PRAGMA user_version = 2');
