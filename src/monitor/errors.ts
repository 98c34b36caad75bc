/**
 * Named errors of alert delivery. A sink failure never reaches the workflow: the router reports it
 * through `onSinkError` and a `sink` alert.
 */
import { KeelError, isKeelError } from '../core/errors.js';

/** One delivery attempt took longer than the sink's `timeoutMs` and was aborted. */
export class SinkTimeoutError extends KeelError {
  /** Timeouts are worth retrying. */
  readonly retryable = true;
  constructor(
    readonly sink: string,
    readonly timeoutMs: number,
  ) {
    super(
      'ALERT_SINK_TIMEOUT',
      `Alert sink "${sink}" did not answer within ${timeoutMs} ms; the attempt was aborted. Check that the endpoint is reachable, or raise the sink's timeoutMs.`,
    );
  }
}

/** True when `e` is a {@link SinkTimeoutError}. */
export function isSinkTimeoutError(e: unknown): e is SinkTimeoutError {
  return isKeelError(e) && (e as { code?: unknown }).code === 'ALERT_SINK_TIMEOUT';
}

/** A webhook answered with a non-2xx status. 5xx, 408 and 429 are retried; other 4xx are not. */
export class WebhookStatusError extends KeelError {
  /** Whether another attempt may succeed. */
  readonly retryable: boolean;
  constructor(
    readonly sink: string,
    readonly status: number,
  ) {
    const retryable = status >= 500 || status === 408 || status === 429;
    super(
      'ALERT_WEBHOOK_STATUS',
      retryable
        ? `Alert sink "${sink}" answered HTTP ${status}; the delivery will be retried.`
        : `Alert sink "${sink}" answered HTTP ${status}; the request was refused, so it is not retried. Check the URL and the routing key or token.`,
    );
    this.retryable = retryable;
  }
}

/** True when `e` is a {@link WebhookStatusError}. */
export function isWebhookStatusError(e: unknown): e is WebhookStatusError {
  return isKeelError(e) && (e as { code?: unknown }).code === 'ALERT_WEBHOOK_STATUS';
}

/** Why a delivery was given up. */
export type DeliveryFailureReason = 'failed' | 'queue_full';

/** An alert could not be delivered to a sink after all its attempts (or was never queued). */
export class AlertDeliveryError extends KeelError {
  constructor(
    readonly sink: string,
    readonly alertId: string,
    readonly attempts: number,
    readonly reason: DeliveryFailureReason,
    options?: { cause?: unknown },
  ) {
    const why =
      reason === 'queue_full'
        ? 'too many deliveries are in flight (maxInFlight); the alert was dropped. Fix or remove the slow sink, or raise maxInFlight.'
        : `gave up after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${describe(options?.cause)}. The alert is still in the event log; fix the sink and re-route it from there.`;
    super('ALERT_DELIVERY_FAILED', `Alert "${alertId}" to sink "${sink}": ${why}`, options);
  }
}

/** True when `e` is an {@link AlertDeliveryError}. */
export function isAlertDeliveryError(e: unknown): e is AlertDeliveryError {
  return isKeelError(e) && (e as { code?: unknown }).code === 'ALERT_DELIVERY_FAILED';
}

function describe(cause: unknown): string {
  if (cause instanceof Error) return cause.message;
  return String(cause);
}
