/**
 * Where alerts go. A sink delivers one alert per call; the {@link createAlertRouter | router} owns
 * timeouts, retries and failure reporting, so a sink is a plain async function with a name.
 */
import type { Alert } from './alert.js';

/** Handed to each delivery attempt. */
export interface SinkContext {
  /** Aborted when the attempt times out (or the router closes): pass it to `fetch` and friends. */
  signal: AbortSignal;
  /** 1-based attempt number. */
  attempt: number;
}

/** Retry policy of a delivery: exponential backoff on the router's clock. */
export interface DeliveryRetry {
  /** Total attempts including the first (default 3). */
  attempts?: number;
  /** Delay before the second attempt in ms (default 1_000); each later delay is `factor` times the last. */
  baseDelayMs?: number;
  /** Growth of the delay between attempts (default 2). */
  factor?: number;
  /** Cap on any one delay in ms (default 30_000). */
  maxDelayMs?: number;
}

/** A destination for alerts: console, a file, a webhook, PagerDuty, Slack, email ... */
export interface AlertSink {
  /** Name used in failure reports and `sink` alerts, e.g. `pagerduty`. */
  readonly name: string;
  /**
   * Delivers one alert. Resolve when delivered; throw (or reject) to fail the attempt. An error with
   * `retryable: false` is not retried.
   */
  deliver(alert: Alert, context: SinkContext): Promise<void> | void;
  /** Per-attempt timeout in ms for this sink (default: the router's `timeoutMs`). */
  readonly timeoutMs?: number;
  /** Retry policy for this sink (default: the router's `retry`). */
  readonly retry?: DeliveryRetry;
}
