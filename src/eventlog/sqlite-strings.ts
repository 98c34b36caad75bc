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
 */
import type Database from 'better-sqlite3';
import { decodePayload, decodePayloadJson, type Dictionary } from './codec.js';
import { CorruptLogError } from './errors.js';
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

  constructor(private readonly db: Database.Database) {}

  /** A write transaction starts: ids learnt from here on are forgotten if it rolls back. */
  begin(): void {
    this.learnt.length = 0;
  }

  /** The write transaction rolled back: forgets the ids it learnt (some may not exist any more). */
  rollback(): void {
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
    let id = this.insert.get(value);
    if (id === undefined) {
      this.selectId ??= this.db
        .prepare<[string], number>('SELECT id FROM keel_strings WHERE value = ?')
        .pluck();
      id = this.selectId.get(value);
      if (id === undefined)
        throw new CorruptLogError(
          0,
          `keel_strings refused the string ${JSON.stringify(value.slice(0, 80))} and does not hold it`,
        );
    }
    this.remember(value, id);
    this.learnt.push(value);
    return id;
  }

  /** Id of `value` if the file holds it, else undefined (never inserts). */
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
    this.ids.set(value, id);
    this.values.set(id, value);
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

/** The dialect's decoding of rows ({@link StoredRows}) on `strings`' connection. */
export function storedRows(strings: SqliteStrings): StoredRows {
  return {
    decode: (raw, json) => decodeRow(strings, raw, json),
    fresh: () => strings.clear(),
  };
}
