/**
 * Reading the Postgres event log: filters compiled to SQL with `$n` parameters, the row shapes the
 * queries return (arrays, in the `events` column order), and the merge that turns one keyset cursor
 * per event type into one seq-ordered stream. Internal to `postgres.ts`.
 */
import type { ChainRow } from './chain.js';
import type { KeelEvent } from './events.js';
import type { ChainedEvent, EventFilter } from './store.js';

/** Columns of a {@link EventRow}. */
export const EVENT_COLUMNS = 'seq, ts, workflow_id, type, v, class, payload';
/** Columns of a {@link ChainRow}. */
export const CHAINED_COLUMNS = `${EVENT_COLUMNS}, prev_hash, hash`;

/** An event row as the queries return it (`bigint` columns parsed to numbers by the pool). */
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

/** A chained row as an event with its hashes. */
export function toChained(r: ChainRow): ChainedEvent {
  return { event: toEvent(r), prevHash: r[7], hash: r[8] };
}

/** A filter as SQL conditions (every field but `afterSeq`/`limit`) and their parameters. */
export interface SqlFilter {
  where: string[];
  params: unknown[];
  /** Matches start after this seq. */
  afterSeq: number;
}

/** Compiles a filter; `undefined` when nothing can match (an empty type list). */
export function compileFilter(filter: EventFilter): SqlFilter | undefined {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (condition: (placeholder: string) => string, value: unknown): void => {
    params.push(value);
    where.push(condition(`$${params.length}`));
  };
  if (filter.workflowId !== undefined) add((p) => `workflow_id = ${p}`, filter.workflowId);
  const { type } = filter;
  if (typeof type === 'string') add((p) => `type = ${p}`, type);
  else if (type !== undefined) {
    if (type.length === 0) return undefined;
    add((p) => `type = ANY(${p}::text[])`, [...type]);
  }
  if (filter.class !== undefined) add((p) => `class = ${p}`, filter.class);
  if (filter.fromTs !== undefined) add((p) => `ts >= ${p}`, filter.fromTs);
  if (filter.toTs !== undefined) add((p) => `ts < ${p}`, filter.toTs);
  return { where, params, afterSeq: filter.afterSeq ?? 0 };
}

/** Merges seq-ordered row streams into one seq-ordered stream. */
export async function* mergeBySeq<R extends EventRow | ChainRow>(
  sources: readonly AsyncIterator<R>[],
): AsyncGenerator<R> {
  const current = await Promise.all(sources.map((s) => s.next()));
  for (;;) {
    let best = -1;
    let bestSeq = Number.POSITIVE_INFINITY;
    for (let i = 0; i < current.length; i++) {
      const c = current[i] as IteratorResult<R>;
      if (c.done !== true && c.value[0] < bestSeq) {
        best = i;
        bestSeq = c.value[0];
      }
    }
    if (best < 0) return;
    yield (current[best] as IteratorYieldResult<R>).value;
    current[best] = await (sources[best] as AsyncIterator<R>).next();
  }
}
