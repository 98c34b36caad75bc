/**
 * The tutorial's `ErrorRateMonitor`: a rolling window of the last N task outcomes that alerts when
 * the window's error rate exceeds a threshold. Standalone and synchronous; the event-driven
 * version with alert/resolve hysteresis is {@link createErrorRateProjection}.
 */
import { errorRateMessage } from './internal/format.js';
import { OutcomeWindow, SUCCESS_INDEX } from './internal/outcome-window.js';
import { checkInteger, checkRatio } from '../core/validate.js';

/** Configuration of an {@link ErrorRateMonitor}. */
export interface ErrorRateMonitorConfig {
  /** Outcomes in the rolling window (default 100, the tutorial's window). */
  windowSize?: number;
  /** Error ratio above which `record` alerts, in [0, 1] (default 0.05). Equal is not above. */
  threshold?: number;
}

/** Returned while the window is not yet full: no judgement is possible. */
export interface InsufficientData {
  alert: false;
  reason: 'insufficient_data';
}

/** The window's verdict once it is full. */
export interface ErrorRateReading {
  /** True when `errorRate > threshold`. */
  alert: boolean;
  /** Failures / outcomes in the window. */
  errorRate: number;
  threshold: number;
  /** Failures in the window. */
  failures: number;
  /** Outcomes in the window. */
  windowSize: number;
  /** E.g. "Error rate 7.2% exceeds threshold 5.0% over last 100 tasks". */
  message: string;
}

/** What {@link ErrorRateMonitor.record} returns. */
export type ErrorRateCheck = InsufficientData | ErrorRateReading;

const INSUFFICIENT: InsufficientData = Object.freeze({ alert: false, reason: 'insufficient_data' });

/**
 * Error rate over the last `windowSize` outcomes. O(1) per outcome.
 *
 * @example
 * const mon = new ErrorRateMonitor({ windowSize: 100, threshold: 0.05 });
 * const check = mon.record(false); // { alert: false, reason: 'insufficient_data' } until 100 outcomes
 * if (check.alert) page(check.message);
 */
export class ErrorRateMonitor {
  /** Outcomes the window holds when full. */
  readonly windowSize: number;
  /** Error ratio above which the monitor alerts. */
  readonly threshold: number;
  private readonly window: OutcomeWindow;

  constructor(config: ErrorRateMonitorConfig = {}) {
    const { windowSize = 100, threshold = 0.05 } = config;
    checkInteger('windowSize', windowSize, 1, 'the number of recent outcomes to judge, e.g. 100');
    checkRatio('threshold', threshold, 'e.g. 0.05 to alert above 5 %');
    this.windowSize = windowSize;
    this.threshold = threshold;
    this.window = new OutcomeWindow({ size: windowSize });
  }

  /** Records one outcome and judges the window. */
  record(success: boolean): ErrorRateCheck {
    this.window.record(0, success ? SUCCESS_INDEX : 0);
    const samples = this.window.samples;
    if (samples < this.windowSize) return INSUFFICIENT;
    const errorRate = this.window.failures / samples;
    return {
      alert: errorRate > this.threshold,
      errorRate,
      threshold: this.threshold,
      failures: this.window.failures,
      windowSize: samples,
      message: errorRateMessage(errorRate, this.threshold, samples),
    };
  }
}
