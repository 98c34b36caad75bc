/** A sink from any function: email, a queue, a test spy. */
import type { Alert } from '../alert.js';
import type { AlertSink, DeliveryRetry, SinkContext } from '../sink.js';

/** Options of {@link functionSink}. */
export interface FunctionSinkOptions {
  /** Per-attempt timeout in ms (default: the router's). */
  timeoutMs?: number;
  /** Retry policy (default: the router's). */
  retry?: DeliveryRetry;
}

/**
 * Wraps a function as a sink. The seed's "low → email" route is one of these.
 *
 * @param name - used in failure reports, e.g. `email`.
 * @param deliver - delivers one alert; throw or reject to fail the attempt.
 * @example
 * const email = functionSink('email', (alert) => mailer.send({ to: 'ops@example.com', subject: alert.title }));
 */
export function functionSink(
  name: string,
  deliver: (alert: Alert, context: SinkContext) => Promise<void> | void,
  options: FunctionSinkOptions = {},
): AlertSink {
  return { name, deliver, ...options };
}
