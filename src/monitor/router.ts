/**
 * Alert routing: rules match alerts by severity and kind and send them to sinks. Delivery happens
 * in the background — `route()` returns at once and never throws — with a per-attempt timeout and
 * exponential backoff on the injected clock. A delivery that finally fails is reported through
 * `onSinkError` and as a `sink` alert to the other sinks; a failed `sink` alert is only reported,
 * so failures cannot loop.
 */
import type { Clock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import { ALERT_KINDS, ALERT_SEVERITIES, type AlertKind, type AlertSeverity } from '../eventlog/events.js';
import type { Alert } from './alert.js';
import { AlertDeliveryError, SinkTimeoutError } from './errors.js';
import { checkInteger, checkPositive } from '../core/validate.js';
import type { AlertSink, DeliveryRetry } from './sink.js';

/** Which alerts a rule takes. Every given field must match; an empty match takes every alert. */
export interface AlertMatch {
  /** One severity or a list (default: any). */
  severity?: AlertSeverity | readonly AlertSeverity[];
  /** One kind or a list (default: any). */
  kind?: AlertKind | readonly AlertKind[];
}

/** A routing rule: alerts that match go to every sink listed. */
export interface AlertRule {
  /** Default: every alert. */
  match?: AlertMatch;
  sinks: readonly AlertSink[];
}

/** A delivery that was given up. */
export interface SinkFailure {
  /** The sink's name. */
  sink: string;
  alert: Alert;
  /** Attempts made (0 when the delivery was never started). */
  attempts: number;
  error: AlertDeliveryError;
}

/** Configuration of {@link createAlertRouter}. */
export interface AlertRouterConfig {
  /**
   * Rules, checked in order; an alert goes to the sinks of EVERY rule it matches, each sink once.
   * The tutorial's routing: critical → PagerDuty, medium → Slack, low → email.
   */
  rules: readonly AlertRule[];
  /** Time for timeouts and backoff delays (tests pass `simulatedClock()`). */
  clock: Clock;
  /** Per-attempt timeout in ms (default 10_000); a sink's own `timeoutMs` wins. */
  timeoutMs?: number;
  /** Retry policy (default 3 attempts, 1 s then 2 s); a sink's own `retry` wins. */
  retry?: DeliveryRetry;
  /** Called once per delivery given up (default: a process warning `KEEL_ALERT_SINK_FAILED`). */
  onSinkError?: (failure: SinkFailure) => void;
  /** Severity of the `sink` alert raised when a delivery fails (default `high`). */
  sinkFailureSeverity?: AlertSeverity;
  /** Deliveries in flight before new ones are dropped and reported (default 1_000). */
  maxInFlight?: number;
}

/** Routes alerts to sinks without ever blocking the caller. */
export interface AlertRouter {
  /** Starts delivering `alert` to every matching sink and returns immediately. Never throws. */
  route(alert: Alert): void;
  /** Resolves when every delivery started so far (retries included) has finished. */
  drain(): Promise<void>;
  /** Deliveries still running or waiting to retry. */
  readonly inFlight: number;
}

interface ResolvedRetry {
  attempts: number;
  baseDelayMs: number;
  factor: number;
  maxDelayMs: number;
}

/**
 * Creates an alert router.
 *
 * @example
 * const router = createAlertRouter({
 *   clock,
 *   rules: [
 *     { match: { severity: 'critical' }, sinks: [pagerDutySink({ routingKey: 'R0UT1NGKEY' })] },
 *     { match: { severity: ['high', 'medium'] }, sinks: [slackSink({ webhookUrl: 'https://hooks.slack.com/services/T0/B0/X' })] },
 *     { match: { severity: 'low' }, sinks: [functionSink('email', (alert) => mailer.send(alert.title))] },
 *     { sinks: [jsonLinesSink({ path: 'alerts.jsonl' })] },
 *   ],
 * });
 * rt.on('alert', (alert) => router.route(alert));
 */
export function createAlertRouter(config: AlertRouterConfig): AlertRouter {
  const { rules, clock, timeoutMs = 10_000, maxInFlight = 1_000, sinkFailureSeverity = 'high' } = config;
  checkAlertRouting(config);
  const defaultRetry = resolveRetry(config.retry ?? {}, 'retry');
  const onSinkError =
    config.onSinkError ??
    ((failure: SinkFailure) =>
      process.emitWarning(failure.error.message, { code: 'KEEL_ALERT_SINK_FAILED' }));

  const pending = new Set<Promise<void>>();

  const sleep = (ms: number): Promise<void> => new Promise((resolve) => clock.setTimeout(resolve, ms));

  const attemptOnce = (sink: AlertSink, alert: Alert, attempt: number, limitMs: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const controller = new AbortController();
      const timer = clock.setTimeout(() => {
        const error = new SinkTimeoutError(sink.name, limitMs);
        controller.abort(error);
        reject(error);
      }, limitMs);
      Promise.resolve()
        .then(() => sink.deliver(alert, { signal: controller.signal, attempt }))
        .then(
          () => {
            clock.clearTimeout(timer);
            resolve();
          },
          (error: unknown) => {
            clock.clearTimeout(timer);
            reject(error instanceof Error ? error : new Error(String(error)));
          },
        );
    });

  const deliver = async (sink: AlertSink, alert: Alert): Promise<void> => {
    const retry = sink.retry === undefined ? defaultRetry : resolveRetry(sink.retry, 'retry');
    const limitMs = sink.timeoutMs ?? timeoutMs;
    let delayMs = retry.baseDelayMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await attemptOnce(sink, alert, attempt, limitMs);
        return;
      } catch (error) {
        if (attempt >= retry.attempts || !isRetryable(error)) {
          throw new AlertDeliveryError(sink.name, alert.id, attempt, 'failed', { cause: error });
        }
      }
      await sleep(delayMs);
      delayMs = Math.min(retry.maxDelayMs, delayMs * retry.factor);
    }
  };

  const report = (sink: AlertSink, alert: Alert, error: AlertDeliveryError): void => {
    try {
      onSinkError({ sink: sink.name, alert, attempts: error.attempts, error });
    } catch {
      // A throwing error handler must not take the process down; the failure is already data.
    }
    if (alert.kind === 'sink') return; // never report the failure of a failure report
    const sinkAlert: Alert = {
      id: `sink:${sink.name}:${alert.id}`,
      kind: 'sink',
      severity: sinkFailureSeverity,
      title: `Alert sink "${sink.name}" failed to deliver "${alert.title}": ${error.message}`,
      data: { sink: sink.name, alertId: alert.id, attempts: error.attempts, reason: error.reason },
      ts: clock.now(),
      status: 'firing',
    };
    dispatch(sinkAlert, sink);
  };

  const start = (sink: AlertSink, alert: Alert): void => {
    if (pending.size >= maxInFlight) {
      report(sink, alert, new AlertDeliveryError(sink.name, alert.id, 0, 'queue_full'));
      return;
    }
    const run: Promise<void> = Promise.resolve()
      .then(() => deliver(sink, alert))
      .catch((error: unknown) => {
        report(
          sink,
          alert,
          error instanceof AlertDeliveryError
            ? error
            : new AlertDeliveryError(sink.name, alert.id, 0, 'failed', { cause: error }),
        );
      })
      .then(() => {
        pending.delete(run);
      });
    pending.add(run);
  };

  const dispatch = (alert: Alert, exclude?: AlertSink): void => {
    const seen = new Set<AlertSink>();
    for (const rule of rules) {
      if (!matches(rule.match, alert)) continue;
      for (const sink of rule.sinks) {
        if (sink === exclude || seen.has(sink)) continue;
        seen.add(sink);
        start(sink, alert);
      }
    }
  };

  return {
    route(alert) {
      try {
        dispatch(alert);
      } catch {
        // route() is called from the workflow path: it must never throw.
      }
    },
    async drain() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
    get inFlight() {
      return pending.size;
    },
  };
}

function matches(match: AlertMatch | undefined, alert: Alert): boolean {
  if (match === undefined) return true;
  return oneOf(match.severity, alert.severity) && oneOf(match.kind, alert.kind);
}

function oneOf<T extends string>(wanted: T | readonly T[] | undefined, value: T): boolean {
  if (wanted === undefined) return true;
  return typeof wanted === 'string' ? wanted === value : wanted.includes(value);
}

function isRetryable(error: unknown): boolean {
  return !(
    typeof error === 'object' &&
    error !== null &&
    (error as { retryable?: unknown }).retryable === false
  );
}

/**
 * Checks the rules and delivery options of a router config, naming fields under `at` (the runtime
 * passes `alerts.`, so an error names `alerts.rules[0].sinks` as its user wrote it). Internal.
 */
export function checkAlertRouting(
  config: Pick<AlertRouterConfig, 'rules' | 'timeoutMs' | 'retry' | 'maxInFlight' | 'onSinkError'>,
  at = '',
): void {
  const rules: unknown = config.rules;
  if (!Array.isArray(rules)) {
    throw new ConfigError(`${at}rules`, 'must be an array of { match, sinks } rules.');
  }
  rules.forEach((rule: unknown, i) => {
    checkMatch((rule as Partial<AlertRule> | null)?.match, `${at}rules[${i}].match`);
    const sinks: unknown = (rule as Partial<AlertRule> | null)?.sinks;
    if (!Array.isArray(sinks)) {
      throw new ConfigError(`${at}rules[${i}].sinks`, 'must be an array of sinks, e.g. [consoleSink()].');
    }
    sinks.forEach((sink: Partial<AlertSink> | null, j) => {
      const field = `${at}rules[${i}].sinks[${j}]`;
      if (typeof sink?.deliver !== 'function' || typeof sink.name !== 'string') {
        throw new ConfigError(
          field,
          'must be a sink ({ name, deliver }); build one with webhookSink(), slackSink(), functionSink() ...',
        );
      }
      if (sink.timeoutMs !== undefined) checkPositive(`${field}.timeoutMs`, sink.timeoutMs, 'ms');
      if (sink.retry !== undefined) resolveRetry(sink.retry, `${field}.retry`);
    });
  });
  const { timeoutMs = 10_000, maxInFlight = 1_000 } = config;
  checkPositive(`${at}timeoutMs`, timeoutMs, 'the per-attempt timeout in ms, e.g. 10_000');
  checkInteger(`${at}maxInFlight`, maxInFlight, 1, 'deliveries allowed in flight, e.g. 1_000');
  if (config.retry !== undefined) resolveRetry(config.retry, `${at}retry`);
  if (config.onSinkError !== undefined && typeof config.onSinkError !== 'function') {
    throw new ConfigError(
      `${at}onSinkError`,
      'must be a function called with each delivery given up, e.g. (failure) => log.warn(failure.error.message).',
    );
  }
}

/** A rule's `match`: known fields with known values, so a typo cannot silently match nothing. */
function checkMatch(match: unknown, field: string): void {
  if (match === undefined) return;
  if (typeof match !== 'object' || match === null || Array.isArray(match)) {
    throw new ConfigError(
      field,
      "must be an object like { severity: 'critical' } or { kind: ['sla', 'budget'] }.",
    );
  }
  for (const key of Object.keys(match)) {
    if (key !== 'severity' && key !== 'kind') {
      throw new ConfigError(`${field}.${key}`, 'is not a match field: use severity and/or kind.');
    }
  }
  const check = (key: 'severity' | 'kind', allowed: readonly string[]): void => {
    const value: unknown = (match as Record<string, unknown>)[key];
    if (value === undefined) return;
    const values: unknown[] = Array.isArray(value) ? (value as unknown[]) : [value];
    values.forEach((v, i) => {
      if (typeof v !== 'string' || !allowed.includes(v)) {
        throw new ConfigError(
          Array.isArray(value) ? `${field}.${key}[${i}]` : `${field}.${key}`,
          `must be one of ${allowed.join(', ')}, got ${JSON.stringify(v) ?? typeof v}.`,
        );
      }
    });
  };
  check('severity', ALERT_SEVERITIES);
  check('kind', ALERT_KINDS);
}

function resolveRetry(retry: DeliveryRetry, field: string): ResolvedRetry {
  const { attempts = 3, baseDelayMs = 1_000, factor = 2, maxDelayMs = 30_000 } = retry;
  checkInteger(`${field}.attempts`, attempts, 1, 'total attempts including the first, e.g. 3');
  if (!(baseDelayMs >= 0))
    throw new ConfigError(`${field}.baseDelayMs`, `must be >= 0 ms, got ${baseDelayMs}.`);
  if (!(factor >= 1))
    throw new ConfigError(`${field}.factor`, `must be >= 1 (2 doubles each delay), got ${factor}.`);
  if (!(maxDelayMs >= 0)) throw new ConfigError(`${field}.maxDelayMs`, `must be >= 0 ms, got ${maxDelayMs}.`);
  return { attempts, baseDelayMs, factor, maxDelayMs };
}
