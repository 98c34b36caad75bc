/**
 * What differs between the SQL of the two event stores, and only that: placeholders, a list of
 * types, the table's name, how retention opens the append-only gate, and two planner hints. The
 * shared queries (`./query.ts`, `./retention.ts`, `./verify.ts`) are written once against this.
 * Internal to src/eventlog.
 */
import { SYSTEM_WORKFLOW_ID } from '../events.js';

/** The SQL of one store. */
export interface SqlDialect {
  /** `'sqlite'` or `'postgres'` (for messages). */
  readonly name: 'sqlite' | 'postgres';
  /** The events table, schema-qualified where the store has schemas. */
  readonly events: string;
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
}

/** SQLite (better-sqlite3): positional `?`, an `IN` list, the `retention_gate` row. */
export const sqliteDialect: SqlDialect = {
  name: 'sqlite',
  events: 'events',
  param: () => '?',
  typeIn: (types, add) => `type IN (${types.map((t) => add(t)).join(', ')})`,
  windowFrom: 'events INDEXED BY events_by_ts',
  unindexed: (condition) => `+${condition}`,
  narrowTypedWindow: true,
  openGate: 'UPDATE retention_gate SET open = 1 WHERE id = 1',
  closeGate: 'UPDATE retention_gate SET open = 0 WHERE id = 1',
};

/** Postgres (node-postgres) with the store's tables in `schema` (already quoted). */
export function postgresDialect(schema: string): SqlDialect {
  const events = `${schema}.events`;
  return {
    name: 'postgres',
    events,
    param: (n) => `$${n}`,
    typeIn: (types, add) => `type = ANY(${add([...types])}::text[])`,
    windowFrom: events,
    unindexed: (condition) => condition,
    narrowTypedWindow: false,
    openGate: "SET LOCAL keel.retention = 'on'",
    closeGate: "SET LOCAL keel.retention = 'off'",
  };
}

/** Columns of an {@link EventRow}, in the table's order. */
export const EVENT_COLUMNS = 'seq, ts, workflow_id, type, v, class, payload';
/** Columns of a `ChainRow` (./chain.ts): an event row and its hashes. */
export const CHAINED_COLUMNS = `${EVENT_COLUMNS}, prev_hash, hash`;

/** The `_system` workflow's anchors, in seq order (the workflow index finds them). */
export function anchorsSql(d: SqlDialect): string {
  return `SELECT ${CHAINED_COLUMNS} FROM ${d.events} WHERE workflow_id = '${SYSTEM_WORKFLOW_ID}' AND type = 'log.anchor' ORDER BY seq`;
}
