/**
 * Latency as a fold over the event stream: HDR histograms (P50/P90/P95/P99/max) per agent and per
 * workflow name, SLA compliance (share of requests within the P95 target), and a rolling-time
 * window SLA monitor that raises ONE alert when the window's P95 passes the target (the tutorial's
 * 10 s) and ONE resolve when it recovers. With `ttftP95Ms`, streaming agents' time to first token
 * (`agent.first_token`) is a series of its own per agent (scope `ttft`), judged against that target
 * by the same window rules.
 */
import { build, type Histogram } from 'hdr-histogram-js';
import { ConfigError } from '../core/errors.js';
import type { AlertSeverity, KeelEvent } from '../eventlog/events.js';
import { NO_ALERTS, type Alert } from './alert.js';
import { formatDuration, formatMs, grouped } from '../core/format.js';
import { SampleRing, exactPercentile, nearestRankIndex } from './internal/ring.js';
import { checkInteger, checkPositive, checkRatio } from '../core/validate.js';

/**
 * What a latency series measures: an agent's call latency, a workflow's end-to-end latency, or a
 * streaming agent's time to first token (`ttft`, only with `ttftP95Ms`).
 */
export type LatencyScope = 'agent' | 'workflow' | 'ttft';

/** Configuration of {@link createLatencyProjection}. */
export interface LatencyProjectionConfig {
  /** The SLA: P95 latency must stay at or under this many ms (default 10_000, the tutorial's). */
  slaP95Ms?: number;
  /** Rolling window of the SLA monitor in ms, by event timestamps (default 3_600_000, one hour). */
  windowMs?: number;
  /** Samples the window must hold before it is judged (default 20): one slow call is not a breach. */
  minSamples?: number;
  /**
   * An open SLA alert resolves when the window's P95 is at or under `slaP95Ms × resolveRatio`
   * (default 0.9), so a P95 hovering at the target does not flap.
   */
  resolveRatio?: number;
  /**
   * A second SLA, on streaming agents' time to first token: P95 of `agent.first_token`'s `ttftMs`
   * per agent must stay at or under this many ms. Unset (default): TTFT is not judged (nor kept here;
   * the report and the `llm_time_to_first_token_seconds` histogram still show it).
   */
  ttftP95Ms?: number;
  /** Which series the SLA monitor watches (default `workflow`; stats are kept for both). */
  monitor?: LatencyScope | 'both';
  /** Severity of SLA alerts (default `high`). */
  severity?: AlertSeverity;
  /** HDR precision in significant decimal digits, 1–5 (default 3: values within 0.1 %). */
  significantDigits?: 1 | 2 | 3 | 4 | 5;
}

/** Latency statistics of one agent or workflow name. */
export interface LatencyStats {
  scope: LatencyScope;
  name: string;
  /** Samples since the projection started. */
  count: number;
  /** Percentiles from the HDR histogram (within its precision), ms. */
  p50Ms: number;
  p90Ms: number;
  p95Ms: number;
  p99Ms: number;
  /** Exact maximum, ms. */
  maxMs: number;
  meanMs: number;
  /** Share of samples at or under `slaP95Ms`, in [0, 1]. */
  slaCompliance: number;
  /** The rolling window of the SLA monitor. */
  window: {
    /** Samples in the window. */
    samples: number;
    /** Exact nearest-rank P95 of the window (`undefined` when empty), ms. */
    p95Ms: number | undefined;
    /** Whether an SLA alert is open for this series. */
    alerting: boolean;
  };
}

/** Every series, as of a moment. */
export interface LatencySnapshot {
  slaP95Ms: number;
  /** Workflows started and not yet finished (the only per-id state the projection keeps). */
  openWorkflows: number;
  agents: LatencyStats[];
  workflows: LatencyStats[];
  /** TTFT series per streaming agent (empty without `ttftP95Ms`). */
  ttft: LatencyStats[];
  /** The TTFT target, ms (absent without `ttftP95Ms`). */
  ttftP95Ms?: number;
}

/** A fold from events to latency statistics and SLA alerts. */
export interface LatencyProjection {
  /**
   * Folds one event; returns the SLA alerts it raised or resolved (usually none). Reads
   * `agent.succeeded` / `agent.failed` (per agent; a `cancelled` failure is no latency sample, as
   * the call was cut short) and `workflow.started` / `workflow.completed` / `workflow.failed` /
   * `workflow.cancelled` / `workflow.interrupted` (per workflow name; per-id state is dropped at the
   * end; cancelled and interrupted workflows are no latency sample).
   */
  apply(event: KeelEvent): readonly Alert[];
  /** Statistics of one series (`undefined` when it has no samples). */
  stats(scope: LatencyScope, name: string, nowMs?: number): LatencyStats | undefined;
  /** Statistics of every series; windows are aged to `nowMs` (default: the last event's ts). */
  snapshot(nowMs?: number): LatencySnapshot;
}

interface Series {
  scope: LatencyScope;
  name: string;
  histogram: Histogram;
  maxMs: number;
  /** This series' target and resolve level, ms. */
  target: number;
  resolveAt: number;
  withinSla: number;
  window: SampleRing;
  overTarget: number;
  overResolve: number;
  monitored: boolean;
  openAlertId: string | undefined;
}

/**
 * Creates the latency fold.
 *
 * @example
 * const latency = createLatencyProjection({ slaP95Ms: 10_000, windowMs: 3_600_000 });
 * for (const e of store.iterate()) latency.apply(e);
 * latency.stats('workflow', 'invoice')?.p95Ms;
 */
export function createLatencyProjection(config: LatencyProjectionConfig = {}): LatencyProjection {
  const {
    slaP95Ms = 10_000,
    windowMs = 3_600_000,
    minSamples = 20,
    resolveRatio = 0.9,
    monitor = 'workflow',
    severity = 'high',
    significantDigits = 3,
    ttftP95Ms,
  } = config;
  checkPositive('slaP95Ms', slaP95Ms, 'the P95 latency target in ms, e.g. 10_000');
  checkPositive('windowMs', windowMs, 'the SLA window in ms, e.g. 3_600_000');
  if (ttftP95Ms !== undefined)
    checkPositive('ttftP95Ms', ttftP95Ms, 'the P95 time-to-first-token target in ms, e.g. 2_000');
  checkInteger('minSamples', minSamples, 1, 'samples needed before judging, e.g. 20');
  checkRatio('resolveRatio', resolveRatio, 'e.g. 0.9 to resolve at 90 % of the target');
  checkInteger('significantDigits', significantDigits, 1, 'HDR precision, 1 to 5');
  if (significantDigits > 5)
    throw new ConfigError('significantDigits', `must be 1 to 5, got ${significantDigits}.`);
  if (!['agent', 'workflow', 'both'].includes(monitor)) {
    throw new ConfigError('monitor', `must be 'workflow', 'agent' or 'both', got ${String(monitor)}.`);
  }

  const agents = new Map<string, Series>();
  const workflows = new Map<string, Series>();
  const ttfts = new Map<string, Series>();
  const mapOf = (scope: LatencyScope): Map<string, Series> =>
    scope === 'agent' ? agents : scope === 'workflow' ? workflows : ttfts;
  const workflowNames = new Map<string, string>();
  let lastTs = 0;

  const seriesOf = (scope: LatencyScope, name: string): Series => {
    const map = mapOf(scope);
    let s = map.get(name);
    if (s === undefined) {
      const target = scope === 'ttft' ? (ttftP95Ms ?? slaP95Ms) : slaP95Ms;
      s = {
        scope,
        name,
        histogram: build({
          bitBucketSize: 32,
          autoResize: true,
          lowestDiscernibleValue: 1,
          highestTrackableValue: 3_600_000,
          numberOfSignificantValueDigits: significantDigits,
          useWebAssembly: false,
        }),
        maxMs: 0,
        target,
        resolveAt: target * resolveRatio,
        withinSla: 0,
        window: new SampleRing(),
        overTarget: 0,
        overResolve: 0,
        monitored: scope === 'ttft' || monitor === 'both' || monitor === scope,
        openAlertId: undefined,
      };
      map.set(name, s);
    }
    return s;
  };

  const expire = (s: Series, nowMs: number): void => {
    const cutoff = nowMs - windowMs;
    while (s.window.size > 0 && s.window.oldestTs() <= cutoff) {
      const v = s.window.oldestValue();
      s.window.shift();
      if (v > s.target) s.overTarget--;
      if (v > s.resolveAt) s.overResolve--;
    }
  };

  /** P95 of the window exceeds `level`, given how many samples exceed it: O(1). */
  const p95Above = (samples: number, over: number): boolean =>
    samples - over < nearestRankIndex(95, samples) + 1;

  const windowData = (s: Series) => {
    const n = s.window.size;
    return {
      scope: s.scope,
      name: s.name,
      p95Ms: exactPercentile(s.window.valuesCopy(), 95),
      slaP95Ms: s.target,
      samples: n,
      slower: s.overTarget,
      windowMs,
      compliance: n === 0 ? 1 : 1 - s.overTarget / n,
    };
  };

  const record = (
    scope: LatencyScope,
    name: string,
    latencyMs: number,
    event: KeelEvent,
  ): Alert | undefined => {
    if (!(latencyMs >= 0) || !Number.isFinite(latencyMs)) return undefined;
    const s = seriesOf(scope, name);
    s.histogram.recordValue(Math.round(latencyMs));
    if (latencyMs > s.maxMs) s.maxMs = latencyMs;
    if (latencyMs <= s.target) s.withinSla++;
    expire(s, event.ts);
    s.window.push(event.ts, latencyMs);
    if (latencyMs > s.target) s.overTarget++;
    if (latencyMs > s.resolveAt) s.overResolve++;
    if (!s.monitored) return undefined;
    const n = s.window.size;
    if (n < minSamples) return undefined;
    const what = scope === 'ttft' ? 'P95 time to first token' : 'P95 latency';
    if (s.openAlertId === undefined && p95Above(n, s.overTarget)) {
      s.openAlertId = `sla:${scope}:${name}:${event.seq}`;
      const data = windowData(s);
      return {
        id: s.openAlertId,
        kind: 'sla',
        severity,
        title: `${name}: ${what} ${formatMs(data.p95Ms ?? 0)} exceeds SLA ${formatMs(s.target)} over last ${formatDuration(windowMs)} (${grouped(s.overTarget)} of ${grouped(n)} slower)`,
        data,
        ts: event.ts,
        status: 'firing',
      };
    }
    if (s.openAlertId !== undefined && !p95Above(n, s.overResolve)) {
      const id = s.openAlertId;
      s.openAlertId = undefined;
      const data = windowData(s);
      return {
        id,
        kind: 'sla',
        severity,
        title: `${name} recovered: ${what} ${formatMs(data.p95Ms ?? 0)} within SLA ${formatMs(s.target)} over last ${formatDuration(windowMs)}`,
        data,
        ts: event.ts,
        status: 'resolved',
      };
    }
    return undefined;
  };

  const statsOf = (s: Series, nowMs: number): LatencyStats => {
    expire(s, nowMs);
    const h = s.histogram;
    const count = h.totalCount;
    return {
      scope: s.scope,
      name: s.name,
      count,
      p50Ms: h.getValueAtPercentile(50),
      p90Ms: h.getValueAtPercentile(90),
      p95Ms: h.getValueAtPercentile(95),
      p99Ms: h.getValueAtPercentile(99),
      maxMs: s.maxMs,
      meanMs: h.mean,
      slaCompliance: count === 0 ? 1 : s.withinSla / count,
      window: {
        samples: s.window.size,
        p95Ms: exactPercentile(s.window.valuesCopy(), 95),
        alerting: s.openAlertId !== undefined,
      },
    };
  };

  const one = (alert: Alert | undefined): readonly Alert[] => (alert === undefined ? NO_ALERTS : [alert]);

  return {
    apply(event) {
      // A crash's `workflow.interrupted` is written later, by someone else: it ages no window.
      if (event.ts > lastTs && event.type !== 'workflow.interrupted') lastTs = event.ts;
      switch (event.type) {
        case 'agent.succeeded':
          return one(record('agent', event.payload.agent, event.payload.latencyMs, event));
        case 'agent.failed':
          // A cancelled call was cut short (a sibling failed, the workflow was cancelled): how long
          // it ran says when the cancellation came, not how fast the agent answers.
          if (event.payload.category === 'cancelled') return NO_ALERTS;
          return one(record('agent', event.payload.agent, event.payload.latencyMs, event));
        case 'agent.first_token':
          if (ttftP95Ms === undefined) return NO_ALERTS;
          return one(record('ttft', event.payload.agent, event.payload.ttftMs, event));
        case 'workflow.started':
          workflowNames.set(event.workflowId, event.payload.name);
          return NO_ALERTS;
        case 'workflow.completed':
        case 'workflow.failed': {
          const name = workflowNames.get(event.workflowId);
          if (name === undefined) return NO_ALERTS;
          workflowNames.delete(event.workflowId);
          return one(record('workflow', name, event.payload.latencyMs, event));
        }
        case 'workflow.cancelled':
        case 'workflow.interrupted':
          workflowNames.delete(event.workflowId);
          return NO_ALERTS;
        default:
          return NO_ALERTS;
      }
    },

    stats(scope, name, nowMs = lastTs) {
      const s = mapOf(scope).get(name);
      return s === undefined ? undefined : statsOf(s, nowMs);
    },

    snapshot(nowMs = lastTs) {
      return {
        slaP95Ms,
        openWorkflows: workflowNames.size,
        agents: [...agents.values()].map((s) => statsOf(s, nowMs)),
        workflows: [...workflows.values()].map((s) => statsOf(s, nowMs)),
        ttft: [...ttfts.values()].map((s) => statsOf(s, nowMs)),
        ...(ttftP95Ms !== undefined ? { ttftP95Ms } : {}),
      };
    },
  };
}
