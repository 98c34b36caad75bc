/**
 * Reading an event log with SQL, for both stores: a filter checked, compiled to conditions in the
 * store's dialect and narrowed to a time window's seq range; the query and keyset-page statements;
 * rows decoded to events; and the merge of one cursor per type into one seq-ordered stream.
 * Internal to src/eventlog.
 */
import { ConfigError } from '../../core/errors.js';
import { GENESIS_HASH, chainRowOf, latestAnchors, type AnchorClaim, type ChainRow } from '../chain.js';
import type { EventClass, KeelEvent, KeelEventType } from '../events.js';
import type { ChainedEvent, EventFilter } from '../store.js';
import type { SqlDialect } from './dialect.js';
import { row, type SqlProgram } from './program.js';

/** Rows per keyset page for `iterate` and `verify`. */
export const PAGE_SIZE = 1000;

/** An event row as the queries return it, in `EVENT_COLUMNS` order (`bigint`s as numbers). */
export type EventRow = [
  seq: number,
  ts: number,
  workflowId: string,
  type: string,
  v: number,
  cls: string,
  payload: string,
];

/** A row as a committed event. */
export function toEvent(r: EventRow | ChainRow): KeelEvent {
  return {
    seq: r[0],
    ts: r[1],
    workflowId: r[2],
    type: r[3],
    v: r[4],
    class: r[5],
    payload: JSON.parse(r[6]) as unknown,
  } as KeelEvent;
}

/** A fetched row (in `d.eventColumns` order) as a committed event, its payload decoded the dialect's way. */
export function eventOf(d: SqlDialect, raw: readonly unknown[]): KeelEvent {
  if (d.stored === undefined) return toEvent(raw as EventRow);
  const r = raw as unknown[];
  d.stored.decode(r, false);
  return {
    seq: r[0],
    ts: r[1],
    workflowId: r[2],
    type: r[3],
    v: r[4],
    class: r[5],
    payload: r[6],
  } as KeelEvent;
}

/**
 * A fetched row (in `d.chainedColumns` / `d.verifyColumns` order) as a {@link ChainRow}: hashes as
 * hex, the payload as its canonical JSON (schema 4 decodes it; throws `CorruptLogError`).
 */
export function chainRowFor(d: SqlDialect, raw: readonly unknown[]): ChainRow {
  if (d.stored !== undefined) d.stored.decode(raw as unknown[], true);
  return chainRowOf(raw);
}

/**
 * A chained row (as fetched: hashes hex or raw bytes) as an event with its hashes. A row with no
 * previous row of its class (`prev_hash` NULL: none is stored, and none is left before it) chains
 * from its class's latest retention anchor, else genesis: `heads` gives those ({@link anchorHeads}).
 */
export function toChained(
  raw: readonly unknown[],
  anchored: Partial<Record<EventClass, string>>,
): ChainedEvent {
  const r = chainRowOf(raw);
  const prevHash = r[7] ?? anchored[r[5] as EventClass] ?? GENESIS_HASH;
  return { event: toEvent(r), prevHash, hash: r[8] };
}

/** Each class's latest anchor's `lastPrunedHash`: what its first kept row chains from. */
export function anchorHeads(anchors: readonly AnchorClaim[]): Partial<Record<EventClass, string>> {
  const latest = latestAnchors(anchors);
  const out: Partial<Record<EventClass, string>> = {};
  for (const cls of ['audit', 'operational'] as const) {
    const a = latest[cls];
    if (a !== undefined) out[cls] = a.lastPrunedHash;
  }
  return out;
}

/** Refuses a malformed filter with a {@link ConfigError} naming the field. */
export function checkFilter(filter: EventFilter): void {
  const { limit, afterSeq, fromTs, toTs } = filter;
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) {
    throw new ConfigError('filter.limit', `must be an integer >= 0, got ${limit}`);
  }
  for (const [field, value] of [
    ['afterSeq', afterSeq],
    ['fromTs', fromTs],
    ['toTs', toTs],
  ] as const) {
    if (value !== undefined && typeof value !== 'number') {
      throw new ConfigError(`filter.${field}`, `must be a number, got ${typeof value}`);
    }
  }
}

/** Several distinct types (iterated as one index cursor per type, merged), else `undefined`. */
export function typeList(filter: EventFilter): readonly KeelEventType[] | undefined {
  const { type } = filter;
  if (type === undefined || typeof type === 'string' || type.length < 2) return undefined;
  const unique = [...new Set(type)];
  return unique.length > 1 ? unique : undefined;
}

/** A filter as SQL conditions (every field but `afterSeq`/`limit`) and their parameters. */
export interface SqlFilter {
  where: string[];
  params: unknown[];
  /** Matches start after this seq. */
  afterSeq: number;
}

/** Compiles a filter in `d`'s dialect; `undefined` when nothing can match (an empty type list). */
export function compileFilter(d: SqlDialect, filter: EventFilter): SqlFilter | undefined {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (value: unknown): string => {
    params.push(value);
    return d.param(params.length);
  };
  if (filter.workflowId !== undefined) where.push(`workflow_id = ${add(filter.workflowId)}`);
  const { type } = filter;
  if (typeof type === 'string') where.push(`type = ${add(type)}`);
  else if (type !== undefined) {
    if (type.length === 0) return undefined;
    where.push(d.typeIn(type, add));
  }
  if (filter.class !== undefined) where.push(`class = ${add(filter.class)}`);
  if (filter.fromTs !== undefined) where.push(`ts >= ${add(filter.fromTs)}`);
  if (filter.toTs !== undefined) where.push(`ts < ${add(filter.toTs)}`);
  return { where, params, afterSeq: filter.afterSeq ?? 0 };
}

/**
 * Compiles a filter and, for a time window without a workflow (whose index serves it), narrows the
 * scan to the window's seq range, read once from the ts index: pages then walk the primary key in
 * seq order and check the rest of the filter on its rows, instead of sorting what the ts index
 * found. `undefined` when nothing can match.
 */
export function* planFilter(d: SqlDialect, filter: EventFilter): SqlProgram<SqlFilter | undefined> {
  const c = compileFilter(d, filter);
  if (c === undefined) return undefined;
  const { fromTs, toTs } = filter;
  if ((fromTs === undefined && toTs === undefined) || filter.workflowId !== undefined) return c;
  if (filter.type !== undefined && !d.narrowTypedWindow) return c;
  const where: string[] = [];
  const params: number[] = [];
  if (fromTs !== undefined) {
    params.push(fromTs);
    where.push(`ts >= ${d.param(params.length)}`);
  }
  if (toTs !== undefined) {
    params.push(toTs);
    where.push(`ts < ${d.param(params.length)}`);
  }
  const bounds = yield* row<[number | null, number | null]>(
    `SELECT min(seq), max(seq) FROM ${d.windowFrom} WHERE ${where.join(' AND ')}`,
    params,
  );
  if (bounds === undefined || bounds[0] === null || bounds[1] === null) return undefined;
  c.where = c.where.map((w) => (w.startsWith('ts ') ? d.unindexed(w) : w));
  c.afterSeq = Math.max(c.afterSeq, bounds[0] - 1);
  c.params.push(bounds[1]);
  c.where.push(`seq <= ${d.param(c.params.length)}`);
  return c;
}

/** A statement and its parameters. */
export interface SqlQuery {
  sql: string;
  params: unknown[];
}

/** The one query of `query(filter)`: matches after `c.afterSeq`, in seq order, at most `limit`. */
export function selectQuery(d: SqlDialect, columns: string, c: SqlFilter, limit?: number): SqlQuery {
  const params = [...c.params];
  const where = [...c.where];
  if (c.afterSeq > 0) {
    params.push(c.afterSeq);
    where.push(`seq > ${d.param(params.length)}`);
  }
  let sql = `SELECT ${columns} FROM ${d.from()}`;
  if (where.length > 0) sql += ` WHERE ${where.join(' AND ')}`;
  sql += ' ORDER BY seq';
  if (limit !== undefined) {
    params.push(limit);
    sql += ` LIMIT ${d.param(params.length)}`;
  }
  return { sql, params };
}

/**
 * Keyset pagination of a compiled filter: one short query per page (after the last seq seen), so
 * memory stays flat and writes interleave. Use: `while ((q = k.next()))` run `q`, yield its rows,
 * then `if (!k.advance(rows)) break`.
 */
export class KeysetPages {
  private readonly sql: string;
  private cursor: number;
  private remaining: number;
  private size = 0;

  constructor(
    d: SqlDialect,
    columns: string,
    private readonly c: SqlFilter,
    limit: number | undefined,
  ) {
    const n = c.params.length;
    const where = [...c.where, `seq > ${d.param(n + 1)}`].join(' AND ');
    this.sql = `SELECT ${columns} FROM ${d.from()} WHERE ${where} ORDER BY seq LIMIT ${d.param(n + 2)}`;
    this.cursor = c.afterSeq;
    this.remaining = limit ?? Number.POSITIVE_INFINITY;
  }

  /** The next page's query, or `undefined` when the limit is reached. */
  next(): SqlQuery | undefined {
    if (this.remaining <= 0) return undefined;
    this.size = Math.min(PAGE_SIZE, this.remaining);
    return { sql: this.sql, params: [...this.c.params, this.cursor, this.size] };
  }

  /** After a page's rows: whether another page may follow. */
  advance(rows: readonly (readonly unknown[])[]): boolean {
    if (rows.length < this.size) return false;
    this.cursor = (rows[rows.length - 1] as readonly unknown[])[0] as number;
    this.remaining -= rows.length;
    return true;
  }
}

/** Merges seq-ordered row streams into one seq-ordered stream. */
export async function* mergeBySeq<R extends readonly unknown[]>(
  sources: readonly AsyncIterator<R>[],
): AsyncGenerator<R> {
  const current = await Promise.all(sources.map((s) => s.next()));
  for (;;) {
    let best = -1;
    let bestSeq = Number.POSITIVE_INFINITY;
    for (let i = 0; i < current.length; i++) {
      const c = current[i] as IteratorResult<R>;
      if (c.done !== true && (c.value[0] as number) < bestSeq) {
        best = i;
        bestSeq = c.value[0] as number;
      }
    }
    if (best < 0) return;
    yield (current[best] as IteratorYieldResult<R>).value;
    current[best] = await (sources[best] as AsyncIterator<R>).next();
  }
}
