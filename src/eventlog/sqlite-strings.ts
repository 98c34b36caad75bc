/**
 * The `keel_strings` dictionary of a schema-4 SQLite log (strings <-> small integer ids: workflow
 * ids, event types and the strings the payload codec codes), on one connection, and how a fetched
 * row's coded columns read back. Internal to src/eventlog.
 *
 * Writers: {@link SqliteStrings.code} answers from a bounded cache, else looks the string up and
 * inserts it when new — inside the append's write transaction, whose lock makes the look-up and
 * the insert one step; `UNIQUE (value)` makes two processes appending to one file agree on ids.
 * Ids assigned in a transaction that rolls back are forgotten ({@link SqliteStrings.rollback}): the
 * next transaction may give those ids to other strings. Readers: {@link SqliteStrings.lookup}
 * answers from a cache, else one look-up (a read never inserts).
 *
 * Retention (schema 5) deletes the strings no remaining event refers to ({@link deleteUnusedStrings}).
 * Ids are never reused (`AUTOINCREMENT`), so a reader's cached `id → string` of a deleted id is
 * stale but harmless (no row refers to that id any more). A writer's cached `string → id` is not:
 * it would write a dangling id. So every write transaction, after the chain writer's `sync()`,
 * calls {@link SqliteStrings.synced}: when the log grew past what this connection checked, one
 * index look-up asks whether a `log.anchor` (which every prune that deletes anything appends in
 * its transaction) was appended since, and if so the cache is forgotten.
 */
import type Database from 'better-sqlite3';
import { decodePayload, decodePayloadJson, isPayloadDecodeError, type Dictionary } from './codec.js';
import { addPayloadRefs } from './codec-refs.js';
import { CorruptLogError } from './errors.js';
import { SYSTEM_WORKFLOW_ID } from './events.js';
import type { StoredRows } from './sql/dialect.js';

/** Entries each cache keeps before it is cleared (a few MB at most; the hot strings come back at once). */
export const MAX_CACHED_STRINGS = 20_000;

/** The dictionary on one better-sqlite3 connection. */
export class SqliteStrings implements Dictionary {
  private ids = new Map<string, number>();
  private values = new Map<number, string>();
  /** Strings whose ids this connection learnt since {@link begin}: forgotten on {@link rollback}. */
  private learnt: string[] = [];
  private selectId: Database.Statement<[string], number> | undefined;
  private insert: Database.Statement<[string], number> | undefined;
  private selectValue: Database.Statement<[number], string> | undefined;
  private selectAnchor: Database.Statement<[number], number> | undefined;
  /** The log's seq through which this connection knows no prune deleted strings it may cache. */
  private checkedSeq = 0;
  /** {@link checkedSeq} when the write transaction began (put back on {@link rollback}). */
  private checkedAtBegin = 0;

  constructor(private readonly db: Database.Database) {}

  /** A write transaction starts: ids learnt from here on are forgotten if it rolls back. */
  begin(): void {
    this.learnt.length = 0;
    this.checkedAtBegin = this.checkedSeq;
  }

  /**
   * Inside a write transaction, after the chain writer's `sync()`: `seq` is the log's highest seq.
   * When rows were appended since this connection last checked (by another connection: its own
   * are {@link wroteThrough}), forgets the cache if one of them is a `log.anchor` — a prune, which
   * may have deleted strings the cache still maps to their ids. One index look-up, only then.
   */
  synced(seq: number): void {
    if (seq <= this.checkedSeq) return;
    if (this.ids.size > 0 || this.values.size > 0) {
      this.selectAnchor ??= this.db
        .prepare<[number], number>(
          `SELECT 1 FROM events WHERE workflow = (SELECT id FROM keel_strings WHERE value = '${SYSTEM_WORKFLOW_ID}')
             AND type = (SELECT id FROM keel_strings WHERE value = 'log.anchor') AND seq > ? LIMIT 1`,
        )
        .pluck();
      if (this.selectAnchor.get(this.checkedSeq) !== undefined) this.clear();
    }
    this.checkedSeq = seq;
  }

  /** The write transaction's own rows end at `seq` (before it commits): none of them needs {@link synced}'s check. */
  wroteThrough(seq: number): void {
    if (seq > this.checkedSeq) this.checkedSeq = seq;
  }

  /** The write transaction rolled back: forgets the ids it learnt (some may not exist any more). */
  rollback(): void {
    this.checkedSeq = this.checkedAtBegin;
    for (const value of this.learnt) {
      const id = this.ids.get(value);
      this.ids.delete(value);
      if (id !== undefined) this.values.delete(id);
    }
    this.learnt.length = 0;
  }

  /** Forgets every cached string (verify reads the dictionary as it is now). */
  clear(): void {
    this.ids.clear();
    this.values.clear();
    this.learnt.length = 0;
  }

  /** Id of `value`, assigned when new. Call inside a write transaction. */
  code(value: string): number {
    const known = this.ids.get(value);
    if (known !== undefined) return known;
    // Most strings not cached are new (a workflow's id on its first row): insert first, and look
    // the id up only when the file already holds the string.
    this.insert ??= this.db
      .prepare<[string], number>('INSERT OR IGNORE INTO keel_strings (value) VALUES (?) RETURNING id')
      .pluck();
    const id = this.insert.get(value);
    if (id === undefined) {
      const held = this.find(value);
      if (held === undefined)
        throw new CorruptLogError(
          0,
          `keel_strings refused the string ${JSON.stringify(value.slice(0, 80))} and does not hold it`,
        );
      return held;
    }
    this.remember(value, id);
    this.learnt.push(value);
    return id;
  }

  /** Id of `value` if the file holds it, else undefined (never inserts; remembered inside a write transaction's undo list). */
  find(value: string): number | undefined {
    const known = this.ids.get(value);
    if (known !== undefined) return known;
    this.selectId ??= this.db
      .prepare<[string], number>('SELECT id FROM keel_strings WHERE value = ?')
      .pluck();
    const id = this.selectId.get(value);
    if (id === undefined) return undefined;
    this.remember(value, id);
    if (this.db.inTransaction) this.learnt.push(value);
    return id;
  }

  /** The string of `id`; throws {@link CorruptLogError} when the file holds none. */
  lookup(id: number): string {
    const known = this.values.get(id);
    if (known !== undefined) return known;
    this.selectValue ??= this.db
      .prepare<[number], string>('SELECT value FROM keel_strings WHERE id = ?')
      .pluck();
    const value = typeof id === 'number' ? this.selectValue.get(id) : undefined;
    if (typeof value !== 'string') {
      throw new CorruptLogError(0, `keel_strings holds no string with id ${String(id)}`);
    }
    this.remember(value, id);
    if (this.db.inTransaction) this.learnt.push(value);
    return value;
  }

  private remember(value: string, id: number): void {
    if (this.ids.size >= MAX_CACHED_STRINGS || this.values.size >= MAX_CACHED_STRINGS) {
      this.ids.clear();
      this.values.clear();
      this.learnt.length = 0;
    }
    // A copy: `value` may be a slice of a much larger string (the writer thread cuts each id out of
    // its batch's packed text), which a cached slice would keep alive — tens of MB over 20,000 ids.
    const own = (value + ' ').slice(0, -1);
    this.ids.set(own, id);
    this.values.set(id, own);
  }
}

/**
 * A fetched schema-4 row (read through the dialect's `from()`, so `workflow_id`, `type` and `class`
 * are text; the raw `workflow` and `type` ids follow the row's columns) made readable in place: its
 * two trailing ids checked (they resolved), and its payload (index 6) replaced by its
 * canonical JSON (`json`) or its object. A payload stored as a BLOB was kept verbatim by the
 * migration from schema 3 (its text was not canonical JSON, so coding it would have changed what
 * verify sees). Throws {@link CorruptLogError} naming the seq.
 */
export function decodeRow(strings: SqliteStrings, raw: unknown[], json: boolean): void {
  const n = raw.length - 2;
  const seq = raw[0] as number;
  if (raw[2] === null) {
    throw new CorruptLogError(
      seq,
      `its workflow refers to keel_strings id ${String(raw[n])}, which the file does not hold`,
    );
  }
  if (raw[3] === null) {
    throw new CorruptLogError(
      seq,
      `its type refers to keel_strings id ${String(raw[n + 1])}, which the file does not hold`,
    );
  }
  // The trailing ids stay (readers index the columns before them): truncating the array would
  // turn it into a slow one.
  const stored = raw[6];
  const type = raw[3] as string;
  if (stored instanceof Uint8Array) {
    const text = Buffer.from(stored.buffer, stored.byteOffset, stored.length).toString('utf8');
    raw[6] = json ? text : parseVerbatim(seq, type, text);
    return;
  }
  const text = String(stored);
  try {
    if (!json) {
      raw[6] = decodePayload(type, text, strings);
      return;
    }
    // Strict: a row that is not exactly what encodePayload writes for what it decodes to (a space
    // added, a codable string left uncoded) is refused, so every changed byte is a modified row.
    const canonical = decodePayloadJson(type, text, strings);
    raw[6] = canonical;
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new CorruptLogError(seq, `its payload does not decode: ${why}`, { cause: e });
  }
}

function parseVerbatim(seq: number, type: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new CorruptLogError(
      seq,
      `its ${type} payload, kept verbatim, is not JSON (${(e as Error).message})`,
    );
  }
}

/** Rows {@link deleteUnusedStrings} reads per statement. */
const SCAN_PAGE = 4096;

/** What {@link deleteUnusedStrings} did: strings deleted, or why it kept them all. */
export type UnusedStrings = { deleted: number } | { kept: string };

/**
 * Retention's second half (schema 5), inside the prune's write transaction after its events were
 * deleted and its anchors appended: deletes, through the retention gate (`openGate`/`closeGate`),
 * every `keel_strings` row that no remaining event refers to as its workflow, its type or from its
 * coded payload (`codec-refs.ts`). Reads every remaining row once, a page at a time (a string can
 * be a pruned workflow's id and a kept row's payload value, so no row can be skipped). A row whose
 * payload cannot be read (altered, or written by a newer Keel) refers to unknown ids: then no
 * string is deleted (`kept` says why; verify names the row). Forgets `strings`' cache.
 */
export function deleteUnusedStrings(
  db: Database.Database,
  strings: SqliteStrings,
  openGate: string,
  closeGate: string,
): UnusedStrings {
  const used = new Set<number>();
  const typeNames = new Map<number, string>();
  const page = db
    .prepare<[number, number], [number, unknown, unknown, unknown]>(
      'SELECT seq, workflow, type, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?',
    )
    .raw();
  for (let cursor = 0; ;) {
    const rows = page.all(cursor, SCAN_PAGE);
    for (const [seq, workflow, type, payload] of rows) {
      used.add(workflow as number);
      used.add(type as number);
      // Only a key-coded row (`[mask, …]`) can hold ids.
      if (typeof payload !== 'string' || payload.charCodeAt(0) !== 0x5b /* [ */) continue;
      let name = typeNames.get(type as number);
      try {
        if (name === undefined) typeNames.set(type as number, (name = strings.lookup(type as number)));
        addPayloadRefs(name, payload, used);
      } catch (e) {
        if (!(e instanceof CorruptLogError) && !isPayloadDecodeError(e)) throw e;
        return { kept: `seq ${seq} does not read (${e.message}), so what it refers to is unknown` };
      }
    }
    if (rows.length < SCAN_PAGE) break;
    cursor = (rows[rows.length - 1] as [number, unknown, unknown, unknown])[0];
  }
  const ids = db.prepare<[], number>('SELECT id FROM keel_strings').pluck().all();
  const unused = ids.filter((id) => !used.has(id));
  strings.clear();
  if (unused.length === 0) return { deleted: 0 };
  const remove = db.prepare<[number]>('DELETE FROM keel_strings WHERE id = ?');
  db.exec(openGate);
  for (const id of unused) remove.run(id);
  db.exec(closeGate);
  return { deleted: unused.length };
}

/** The dialect's decoding of rows ({@link StoredRows}) on `strings`' connection. */
export function storedRows(strings: SqliteStrings): StoredRows {
  return {
    decode: (raw, json) => decodeRow(strings, raw, json),
    fresh: () => strings.clear(),
  };
}
