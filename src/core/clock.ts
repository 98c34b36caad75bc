/**
 * The one source of time in Keel. Actors (XState's `clock` option), RxJS (via
 * {@link clockScheduler}) and the event log all read time from a `Clock`, so a test can swap in
 * {@link simulatedClock} and drive every delay, timeout and day boundary by hand.
 */
import { Subscription, type SchedulerAction, type SchedulerLike } from 'rxjs';

/** Opaque handle returned by {@link Clock.setTimeout}. */
export type TimerHandle = unknown;

/**
 * Time as Keel sees it. Compatible with XState v5's `Clock` (its `setTimeout`/`clearTimeout`), so
 * the same object is passed to `createActor(machine, { clock })`.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Runs `fn` after `ms` milliseconds of this clock's time. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer; unknown handles are ignored. */
  clearTimeout(handle: TimerHandle): void;
}

/**
 * The wall clock. The only place in Keel that reads `Date.now()` or the global timers.
 *
 * @example
 * const rt = createRuntime({ db: 'keel.db', clock: realClock });
 */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** A clock whose time moves only when told to. */
export interface SimulatedClock extends Clock {
  /**
   * Moves time forward by `ms`, firing every timer that comes due, in due order. Timers scheduled by
   * a firing timer also fire if they fall inside the window. Synchronous: promise callbacks that the
   * timers trigger run afterwards; use {@link SimulatedClock.advanceAsync} when they matter.
   */
  advance(ms: number): void;
  /**
   * Like `advance`, but lets pending promise callbacks run after each timer fires, so async code
   * that schedules the next timer from a `.then` keeps up with virtual time.
   */
  advanceAsync(ms: number): Promise<void>;
  /** Fires timers due at the current time, letting promise callbacks run between them. */
  flush(): Promise<void>;
  /** Jumps to an absolute time (ms since epoch); must not go backwards. */
  set(ms: number): void;
  /** Number of timers waiting to fire (for leak checks in tests). */
  pendingTimers(): number;
}

interface SimTimer {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * Virtual time for tests and deterministic replay.
 *
 * @param startMs - the clock's initial time, ms since epoch (default 2026-01-01T00:00:00Z).
 * @example
 * const clock = simulatedClock();
 * const rt = createRuntime({ db: ':memory:', clock });
 * clock.advance(60_000); // the breaker's reset timeout passes instantly
 */
export function simulatedClock(startMs = Date.UTC(2026, 0, 1)): SimulatedClock {
  let now = startMs;
  let nextId = 1;
  const timers = new Map<number, SimTimer>();

  const nextDue = (limit: number): SimTimer | undefined => {
    let best: SimTimer | undefined;
    for (const t of timers.values()) {
      if (t.at <= limit && (best === undefined || t.at < best.at || (t.at === best.at && t.id < best.id))) {
        best = t;
      }
    }
    return best;
  };

  const fire = (t: SimTimer): void => {
    timers.delete(t.id);
    if (t.at > now) now = t.at;
    t.fn();
  };

  // Two turns of the check phase: work that promise callbacks queue with `setImmediate` in the
  // first (an event-log flush a model call waits for: write-ahead) runs before the next timer fires.
  const tick = (): Promise<void> => new Promise((resolve) => setImmediate(() => setImmediate(resolve)));

  return {
    now: () => now,
    setTimeout(fn, ms) {
      const id = nextId++;
      timers.set(id, { id, at: now + Math.max(0, ms), fn });
      return id;
    },
    clearTimeout(handle) {
      if (typeof handle === 'number') timers.delete(handle);
    },
    advance(ms) {
      if (!(ms >= 0)) throw new RangeError(`simulatedClock.advance(ms): ms must be >= 0, got ${ms}`);
      const target = now + ms;
      for (let t = nextDue(target); t; t = nextDue(target)) fire(t);
      now = target;
    },
    async advanceAsync(ms) {
      if (!(ms >= 0)) throw new RangeError(`simulatedClock.advanceAsync(ms): ms must be >= 0, got ${ms}`);
      const target = now + ms;
      await tick();
      for (let t = nextDue(target); t; t = nextDue(target)) {
        fire(t);
        await tick();
      }
      now = target;
    },
    async flush() {
      await this.advanceAsync(0);
    },
    set(ms) {
      if (ms < now) throw new RangeError(`simulatedClock.set(ms): time cannot go backwards (${ms} < ${now})`);
      this.advance(ms - now);
    },
    pendingTimers: () => timers.size,
  };
}

class ClockAction<T> extends Subscription implements SchedulerAction<T> {
  private handle: TimerHandle = undefined;
  constructor(
    private readonly clock: Clock,
    private readonly work: (this: SchedulerAction<T>, state?: T) => void,
  ) {
    super(() => {
      if (this.handle !== undefined) this.clock.clearTimeout(this.handle);
      this.handle = undefined;
    });
  }
  schedule(state?: T, delay = 0): Subscription {
    if (this.closed) return this;
    if (this.handle !== undefined) this.clock.clearTimeout(this.handle);
    this.handle = this.clock.setTimeout(() => {
      this.handle = undefined;
      this.work.call(this, state);
    }, delay);
    return this;
  }
}

/**
 * An RxJS scheduler driven by a Keel {@link Clock}, so `timer`, `delay` and `timeout` in the
 * supervisor move with virtual time in tests.
 *
 * @example
 * timer(1_000, clockScheduler(clock)).subscribe(() => console.log('one virtual second'));
 */
export function clockScheduler(clock: Clock): SchedulerLike {
  return {
    now: () => clock.now(),
    schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, delay = 0, state?: T): Subscription {
      return new ClockAction<T>(clock, work).schedule(state, delay);
    },
  };
}
