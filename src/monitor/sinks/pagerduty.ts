/**
 * PagerDuty Events API v2: the payload formatter and a sink that posts it. A firing alert becomes a
 * `trigger`, a resolved one a `resolve` with the same `dedup_key` (the alert id), so PagerDuty
 * opens one incident per breach and closes it on recovery.
 */
import { ConfigError } from '../../core/errors.js';
import type { AlertSeverity } from '../../eventlog/events.js';
import type { Alert } from '../alert.js';
import { checkUrl } from '../../core/validate.js';
import type { AlertSink, DeliveryRetry } from '../sink.js';
import { webhookSink } from './webhook.js';

/** PagerDuty's severities. */
export type PagerDutySeverity = 'critical' | 'error' | 'warning' | 'info';

/** A PagerDuty Events API v2 alert event (`POST /v2/enqueue`). */
export type PagerDutyEvent =
  | {
      routing_key: string;
      event_action: 'trigger';
      /** The Keel alert id (at most 255 characters). */
      dedup_key: string;
      payload: {
        /** At most 1024 characters. */
        summary: string;
        source: string;
        severity: PagerDutySeverity;
        /** ISO 8601. */
        timestamp: string;
        component?: string;
        group?: string;
        class: string;
        custom_details: { id: string; kind: string; severity: AlertSeverity; data: unknown };
      };
    }
  | { routing_key: string; event_action: 'resolve'; dedup_key: string };

/** Options of {@link pagerDutyEvent}. */
export interface PagerDutyOptions {
  /** The integration key of the PagerDuty service (Events API v2). */
  routingKey: string;
  /** `payload.source`: the affected system (default `keel`). */
  source?: string;
  /** `payload.component`, e.g. `invoice-pipeline`. */
  component?: string;
  /** `payload.group`, e.g. `prod`. */
  group?: string;
}

const SEVERITY: { readonly [K in AlertSeverity]: PagerDutySeverity } = {
  critical: 'critical',
  high: 'error',
  medium: 'warning',
  low: 'info',
  info: 'info',
};

/**
 * The PagerDuty Events API v2 body for an alert.
 *
 * @example
 * pagerDutyEvent(alert, { routingKey: 'R0UT1NGKEY' });
 * // { routing_key, event_action: 'trigger', dedup_key: alert.id, payload: { summary, source: 'keel', severity: 'critical', ... } }
 */
export function pagerDutyEvent(alert: Alert, options: PagerDutyOptions): PagerDutyEvent {
  const dedup_key = alert.id.slice(0, 255);
  if (alert.status === 'resolved') {
    return { routing_key: options.routingKey, event_action: 'resolve', dedup_key };
  }
  return {
    routing_key: options.routingKey,
    event_action: 'trigger',
    dedup_key,
    payload: {
      summary: alert.title.slice(0, 1024),
      source: options.source ?? 'keel',
      severity: SEVERITY[alert.severity],
      timestamp: new Date(alert.ts).toISOString(),
      ...(options.component === undefined ? {} : { component: options.component }),
      ...(options.group === undefined ? {} : { group: options.group }),
      class: alert.kind,
      custom_details: { id: alert.id, kind: alert.kind, severity: alert.severity, data: alert.data },
    },
  };
}

/** Options of {@link pagerDutySink}. */
export interface PagerDutySinkOptions extends PagerDutyOptions {
  /** Events endpoint (default `https://events.pagerduty.com/v2/enqueue`). */
  url?: string;
  /** Sink name (default `pagerduty`). */
  name?: string;
  /** Per-attempt timeout in ms (default: the router's). */
  timeoutMs?: number;
  /** Retry policy (default: the router's). */
  retry?: DeliveryRetry;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

/**
 * Sends alerts to PagerDuty (the seed's route for `critical`).
 *
 * @example
 * const pager = pagerDutySink({ routingKey: 'R0UT1NGKEY', component: 'invoice-pipeline' });
 */
export function pagerDutySink(options: PagerDutySinkOptions): AlertSink {
  if (typeof options.routingKey !== 'string' || options.routingKey === '') {
    throw new ConfigError(
      'routingKey',
      'must be the Events API v2 integration key of your PagerDuty service.',
    );
  }
  const { url = 'https://events.pagerduty.com/v2/enqueue', name = 'pagerduty', timeoutMs, retry } = options;
  checkUrl('url', url);
  return webhookSink({
    url,
    name,
    timeoutMs,
    retry,
    fetch: options.fetch,
    body: (alert) => pagerDutyEvent(alert, options),
  });
}
