/**
 * `createReportFold()` / `buildReport()`: the whole of `keel report` as ONE pass over the event log,
 * pushed one event at a time (so any store streams into it, synchronous or not). Cost, error rates,
 * latency and root causes come from the very folds the live runtime runs (cost tracker, error-rate
 * and latency projections, `rca`), fed the same events, so the report and the running service
 * always agree. What those folds do not keep — workflow counts, chart histograms, error rates per
 * time bucket, breaker timelines, vote and cascade statistics, the alert list — is folded here with
 * memory bounded by names, paths and buckets, never by the number of events.
 *
 * Size (~670 lines, over the ~600 rule): one pass means one fold; its sections share the event
 * switch, and splitting them would mean one switch per section.
 */
import { ConfigError } from '../core/errors.js';
import { createCostTracker, UNKNOWN_WORKFLOW, type CostTracker } from '../cost/tracker.js';
import type { AlertKind, BreakerState, KeelEvent } from '../eventlog/events.js';
import type { Alert } from '../monitor/alert.js';
import {
  createAlertFold,
  createAlertLedger,
  type AlertFold as DerivedAlerts,
  type AlertLedger,
} from '../monitor/alert-fold.js';
import { DEFAULT_ERROR_TARGETS } from '../monitor/error-budget.js';
import { createErrorRateProjection, type ErrorRateProjection } from '../monitor/error-rate-projection.js';
import { failureCategory, isOutcomeEvent } from '../eventlog/outcome.js';
import { checkInteger, checkRatio } from '../core/validate.js';
import {
  createLatencyProjection,
  type LatencyProjection,
  type LatencyStats,
} from '../monitor/latency-projection.js';
import { createRcaFold, type FailureBreakdown } from '../monitor/rca.js';
import { LogHistogram } from './histogram.js';
import { PercentileFold } from '../monitor/percentiles.js';
import type {
  AlertSection,
  BreakerChange,
  BreakerTimeline,
  CascadeStats,
  CostSection,
  ErrorSection,
  LimitsSection,
  LatencyReport,
  LatencySection,
  Report,
  ReportAlert,
  ReportOptions,
  ReportSettings,
  ReportSpan,
  ToolSection,
  VoteStats,
  WorkflowCounts,
} from './report.js';
import { foldSync, type EventFold } from '../eventlog/fold.js';
import { TimeBuckets } from './time-buckets.js';
import { TenantFold } from '../monitor/tenant-fold.js';
import { tenantIdProblem } from '../core/tenant.js';

/** Most running workflows whose name is remembered at once (like the cost tracker's default). */
const MAX_OPEN_WORKFLOWS = 100_000;
/** Most distinct vote / cascade paths tracked; the rest are counted under {@link OTHER_PATHS}. */
const MAX_PATHS = 200;
const OTHER_PATHS = '(other paths)';

/** `keel report` as a fold: apply the log's events in order, then take the {@link Report}. */
export interface ReportFold extends EventFold<Report> {
  /**
   * Running workflows whose name the fold holds now (at most 100,000, oldest forgotten first):
   * what its memory grows with besides names, paths and time buckets. Never the number of events.
   */
  readonly openWorkflows: number;
}

/**
 * The report as a push-based fold, for streams {@link buildReport} cannot take: drive it with
 * `foldEvents` over any store's `iterate()` (Postgres's is asynchronous), or apply events as they
 * arrive.
 *
 * @param options - SLA, error targets, daily budget and time zone (see {@link ReportOptions}).
 * @throws ConfigError naming the option when one is out of range.
 * @example
 * const store = openPostgresStore({ url: 'postgres://keel@127.0.0.1:5432/keel', readonly: true });
 * const report = await foldEvents(createReportFold({ slaP95Ms: 10_000, budgetUsd: 100 }), store.iterate());
 * console.log(formatReport(report));
 */
export function createReportFold(options: ReportOptions = {}): ReportFold {
  return new ReportBuilder(options);
}

/**
 * Builds the report from events in log order (e.g. `store.iterate()`), reading each event once.
 * For an asynchronous stream (a Postgres store), use {@link createReportFold} with `foldEvents`.
 *
 * @param events - the log, oldest first; read once, never held.
 * @param options - SLA, error targets, daily budget and time zone (see {@link ReportOptions}).
 * @throws ConfigError naming the option when one is out of range.
 * @example
 * const store = openSqliteStore({ path: 'keel.db', readonly: true });
 * const report = buildReport(store.iterate(), { slaP95Ms: 10_000, budgetUsd: 100 });
 * console.log(formatReport(report));
 * writeFileSync('report.html', renderHtml(report));
 */
export function buildReport(events: Iterable<KeelEvent>, options: ReportOptions = {}): Report {
  return foldSync(createReportFold(options), events);
}

/** The fold behind {@link createReportFold}. */
class ReportBuilder implements ReportFold {
  private readonly settings: ReportSettings;
  // The live runtime's folds, with the report's settings.
  private readonly cost: CostTracker;
  private readonly errors: ErrorRateProjection;
  private readonly latency: LatencyProjection;
  private readonly causes = createRcaFold();
  // What those folds do not keep.
  private readonly span: ReportSpan = {
    events: 0,
    firstSeq: undefined,
    lastSeq: undefined,
    firstTs: undefined,
    lastTs: undefined,
    byType: {},
  };
  private readonly workflows = new WorkflowFold();
  private readonly workflowHist = new Map<string, LogHistogram>();
  private readonly agentHist = new Map<string, LogHistogram>();
  private readonly buckets: TimeBuckets;
  private readonly alerts: AlertFold;
  /** The live runtime's alert fold: every alert derived from the events, as the runtime derives it. */
  private readonly derived: DerivedAlerts;
  private readonly ledger: AlertLedger = createAlertLedger();
  private readonly breakers = new Map<string, BreakerFold>();
  private readonly votes = new PathMap<VoteFold>(() => new VoteFold());
  private readonly cascades = new PathMap<CascadeFold>(() => new CascadeFold());
  private readonly maxTransitions: number;
  /** Tool calls by `agent\u0000tool`, and TTFT by agent (bounded by names, like the histograms). */
  private readonly toolCalls = new Map<
    string,
    { agent: string; tool: string; calls: number; failures: number; latency: PercentileFold }
  >();
  private readonly ttft = new Map<string, PercentileFold>();
  /** Rate-limit waits and sheds by key, bulkhead rejections by agent (bounded by config names). */
  private readonly rateLimits = new Map<
    string,
    { waited: number; wait: PercentileFold; maxWaitMs: number; shed: number; shedBy: Record<string, number> }
  >();
  private readonly bulkheads = new Map<string, { rejected: number; rejectedBy: Record<string, number> }>();
  /**
   * Time of the last event of activity, the "now" the windows are aged to: a `workflow.interrupted`
   * written days after the crash is not activity, so it moves no window.
   */
  private activityTs: number | undefined;
  private readonly tenants = new TenantFold();
  /** Only this tenant's events are reported, when set. */
  private readonly tenant: string | undefined;

  constructor(options: ReportOptions) {
    this.settings = settingsOf(options);
    this.tenant = this.settings.tenant;
    const maxAlerts = options.maxAlerts ?? 100;
    this.maxTransitions = options.maxBreakerTransitions ?? 500;
    const maxTimeBuckets = options.maxTimeBuckets ?? 48;
    checkInteger('maxAlerts', maxAlerts, 1, 'alerts listed, e.g. 100');
    checkInteger('maxBreakerTransitions', this.maxTransitions, 1, 'transitions kept per breaker, e.g. 500');
    checkInteger('maxTimeBuckets', maxTimeBuckets, 2, 'points per error-rate series, e.g. 48');
    this.cost = createCostTracker({ timeZone: this.settings.timeZone });
    this.errors = createErrorRateProjection({
      targets: this.settings.errorTargets,
      windowSize: this.settings.errorWindowSize,
    });
    this.latency = createLatencyProjection({ slaP95Ms: this.settings.slaP95Ms });
    this.buckets = new TimeBuckets(maxTimeBuckets);
    this.alerts = new AlertFold(maxAlerts);
    this.derived = createAlertFold({ errorRates: this.errors, latency: this.latency });
  }

  get openWorkflows(): number {
    return this.workflows.open.size;
  }

  apply(e: KeelEvent): void {
    if (this.tenant !== undefined && e.payload.tenant !== this.tenant) return;
    this.tenants.apply(e);
    const span = this.span;
    span.events++;
    span.firstSeq ??= e.seq;
    span.lastSeq = e.seq;
    if (span.firstTs === undefined || e.ts < span.firstTs) span.firstTs = e.ts;
    if (span.lastTs === undefined || e.ts > span.lastTs) span.lastTs = e.ts;
    span.byType[e.type] = (span.byType[e.type] ?? 0) + 1;
    if (e.type !== 'workflow.interrupted' && (this.activityTs === undefined || e.ts > this.activityTs))
      this.activityTs = e.ts;

    this.cost.apply(e);
    this.causes.apply(e);
    // Index loops: the usual result is the shared empty array, and no iterator is allocated for it.
    const alerts = this.alerts;
    const derived = this.derived.apply(e);
    for (let i = 0; i < derived.length; i++) alerts.add(derived[i] as Alert, 'report');
    if (isOutcomeEvent(e))
      this.buckets.record(
        e.payload.taskType,
        e.ts,
        failureCategory(e) !== undefined,
        this.workflows.open.get(e.workflowId) ?? UNKNOWN_WORKFLOW,
      );

    switch (e.type) {
      case 'workflow.started':
        this.workflows.start(e.workflowId, e.payload.name);
        return;
      case 'workflow.completed':
      case 'workflow.failed': {
        const name = this.workflows.end(
          e.workflowId,
          e.type === 'workflow.completed' ? 'completed' : 'failed',
        );
        if (name !== undefined) histogramOf(this.workflowHist, name).record(e.payload.latencyMs);
        return;
      }
      case 'workflow.cancelled':
        this.workflows.end(e.workflowId, 'cancelled');
        return;
      case 'workflow.interrupted':
        this.workflows.end(e.workflowId, 'interrupted');
        return;
      case 'workflow.waiting':
        this.workflows.wait(e.workflowId);
        return;
      case 'workflow.signalled':
        this.workflows.wake(e.workflowId);
        return;
      case 'workflow.resumed':
        this.workflows.resume(e.workflowId);
        return;
      case 'agent.succeeded':
      case 'agent.failed':
        // Like the latency projection: a cancelled call's duration says when it was cut short.
        if (e.type === 'agent.failed' && e.payload.category === 'cancelled') return;
        histogramOf(this.agentHist, e.payload.agent).record(
          e.payload.latencyMs,
          e.type === 'agent.succeeded' && e.payload.cached === true,
        );
        return;
      case 'breaker.transitioned': {
        const p = e.payload;
        let b = this.breakers.get(p.breaker);
        if (b === undefined) {
          b = new BreakerFold(p.breaker, p.from, e.ts, this.maxTransitions);
          this.breakers.set(p.breaker, b);
        }
        b.transition({ ts: e.ts, from: p.from, to: p.to, reason: p.reason, failures: p.failures });
        return;
      }
      case 'vote.decided':
        this.votes.of(e.payload.path).decided(e.payload.agentsUsed, e.payload.total, e.payload.savedUsd);
        return;
      case 'vote.early_stop':
        this.votes.of(e.payload.path).earlyStop(e.payload.skipped);
        return;
      case 'cascade.accepted':
        this.cascades.of(e.payload.path).accepted(e.payload.stage, e.payload.agent, e.payload.savedUsd);
        return;
      case 'cascade.escalated': {
        const p = e.payload;
        this.cascades.of(p.path).escalated(p.fromStage, p.toStage, p.fromAgent, p.toAgent);
        return;
      }
      case 'tool.succeeded':
      case 'tool.failed': {
        const p = e.payload;
        const key = `${p.agent}\u0000${p.tool}`;
        let t = this.toolCalls.get(key);
        if (t === undefined) {
          t = { agent: p.agent, tool: p.tool, calls: 0, failures: 0, latency: new PercentileFold() };
          this.toolCalls.set(key, t);
        }
        t.calls++;
        t.latency.record(p.latencyMs);
        if (e.type === 'tool.failed') t.failures++;
        return;
      }
      case 'agent.first_token': {
        let h = this.ttft.get(e.payload.agent);
        if (h === undefined) {
          h = new PercentileFold();
          this.ttft.set(e.payload.agent, h);
        }
        h.record(e.payload.ttftMs);
        return;
      }
      case 'ratelimit.waited': {
        const r = this.rateLimitOf(e.payload.key);
        r.waited++;
        r.wait.record(e.payload.waitedMs);
        r.maxWaitMs = Math.max(r.maxWaitMs, e.payload.waitedMs);
        return;
      }
      case 'ratelimit.shed': {
        const r = this.rateLimitOf(e.payload.key);
        r.shed++;
        r.shedBy[e.payload.reason] = (r.shedBy[e.payload.reason] ?? 0) + 1;
        return;
      }
      case 'bulkhead.rejected': {
        let b = this.bulkheads.get(e.payload.agent);
        if (b === undefined) this.bulkheads.set(e.payload.agent, (b = { rejected: 0, rejectedBy: {} }));
        b.rejected++;
        b.rejectedBy[e.payload.reason] = (b.rejectedBy[e.payload.reason] ?? 0) + 1;
        return;
      }
      case 'alert.raised':
      case 'alert.resolved': {
        const a = this.ledger.read(e);
        if (a !== undefined) alerts.add(a, 'log');
        return;
      }
      default:
        return;
    }
  }

  private rateLimitOf(key: string) {
    let r = this.rateLimits.get(key);
    if (r === undefined) {
      r = { waited: 0, wait: new PercentileFold(), maxWaitMs: 0, shed: 0, shedBy: {} };
      this.rateLimits.set(key, r);
    }
    return r;
  }

  private limitsSection(): LimitsSection {
    return {
      rateLimits: [...this.rateLimits]
        .map(([key, r]) => ({
          key,
          waited: r.waited,
          p95WaitMs: r.waited > 0 ? r.wait.percentile(95) : 0,
          maxWaitMs: r.maxWaitMs,
          shed: r.shed,
          shedBy: r.shedBy,
        }))
        .sort((a, b) => compare(a.key, b.key)),
      bulkheads: [...this.bulkheads]
        .map(([agent, b]) => ({ agent, rejected: b.rejected, rejectedBy: b.rejectedBy }))
        .sort((a, b) => compare(a.agent, b.agent)),
    };
  }

  private toolSection(): ToolSection {
    const calls = [...this.toolCalls.values()]
      .map((t) => ({
        agent: t.agent,
        tool: t.tool,
        calls: t.calls,
        failures: t.failures,
        failureRate: t.failures / t.calls,
        p95LatencyMs: t.latency.percentile(95),
      }))
      .sort((a, b) => compare(a.agent, b.agent) || compare(a.tool, b.tool));
    const ttft = [...this.ttft]
      .map(([agent, h]) => ({ agent, count: h.count, p50Ms: h.percentile(50), p95Ms: h.percentile(95) }))
      .sort((a, b) => compare(a.agent, b.agent));
    return { calls, ttft };
  }

  result(): Report {
    const { settings, span, workflowHist, agentHist, buckets } = this;
    const causes = this.causes.result();
    const endTs = this.activityTs ?? span.lastTs ?? 0;

    const lat = this.latency.snapshot(endTs);
    const latencySection: LatencySection = {
      slaP95Ms: settings.slaP95Ms,
      workflows: lat.workflows.map((s) => latencyReport(s, workflowHist, settings.slaP95Ms)).sort(byName),
      agents: lat.agents.map((s) => latencyReport(s, agentHist, settings.slaP95Ms)).sort(byName),
    };

    const taskTypes = this.errors
      .snapshot(endTs)
      .map((s) => {
        const total: FailureBreakdown | undefined = causes.byTaskType[s.taskType];
        const outcomes = total?.outcomes ?? 0;
        const failures = total?.failures ?? 0;
        const errorRate = outcomes === 0 ? 0 : failures / outcomes;
        const cut = buckets.seriesOf(s.taskType);
        return {
          taskType: s.taskType,
          target: s.target,
          outcomes,
          failures,
          errorRate,
          meetsTarget: s.target === undefined ? undefined : errorRate <= s.target,
          primaryCause: total?.primary,
          window: {
            samples: s.samples,
            failures: s.failures,
            errorRate: s.errorRate,
            alerting: s.alerting,
          },
          bucketMs: cut.bucketMs,
          series: cut.series,
          variants: cut.variants,
        };
      })
      .sort((a, b) => compare(a.taskType, b.taskType));
    const errorSection: ErrorSection = {
      bucketMs: taskTypes.reduce((w, t) => Math.max(w, t.bucketMs), 1_000),
      taskTypes,
    };

    return {
      version: 1,
      settings,
      span,
      workflows: this.workflows.counts(),
      latency: latencySection,
      cost: costSection(this.cost, settings),
      errors: errorSection,
      alerts: this.alerts.section(),
      breakers: [...this.breakers.values()].map((b) => b.timeline(endTs)).sort(byName),
      votes: this.votes.entries().map(([path, v]) => v.stats(path)),
      cascades: this.cascades.entries().map(([path, c]) => c.stats(path)),
      tools: this.toolSection(),
      limits: this.limitsSection(),
      rootCauses: {
        overall: causes.overall,
        byTaskType: causes.byTaskType,
        byAgent: causes.byAgent,
        text: causes.format(),
      },
      tenants: this.tenants.rows(this.cost.summary().byTenant),
    };
  }
}

function settingsOf(options: ReportOptions): ReportSettings {
  const { budgetUsd, budgetAlertAt = 0.8, errorWindowSize = 100 } = options;
  if (
    budgetUsd !== undefined &&
    !(typeof budgetUsd === 'number' && Number.isFinite(budgetUsd) && budgetUsd > 0)
  ) {
    throw new ConfigError(
      'budgetUsd',
      `must be a daily budget in USD > 0, e.g. 100; got ${String(budgetUsd)}.`,
    );
  }
  checkRatio('budgetAlertAt', budgetAlertAt, 'e.g. 0.8 to flag days past 80 % of the budget');
  checkInteger(
    'errorWindowSize',
    errorWindowSize,
    1,
    "outcomes per window, the runtime's monitor.windowSize",
  );
  const { tenant } = options;
  if (tenant !== undefined) {
    const problem = tenantIdProblem(tenant);
    if (problem !== undefined)
      throw new ConfigError('tenant', `${problem}; pass a tenant id as given to rt.run`);
  }
  return {
    ...(tenant !== undefined ? { tenant } : {}),
    slaP95Ms: options.slaP95Ms ?? 10_000,
    budgetUsd,
    budgetAlertAt,
    timeZone: options.timeZone ?? 'UTC',
    errorTargets: options.errorTargets ?? DEFAULT_ERROR_TARGETS,
    errorWindowSize,
  };
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const byName = <T extends { name: string }>(a: T, b: T): number => compare(a.name, b.name);

function histogramOf(map: Map<string, LogHistogram>, name: string): LogHistogram {
  let h = map.get(name);
  if (h === undefined) {
    h = new LogHistogram();
    map.set(name, h);
  }
  return h;
}

function latencyReport(s: LatencyStats, hist: Map<string, LogHistogram>, slaP95Ms: number): LatencyReport {
  return {
    name: s.name,
    count: s.count,
    p50Ms: s.p50Ms,
    p90Ms: s.p90Ms,
    p95Ms: s.p95Ms,
    p99Ms: s.p99Ms,
    maxMs: s.maxMs,
    meanMs: s.meanMs,
    slaCompliance: s.slaCompliance,
    meetsSla: s.p95Ms <= slaP95Ms,
    alerting: s.window.alerting,
    histogram: hist.get(s.name)?.toJSON() ?? { edgesMs: [], counts: [], instantCount: 0, cachedCount: 0 },
  };
}

function costSection(cost: CostTracker, settings: ReportSettings): CostSection {
  const summary = cost.summary({ top: 10 });
  const days = cost.days().map((day) => {
    const d = cost.summary({ day, top: 0 });
    return {
      day,
      usd: d.actualUsd,
      calls: d.calls,
      savedUsd: d.savings.totalUsd,
      byModel: d.byModel.map((m) => ({ model: m.model, usd: m.usd, calls: m.calls })),
      budgetRatio: settings.budgetUsd === undefined ? undefined : d.actualUsd / settings.budgetUsd,
    };
  });
  return { summary, budgetUsd: settings.budgetUsd, days, models: summary.byModel.map((m) => m.model) };
}

/** Workflow counts by name and outcome. */
/** Sets `id → name`, forgetting the oldest entry first when the map holds MAX_OPEN_WORKFLOWS. */
function remember(map: Map<string, string>, id: string, name: string): void {
  if (map.size >= MAX_OPEN_WORKFLOWS) {
    const oldest = map.keys().next();
    if (!oldest.done) map.delete(oldest.value);
  }
  map.set(id, name);
}

class WorkflowFold {
  /** Running workflows' names by id. */
  readonly open = new Map<string, string>();
  /** Workflows marked interrupted, by id: their name, until a later real end takes the mark back. */
  private readonly marked = new Map<string, string>();
  private readonly byName = new Map<string, WorkflowCounts>();
  /** Running workflows suspended by `waitFor`, by id: their name. */
  private readonly waiting = new Map<string, string>();

  start(workflowId: string, name: string): void {
    remember(this.open, workflowId, name);
    this.of(name).started++;
  }

  /**
   * Counts the end of a workflow; returns its name when its start was seen. A workflow marked
   * interrupted (a guess made from outside: `keel audit interrupt` with a cutoff) that later really
   * ends is counted once, by its real end: the mark is taken back.
   */
  end(workflowId: string, how: 'completed' | 'failed' | 'cancelled' | 'interrupted'): string | undefined {
    let name = this.open.get(workflowId);
    this.open.delete(workflowId);
    this.waiting.delete(workflowId);
    if (how === 'interrupted') remember(this.marked, workflowId, name ?? UNKNOWN_WORKFLOW);
    else if (name === undefined) {
      const markedAs = this.marked.get(workflowId);
      if (markedAs !== undefined) {
        this.marked.delete(workflowId);
        this.of(markedAs).interrupted--;
        if (markedAs !== UNKNOWN_WORKFLOW) name = markedAs;
      }
    }
    this.of(name ?? UNKNOWN_WORKFLOW)[how]++;
    return name;
  }

  /** A running workflow suspended itself at a `waitFor` node. */
  wait(workflowId: string): void {
    const name = this.open.get(workflowId);
    if (name !== undefined) remember(this.waiting, workflowId, name);
  }

  /** A signal reached a waiting workflow: it no longer waits (it runs again once resumed). */
  wake(workflowId: string): void {
    this.waiting.delete(workflowId);
  }

  /** A runtime took a workflow over (crash, signal, timed-out wait); counted by its name. */
  resume(workflowId: string): void {
    this.waiting.delete(workflowId);
    this.of(this.open.get(workflowId) ?? this.marked.get(workflowId) ?? UNKNOWN_WORKFLOW).resumed++;
  }

  counts(): WorkflowCounts[] {
    const waiting = new Map<string, number>();
    for (const name of this.waiting.values()) waiting.set(name, (waiting.get(name) ?? 0) + 1);
    return [...this.byName.values()]
      .map((c) => ({
        ...c,
        running: Math.max(0, c.started - c.completed - c.failed - c.cancelled - c.interrupted),
        waiting: waiting.get(c.name) ?? 0,
      }))
      .sort(byName);
  }

  private of(name: string): WorkflowCounts {
    let c = this.byName.get(name);
    if (c === undefined) {
      c = {
        name,
        started: 0,
        completed: 0,
        failed: 0,
        cancelled: 0,
        interrupted: 0,
        running: 0,
        resumed: 0,
        waiting: 0,
      };
      this.byName.set(name, c);
    }
    return c;
  }
}

/** Alerts logged by the runtime and those the report's folds detect, each listed once. */
class AlertFold {
  private raised = 0;
  private resolved = 0;
  private readonly byKind: Partial<Record<AlertKind, number>> = {};
  private readonly items: ReportAlert[] = [];
  private readonly index = new Map<string, ReportAlert>();

  constructor(private readonly max: number) {}

  add(a: Alert, source: 'log' | 'report'): void {
    const status = a.status === 'resolved' ? 'resolved' : 'firing';
    const key = `${status}\u0000${a.id}`;
    const seen = this.index.get(key);
    if (seen !== undefined) {
      // The runtime logs the alert its projection raised a few events earlier: same id.
      if (source === 'log') seen.source = 'log';
      return;
    }
    if (status === 'firing') {
      this.raised++;
      this.byKind[a.kind] = (this.byKind[a.kind] ?? 0) + 1;
    } else this.resolved++;
    const item: ReportAlert = {
      ts: a.ts,
      id: a.id,
      kind: a.kind,
      severity: a.severity,
      status,
      title: a.title,
      source,
    };
    this.items.push(item);
    this.index.set(key, item);
    if (this.items.length > this.max) {
      const old = this.items.shift();
      if (old !== undefined) this.index.delete(`${old.status}\u0000${old.id}`);
    }
  }

  section(): AlertSection {
    return {
      raised: this.raised,
      resolved: this.resolved,
      byKind: { ...this.byKind },
      items: this.items.map((i) => ({ ...i })),
    };
  }
}

/** The state timeline of one breaker. */
class BreakerFold {
  private state: BreakerState;
  private stateSince: number;
  private count = 0;
  private opened = 0;
  private openMs = 0;
  private halfOpenMs = 0;
  private readonly transitions: BreakerChange[] = [];

  constructor(
    private readonly name: string,
    private readonly initialState: BreakerState,
    private readonly sinceTs: number,
    private readonly max: number,
  ) {
    this.state = initialState;
    this.stateSince = sinceTs;
  }

  transition(t: BreakerChange): void {
    this.account(t.ts);
    this.state = t.to;
    this.count++;
    if (t.to === 'open') this.opened++;
    this.transitions.push(t);
    if (this.transitions.length > this.max) this.transitions.shift();
  }

  timeline(endTs: number): BreakerTimeline {
    const openMs = this.openMs + (this.state === 'open' ? Math.max(0, endTs - this.stateSince) : 0);
    const halfOpenMs =
      this.halfOpenMs + (this.state === 'halfOpen' ? Math.max(0, endTs - this.stateSince) : 0);
    return {
      name: this.name,
      initialState: this.initialState,
      state: this.state,
      sinceTs: this.sinceTs,
      transitionCount: this.count,
      transitions: this.transitions.map((t) => ({ ...t })),
      opened: this.opened,
      openMs,
      halfOpenMs,
    };
  }

  /** Adds the time spent in the current state up to `ts`. */
  private account(ts: number): void {
    const elapsed = Math.max(0, ts - this.stateSince);
    if (this.state === 'open') this.openMs += elapsed;
    else if (this.state === 'halfOpen') this.halfOpenMs += elapsed;
    this.stateSince = ts;
  }
}

/** One fold per topology path, at most {@link MAX_PATHS} of them. */
class PathMap<T> {
  private readonly map = new Map<string, T>();
  constructor(private readonly create: () => T) {}

  of(path: string): T {
    let v = this.map.get(path);
    if (v === undefined) {
      const key = this.map.size >= MAX_PATHS ? OTHER_PATHS : path;
      v = this.map.get(key);
      if (v === undefined) {
        v = this.create();
        this.map.set(key, v);
      }
    }
    return v;
  }

  /** Sorted by path. */
  entries(): [string, T][] {
    return [...this.map].sort((a, b) => compare(a[0], b[0]));
  }
}

/** Vote statistics of one path. */
class VoteFold {
  private count = 0;
  private voters = 0;
  private usedSum = 0;
  private readonly used = new Map<number, number>();
  private earlyStops = 0;
  private skipped = 0;
  private savedUsd = 0;

  decided(agentsUsed: number, total: number, savedUsd: number): void {
    this.count++;
    this.usedSum += agentsUsed;
    this.used.set(agentsUsed, (this.used.get(agentsUsed) ?? 0) + 1);
    if (total > this.voters) this.voters = total;
    this.savedUsd += savedUsd;
  }

  earlyStop(skipped: number): void {
    this.earlyStops++;
    this.skipped += skipped;
  }

  stats(path: string): VoteStats {
    return {
      path,
      decided: this.count,
      voters: this.voters,
      agentsUsed: [...this.used]
        .map(([agents, count]) => ({ agents, count }))
        .sort((a, b) => a.agents - b.agents),
      meanAgentsUsed: this.count === 0 ? 0 : this.usedSum / this.count,
      earlyStops: this.earlyStops,
      earlyStopShare: this.count === 0 ? 0 : this.earlyStops / this.count,
      skippedAgents: this.skipped,
      savedUsd: this.savedUsd,
    };
  }
}

/** Cascade statistics of one path. */
class CascadeFold {
  private answered = 0;
  private escalations = 0;
  private savedUsd = 0;
  private readonly stages = new Map<number, { agent: string; answered: number }>();
  private readonly steps = new Map<number, { toStage: number; count: number }>();

  accepted(stage: number, agent: string, savedUsd: number): void {
    this.answered++;
    this.stage(stage, agent).answered++;
    this.savedUsd += savedUsd;
  }

  escalated(fromStage: number, toStage: number, fromAgent: string, toAgent: string): void {
    this.escalations++;
    this.stage(fromStage, fromAgent);
    this.stage(toStage, toAgent);
    const s = this.steps.get(fromStage);
    if (s === undefined) this.steps.set(fromStage, { toStage, count: 1 });
    else s.count++;
  }

  stats(path: string): CascadeStats {
    return {
      path,
      answered: this.answered,
      stages: [...this.stages]
        .map(([stage, s]) => ({
          stage,
          agent: s.agent,
          answered: s.answered,
          share: this.answered === 0 ? 0 : s.answered / this.answered,
        }))
        .sort((a, b) => a.stage - b.stage),
      escalations: this.escalations,
      escalationsByStage: [...this.steps]
        .map(([fromStage, s]) => ({ fromStage, toStage: s.toStage, count: s.count }))
        .sort((a, b) => a.fromStage - b.fromStage),
      savedUsd: this.savedUsd,
    };
  }

  private stage(stage: number, agent: string): { agent: string; answered: number } {
    let s = this.stages.get(stage);
    if (s === undefined) {
      s = { agent, answered: 0 };
      this.stages.set(stage, s);
    }
    return s;
  }
}
