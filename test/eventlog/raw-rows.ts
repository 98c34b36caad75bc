/**
 * Writing schema-4 rows behind the store's back, as a tampering test does: the row's strings coded
 * through the file's `keel_strings` and its payload through the codec, as Keel writes them.
 */
import type Database from 'better-sqlite3';
import { decodePayload, encodePayload } from '../../src/eventlog/codec.js';
import { canonicalJson } from '../../src/core/json.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import { SqliteStrings } from '../../src/eventlog/sqlite-strings.js';

/** Inserts `e` (with the hex `hash`) as a schema-4 row, adding its strings to the dictionary. */
export function insertRow(db: Database.Database, e: KeelEvent, hash: string): void {
  const strings = new SqliteStrings(db);
  db.prepare(
    'INSERT INTO events (seq, ts, workflow, type, v, class, payload, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  ).run(
    e.seq,
    e.ts,
    strings.code(e.workflowId),
    strings.code(e.type),
    e.v,
    e.class === 'audit' ? 0 : 1,
    encodePayload(e.type, e.payload, strings),
    Buffer.from(hash, 'hex'),
  );
}

/** Rewrites the payload of the row at `seq` (its UPDATE trigger must be gone) with `edit` applied. */
export function editPayload(
  db: Database.Database,
  seq: number,
  edit: (payload: Record<string, unknown>) => Record<string, unknown>,
): void {
  const strings = new SqliteStrings(db);
  const row = db
    .prepare<[number], { type: string; payload: string }>(
      'SELECT t.value AS type, e.payload FROM events e JOIN keel_strings t ON t.id = e.type WHERE e.seq = ?',
    )
    .get(seq);
  if (row === undefined) throw new Error(`editPayload: no row at seq ${seq}`);
  const edited = edit(decodePayload(row.type, row.payload, strings));
  db.prepare('UPDATE events SET payload = ? WHERE seq = ?').run(
    encodePayload(row.type, edited, strings),
    seq,
  );
}

/**
 * The logical row of a chained event, as schema 3 and Postgres store it and a copy script moves it:
 * seq, ts, workflow id, type, v, class, the payload's canonical JSON and the 32-byte hash.
 */
export type LogicalRow = [number, number, string, string, number, string, string, Buffer];

/** {@link LogicalRow} of `e` with its hex `hash`. */
export function logicalRow(e: KeelEvent, hash: string): LogicalRow {
  return [
    e.seq,
    e.ts,
    e.workflowId,
    e.type,
    e.v,
    e.class,
    canonicalJson(e.payload),
    Buffer.from(hash, 'hex'),
  ];
}
