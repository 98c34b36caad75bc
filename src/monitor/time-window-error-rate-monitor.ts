/**
 * The time-based variant of {@link ErrorRateMonitor}: the window holds the outcomes of the last
 * `windowMs` milliseconds. Time comes from the caller (event timestamps), so it is a pure fold.
 */
import { errorRateMessage } from './internal/format.js';
import { OutcomeWindow, SUCCESS_INDEX } from './internal/outcome-window.js';
import { checkInteger, checkPositive, checkRatio } from '../core/validate.js';
import type { ErrorRateReading, InsufficientData } from './error-rate-monitor.js';

/** Configuration of a {@link TimeWindowErrorRateMonitor}. */
export interface TimeWindowErrorRateMonitorConfig {
  /** Length of the rolling window in ms, e.g. 7_200_000 for the last two hours. Required. */
  windowMs: number;
  /** Error ratio above which `record` alerts, in [0, 1] (default 0.05). Equal is not above. */
  threshold?: number;
  /** Outcomes the window must hold before it is judged (default 20). */
  minSamples?: number;
}

/** A reading of a time window: `windowSize` is the number of outcomes currently in it. */
export interface TimeWindowErrorRateReading extends ErrorRateReading {
  /** The window's length in ms. */
  windowMs: number;
}

/** What {@link TimeWindowErrorRateMonitor.record} returns. */
export type TimeWindowErrorRateCheck = InsufficientData | TimeWindowErrorRateReading;

const INSUFFICIENT: InsufficientData = Object.freeze({ alert: false, reason: 'insufficient_data' });

/**
 * Error rate over the outcomes of the last `windowMs`. Outcomes at or before `tsMs - windowMs` are
 * forgotten. O(1) amortised per outcome; memory grows with the outcomes inside one window.
 *
 * @example
 * const mon = new TimeWindowErrorRateMonitor({ windowMs: 2 * 3_600_000, threshold: 0.05 });
 * mon.record(event.type === 'agent.succeeded', event.ts);
 */
export class TimeWindowErrorRateMonitor {
  /** The window's length in ms. */
  readonly windowMs: number;
  /** Error ratio above which the monitor alerts. */
  readonly threshold: number;
  /** Outcomes needed before the window is judged. */
  readonly minSamples: number;
  private readonly window: OutcomeWindow;

  constructor(config: TimeWindowErrorRateMonitorConfig) {
    const { windowMs, threshold = 0.05, minSamples = 20 } = config;
    checkPositive('windowMs', windowMs, 'the window length in ms, e.g. 3_600_000 for one hour');
    checkRatio('threshold', threshold, 'e.g. 0.05 to alert above 5 %');
    checkInteger('minSamples', minSamples, 1, 'outcomes needed before judging, e.g. 20');
    this.windowMs = windowMs;
    this.threshold = threshold;
    this.minSamples = minSamples;
    this.window = new OutcomeWindow({ ms: windowMs });
  }

  /** Records one outcome that happened at `tsMs` (ms since epoch) and judges the window. */
  record(success: boolean, tsMs: number): TimeWindowErrorRateCheck {
    this.window.record(tsMs, success ? SUCCESS_INDEX : 0);
    return this.read();
  }

  /** Judges the window as of `nowMs` without recording (forgets what has aged out). */
  check(nowMs: number): TimeWindowErrorRateCheck {
    this.window.expire(nowMs);
    return this.read();
  }

  private read(): TimeWindowErrorRateCheck {
    const samples = this.window.samples;
    if (samples < this.minSamples) return INSUFFICIENT;
    const errorRate = this.window.failures / samples;
    return {
      alert: errorRate > this.threshold,
      errorRate,
      threshold: this.threshold,
      failures: this.window.failures,
      windowSize: samples,
      windowMs: this.windowMs,
      message: errorRateMessage(errorRate, this.threshold, samples, this.windowMs),
    };
  }
}
