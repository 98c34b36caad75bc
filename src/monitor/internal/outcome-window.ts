/**
 * A rolling window of agent outcomes, bounded by count, by time, or both, with failure counts per
 * category kept incrementally (O(1) per outcome; no scan of the window).
 * Internal: not part of the public surface.
 */
import { ERROR_CATEGORIES, type ErrorCategory } from '../../eventlog/events.js';
import { topCategory } from './outcome.js';
import { SampleRing } from './ring.js';

/** Category index recorded for a success. */
export const SUCCESS_INDEX = -1;

/** How a window forgets: the last `size` outcomes and/or those newer than `ms`. */
export interface WindowBounds {
  size?: number;
  ms?: number;
}

export class OutcomeWindow {
  private readonly ring: SampleRing;
  private readonly causes = new Uint32Array(ERROR_CATEGORIES.length);
  private failureCount = 0;

  constructor(private readonly bounds: WindowBounds) {
    this.ring = new SampleRing(bounds.size !== undefined ? Math.min(bounds.size, 1024) : 64);
  }

  /** Outcomes in the window. */
  get samples(): number {
    return this.ring.size;
  }

  /** Failures in the window. */
  get failures(): number {
    return this.failureCount;
  }

  /** Failures / samples (0 for an empty window). */
  get errorRate(): number {
    return this.ring.size === 0 ? 0 : this.failureCount / this.ring.size;
  }

  /** Records one outcome at `ts`; `category` is the failure category index, or -1 for success. */
  record(ts: number, category: number): void {
    this.expire(ts);
    if (this.bounds.size !== undefined && this.ring.size >= this.bounds.size) this.dropOldest();
    this.ring.push(ts, category);
    if (category !== SUCCESS_INDEX) {
      this.failureCount++;
      this.causes[category] = (this.causes[category] ?? 0) + 1;
    }
  }

  /** Forgets outcomes at or before `nowMs - ms` (time-bounded windows only). */
  expire(nowMs: number): void {
    if (this.bounds.ms === undefined) return;
    const cutoff = nowMs - this.bounds.ms;
    while (this.ring.size > 0 && this.ring.oldestTs() <= cutoff) this.dropOldest();
  }

  /** Failure counts by category, indexed like {@link ERROR_CATEGORIES}. */
  causeCounts(): Readonly<Uint32Array> {
    return this.causes;
  }

  /** The most frequent failure category in the window. */
  primaryCause(): ErrorCategory | undefined {
    return topCategory(this.causes);
  }

  private dropOldest(): void {
    const c = this.ring.oldestValue();
    this.ring.shift();
    if (c !== SUCCESS_INDEX && !Number.isNaN(c)) {
      this.failureCount--;
      this.causes[c] = (this.causes[c] ?? 1) - 1;
    }
  }
}
