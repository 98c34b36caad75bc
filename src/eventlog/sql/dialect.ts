/**
 * What differs between the SQL of the two event stores, and only that: placeholders, a list of
 * types, the table's name, how retention opens the append-only gate, and two planner hints. The
 * shared queries (`./query.ts`, `./retention.ts`, `./verify.ts`) are written once against this.
 * Internal to src/eventlog.
 */
import { SYSTEM_WORKFLOW_ID } from '../events.js';

/** Columns of an {@link EventRow}, in the table's order. */
export const EVENT_COLUMNS = 'seq, ts, workflow_id, type, v, class, payload';
/** Columns of a `ChainRow` in a log that stores `prev_hash`. */
const STORED_CHAINED_COLUMNS = `${EVENT_COLUMNS}, prev_hash, hash`;

/** Decoding of rows whose payloads are coded (SQLite schema 4, `../sqlite-strings.ts`). */
export interface StoredRows {
  /**
   * Makes a fetched row (read with one of the dialect's column lists) readable in place: drops the
   * trailing raw ids after checking them, and replaces the payload (index 6) by its canonical JSON
   * (`json`) or its object. Throws `CorruptLogError` naming the seq.
   */
  decode(raw: unknown[], json: boolean): void;
  /**
   * Forgets what the dictionary cache holds (verify reads the dictionary as the file has it now).
   */
  fresh(): void;
}

/** The SQL of one store. */
export interface SqlDialect {
  /** `'sqlite'` or `'postgres'` (for messages). */
  readonly name: 'sqlite' | 'postgres';
  /**
   * The events table, schema-qualified where the store has schemas: what INSERT and DELETE name,
   * and queries that read only `seq`, `ts` and `hash` (with {@link SqlDialect.classValue} for `class`).
   */
  readonly events: string;
  /**
   * The `FROM` item that reads events with the columns of {@link EVENT_COLUMNS} as text (`alias`
   * names it; default: none, or `events`). Schema 4 (SQLite) stores `workflow` and `type` as
   * `keel_strings` ids and `class` as 0/1: this joins the dictionary, so the shared queries filter
   * on `workflow_id = ?` as before and an unknown id matches nothing.
   */
  from(alias?: string): string;
  /** Columns of an event row as read: {@link EVENT_COLUMNS} (plus, in schema 4, the raw ids {@link SqlDialect.stored} checks). */
  readonly eventColumns: string;
  /** A class as the `events` table stores it (`'audit'`, or 0 in schema 4). */
  classValue(cls: string): string | number;
  /**
   * Schema 4: how a fetched row's coded payload reads back (and its dictionary ids are checked);
   * `undefined` where the payload column holds canonical JSON.
   */
  readonly stored?: StoredRows;
  /** Placeholder of the `n`-th parameter (1-based): `?` in SQLite, `$n` in Postgres. */
  param(n: number): string;
  /** Condition "type is one of `types`", adding its parameters through `add`. */
  typeIn(types: readonly string[], add: (value: unknown) => string): string;
  /**
   * The `FROM` of the query that finds a time window's seq range (SQLite names the ts index, whose
   * use it would otherwise weigh against the primary key).
   */
  readonly windowFrom: string;
  /**
   * A window condition (`ts >= ?`) checked on rows walked in seq order, written so the planner does
   * not read them through the ts index instead (SQLite's unary `+`).
   */
  unindexed(condition: string): string;
  /** Also narrow a window to its seq range when the filter names types (SQLite: yes). */
  readonly narrowTypedWindow: boolean;
  /** Statements that open and close the retention gate inside a prune's transaction. */
  readonly openGate: string;
  readonly closeGate: string;
  /**
   * The log stores each row's `prev_hash` (schema versions before the compact rows: SQLite 1–2,
   * Postgres 1). Otherwise it is the previous row of the class's `hash`, derived when read.
   */
  readonly storedPrev: boolean;
  /** Columns of a `ChainRow` (./chain.ts): an event row, its previous hash and its hash. */
  readonly chainedColumns: string;
  /** The same for the verify walk, which derives `prev_hash` itself (`NULL` unless stored). */
  readonly verifyColumns: string;
}

/** Columns of a chained row: `prev_hash` stored, or the previous row of its class's `hash` (NULL at the start). */
function chained(events: string, storedPrev: boolean): { chainedColumns: string; verifyColumns: string } {
  if (storedPrev) return { chainedColumns: STORED_CHAINED_COLUMNS, verifyColumns: STORED_CHAINED_COLUMNS };
  const prev = `(SELECT p.hash FROM ${events} p WHERE p.class = events.class AND p.seq < events.seq ORDER BY p.seq DESC LIMIT 1)`;
  return {
    chainedColumns: `${EVENT_COLUMNS}, ${prev} AS prev_hash, hash`,
    verifyColumns: `${EVENT_COLUMNS}, NULL AS prev_hash, hash`,
  };
}

/** A table's `FROM` item under `alias` (none by default). */
function plainFrom(table: string): (alias?: string) => string {
  return (alias) => (alias === undefined ? table : `${table} ${alias}`);
}

/** Schema 4 reads the dictionary-coded columns as text (and the raw ids, to name a dangling one). */
const V4_ROWS = `SELECT e.seq AS seq, e.ts AS ts, w.value AS workflow_id, t.value AS type, e.v AS v,
    CASE e.class WHEN 0 THEN 'audit' WHEN 1 THEN 'operational' END AS class, e.payload AS payload,
    e.hash AS hash, e.class AS class_code, e.workflow AS workflow_code, e.type AS type_code
  FROM events e LEFT JOIN keel_strings w ON w.id = e.workflow LEFT JOIN keel_strings t ON t.id = e.type`;
const V4_CODES = 'workflow_code, type_code';

/**
 * SQLite (better-sqlite3): positional `?`, an `IN` list, the `retention_gate` row; `version` is the
 * file's schema version (a read-only store reads an older file as it is). Schema 4 needs `stored`:
 * the connection's dictionary decoding ({@link StoredRows}).
 */
export function sqliteDialectFor(version: number, stored?: StoredRows): SqlDialect {
  const common = {
    name: 'sqlite',
    events: 'events',
    param: () => '?',
    typeIn: (types: readonly string[], add: (value: unknown) => string) =>
      `type IN (${types.map((t) => add(t)).join(', ')})`,
    windowFrom: 'events INDEXED BY events_by_ts',
    unindexed: (condition: string) => `+${condition}`,
    narrowTypedWindow: true,
    openGate: 'UPDATE retention_gate SET open = 1 WHERE id = 1',
    closeGate: 'UPDATE retention_gate SET open = 0 WHERE id = 1',
  } as const;
  if (version < 4) {
    return {
      ...common,
      from: plainFrom('events'),
      eventColumns: EVENT_COLUMNS,
      classValue: (cls) => cls,
      storedPrev: version < 3,
      ...chained('events', version < 3),
    };
  }
  if (stored === undefined) throw new TypeError('sqliteDialectFor: schema 4 needs its dictionary (stored)');
  const prev = `(SELECT p.hash FROM events p WHERE p.class = events.class_code AND p.seq < events.seq ORDER BY p.seq DESC LIMIT 1)`;
  return {
    ...common,
    from: (alias = 'events') => `(${V4_ROWS}) AS ${alias}`,
    eventColumns: `${EVENT_COLUMNS}, ${V4_CODES}`,
    classValue: (cls) => (cls === 'audit' ? 0 : cls === 'operational' ? 1 : -1),
    stored,
    storedPrev: false,
    chainedColumns: `${EVENT_COLUMNS}, ${prev} AS prev_hash, hash, ${V4_CODES}`,
    verifyColumns: `${EVENT_COLUMNS}, NULL AS prev_hash, hash, ${V4_CODES}`,
  };
}

/**
 * Postgres (node-postgres) with the store's tables in `schema` (already quoted), at schema `version`
 * (default: the compact rows of version 2).
 */
export function postgresDialect(schema: string, version = 2): SqlDialect {
  const events = `${schema}.events`;
  return {
    storedPrev: version < 2,
    ...chained(events, version < 2),
    name: 'postgres',
    events,
    from: plainFrom(events),
    eventColumns: EVENT_COLUMNS,
    classValue: (cls) => cls,
    param: (n) => `$${n}`,
    typeIn: (types, add) => `type = ANY(${add([...types])}::text[])`,
    windowFrom: events,
    unindexed: (condition) => condition,
    // Version 2 dropped the type index: a typed window scans the window's seq range, as in SQLite.
    narrowTypedWindow: version >= 2,
    openGate: "SET LOCAL keel.retention = 'on'",
    closeGate: "SET LOCAL keel.retention = 'off'",
  };
}

/** The `_system` workflow's anchors, in seq order (the workflow index finds them). */
export function anchorsSql(d: SqlDialect): string {
  return `SELECT ${d.chainedColumns} FROM ${d.from()} WHERE workflow_id = '${SYSTEM_WORKFLOW_ID}' AND type = 'log.anchor' ORDER BY seq`;
}
