/**
 * The alert every monitor emits and every sink receives. Alerts are values: monitors return them
 * from `apply(event)`, the runtime logs them as `alert.raised` / `alert.resolved` events, and the
 * {@link createAlertRouter | router} delivers them.
 */
import {
  SYSTEM_WORKFLOW_ID,
  type AlertKind,
  type AlertSeverity,
  type KeelEvent,
  type NewEvent,
} from '../eventlog/events.js';

/** `firing` opens a condition; `resolved` closes the one with the same `id`. */
export type AlertStatus = 'firing' | 'resolved';

/** A condition worth telling a human about. */
export interface Alert {
  /**
   * Stable identity of the condition, e.g. `error_rate:vendor:1042`. A resolve carries the id of
   * the alert it closes (PagerDuty uses it as `dedup_key`).
   */
  id: string;
  kind: AlertKind;
  severity: AlertSeverity;
  /** One line a human can act on: what happened, the number, the threshold. */
  title: string;
  /** Structured details (numbers, task type, primary cause ...). */
  data: unknown;
  /** When the condition was detected, ms since epoch (from the triggering event or the clock). */
  ts: number;
  /** Default `firing`. */
  status?: AlertStatus;
}

/**
 * The event that records an alert in the log: `alert.raised` for a firing alert, `alert.resolved`
 * for a resolve.
 *
 * @param workflowId - defaults to {@link SYSTEM_WORKFLOW_ID}: alerts belong to the runtime.
 * @example
 * await store.append(alerts.map((a) => alertToEvent(a)));
 */
export function alertToEvent(
  alert: Alert,
  workflowId: string = SYSTEM_WORKFLOW_ID,
): NewEvent<'alert.raised' | 'alert.resolved'> {
  const { id, kind, severity, title, data, ts } = alert;
  if (alert.status === 'resolved') {
    return { ts, workflowId, type: 'alert.resolved', payload: { id, kind, title, data } };
  }
  return { ts, workflowId, type: 'alert.raised', payload: { id, kind, severity, title, data } };
}

/**
 * The alert an `alert.raised` / `alert.resolved` event records (`undefined` for other events), so
 * `keel report` can re-route or list alerts from the log alone. A resolve event carries no
 * severity; it comes back as `info`.
 *
 * @example
 * const alerts = store.query({ type: ['alert.raised', 'alert.resolved'] }).map(alertFromEvent);
 */
export function alertFromEvent(event: KeelEvent): Alert | undefined {
  if (event.type === 'alert.raised') {
    const { id, kind, severity, title, data } = event.payload;
    return { id, kind, severity, title, data, ts: event.ts, status: 'firing' };
  }
  if (event.type === 'alert.resolved') {
    const { id, kind, title, data } = event.payload;
    return { id, kind, severity: 'info', title, data, ts: event.ts, status: 'resolved' };
  }
  return undefined;
}

/** True when the alert closes a condition. */
export function isResolved(alert: Alert): boolean {
  return alert.status === 'resolved';
}

/** Shared empty result of `apply(event)`: most events raise nothing, and allocate nothing. */
export const NO_ALERTS: readonly Alert[] = Object.freeze([]);
