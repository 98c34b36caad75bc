/**
 * The ONE alert fold: every alert Keel raises is derived here from committed events, so the live
 * runtime and `keel report` list the same alerts for the same log.
 *
 * - error rate and error budget: the error-rate projection's verdicts on agent outcomes;
 * - SLA: the latency projection's verdicts on workflow latencies;
 * - budget thresholds: `budget.alert`; breakers: `breaker.transitioned` (opened fires, closed
 *   resolves); canaries: `canary.rolled_back` — one entry each in {@link EVENT_ALERTS}.
 *
 * The runtime appends what the fold derives as `alert.raised` / `alert.resolved` events, and
 * delivery (sinks, `rt.on('alert')`) follows those committed events through an {@link AlertLedger},
 * never the fold: a startup restore can fold old events into the state without delivering again.
 */
import type { KeelEvent, KeelEventType } from '../eventlog/events.js';
import { NO_ALERTS, type Alert } from './alert.js';
import type { ErrorRateProjection } from './error-rate-projection.js';
import type { LatencyProjection } from './latency-projection.js';

/** Derives at most one alert from one event of type `T`. */
export type EventAlert<T extends KeelEventType> = (event: KeelEvent<T>) => Alert | undefined;

/**
 * The alerts read straight off one event type. To alert on one more event type, add one entry
 * here (e.g. `'budget.overrun': (e) => ({ id: …, kind: 'budget', … })`): the live runtime and
 * `keel report` both pick it up.
 */
export const EVENT_ALERTS: { readonly [T in KeelEventType]?: EventAlert<T> } = Object.freeze({
  'budget.alert': (e: KeelEvent<'budget.alert'>): Alert => {
    const p = e.payload;
    const pct = Math.round((p.spentUsd / p.limitUsd) * 100);
    const exhausted = p.threshold >= 1;
    return {
      id: `budget:${p.scope}:${p.threshold}:${p.day}`,
      kind: 'budget',
      severity: exhausted ? 'critical' : 'high',
      title: `Budget ${p.scope}: $${p.spentUsd.toFixed(2)} of $${p.limitUsd.toFixed(2)} (${pct}%) on ${p.day}${exhausted ? ' — exhausted' : ''}`,
      data: p,
      ts: e.ts,
      status: 'firing',
    };
  },
  'breaker.transitioned': (e: KeelEvent<'breaker.transitioned'>): Alert | undefined => {
    const t = e.payload;
    if (t.to === 'open' && t.from === 'closed') {
      return {
        id: `breaker:${t.breaker}`,
        kind: 'breaker',
        severity: 'high',
        title: `Circuit breaker ${t.breaker} opened (${t.reason}, ${t.failures} failures): calls fast-fail until a probe succeeds`,
        data: { breaker: t.breaker, reason: t.reason, failures: t.failures },
        ts: e.ts,
        status: 'firing',
      };
    }
    if (t.to === 'closed') {
      return {
        id: `breaker:${t.breaker}`,
        kind: 'breaker',
        severity: 'info',
        title: `Circuit breaker ${t.breaker} closed again (${t.reason})`,
        data: { breaker: t.breaker, reason: t.reason },
        ts: e.ts,
        status: 'resolved',
      };
    }
    return undefined;
  },
  'canary.rolled_back': (e: KeelEvent<'canary.rolled_back'>): Alert => ({
    id: `canary:${e.payload.canary}:${e.seq}`,
    kind: 'canary',
    severity: 'high',
    title: `Canary ${e.payload.canary} rolled back: ${e.payload.reason}`,
    data: e.payload,
    ts: e.ts,
    status: 'firing',
  }),
});

/** The folds whose verdicts are alerts. */
export interface AlertFoldConfig {
  /** Error-rate windows and weekly error budgets (the caller reads its snapshots too). */
  errorRates: ErrorRateProjection;
  /** Latency SLA windows (the caller reads its snapshots too). */
  latency: LatencyProjection;
}

/** Committed events in, alerts out. */
export interface AlertFold {
  /**
   * Folds one committed event and returns the alerts it raises or resolves (usually none: a
   * shared empty array, nothing allocated).
   */
  apply(event: KeelEvent): readonly Alert[];
}

/**
 * Creates the alert fold over the given projections. Feed it every committed event in log order;
 * it also feeds them to the projections, so don't apply events to those yourself.
 *
 * @example
 * const errorRates = createErrorRateProjection({ targets: DEFAULT_ERROR_TARGETS });
 * const latency = createLatencyProjection({ slaP95Ms: 10_000 });
 * const alerts = createAlertFold({ errorRates, latency });
 * for (const e of store.iterate()) for (const a of alerts.apply(e)) console.log(a.title);
 */
export function createAlertFold(config: AlertFoldConfig): AlertFold {
  const { errorRates, latency } = config;
  return {
    apply(event) {
      const rate = errorRates.apply(event);
      const sla = latency.apply(event);
      const derive = EVENT_ALERTS[event.type] as EventAlert<KeelEventType> | undefined;
      const own = derive === undefined ? undefined : derive(event);
      if (own === undefined && sla.length === 0) return rate;
      if (own === undefined && rate.length === 0) return sla;
      const out: Alert[] = [...rate, ...sla];
      if (own !== undefined) out.push(own);
      return out.length === 0 ? NO_ALERTS : out;
    },
  };
}

/** Most open alerts whose severity a ledger remembers (the oldest is forgotten first). */
const MAX_REMEMBERED = 10_000;

/**
 * Reads the alerts the log records (`alert.raised` / `alert.resolved`) for delivery and listing.
 * A resolve event carries no severity; the ledger gives it the severity of the alert it closes
 * (when it saw that alert raised), so a rule matching `critical` also delivers its resolve.
 */
export interface AlertLedger {
  /** The alert an `alert.*` event records, or `undefined` for any other event. */
  read(event: KeelEvent): Alert | undefined;
}

/**
 * Creates an alert ledger.
 *
 * @example
 * const ledger = createAlertLedger();
 * store.onCommit((batch) => batch.forEach((e) => { const a = ledger.read(e); if (a) router.route(a); }));
 */
export function createAlertLedger(): AlertLedger {
  const severities = new Map<string, Alert['severity']>();
  return {
    read(event) {
      if (event.type === 'alert.raised') {
        const { id, kind, severity, title, data } = event.payload;
        if (severities.size >= MAX_REMEMBERED && !severities.has(id)) {
          const oldest = severities.keys().next();
          if (!oldest.done) severities.delete(oldest.value);
        }
        severities.set(id, severity);
        return { id, kind, severity, title, data, ts: event.ts, status: 'firing' };
      }
      if (event.type === 'alert.resolved') {
        const { id, kind, title, data } = event.payload;
        const severity = severities.get(id) ?? 'info';
        severities.delete(id);
        return { id, kind, severity, title, data, ts: event.ts, status: 'resolved' };
      }
      return undefined;
    },
  };
}
