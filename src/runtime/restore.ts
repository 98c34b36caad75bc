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
 * the next run does not count an event twice. {@link Restorer} runs the steps and retries the
 * ones left after a failure; crash marking (`rt.markInterrupted`) is in `interrupted.ts`.
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

/** One read of the log on open: returns at once on SQLite, a promise on an asynchronous store. */
export type RestoreStep = () => Awaitable<void>;

/**
 * Runs the restore steps: synchronously while they answer at once (SQLite: done on return); on an
 * asynchronous store in the background, with runs waiting for {@link Restorer.retry}. A failed read
 * (the store unreachable) fails whoever waits for it; the next one to ask reads again, from the
 * first step not done (a step done twice would count its events twice).
 *
 * @example
 * const restorer = new Restorer([() => applyEvents(store.iterate({ fromTs }), fold.apply)]);
 * restorer.start();
 * await restorer.retry(); // before the first run
 */
export class Restorer {
  private done = 0;
  /** Set while an asynchronous store is being read. */
  private restoring: Promise<void> | undefined;
  /** Set after a failed read: starts it again. */
  private failed: (() => Promise<void> | undefined) | undefined;

  constructor(private readonly steps: readonly RestoreStep[]) {}

  /** The read in progress, if any (a failed one is not retried). */
  get pending(): Promise<void> | undefined {
    return this.restoring;
  }

  /** The read in progress; after a failed one, a new attempt; `undefined` once all is read. */
  retry(): Promise<void> | undefined {
    if (!this.restoring && this.failed) void this.failed();
    return this.restoring;
  }

  /** Starts reading (the steps not done yet). Throws when a synchronous read fails. */
  start(): void {
    const steps = this.steps.slice(this.done).map((step) => (): Awaitable<void> => {
      const pending = step();
      if (!pending) {
        this.done++;
        return;
      }
      return pending.then(() => {
        this.done++;
      });
    });
    const restored = inSequence(steps);
    if (!restored) return;
    this.failed = undefined;
    this.restoring = restored.then(
      () => {
        this.restoring = undefined;
      },
      (error: unknown) => {
        this.restoring = undefined;
        this.failed = () => {
          // Try again for whoever asks next, rather than failing forever.
          this.start();
          return this.restoring;
        };
        throw error;
      },
    );
    // Reported to each waiting run (and to `rt.ready()`), not as an unhandled rejection.
    this.restoring.catch(() => undefined);
  }
}

/** Runs each step after the previous one: synchronously while they answer at once. */
function inSequence(steps: readonly RestoreStep[]): Promise<void> | undefined {
  for (let i = 0; i < steps.length; i++) {
    const pending = (steps[i] as RestoreStep)();
    if (pending) {
      return steps.slice(i + 1).reduce<Promise<void>>((p, step) => p.then(step), pending);
    }
  }
  return undefined;
}
