/**
 * `createRuntime()`: the composition root of Keel's pipeline. It builds the parts — the event log,
 * the actor system, the folds of the committed stream, metrics, spans and ECS logs, the cache, the
 * alert router, the budgets, the breakers and the workflows — pushes each one's `close` on one
 * teardown stack, wires the fan-out of committed events to the folds, and reads back from the log
 * what the folds need. Everything else lives in `src/runtime/` (config, parts, fan-out, restore,
 * workflow lifecycle, crash marking) and `src/replay/engine.ts`.
 */
import { randomInt } from 'node:crypto';
import { EventEmitter } from 'eventemitter3';
import type { Observable } from 'rxjs';
import type { AnyActorRef } from 'xstate';
import { context as otelContext } from '@opentelemetry/api';
import { realClock, type Clock } from './core/clock.js';
import { ConfigError } from './core/errors.js';
import { assertWellFormed } from './core/unicode.js';
import { seededRandom } from './core/random.js';
import { createPricing, type Pricing } from './cost/pricing.js';
import type { CanaryControl } from './monitor/canary-fold.js';
import { assertTenantHasNoPii } from './compliance/identifiers.js';
import { fingerprinter } from './compliance/key.js';
import { DEFAULT_TENANT_KEY } from './cost/budget-policy.js';
import type { BudgetView } from './cost/budget.js';
import { createRedactor, type Redactor } from './compliance/redact.js';
import type { MarkInterruptedOptions, MarkInterruptedResult } from './compliance/interrupted.js';
import type { KeelMetrics } from './observability/metrics.js';
import { serveMetrics, type MetricsServer } from './observability/serve.js';
import { SYSTEM_WORKFLOW_ID, type KeelEvent, type NewEvent } from './eventlog/events.js';
import type { SqliteEventStore } from './eventlog/sqlite.js';
import type { EventStore, PruneResult } from './eventlog/store.js';
import type { Breaker } from './supervisor/breaker.js';
import type { Services } from './supervisor/scope.js';
import type { Topology } from './supervisor/topology.js';
import { replayWorkflows, type ReplayOptions, type ReplayReport } from './replay/engine.js';
import { BreakerRegistry } from './runtime/breakers.js';
import { assertConfigNamesHaveNoPii, parseConfig, type RuntimeConfig } from './runtime/config.js';
import { FanOut, createFolds, type Folds } from './runtime/fan-out.js';
import { createInterruptMarker } from './runtime/interrupted.js';
import * as parts from './runtime/parts.js';
import { Recorder } from './runtime/recorder.js';
import { Restorer } from './runtime/restore.js';
import { Teardown, type Close } from './runtime/teardown.js';
import type {
  Runtime,
  RuntimeEvents,
  RuntimeStats,
  RunItem,
  RunOptions,
  WorkflowResult,
} from './runtime/types.js';
import { Workflows } from './runtime/workflows.js';
import { DurableEngine, type ResumeOptions, type ResumeReport } from './durable/engine.js';
import { markFailed, resultOf } from './durable/results.js';

export type { RuntimeConfig } from './runtime/config.js';
export type {
  Runtime,
  RuntimeEvents,
  RuntimeStats,
  RunDelta,
  RunItem,
  RunOptions,
  WorkflowResult,
} from './runtime/types.js';
export { isRunDelta } from './runtime/types.js';
export type { ReplayOptions, ReplayReport } from './replay/engine.js';

class KeelRuntime extends EventEmitter<RuntimeEvents> implements Runtime {
  readonly store: EventStore;
  readonly clock: Clock;
  readonly pricing: Pricing;
  readonly metrics: KeelMetrics | undefined;
  readonly markInterrupted: (options: MarkInterruptedOptions) => Promise<MarkInterruptedResult>;
  private readonly teardown = new Teardown();
  private readonly folds: Folds;
  private readonly fanOut: FanOut;
  private readonly recorder: Recorder;
  private readonly restorer: Restorer;
  private readonly breakers: BreakerRegistry;
  private readonly workflows: Workflows;
  /** Lease, resume and signals (src/durable). */
  private readonly durable: DurableEngine;
  /** What a live workflow reaches (replay swaps in its own clock, no budgets, no cache). */
  private readonly services: Services;
  private readonly servers: Set<MetricsServer>;
  private readonly redactor: Redactor | undefined;
  private readonly budgetsReady: Promise<void> | undefined;
  /** The budgets (local or shared), for `stats()`. */
  private readonly budgetView: BudgetView | undefined;
  /** A shared (Redis) limiter's first answer, for `rt.ready()`. */
  private readonly limitsReady: Promise<void> | undefined;
  private readonly retention: NonNullable<RuntimeConfig['retention']>;
  private closed = false;

  constructor(config: RuntimeConfig) {
    super();
    const clock = (this.clock = config.clock ?? realClock);
    const seed = String(config.seed ?? randomInt(0, 2 ** 31));
    const pricing = (this.pricing = createPricing(config.pricing ?? {}));
    this.retention = config.retention ?? {};
    const { teardown } = this;
    let unsubscribe: (() => void) | undefined;
    let workflows: Workflows | undefined;
    // Last of all: no more commits arrive, no listener is called.
    teardown.push(() => {
      unsubscribe?.();
      workflows?.forget();
      this.removeAllListeners();
    });
    try {
      // The ECS log closes after the event log (whose last commits still write ECS lines), but its
      // file is opened only once every other part was built: a log that failed to open (a foreign
      // or damaged file, a bad config) leaves no empty ECS file behind.
      let closeLogSink: Close = () => undefined;
      teardown.push((reason) => closeLogSink(reason));
      const store = (this.store = teardown.add(parts.openLog(config, clock)));
      // Closed just before the log, after the workflows' end events: only then may another process take over.
      const durable = (this.durable = new DurableEngine(
        {
          store,
          clock,
          topology: (name) => this.workflows.topology(name),
          runsHere: (id) => this.workflows.unsettled(id),
          continue: (plan) => this.workflows.continue(plan),
          onError: (error) => this.emit('error', error),
        },
        config.durable,
      ));
      teardown.push((reason) => (reason === 'close' ? durable.retire() : undefined));
      const root: AnyActorRef = teardown.add(parts.startActorSystem(config, clock));
      const record = (e: NewEvent): void => this.recorder.record(e);
      const folds = (this.folds = createFolds(config, clock, record));
      const metrics = (this.metrics = parts.createRuntimeMetrics(config));
      const tracing = parts.createRuntimeTracing(config);
      const hmacKey = parts.redactionKey(config);
      const fingerprint = fingerprinter(hmacKey);
      const redactor = (this.redactor =
        config.redact !== false ? createRedactor({ ...config.redact, hmacKey }) : undefined);
      if (redactor) assertConfigNamesHaveNoPii(config, redactor);
      // Tenant ids label metrics and spans as they are: checked even with redaction off.
      for (const tenant of Object.keys(config.budget?.perTenant ?? {}))
        if (tenant !== DEFAULT_TENANT_KEY)
          assertTenantHasNoPii(tenant, redactor, `budget.perTenant.${tenant}`);
      const onError = (error: unknown): void => {
        this.emit('error', error);
      };
      const cache = teardown.add(parts.openRuntimeCache(config, clock, hmacKey, onError));
      this.servers = teardown.add(parts.metricsServers());
      const router = teardown.add(parts.openAlertRouter(config, clock));
      // Alerts raised by what committed so far are committed (and so delivered) before the sinks drain.
      this.recorder = new Recorder(store, redactor, onError);
      teardown.push((reason) => (reason === 'close' ? this.recorder.settled() : undefined));
      // The alert fold derives the budget alert from the committed `budget.alert`.
      const onAlert = (payload: KeelEvent<'budget.alert'>['payload']): void =>
        record({ ts: clock.now(), workflowId: SYSTEM_WORKFLOW_ID, type: 'budget.alert', payload });
      const budgets = teardown.add(
        parts.openBudgets(config, store, { clock, pricing, parent: root, onAlert }, onError),
      );
      this.budgetsReady = budgets.ready;
      this.budgetView = budgets.budgets;
      // Closed after the workflows (built later): calls still waiting are shed, not left pending.
      const limits = teardown.add(parts.openLimiter(config, clock, onError));
      const limiter = limits.limiter;
      this.limitsReady = limits.ready;
      const bulkheads = teardown.add(parts.openBulkheads(clock));
      const breakers = (this.breakers = new BreakerRegistry({
        clock,
        parent: root,
        defaults: config.breakers ?? {},
        record,
        changed: (change) => this.emit('breaker', change),
      }));
      teardown.push(() => breakers.stop());
      const services = (this.services = parts.workflowServices({
        ...{ clock, inspect: config.inspect, pricing, seed, hmacKey, breakers, cache, folds, record },
        budgets: budgets.budgets,
        limiter,
        bulkheads,
        writeAhead: config.writeAhead,
      }));
      const ecsLog = parts.openEcsLog(config);
      closeLogSink = ecsLog.close;
      const logSink = ecsLog.part;
      const fanOut = (this.fanOut = new FanOut({
        clock,
        folds,
        metrics,
        tracing,
        logSink,
        router,
        emitter: this,
        record,
        committed: () => this.workflows.committed(),
        forward: (e) => this.workflows.forward(e),
      }));
      // Policy state is the fold of the log: what each fold needs is read back on open.
      const restoreSteps = [...fanOut.restoreSteps(store), breakers.restoreStep(store)];
      if (budgets.restoreStep) restoreSteps.push(budgets.restoreStep);
      const restorer = (this.restorer = new Restorer(restoreSteps));
      const appendOne = store.appendOne?.bind(store);
      // A caller-chosen id's start on a file other processes may share is written only if the
      // file holds none yet (Workflows; Postgres claims the id instead).
      const appendStart = store.appendStart?.bind(store);
      workflows = this.workflows = teardown.add({
        part: new Workflows({
          store,
          pricing,
          redactor,
          fingerprint,
          rng: seededRandom(`${seed}:ids`),
          liveEnv: { services, append: appendOne ?? ((e) => store.append([e])), replay: undefined },
          ...(appendStart ? { appendStart } : {}),
          restoring: () => restorer.retry(),
          durable,
          ...(tracing
            ? {
                onLiveStart: (id: string) => fanOut.traceParent(id, otelContext.active()),
                onLiveStartAbandoned: (id: string) => fanOut.forgetTraceParent(id),
              }
            : {}),
        }),
        close: () => this.workflows.close(),
      });
      this.markInterrupted = createInterruptMarker({
        store,
        clock,
        redactor,
        unsettled: () => this.workflows.unsettledNow(),
      });
      unsubscribe = store.onCommit((batch, info) => fanOut.onCommit(batch, info));
      // SQLite answers at once, so the runtime is ready on return; an asynchronous store (Postgres)
      // restores in the background and workflows wait for it (`rt.ready()` surfaces its errors).
      restorer.start();
    } catch (e) {
      this.teardown.abandon();
      throw e;
    }
  }

  run<I, O>(topology: Topology<I, O>, input: I, options?: RunOptions): Promise<WorkflowResult<O>> {
    return this.workflows.run(topology, input, options);
  }

  run$<I, O>(topology: Topology<I, O>, input: I, options?: RunOptions): Observable<RunItem> {
    return this.workflows.run$(topology, input, options);
  }

  register(name: string, topology: Topology<never, unknown>): this {
    this.workflows.register(name, topology);
    return this;
  }

  async replay(target: string, options: ReplayOptions = {}): Promise<ReplayReport[]> {
    await this.restorer.pending;
    const workflows = this.workflows;
    return replayWorkflows(
      {
        store: this.store,
        services: (clock) => parts.replayServices(this.services, this.pricing, clock),
        topology: (name) => workflows.topology(name),
        execute: (topology, input, run, env, onDone) => workflows.execute(topology, input, run, env, onDone),
      },
      target,
      options,
    );
  }

  breaker(name: string): Breaker | undefined {
    return this.breakers.get(name);
  }

  canary(pathOrName: string): CanaryControl | undefined {
    return this.folds.canaries.control(pathOrName);
  }

  async ready(options?: { resume?: boolean }): Promise<void> {
    await this.restorer.retry();
    await this.budgetsReady;
    await this.limitsReady;
    await this.recorder.settled();
    if (options?.resume === true) await this.resume();
  }

  async resume(options?: ResumeOptions): Promise<ResumeReport> {
    await this.restorer.pending;
    return this.durable.resume(options);
  }

  async signal(
    workflowId: string,
    name: string,
    value: unknown,
  ): Promise<{ workflowId: string; seq: number }> {
    await this.restorer.pending;
    const { seq, finished } = await this.durable.signal(workflowId, name, value);
    // Its outcome reaches callers of rt.result(workflowId); nothing awaits this promise.
    finished.catch(() => undefined);
    return { workflowId, seq };
  }

  async result<O = unknown>(workflowId: string): Promise<WorkflowResult<O>> {
    await this.restorer.pending;
    return resultOf<O>(this.store, workflowId, this.workflows.joinable(workflowId));
  }

  async markFailed(
    workflowId: string,
    reason = 'marked failed by the operator (not resumable)',
  ): Promise<void> {
    await this.restorer.pending;
    await markFailed(this.store, this.clock, workflowId, reason, this.workflows.unsettled(workflowId));
  }

  stats(): RuntimeStats {
    return { ...this.fanOut.stats(), budgetActors: this.budgetView?.liveActors() ?? 0 };
  }

  async serveMetrics(options: { port: number; host?: string }): Promise<MetricsServer> {
    if (!this.metrics) {
      throw new ConfigError('metrics', 'metrics are off (metrics: false); remove that option to serve them');
    }
    const server = await serveMetrics({
      registry: this.metrics.registry,
      port: options.port,
      host: options.host ?? '127.0.0.1',
      ready: () => !this.closed,
    });
    this.servers.add(server);
    return server;
  }

  async feedback(workflowId: string, feedback: { correct: boolean; expected?: unknown }): Promise<void> {
    if (typeof workflowId !== 'string' || workflowId.length === 0) {
      throw new ConfigError('workflowId', 'give the id of a recorded workflow (from its result)');
    }
    // A lone surrogate would be stored as other bytes than those hashed (and could match another id).
    assertWellFormed('workflowId', workflowId);
    if (typeof feedback?.correct !== 'boolean')
      throw new ConfigError('feedback.correct', 'must be true or false');
    if ((await this.store.query({ workflowId, type: 'workflow.started', limit: 1 })).length === 0) {
      throw new ConfigError(
        'workflowId',
        `no workflow "${workflowId}" in this log; pass the id a run returned`,
      );
    }
    const { expected } = feedback;
    const payload = {
      correct: feedback.correct,
      ...(expected !== undefined
        ? { expected: this.redactor ? this.redactor.redact(expected).value : expected }
        : {}),
    };
    await this.store.append([{ ts: this.clock.now(), workflowId, type: 'feedback.recorded', payload }]);
  }

  async applyRetention(): Promise<PruneResult[]> {
    const day = 86_400_000;
    const now = this.clock.now();
    const { operationalDays = 90, auditDays = 2557 } = this.retention;
    return [
      await this.store.prune({ class: 'operational', olderThan: now - operationalDays * day }),
      await this.store.prune({ class: 'audit', olderThan: now - auditDays * day }),
    ];
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.teardown.close();
  }
}

/**
 * Creates a Keel runtime: opens (or creates) the event log, starts the actor system, and wires
 * every consumer of the event stream.
 *
 * @example
 * const rt = createRuntime({ db: 'keel.db', pricing: { 'my-model': { inputPer1K: 0.001, outputPer1K: 0.002 } } });
 * const { value, costUsd } = await rt.run(vendor, { text: 'ACME Corp invoice #42' });
 * await rt.close();
 */
export function createRuntime<S extends EventStore = SqliteEventStore>(
  config: RuntimeConfig & { store?: S } = {},
): Runtime<S> {
  return new KeelRuntime(parseConfig(config)) as unknown as Runtime<S>;
}
