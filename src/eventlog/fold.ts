/**
 * Analyses of the whole log (`keel report`, `keel whatif`) as push-based folds: each is fed one
 * event at a time and answers at the end, so one driver streams them from any store — SQLite's
 * synchronous iterator or Postgres's asynchronous one — with memory bounded by what the analysis
 * keeps, never by the log.
 */
import type { KeelEvent } from './events.js';
import type { EventStream } from './store.js';

/**
 * An analysis fed the log one event at a time, oldest first, like the runtime's own projections
 * (`createCostTracker().apply`, `createLatencyProjection().apply`).
 */
export interface EventFold<R> {
  /** Folds the next event of the log. Keeps no reference to it beyond what the analysis needs. */
  apply(event: KeelEvent): void;
  /** The analysis of every event applied. Call it once, after the last event. */
  result(): R;
}

/**
 * Streams `events` into `fold` and returns its result: a synchronous stream (SQLite's
 * `store.iterate()`, an array) is read in a plain loop, an asynchronous one (Postgres's) with
 * `for await`, one event at a time. Nothing is collected, so a month of a fleet's log is read in
 * the memory of the fold alone.
 *
 * @param fold - the analysis, e.g. `createReportFold(options)` or `createCascadeWhatIf(options)`.
 * @param events - the log, oldest first, e.g. `store.iterate()` of either store.
 * @example
 * const store = openPostgresStore({ url: 'postgres://keel@127.0.0.1:5432/keel', readonly: true });
 * const report = await foldEvents(createReportFold({ slaP95Ms: 10_000 }), store.iterate());
 * console.log(formatReport(report));
 */
export async function foldEvents<R>(fold: EventFold<R>, events: EventStream<KeelEvent>): Promise<R> {
  if (Symbol.iterator in events) return foldSync(fold, events);
  for await (const e of events) fold.apply(e);
  return fold.result();
}

/** Folds a synchronous iterable: the body of every synchronous driver (`buildReport`, `whatIfCascade`…). */
export function foldSync<R>(fold: EventFold<R>, events: Iterable<KeelEvent>): R {
  for (const e of events) fold.apply(e);
  return fold.result();
}
