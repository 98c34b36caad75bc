/**
 * The shape of `keel report`: one plain, JSON-serialisable object that {@link buildReport} folds
 * from the event log and that the terminal and HTML renderers print. No functions, maps or class
 * instances, so `JSON.stringify(report)` is the `--json` output.
 *
 * @module
 */
import type { CostSummary } from '../cost/tracker.js';
import type {
  AlertKind,
  AlertSeverity,
  BreakerState,
  ErrorCategory,
  KeelEventType,
} from '../eventlog/events.js';
import type { ErrorTargets } from '../monitor/error-budget.js';
import type { FailureBreakdown } from '../monitor/rca.js';
import type { TenantRow } from '../monitor/tenant-fold.js';

export type { TenantRow } from '../monitor/tenant-fold.js';

/** Options of {@link buildReport}. Every field is optional. */
export interface ReportOptions {
  /** The latency SLA: P95 must stay at or under this many ms (default 10_000, the tutorial's 10 s). */
  slaP95Ms?: number;
  /**
   * Error-rate target per task type, a ratio in [0, 1) (default the tutorial's: payment 0.001,
   * vendor 0.05, routing 0.10, fraud 0.15).
   */
  errorTargets?: ErrorTargets;
  /** Daily budget to compare each day's spend with, USD (default: none, spend is shown alone). */
  budgetUsd?: number;
  /** Share of the daily budget from which a day is flagged (default 0.8, the tutorial's alert). */
  budgetAlertAt?: number;
  /** IANA time zone of the days cost is attributed to and of printed times (default `UTC`). */
  timeZone?: string;
  /**
   * Outcomes per rolling error-rate window, as configured on the runtime (default 100, the
   * runtime's default). Alerts the report detects use it; logged alerts are listed as recorded.
   */
  errorWindowSize?: number;
  /**
   * Most time buckets in an error-rate series (default 48): each series' bucket width comes from the
   * span its own outcomes cover, idle stretches left out.
   */
  maxTimeBuckets?: number;
  /** Most alerts listed, newest kept (default 100; totals count them all). */
  maxAlerts?: number;
  /** Most transitions kept per breaker, newest kept (default 500; totals count them all). */
  maxBreakerTransitions?: number;
  /**
   * Report one tenant only (`keel report --tenant acme`): the events of that tenant's workflows
   * (and its `budget.alert`s); events of other tenants, of untenanted workflows and the runtime's
   * own (breakers) are left out.
   */
  tenant?: string;
}

/** What was read. */
export interface ReportSpan {
  /** Events read. */
  events: number;
  /** First and last `seq` read (`undefined` for an empty log). */
  firstSeq: number | undefined;
  lastSeq: number | undefined;
  /** Earliest and latest event time, ms since epoch (`undefined` for an empty log). */
  firstTs: number | undefined;
  lastTs: number | undefined;
  /** Events per type (types absent from the log are left out). */
  byType: Partial<Record<KeelEventType, number>>;
}

/** The settings the report was computed with (defaults filled in). */
export interface ReportSettings {
  slaP95Ms: number;
  /** `undefined` when no budget was given. */
  budgetUsd: number | undefined;
  budgetAlertAt: number;
  timeZone: string;
  errorTargets: ErrorTargets;
  errorWindowSize: number;
  /** Set when the report covers one tenant only. */
  tenant?: string;
}

/** Workflows of one name, by how they ended. */
export interface WorkflowCounts {
  name: string;
  started: number;
  completed: number;
  failed: number;
  cancelled: number;
  /** Cut off by a crash and marked `workflow.interrupted` afterwards (`keel audit interrupt`). */
  interrupted: number;
  /**
   * Started and not finished by the end of the log: running, or lost to a crash and not marked yet
   * (`keel audit open` lists them).
   */
  running: number;
  /**
   * Resumptions of workflows of this name (`workflow.resumed`: after a crash, a signal or a timed-out
   * wait); a workflow resumed twice counts twice.
   */
  resumed: number;
  /** Of `running`, those suspended by a `waitFor` node at the end of the log, waiting for a signal. */
  waiting: number;
}

/**
 * A histogram with log-spaced buckets, for charts: `counts[i]` samples fell in
 * `[edgesMs[i], edgesMs[i+1])`. Cache hits and samples under 1 ms (breaker fast-fails, steps that
 * call no model) are counted apart in `instantCount`, so they never pile into a bar of their own
 * scale beside the model latencies.
 */
export interface LatencyHistogram {
  /** Bucket edges in ms, ascending, from 1 ms up; one more than `counts`. */
  edgesMs: number[];
  counts: number[];
  /** Cache hits (whatever their latency) and other samples under 1 ms; not in `counts`. */
  instantCount: number;
  /** Of those, answers served from the cache (`agent.succeeded` with `cached`; 0 for workflows). */
  cachedCount: number;
}

/** Latency of one workflow name or agent, from the latency projection. */
export interface LatencyReport {
  name: string;
  count: number;
  /** Percentiles from the projection's HDR histogram (within 0.1 %), ms. */
  p50Ms: number;
  p90Ms: number;
  p95Ms: number;
  p99Ms: number;
  /** Exact maximum, ms. */
  maxMs: number;
  meanMs: number;
  /** Share of samples at or under the SLA, in [0, 1]. */
  slaCompliance: number;
  /** `p95Ms <= slaP95Ms`. */
  meetsSla: boolean;
  /** Whether the projection's rolling SLA window is alerting at the end of the log. */
  alerting: boolean;
  histogram: LatencyHistogram;
}

/** Latency per workflow name and per agent. */
export interface LatencySection {
  slaP95Ms: number;
  /** Sorted by name. */
  workflows: LatencyReport[];
  /** Sorted by name. */
  agents: LatencyReport[];
}

/** One model's spend on one day. */
export interface ModelDayCost {
  model: string;
  usd: number;
  calls: number;
}

/** One day's spend by model. */
export interface DayModelCosts {
  /** `YYYY-MM-DD` in the report's time zone. */
  day: string;
  usd: number;
  calls: number;
  savedUsd: number;
  /** Sorted by spend, descending. */
  byModel: ModelDayCost[];
  /** Spend / budget (`undefined` without a budget). */
  budgetRatio: number | undefined;
}

/** Cost, from the cost tracker. */
export interface CostSection {
  /** The tracker's summary over the whole log (totals, by model/task/agent/day, savings by source). */
  summary: CostSummary;
  budgetUsd: number | undefined;
  /** Ascending by day. */
  days: DayModelCosts[];
  /** Every model seen, most expensive first (the stacking order of the chart). */
  models: string[];
}

/** Outcomes of one task type in one time bucket. */
export interface ErrorBucket {
  /** Bucket start, ms since epoch. */
  startMs: number;
  outcomes: number;
  failures: number;
}

/** Errors of one task type. */
export interface TaskTypeErrors {
  taskType: string;
  /** Target ratio in force (`undefined` when the task type has none). */
  target: number | undefined;
  /** Outcomes and failures over the whole log (the same definition the monitors use). */
  outcomes: number;
  failures: number;
  errorRate: number;
  /** `errorRate <= target` (`undefined` without a target). */
  meetsTarget: boolean | undefined;
  /** Most frequent failure category over the log. */
  primaryCause: ErrorCategory | undefined;
  /** The rolling window of the error-rate monitor at the end of the log. */
  window: { samples: number; failures: number; errorRate: number; alerting: boolean };
  /**
   * Width of this series' buckets, ms: the narrowest round width whose points over the span this
   * task type's outcomes cover fit `maxTimeBuckets`.
   */
  bucketMs: number;
  /**
   * One bucket per `bucketMs` over the spans where this task type had outcomes (empty buckets
   * inside a span included). Idle stretches of 5 buckets or more between spans are left out: two
   * consecutive buckets more than `bucketMs` apart mark a cut.
   */
  series: ErrorBucket[];
  /** The workflows (by name) these outcomes came from, by first outcome: a demo's variants. */
  variants: SeriesVariant[];
}

/** The outcomes of one task type that one workflow name produced. */
export interface SeriesVariant {
  /** Workflow name (`(other)` past 20 names, `(unknown)` when its start is not in the log). */
  name: string;
  /** First and last outcome, ms since epoch. */
  firstTs: number;
  lastTs: number;
  outcomes: number;
}

/** Error rates per task type over time. */
export interface ErrorSection {
  /** The widest bucket of the task types' series, ms (each series has its own `bucketMs`). */
  bucketMs: number;
  /** Sorted by task type. */
  taskTypes: TaskTypeErrors[];
}

/** An alert, as logged by the runtime or detected by the report's own folds. */
export interface ReportAlert {
  ts: number;
  id: string;
  kind: AlertKind;
  /** A resolve carries the severity of the alert it closes when the log holds it, else `info`. */
  severity: AlertSeverity;
  status: 'firing' | 'resolved';
  title: string;
  /** `log`: recorded by the runtime; `report`: detected under this report's settings only. */
  source: 'log' | 'report';
}

/** Alerts over the log. */
export interface AlertSection {
  /** Alerts raised (firing), all of them. */
  raised: number;
  resolved: number;
  /** Raised alerts per kind. */
  byKind: Partial<Record<AlertKind, number>>;
  /** The newest alerts (at most `maxAlerts`), oldest first. */
  items: ReportAlert[];
}

/** One breaker transition. */
export interface BreakerChange {
  ts: number;
  from: BreakerState;
  to: BreakerState;
  reason: string;
  failures: number;
}

/** The state timeline of one breaker, from `breaker.transitioned`. */
export interface BreakerTimeline {
  name: string;
  /** State before the first transition read. */
  initialState: BreakerState;
  /** State after the last transition read. */
  state: BreakerState;
  /** Time of the first transition read, ms since epoch. */
  sinceTs: number;
  /** Every transition (counted), and the newest `maxBreakerTransitions` of them (listed). */
  transitionCount: number;
  transitions: BreakerChange[];
  /** Times it opened. */
  opened: number;
  /** Time spent open and half-open between the first transition and the end of the log, ms. */
  openMs: number;
  halfOpenMs: number;
}

/** Votes at one place of a topology. */
export interface VoteStats {
  /** Topology path of the vote, e.g. `fraud/vote`. */
  path: string;
  decided: number;
  /** Voters the vote has (the largest `total` seen). */
  voters: number;
  /** How many votes called how many agents, ascending by `agents`. */
  agentsUsed: { agents: number; count: number }[];
  meanAgentsUsed: number;
  earlyStops: number;
  /** earlyStops / decided, in [0, 1]. */
  earlyStopShare: number;
  /** Voters never called thanks to early stops. */
  skippedAgents: number;
  /** Estimated cost of the skipped voters, USD. */
  savedUsd: number;
}

/** Cascades at one place of a topology. */
export interface CascadeStats {
  /** Topology path of the cascade, e.g. `screening/cascade`. */
  path: string;
  /** Cascades that ended with an accepted answer. */
  answered: number;
  /** Stage by stage, ascending. `share` is of `answered`. */
  stages: { stage: number; agent: string; answered: number; share: number }[];
  escalations: number;
  /** Escalations per step, ascending by `fromStage`. */
  escalationsByStage: { fromStage: number; toStage: number; count: number }[];
  /** Estimated cost of the stages not run, USD. */
  savedUsd: number;
}

/** Tool calls of one tool by one agent (`tool.succeeded` / `tool.failed`). */
export interface ToolStats {
  agent: string;
  tool: string;
  /** Calls that reported an outcome. */
  calls: number;
  /** Calls that failed after their retries. */
  failures: number;
  /** `failures / calls`. */
  failureRate: number;
  /** P95 of the calls' latency (retries included), ms, from an HDR histogram (within 0.1 %). */
  p95LatencyMs: number;
}

/** Time to first token of one agent's streamed model calls (`agent.first_token`). */
export interface TtftStats {
  agent: string;
  count: number;
  /** From an HDR histogram (within 0.1 %), ms. */
  p50Ms: number;
  p95Ms: number;
}

/** Tool-using and streaming agents. */
export interface ToolSection {
  /** Sorted by agent, then tool. */
  calls: ToolStats[];
  /** Sorted by agent. */
  ttft: TtftStats[];
}

/** Waits and sheds of one rate-limit key (`ratelimit.waited`, `ratelimit.shed`). */
export interface RateLimitStats {
  key: string;
  /** Calls that waited for the limit and then went to the provider. */
  waited: number;
  /** From an HDR histogram (within 0.1 %), ms; 0 without waits. */
  p95WaitMs: number;
  maxWaitMs: number;
  /** Calls shed (never reached the provider), and by reason (`queue_full`, `queue_timeout`, `closed`). */
  shed: number;
  shedBy: Record<string, number>;
}

/** Calls one agent's bulkhead rejected (`bulkhead.rejected`). */
export interface BulkheadStats {
  agent: string;
  rejected: number;
  /** By reason (`queue_full`, `queue_timeout`, `closed`). */
  rejectedBy: Record<string, number>;
}

/** Rate limits and bulkheads: who waited, who was shed. */
export interface LimitsSection {
  /** Sorted by key. */
  rateLimits: RateLimitStats[];
  /** Sorted by agent. */
  bulkheads: BulkheadStats[];
}

/** Root causes, from `rca`. */
export interface RootCauseSection {
  overall: FailureBreakdown;
  byTaskType: Record<string, FailureBreakdown>;
  byAgent: Record<string, FailureBreakdown>;
  /** The tutorial-style printout (`- OCR errors: 45 (62%) ← PRIMARY ROOT CAUSE`). */
  text: string;
}

/** Everything `keel report` shows, rebuilt from the event log alone. */
export interface Report {
  /** Version of this shape (bumped when it changes incompatibly). */
  version: 1;
  settings: ReportSettings;
  span: ReportSpan;
  /** Sorted by name. */
  workflows: WorkflowCounts[];
  latency: LatencySection;
  cost: CostSection;
  errors: ErrorSection;
  alerts: AlertSection;
  /** Sorted by name. */
  breakers: BreakerTimeline[];
  /** Sorted by path. */
  votes: VoteStats[];
  /** Sorted by path. */
  cascades: CascadeStats[];
  /** Tool calls per agent and tool, and time to first token per agent. */
  tools: ToolSection;
  /** Waits and sheds per rate-limit key, rejections per bulkhead. */
  limits: LimitsSection;
  rootCauses: RootCauseSection;
  /** Workflows, calls, cost, errors and P95 latency per tenant, most expensive first. */
  tenants: TenantRow[];
}
