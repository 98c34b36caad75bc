/**
 * What the runtime reads back from the log on open, so that every policy's state is the fold of
 * the log and a restart forgets nothing:
 *
 * - the alert fold (error-rate windows, weekly error budgets, SLA windows) and the alert ledger:
 *   every event since {@link restoreFromMs} — the start of the current budget week, and at least
 *   the last 7 days, so count windows and time windows up to a week long are whole again. What it
 *   derives is state only: the alerts were delivered when their `alert.raised` was committed.
 * - canary judgements: the outcomes (`canary.observed`) of that same read, and every verdict
 *   (`canary.rolled_back`, `canary.promoted`) of the log, which the runtime records in the system
 *   workflow so its index finds them in a log of any size (SQLite has no type index);
 * - breakers: each one's last transition (by the system workflow's index), built from it when an
 *   agent uses the breaker or `rt.breaker(name)` asks for it;
 * - daily budgets: their own read of today's spend (in `src/cost`).
 *
 * SQLite's reads stream synchronously (the runtime is ready on return). Postgres's are read in
 * full before any event is applied: a read that fails half way applies nothing, so the retry on
 * the next run does not count an event twice.
 */
import type { KeelEvent } from '../eventlog/events.js';
import { withEvents, type Awaitable, type EventStream } from '../eventlog/store.js';
import type { WeekCalendar } from '../monitor/iso-week.js';

/** The least history the windows are restored from: 7 days. */
export const RESTORE_MIN_MS = 7 * 86_400_000;

/**
 * Where the restore starts reading at `nowMs`: the start of the current budget week, or 7 days
 * back if that is earlier.
 *
 * @example
 * restoreFromMs(clock.now(), weekCalendar('Europe/Paris'));
 */
export function restoreFromMs(nowMs: number, weeks: WeekCalendar): number {
  return Math.min(nowMs - RESTORE_MIN_MS, weeks.weekOf(nowMs).startMs);
}

/**
 * Feeds every event of `stream` to `apply`, in order: in a plain loop for a synchronous stream
 * (returns nothing); an asynchronous one is read whole first, then applied (returns its promise),
 * so a failed read applies nothing.
 *
 * @example
 * await applyEvents(store.iterate({ fromTs }), (e) => fold.apply(e));
 */
export function applyEvents(
  stream: EventStream<KeelEvent>,
  apply: (event: KeelEvent) => void,
): Awaitable<void> {
  return withEvents(stream, (events) => {
    for (const e of events) apply(e);
  });
}
