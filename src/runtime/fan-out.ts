/**
 * The fan-out of committed events: every batch the log commits goes, event by event, to the folds
 * (cost, learned reservations, overruns, the alert fold — error rates, error budgets, SLA — and the
 * canary judgements), then to metrics, spans and ECS log lines, then to `rt.on('event')`, the
 * run's `run$` subscriber and `rt.on('workflow')`. Alerts the folds derive are appended as
 * `alert.raised` / `alert.resolved`; delivery (`rt.on('alert')`, the sinks) follows those events
 * when they are committed. On open the same folds are restored from the log (state only: nothing
 * is delivered again).
 */
import type { EventEmitter } from 'eventemitter3';
import type { Context } from '@opentelemetry/api';
import type { Clock } from '../core/clock.js';
import { createReservationLearner, type ReservationLearner } from '../cost/reservations.js';
import { createOverrunAlerts } from '../cost/overrun.js';
import { createCostTracker, type CostTracker } from '../cost/tracker.js';
import { alertToEvent, type Alert } from '../monitor/alert.js';
import { createAlertFold, createAlertLedger, type AlertFold } from '../monitor/alert-fold.js';
import { createCanaryFold, type CanaryFold } from '../monitor/canary-fold.js';
import { DEFAULT_ERROR_TARGETS } from '../monitor/error-budget.js';
import { createErrorRateProjection, type ErrorRateProjection } from '../monitor/error-rate-projection.js';
import { weekCalendar, type WeekCalendar } from '../monitor/iso-week.js';
import { createLatencyProjection, type LatencyProjection } from '../monitor/latency-projection.js';
import { TenantFold } from '../monitor/tenant-fold.js';
import type { AlertRouter } from '../monitor/router.js';
import type { EcsLogSink } from '../observability/ecs.js';
import type { KeelMetrics } from '../observability/metrics.js';
import type { KeelTracing } from '../observability/tracing.js';
import { SYSTEM_WORKFLOW_ID, type KeelEvent, type NewEvent } from '../eventlog/events.js';
import type { CommitInfo, EventStore } from '../eventlog/store.js';
import type { RuntimeConfig } from './config.js';
import { applyEvents, restoreFromMs, type RestoreStep } from './restore.js';
import type { RuntimeEvents, RuntimeStats } from './types.js';

/** The folds of the committed stream: policy state, each rebuilt from the log on open. */
export interface Folds {
  readonly errorRates: ErrorRateProjection;
  readonly latency: LatencyProjection;
  /** Workflows, outcomes, error rate and P95 latency per tenant (bounded by the tenant count). */
  readonly tenants: TenantFold;
  readonly cost: CostTracker;
  /** What uncapped calls reserve, learned from committed `cost.incurred` (warmed from the log). */
  readonly learned: ReservationLearner;
  /** One alert per agent, model and day that spent more than it reserved (`budget.overrun`). */
  readonly overruns: ReturnType<typeof createOverrunAlerts>;
  /** Every alert, derived from committed events (the same fold `keel report` runs). */
  readonly alertFold: AlertFold;
  /** Reads committed `alert.*` events for delivery. */
  readonly alertLedger: ReturnType<typeof createAlertLedger>;
  /** Canary judgements by node path, folded from committed canary events. */
  readonly canaries: CanaryFold;
  /** The error budgets' weeks. */
  readonly weeks: WeekCalendar;
}

/**
 * Builds the folds from the config; `record` appends the canary verdicts they reach.
 *
 * @example
 * const folds = createFolds(config, clock, (e) => recorder.record(e));
 */
export function createFolds(config: RuntimeConfig, clock: Clock, record: (event: NewEvent) => void): Folds {
  const monitor = config.monitor ?? {};
  const timeZone = monitor.timeZone ?? 'UTC';
  const weeks = weekCalendar(timeZone, 'monitor.timeZone');
  const errorRates = createErrorRateProjection({
    targets: config.errorTargets ?? DEFAULT_ERROR_TARGETS,
    ...(monitor.windowSize !== undefined ? { windowSize: monitor.windowSize } : {}),
    ...(monitor.windowMs !== undefined ? { windowMs: monitor.windowMs } : {}),
    ...(monitor.minSamples !== undefined ? { minSamples: monitor.minSamples } : {}),
    ...(monitor.weeklyVolume ? { budget: { volumes: monitor.weeklyVolume, timeZone } } : {}),
    clock,
  });
  const latency = createLatencyProjection({
    slaP95Ms: config.sla?.p95Ms ?? 10_000,
    ...(config.sla?.windowMs !== undefined ? { windowMs: config.sla.windowMs } : {}),
    ...(config.sla?.minSamples !== undefined ? { minSamples: config.sla.minSamples } : {}),
    ...(config.sla?.ttftP95Ms !== undefined ? { ttftP95Ms: config.sla.ttftP95Ms } : {}),
  });
  const alertFold = createAlertFold({ errorRates, latency });
  const canaries = createCanaryFold({
    onRollback: (r) =>
      record({
        ts: r.ts,
        workflowId: SYSTEM_WORKFLOW_ID,
        type: 'canary.rolled_back',
        payload: { canary: r.name, path: r.path, reason: r.reason, data: r.verdict },
      }),
    onPromote: (c) =>
      record({
        ts: clock.now(),
        workflowId: SYSTEM_WORKFLOW_ID,
        type: 'canary.promoted',
        payload: { canary: c.name, path: c.path },
      }),
  });
  return {
    errorRates,
    latency,
    tenants: new TenantFold(),
    cost: createCostTracker(),
    learned: createReservationLearner(),
    overruns: createOverrunAlerts(),
    alertFold,
    alertLedger: createAlertLedger(),
    canaries,
    weeks,
  };
}

/** Where committed events go besides the folds. */
export interface FanOutDeps {
  readonly clock: Clock;
  readonly folds: Folds;
  readonly metrics: KeelMetrics | undefined;
  readonly tracing: KeelTracing | undefined;
  readonly logSink: EcsLogSink | undefined;
  readonly router: AlertRouter | undefined;
  readonly emitter: EventEmitter<RuntimeEvents>;
  /** Appends the alerts the folds derive. */
  record(event: NewEvent): void;
  /** A batch committed: the log takes appends again. */
  committed(): void;
  /** Sends a committed event to its workflow's `run$` subscriber, if any. */
  forward(event: KeelEvent): void;
}

/**
 * @example
 * const fanOut = new FanOut(deps);
 * restorer = new Restorer(fanOut.restoreSteps(store));
 * store.onCommit((batch, info) => fanOut.onCommit(batch, info));
 */
export class FanOut {
  /** Callers' active OTel contexts, captured when their workflow starts, until it is committed. */
  private readonly parents = new Map<string, Context>();

  constructor(private readonly deps: FanOutDeps) {}

  /** Keeps the caller's active OTel context as the parent of the workflow's span. */
  traceParent(workflowId: string, context: Context): void {
    this.parents.set(workflowId, context);
  }

  /** The run whose parent was noted never had its start committed: forget the parent. */
  forgetTraceParent(workflowId: string): void {
    this.parents.delete(workflowId);
  }

  /**
   * The reads that rebuild the folds on open: every event since the budget week began (at least 7
   * days; cost keeps the last hour), then the gauges, then every canary verdict of the log.
   */
  restoreSteps(store: EventStore): RestoreStep[] {
    const { clock, folds } = this.deps;
    return [
      // Alert fold (windows, the week's error budgets), alert ledger, canary outcomes, the last
      // hour's cost.
      () => {
        const nowMs = clock.now();
        const costFromMs = nowMs - 3_600_000;
        return applyEvents(store.iterate({ fromTs: restoreFromMs(nowMs, folds.weeks) }), (e) =>
          this.restoreEvent(e, costFromMs),
        );
      },
      // The gauges show the restored windows and budgets before the first workflow ends.
      () => this.refreshErrorGauges(),
      // Canary verdicts of all time: the runtime records them in the system workflow, whose index
      // finds them in a log of any size (the outcomes they judge came with the read above).
      () =>
        applyEvents(
          store.iterate({ workflowId: SYSTEM_WORKFLOW_ID, type: ['canary.rolled_back', 'canary.promoted'] }),
          (e) => folds.canaries.apply(e),
        ),
    ];
  }

  /** A batch the log committed. */
  onCommit(batch: readonly KeelEvent[], info?: CommitInfo): void {
    const { emitter, metrics } = this.deps;
    if (info) metrics?.observeCommit(info.commitMs / 1_000);
    this.deps.committed();
    const hasListeners = emitter.listenerCount('event') > 0;
    let workflowsEnded = false;
    for (const e of batch) {
      this.project(e);
      if (hasListeners) emitter.emit('event', e);
      this.deps.forward(e);
      if (
        e.type === 'workflow.completed' ||
        e.type === 'workflow.failed' ||
        e.type === 'workflow.cancelled' ||
        e.type === 'workflow.interrupted'
      ) {
        workflowsEnded = true;
        emitter.emit('workflow', e);
      }
    }
    // Error-rate gauges follow the rolling windows, refreshed once per batch that ended workflows.
    if (workflowsEnded) this.refreshErrorGauges();
  }

  /** Live cost, error-rate, latency and per-tenant figures. */
  stats(): Omit<RuntimeStats, 'budgetActors'> {
    const { folds, clock } = this.deps;
    const cost = folds.cost.summary();
    return {
      cost,
      errorRates: folds.errorRates.snapshot(clock.now()),
      latency: folds.latency.snapshot(clock.now()),
      tenants: folds.tenants.rows(cost.byTenant),
    };
  }

  /**
   * Folds one event read back from the log on open: state only. Nothing is delivered — its alerts
   * were delivered when their `alert.raised` was committed — and no metric, span or log line is
   * written again. `cost` keeps the last hour, as before.
   */
  private restoreEvent(e: KeelEvent, costFromMs: number): void {
    const { folds } = this.deps;
    if (e.ts >= costFromMs) folds.cost.apply(e);
    folds.learned.apply(e);
    folds.overruns.apply(e);
    folds.alertFold.apply(e);
    folds.tenants.apply(e);
    folds.alertLedger.read(e);
    folds.canaries.apply(e);
  }

  /**
   * Feeds one committed event to the live folds. Alerts the alert fold derives are appended as
   * `alert.raised` / `alert.resolved`; delivery follows those events when they are committed.
   */
  private project(e: KeelEvent): void {
    const { folds, tracing, logSink } = this.deps;
    folds.cost.apply(e);
    folds.learned.apply(e);
    // The first overrun of an agent and model each day: appended as `alert.raised`, delivered
    // when committed, like every other alert.
    const overrun = folds.overruns.apply(e);
    if (overrun !== undefined) this.deps.record(alertToEvent(overrun));
    const derived = folds.alertFold.apply(e);
    for (let i = 0; i < derived.length; i++) this.deps.record(alertToEvent(derived[i] as Alert));
    folds.tenants.apply(e);
    folds.canaries.apply(e);
    if (e.type === 'alert.raised' || e.type === 'alert.resolved') this.deliver(e);
    this.deps.metrics?.apply(e);
    if (tracing || logSink) {
      let parent: Context | undefined;
      if (e.type === 'workflow.started') {
        parent = this.parents.get(e.workflowId);
        this.parents.delete(e.workflowId);
      }
      const ids = tracing?.onEvent(e, parent);
      logSink?.write(e, ids);
    }
  }

  /** Tells `rt.on('alert')` listeners and the sinks about a committed alert event. */
  private deliver(e: KeelEvent): void {
    const alert = this.deps.folds.alertLedger.read(e);
    if (alert === undefined) return;
    this.deps.emitter.emit('alert', alert);
    this.deps.router?.route(alert);
  }

  /** Sets the error-rate and error-budget gauges from the windows (after a batch, after the restore). */
  private refreshErrorGauges(): void {
    const { metrics, folds, clock } = this.deps;
    if (!metrics) return;
    for (const t of folds.errorRates.snapshot(clock.now())) {
      metrics.setErrorRate(t.taskType, t.errorRate);
      if (t.budget) metrics.setErrorBudgetRemaining(t.taskType, t.budget.remainingRatio);
    }
  }
}
