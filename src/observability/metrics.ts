/**
 * Prometheus metrics as a fold over the event stream. `apply(event)` turns each committed
 * {@link KeelEvent} into counter, gauge and histogram updates in a prom-client registry the runtime
 * owns (never prom-client's global one), with the seed's names: `llm_calls_total`,
 * `llm_latency_seconds`, `circuit_breaker_state`, and the rest listed on {@link KeelMetrics}.
 *
 * Label values are bounded: models, task types, agents' breakers and workflow *names* come from
 * configuration, categories and alert kinds from closed enums. Workflow ids never become labels.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { SeriesHistogram } from './series-histogram.js';
import { ConfigError } from '../core/errors.js';
import type { BreakerState, KeelEvent } from '../eventlog/events.js';

/** `llm_latency_seconds` buckets, from the seed (seconds). */
export const LLM_LATENCY_BUCKETS_SECONDS: readonly number[] = [0.1, 0.5, 1, 2, 5, 10, 30];

/** Buckets of `llm_time_to_first_token_seconds`. */
export const TTFT_BUCKETS_SECONDS: readonly number[] = [0.05, 0.1, 0.25, 0.5, 1, 2, 5];
/** `workflow_duration_seconds` buckets (seconds); 10 s is the seed's P95 SLA. */
export const WORKFLOW_DURATION_BUCKETS_SECONDS: readonly number[] = [0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120];
/** `ratelimit_wait_seconds` buckets (seconds): a wait for a token to a minute's pause and more. */
export const RATELIMIT_WAIT_BUCKETS_SECONDS: readonly number[] = [
  0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120,
];
/** `vote_agents_used` buckets (agents). */
export const VOTE_AGENTS_BUCKETS: readonly number[] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20];
/** `event_log_commit_seconds` buckets (seconds). */
export const COMMIT_BUCKETS_SECONDS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];

/** Values of `circuit_breaker_state`, as in the seed: 0 closed, 1 open, 2 half-open. */
export const BREAKER_STATE_VALUE: Readonly<Record<BreakerState, number>> = {
  closed: 0,
  open: 1,
  halfOpen: 2,
};

/** Scope of the budget gauges that `budgetLimitUsd` maintains. */
export const GLOBAL_BUDGET_SCOPE = 'global';

const DAY_MS = 86_400_000;
const PROMETHEUS_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /**
   * Registry the metrics are registered in. Default: a new prom-client `Registry` owned by this
   * instance, never prom-client's global `register`. Default process metrics are not collected.
   */
  registry?: Registry;
  /** Prepended to every metric name, e.g. `keel_` (default `''`: the seed's bare names). */
  prefix?: string;
  /**
   * Daily budget in USD. When set, `budget_limit_usd{scope="global"}` holds it and
   * `budget_spend_usd{scope="global"}` folds `cost.incurred` events, restarting at each UTC day
   * of the events' `ts`. Default: unset (feed the gauges with `setBudget` or `budget.alert` events).
   */
  budgetLimitUsd?: number;
  /**
   * Error-rate target per task type, as a ratio (`{ payment: 0.001, vendor: 0.05 }`), exported as
   * `error_rate_target_ratio{task_type}` so dashboards plot rate against target. Default: none.
   */
  errorTargets?: Readonly<Record<string, number>>;
  /** Workflow P95 latency SLA in ms, exported as `latency_sla_p95_seconds` (default: not exported). */
  slaP95Ms?: number;
  /**
   * Tenants that get their own `tenant` label on `llm_calls_total`, `llm_cost_usd_total` and
   * `llm_cost_estimated_usd_total` (default 20): the first `tenantLabels` distinct tenants this
   * instance sees keep their id; every later one is counted under `tenant="other"`. First seen, not
   * top spenders: a counter's labels cannot move later, and first-seen is stable for the life of the
   * process (a restart starts over; `keel report` breaks every tenant down exactly). Series of
   * workflows without a tenant carry no `tenant` label. `0`: no tenant label at all.
   */
  tenantLabels?: number;
}

/** Default of {@link MetricsOptions.tenantLabels}. */
export const DEFAULT_TENANT_LABELS = 20;

/** The `tenant` label of every tenant past the first {@link MetricsOptions.tenantLabels}. */
export const OTHER_TENANT_LABEL = 'other';

/**
 * The runtime's Prometheus metrics. Series (names shown without `prefix`):
 * - `llm_calls_total{model,task_type,tenant}`: model calls (attempts; cache hits excluded); `tenant`
 *   only on calls of a tenant's workflows, bounded by `tenantLabels` (the rest: `other`)
 * - `llm_latency_seconds{model}`: histogram of an invocation's model time, all attempts
 * - `llm_cost_usd_total{model,task_type,tenant}`, `llm_tokens_total{model,type}` (`type` input|output)
 * - `llm_cost_estimated_usd_total{model,task_type,tenant}`: of that cost, what was charged from the
 *   estimate because no usage was reported (a `run` without usage, a timeout, a cancellation)
 * - `llm_errors_total{task_type,category}`: failed or rejected invocations by root cause
 * - `circuit_breaker_state{breaker}`: 0 closed, 1 open, 2 half-open
 * - `workflow_duration_seconds{workflow}`: histogram by workflow *name*
 * - `cache_requests_total{result}`: hit | miss | stale
 * - `budget_spend_usd{scope}`, `budget_limit_usd{scope}`
 * - `error_rate_ratio{task_type}`, `error_rate_target_ratio{task_type}`,
 *   `error_budget_remaining_ratio{task_type}`, `latency_sla_p95_seconds`
 * - `ratelimit_wait_seconds{key}`: histogram of the waits for a rate limit that ended in a call
 * - `ratelimit_shed_total{key,reason}`: calls shed by a rate limit (never reached the provider)
 * - `bulkhead_rejected_total{agent,reason}`: calls rejected by an agent's bulkhead
 * - `alerts_total{kind,severity}`, `vote_agents_used` (histogram), `cascade_escalations_total`,
 *   `cascade_accepted_total{stage}`, `event_log_commit_seconds` (histogram)
 */
export interface KeelMetrics {
  /** The registry holding every series (serve it with `serveMetrics`). */
  readonly registry: Registry;
  /** Folds one committed event into the metrics. Cheap: label children are cached. */
  apply(event: KeelEvent): void;
  /** Sets `budget_spend_usd{scope}` and `budget_limit_usd{scope}` (USD; scope default `global`). */
  setBudget(spentUsd: number, limitUsd: number, scope?: string): void;
  /** Sets `error_rate_ratio{task_type}` (failures / window, in [0, 1]) from the error-rate monitor. */
  setErrorRate(taskType: string, ratio: number): void;
  /** Sets `error_budget_remaining_ratio{task_type}` (share of the error budget left, in [0, 1]). */
  setErrorBudgetRemaining(taskType: string, ratio: number): void;
  /** Records one event-log commit's duration in seconds (`event_log_commit_seconds`). */
  observeCommit(seconds: number): void;
  /** The Prometheus text exposition of the registry. */
  metricsText(): Promise<string>;
}

/** Caches prom-client label children so `apply` does not rebuild label objects per event. */
class Children<C> {
  private readonly map = new Map<string, C>();
  /** Two-label children by first, then second value (no key string built per event). */
  private readonly map2 = new Map<string, Map<string, C>>();
  constructor(private readonly make: (values: readonly string[]) => C) {}
  get1(a: string): C {
    let child = this.map.get(a);
    if (child === undefined) {
      child = this.make([a]);
      this.map.set(a, child);
    }
    return child;
  }
  /** Three-label children, by one key (the third label is rarer: a tenant's series). */
  private readonly map3 = new Map<string, C>();
  get3(a: string, b: string, c: string): C {
    const key = `${a}\u0000${b}\u0000${c}`;
    let child = this.map3.get(key);
    if (child === undefined) {
      child = this.make([a, b, c]);
      this.map3.set(key, child);
    }
    return child;
  }
  get2(a: string, b: string): C {
    let byB = this.map2.get(a);
    if (byB === undefined) this.map2.set(a, (byB = new Map<string, C>()));
    let child = byB.get(b);
    if (child === undefined) {
      child = this.make([a, b]);
      byB.set(b, child);
    }
    return child;
  }
}

/**
 * Increments of one labelled counter series, summed here and handed to prom-client when the
 * registry is read (the counter's `collect` hook): an event costs one addition instead of
 * prom-client's label hashing and checks per increment.
 */
class PendingCount {
  private pending = 0;
  constructor(private readonly child: { inc(value: number): void }) {}
  inc(value = 1): void {
    if (!(value >= 0 && value < Number.POSITIVE_INFINITY)) {
      throw new TypeError(`a counter increment must be a finite number >= 0, got ${value}`);
    }
    this.pending += value;
  }
  flush(): void {
    if (this.pending === 0) return;
    const value = this.pending;
    this.pending = 0;
    this.child.inc(value);
  }
}

/**
 * Creates Keel's Prometheus metrics in a registry of their own.
 *
 * @example
 * const metrics = createMetrics({ budgetLimitUsd: 100, errorTargets: { vendor: 0.05 }, slaP95Ms: 10_000 });
 * store.onCommit((events) => events.forEach(metrics.apply));
 * const server = await serveMetrics({ registry: metrics.registry, port: 9464 });
 */
export function createMetrics(options: MetricsOptions = {}): KeelMetrics {
  const registry = options.registry ?? new Registry();
  const prefix = options.prefix ?? '';
  if (typeof prefix !== 'string' || (prefix !== '' && !PROMETHEUS_NAME.test(prefix)))
    throw new ConfigError(
      'prefix',
      `"${String(prefix)}" is not a valid Prometheus name prefix; use letters, digits and _ (e.g. "keel_")`,
    );
  const limitUsd = options.budgetLimitUsd;
  if (limitUsd !== undefined && !(limitUsd > 0 && Number.isFinite(limitUsd)))
    throw new ConfigError('budgetLimitUsd', `must be a positive number of USD per day, got ${limitUsd}`);
  const maxTenantLabels = options.tenantLabels ?? DEFAULT_TENANT_LABELS;
  if (!(Number.isInteger(maxTenantLabels) && maxTenantLabels >= 0))
    throw new ConfigError(
      'tenantLabels',
      `must be a whole number of tenants >= 0 (default ${DEFAULT_TENANT_LABELS}), got ${maxTenantLabels}`,
    );
  const sla = options.slaP95Ms;
  if (sla !== undefined && !(sla > 0 && Number.isFinite(sla)))
    throw new ConfigError('slaP95Ms', `must be a positive number of milliseconds, got ${sla}`);
  for (const [taskType, target] of Object.entries(options.errorTargets ?? {}))
    if (!(target >= 0 && target <= 1))
      throw new ConfigError(
        `errorTargets.${taskType}`,
        `must be a ratio in [0, 1] (0.05 = 5%), got ${target}`,
      );

  const name = (base: string): string => {
    const full = prefix + base;
    if (registry.getSingleMetric(full) !== undefined)
      throw new ConfigError(
        'registry',
        `already holds a metric named "${full}"; pass a fresh Registry or a different prefix`,
      );
    return full;
  };
  const registers = [registry];
  const counter = <T extends string>(base: string, help: string, labelNames: readonly T[]): Counter<T> =>
    new Counter<T>({ name: name(base), help, labelNames, registers });
  /** A labelled counter fed through {@link PendingCount}s, one per label set. */
  const summedCounter = <T extends string>(
    base: string,
    help: string,
    labelNames: readonly T[],
  ): Children<PendingCount> => {
    const series: PendingCount[] = [];
    const c = new Counter<T>({
      name: name(base),
      help,
      labelNames,
      registers,
      collect() {
        for (const p of series) p.flush();
      },
    });
    return new Children((v) => {
      // Fewer values than label names: the last labels are left off the series (no `tenant`).
      const labels: Partial<Record<T, string>> = {};
      v.forEach((value, i) => (labels[labelNames[i] as T] = value));
      const p = new PendingCount(c.labels(labels));
      series.push(p);
      return p;
    });
  };
  const gauge = <T extends string>(base: string, help: string, labelNames: readonly T[]): Gauge<T> =>
    new Gauge<T>({ name: name(base), help, labelNames, registers });
  /** A histogram whose series count in place (see ./series-histogram.ts). */
  const histogram = <T extends string>(
    base: string,
    help: string,
    labelNames: readonly T[],
    buckets: readonly number[],
  ): SeriesHistogram<T> => new SeriesHistogram<T>({ name: name(base), help, labelNames, buckets, registers });

  const callsBy = summedCounter('llm_calls_total', 'Model calls (attempts; cache hits excluded).', [
    'model',
    'task_type',
    'tenant',
  ]);
  const latency = histogram(
    'llm_latency_seconds',
    'Model time of an agent invocation in seconds, all attempts (cache hits excluded).',
    ['model'],
    LLM_LATENCY_BUCKETS_SECONDS,
  );
  const ttft = histogram(
    'llm_time_to_first_token_seconds',
    'Time from the start of a streamed attempt to its first text, in seconds (agent.first_token).',
    ['model'],
    TTFT_BUCKETS_SECONDS,
  );
  const breakerState = gauge(
    'circuit_breaker_state',
    'Circuit breaker state (0=closed, 1=open, 2=half-open).',
    ['breaker'],
  );
  const costBy = summedCounter('llm_cost_usd_total', 'Actual model cost in USD.', [
    'model',
    'task_type',
    'tenant',
  ]);
  const estimatedCostBy = summedCounter(
    'llm_cost_estimated_usd_total',
    'Of llm_cost_usd_total, USD charged from the estimate because no usage was reported.',
    ['model', 'task_type', 'tenant'],
  );
  const tokensBy = summedCounter('llm_tokens_total', 'Tokens used, by type (input or output).', [
    'model',
    'type',
  ]);
  const workflowDuration = histogram(
    'workflow_duration_seconds',
    'Workflow latency in seconds, by workflow name (completed, failed or cancelled).',
    ['workflow'],
    WORKFLOW_DURATION_BUCKETS_SECONDS,
  );
  const cache = counter('cache_requests_total', 'Agent cache lookups by result (hit, miss, stale).', [
    'result',
  ]);
  const budgetSpend = gauge('budget_spend_usd', 'Spend in USD against the budget of the current day.', [
    'scope',
  ]);
  const budgetLimit = gauge('budget_limit_usd', 'Budget limit in USD for the current day.', ['scope']);
  const errorRate = gauge('error_rate_ratio', 'Error rate over the rolling window, per task type.', [
    'task_type',
  ]);
  const errorTarget = gauge('error_rate_target_ratio', 'Error-rate target per task type.', ['task_type']);
  const errorBudget = gauge(
    'error_budget_remaining_ratio',
    'Share of the error budget remaining, per task type.',
    ['task_type'],
  );
  const alertsBy = summedCounter('alerts_total', 'Alerts raised, by kind and severity.', [
    'kind',
    'severity',
  ]);
  const voteAgents = histogram(
    'vote_agents_used',
    'Agents a vote ran before deciding (early stop runs fewer).',
    [],
    VOTE_AGENTS_BUCKETS,
  );
  const escalations = counter('cascade_escalations_total', 'Cascade escalations to a next stage.', []);
  const resumed = counter(
    'workflows_resumed_total',
    'Workflows this process continued after their owner was gone, a signal woke them or their wait timed out (rt.resume, rt.signal).',
    [],
  );
  const waiting = gauge(
    'workflows_waiting',
    'Workflows this process suspended in a waitFor node and not yet signalled or timed out (as this process saw them).',
    [],
  );
  const interrupted = counter(
    'workflows_interrupted_total',
    'Workflows cut off by a crash and marked interrupted (rt.markInterrupted, keel audit interrupt).',
    [],
  );
  const acceptedBy = summedCounter('cascade_accepted_total', 'Cascades accepted, by accepting stage.', [
    'stage',
  ]);
  const errorsBy = summedCounter('llm_errors_total', 'Failed or rejected agent invocations by root cause.', [
    'task_type',
    'category',
  ]);
  const rateWait = histogram(
    'ratelimit_wait_seconds',
    'Time a call waited for its rate limit before it went to the provider, in seconds (ratelimit.waited).',
    ['key'],
    RATELIMIT_WAIT_BUCKETS_SECONDS,
  );
  const shedBy = summedCounter(
    'ratelimit_shed_total',
    'Calls shed by a rate limit before reaching the provider, by key and reason (queue_full, queue_timeout, closed).',
    ['key', 'reason'],
  );
  const bulkheadBy = summedCounter(
    'bulkhead_rejected_total',
    "Calls rejected by their agent's bulkhead before reaching the provider, by agent and reason.",
    ['agent', 'reason'],
  );
  const commit = histogram(
    'event_log_commit_seconds',
    'Event-log commit (transaction) duration in seconds.',
    [],
    COMMIT_BUCKETS_SECONDS,
  );

  const latencyBy = new Children((v) => latency.series(...v));
  const ttftBy = new Children((v) => ttft.series(...v));
  const rateWaitBy = new Children((v) => rateWait.series(...v));
  const breakerBy = new Children((v) => breakerState.labels(...v));
  const workflowBy = new Children((v) => workflowDuration.series(...v));
  // Unlabelled histograms show their one (zero) series from the start, as prom-client's do.
  const voteAgentsUsed = voteAgents.series();
  const commitSeconds = commit.series();
  const cacheHit = cache.labels('hit');
  const cacheMiss = cache.labels('miss');
  const cacheStale = cache.labels('stale');
  for (const child of [cacheHit, cacheMiss, cacheStale]) child.inc(0);
  for (const [taskType, target] of Object.entries(options.errorTargets ?? {}))
    errorTarget.set({ task_type: taskType }, target);
  if (sla !== undefined)
    gauge('latency_sla_p95_seconds', 'Workflow P95 latency SLA in seconds.', []).set(sla / 1000);

  /** Workflow names by id, dropped when the workflow ends so memory stays flat. */
  const workflowNames = new Map<string, string>();
  /** Workflows suspended in a wait, until resumed. */
  const waitingIds = new Set<string>();
  let spendDay = -1;
  let spentToday = 0;

  const setBudget = (spentUsd: number, limit: number, scope = GLOBAL_BUDGET_SCOPE): void => {
    budgetSpend.set({ scope }, spentUsd);
    budgetLimit.set({ scope }, limit);
  };
  if (limitUsd !== undefined) setBudget(0, limitUsd);

  /** Tenants with a label of their own, in the order first seen (at most `maxTenantLabels`). */
  const labelledTenants = new Set<string>();
  /** The `tenant` label of an event's tenant: its id, `other` past the first N, none without one. */
  const tenantLabel = (tenant: string | undefined): string | undefined => {
    if (tenant === undefined || maxTenantLabels === 0) return undefined;
    if (labelledTenants.has(tenant)) return tenant;
    if (labelledTenants.size < maxTenantLabels) {
      labelledTenants.add(tenant);
      return tenant;
    }
    return OTHER_TENANT_LABEL;
  };
  const by = (
    children: Children<PendingCount>,
    model: string,
    taskType: string,
    tenant: string | undefined,
  ): PendingCount =>
    tenant === undefined ? children.get2(model, taskType) : children.get3(model, taskType, tenant);

  const observeLlm = (
    model: string,
    taskType: string,
    tenant: string | undefined,
    attempts: number,
    latencyMs: number,
  ): void => {
    if (attempts > 0) by(callsBy, model, taskType, tenant).inc(attempts);
    latencyBy.get1(model).observe(latencyMs / 1000);
  };

  const endWorkflow = (workflowId: string, latencyMs: number): void => {
    const workflow = workflowNames.get(workflowId) ?? 'unknown';
    workflowNames.delete(workflowId);
    workflowBy.get1(workflow).observe(latencyMs / 1000);
  };

  const apply = (event: KeelEvent): void => {
    switch (event.type) {
      case 'workflow.started':
        workflowNames.set(event.workflowId, event.payload.name);
        break;
      case 'workflow.completed':
      case 'workflow.failed':
      case 'workflow.cancelled':
        endWorkflow(event.workflowId, event.payload.latencyMs);
        break;
      case 'workflow.waiting':
        waitingIds.add(event.workflowId);
        waiting.set(waitingIds.size);
        break;
      case 'workflow.resumed':
        resumed.inc();
        if (waitingIds.delete(event.workflowId)) waiting.set(waitingIds.size);
        break;
      case 'workflow.interrupted':
        // Cut off by a crash: how long until someone marked it is no workflow duration.
        workflowNames.delete(event.workflowId);
        interrupted.inc();
        break;
      case 'agent.first_token':
        ttftBy.get1(event.payload.model).observe(event.payload.ttftMs / 1000);
        break;
      case 'agent.succeeded': {
        const p = event.payload;
        if (p.cached !== true)
          observeLlm(p.model, p.taskType, tenantLabel(p.tenant), p.attempts, p.latencyMs);
        break;
      }
      case 'agent.failed': {
        const p = event.payload;
        if (p.attempts > 0) {
          // A cancelled call was cut short by a sibling or its workflow: its duration is not the
          // model's latency (it still counts as a call).
          const tenant = tenantLabel(p.tenant);
          if (p.category === 'cancelled') by(callsBy, p.model, p.taskType, tenant).inc(p.attempts);
          else observeLlm(p.model, p.taskType, tenant, p.attempts, p.latencyMs);
        }
        errorsBy.get2(p.taskType, p.category).inc();
        break;
      }
      case 'agent.rejected':
        errorsBy.get2(event.payload.taskType, event.payload.category).inc();
        break;
      case 'cost.incurred': {
        const p = event.payload;
        const tenant = tenantLabel(p.tenant);
        if (p.costUsd > 0) by(costBy, p.model, p.taskType, tenant).inc(p.costUsd);
        if (p.estimated === true && p.costUsd > 0)
          by(estimatedCostBy, p.model, p.taskType, tenant).inc(p.costUsd);
        if (p.usage.inputTokens > 0) tokensBy.get2(p.model, 'input').inc(p.usage.inputTokens);
        if (p.usage.outputTokens > 0) tokensBy.get2(p.model, 'output').inc(p.usage.outputTokens);
        if (limitUsd !== undefined && p.costUsd > 0) {
          const day = Math.floor(event.ts / DAY_MS);
          if (day > spendDay) {
            spendDay = day;
            spentToday = 0;
          }
          if (day === spendDay) {
            spentToday += p.costUsd;
            budgetSpend.set({ scope: GLOBAL_BUDGET_SCOPE }, spentToday);
          }
        }
        break;
      }
      case 'budget.alert':
        setBudget(event.payload.spentUsd, event.payload.limitUsd, event.payload.scope);
        break;
      case 'cache.hit':
        cacheHit.inc();
        break;
      case 'cache.miss':
        cacheMiss.inc();
        break;
      case 'cache.stale_served':
        cacheStale.inc();
        break;
      case 'breaker.transitioned':
        breakerBy.get1(event.payload.breaker).set(BREAKER_STATE_VALUE[event.payload.to]);
        break;
      case 'ratelimit.waited':
        rateWaitBy.get1(event.payload.key).observe(event.payload.waitedMs / 1000);
        break;
      case 'ratelimit.shed':
        shedBy.get2(event.payload.key, event.payload.reason).inc();
        break;
      case 'bulkhead.rejected':
        bulkheadBy.get2(event.payload.agent, event.payload.reason).inc();
        break;
      case 'vote.decided':
        voteAgentsUsed.observe(event.payload.agentsUsed);
        break;
      case 'cascade.escalated':
        escalations.inc();
        break;
      case 'cascade.accepted':
        acceptedBy.get1(String(event.payload.stage)).inc();
        break;
      case 'alert.raised':
        alertsBy.get2(event.payload.kind, event.payload.severity).inc();
        break;
      default:
        break;
    }
  };

  return {
    registry,
    apply,
    setBudget,
    setErrorRate: (taskType, ratio) => errorRate.set({ task_type: taskType }, ratio),
    setErrorBudgetRemaining: (taskType, ratio) => errorBudget.set({ task_type: taskType }, ratio),
    observeCommit: (seconds) => commitSeconds.observe(seconds),
    metricsText: () => registry.metrics(),
  };
}
