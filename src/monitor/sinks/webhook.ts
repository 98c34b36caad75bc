/** A sink that POSTs each alert as JSON; the base of the PagerDuty and Slack sinks. */
import type { Alert } from '../alert.js';
import { WebhookStatusError } from '../errors.js';
import { checkUrl } from '../../core/validate.js';
import type { AlertSink, DeliveryRetry } from '../sink.js';

/** Options of {@link webhookSink}. */
export interface WebhookSinkOptions {
  /** Endpoint receiving `POST` requests with a JSON body. */
  url: string;
  /** Sink name (default `webhook`). */
  name?: string;
  /** Extra request headers (e.g. `authorization`). */
  headers?: Readonly<Record<string, string>>;
  /** The JSON body for an alert (default: the alert itself). */
  body?: (alert: Alert) => unknown;
  /** Per-attempt timeout in ms (default: the router's, 10_000). */
  timeoutMs?: number;
  /** Retry policy (default: the router's: 3 attempts, 1 s then 2 s). */
  retry?: DeliveryRetry;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

/**
 * POSTs alerts as JSON. A 2xx answer is delivered; 5xx, 408 and 429 are retried by the router;
 * other statuses fail at once ({@link WebhookStatusError}). The attempt's signal aborts the request
 * on timeout.
 *
 * @example
 * const hook = webhookSink({ url: 'https://ops.example.com/hooks/keel', timeoutMs: 5_000 });
 */
export function webhookSink(options: WebhookSinkOptions): AlertSink {
  const { url, name = 'webhook', headers = {}, body = (alert: Alert) => alert, timeoutMs, retry } = options;
  checkUrl('url', url);
  const doFetch = options.fetch ?? fetch;
  return {
    name,
    timeoutMs,
    retry,
    async deliver(alert, { signal }) {
      const res = await doFetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body(alert)),
        signal,
      });
      // Read the body so the connection is released back to the pool.
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) throw new WebhookStatusError(name, res.status);
    },
  };
}
