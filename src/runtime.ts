/**
 * `createRuntime()`: wires Keel's pipeline — topologies run by the RxJS supervisor, agents and
 * breakers as XState actors in one system, every decision appended to the event log, and the
 * cost, monitoring and observability consumers fed from the committed stream. The one place that
 * knows every part.
 */
import { randomInt } from 'node:crypto';
import { EventEmitter } from 'eventemitter3';
import { Observable, concatMap, from, type Subscriber } from 'rxjs';
import { createActor, type AnyActorRef, type InspectionEvent, type Observer } from 'xstate';
import { z } from 'zod';
import { runtimeMachine } from '../machines/runtime.machine.js';
import { realClock, simulatedClock, type Clock } from './core/clock.js';
import { ConfigError, isKeelError } from './core/errors.js';
import { canonicalJson, findUnstorable, isJsonValueError } from './core/json.js';
import { assertWellFormed } from './core/unicode.js';
import { seededRandom, type Random } from './core/random.js';
import {
  createBudgets,
  RESTORED_BUDGET_EVENTS,
  type BudgetConfig,
  type BudgetDeps,
  type Budgets,
} from './cost/budget.js';
import { createCallPricer, createPricing, type ModelPrice, type Pricing } from './cost/pricing.js';
import { alertToEvent, type Alert } from './monitor/alert.js';
import { createAlertFold, createAlertLedger, type AlertFold } from './monitor/alert-fold.js';
import { createCanaryFold, type CanaryControl, type CanaryFold } from './monitor/canary-fold.js';
import { weekCalendar, type WeekCalendar } from './monitor/iso-week.js';
import { applyEvents, restoreFromMs } from './runtime/restore.js';
import { DEFAULT_ERROR_TARGETS, type ErrorTargets } from './monitor/error-budget.js';
import {
  createErrorRateProjection,
  type ErrorRateProjection,
  type TaskTypeErrorState,
} from './monitor/error-rate-projection.js';
import {
  createLatencyProjection,
  type LatencyProjection,
  type LatencySnapshot,
} from './monitor/latency-projection.js';
import { createAlertRouter, type AlertRouter, type AlertRule, type SinkFailure } from './monitor/router.js';
import { checkMonitoringConfig } from './monitor/runtime-config.js';
import { createCostTracker, type CostSummary, type CostTracker } from './cost/tracker.js';
import { createReservationLearner, type ReservationLearner } from './cost/reservations.js';
import { createOverrunAlerts } from './cost/overrun.js';
import { createCache, type Cache } from './cache/cache.js';
import { cacheKeyer } from './cache/key.js';
import {
  isBudgetBackend,
  isCacheBackend,
  type BudgetBackend,
  type CacheBackend,
  type SharedBudgetsLike,
} from './backends.js';
import { assertNameHasNoPii, assertWorkflowIdHasNoPii } from './compliance/identifiers.js';
import { fingerprinter, resolveRedactionKey, type Fingerprint } from './compliance/key.js';
import { resolveRedactorConfig, type RedactorConfig } from './compliance/config.js';
import { createRedactor, type Redactor } from './compliance/redact.js';
import {
  checkMarkOptions,
  findOpenWorkflows,
  interruptedEvent,
  type InterruptedWorkflow,
  type MarkInterruptedOptions,
  type MarkInterruptedResult,
  type OpenWorkflow,
} from './compliance/interrupted.js';
import { createEcsLogSink, type EcsLogLevel, type EcsLogSink } from './observability/ecs.js';
import { createMetrics, type KeelMetrics } from './observability/metrics.js';
import { serveMetrics, type MetricsServer } from './observability/serve.js';
import { createTracing, type KeelTracing } from './observability/tracing.js';
import { context as otelContext, type Context, type Tracer } from '@opentelemetry/api';
import type { DestinationStream } from 'pino';
import { SYSTEM_WORKFLOW_ID, type BreakerState, type KeelEvent, type NewEvent } from './eventlog/events.js';
import { openSqliteStore, type SqliteEventStore } from './eventlog/sqlite.js';
import { EventValidationError, ReadOnlyDatabaseError } from './eventlog/errors.js';
import {
  UnstorableInputError,
  UnstorableOutputError,
  WorkflowIdConflictError,
  isWorkflowIdConflictError,
  isWorkflowInProgressError,
} from './runtime/errors.js';
import { checkTopologyStrings, checkWorkflowId, recordedWorkflow } from './runtime/workflow-ids.js';
import { withEvents, type Awaitable, type EventStore, type PruneResult } from './eventlog/store.js';
import type { BreakerConfig } from './supervisor/agent.js';
import { breakerRestoreFrom, createBreaker, type Breaker } from './supervisor/breaker.js';
import { WorkflowCancelledError, categoryOf, messageOf } from './supervisor/errors.js';
import { exec } from './supervisor/execute.js';
import { compareDecisions, decisionsOf, recordedSource, type Divergence } from './replay/recorded.js';
import type { NodeContext, ReplaySource, Services, WorkflowScope } from './supervisor/scope.js';
import {
  agentsOf,
  describe,
  type AnyTopology,
  type NodeResult,
  type Topology,
} from './supervisor/topology.js';
// Each topology file registers its executor on import.
import './supervisor/sequential.js';
import './supervisor/parallel.js';
import './supervisor/vote.js';
import './supervisor/cascade.js';
import './supervisor/fallback.js';
import './supervisor/branch.js';
import './supervisor/map.js';
import './supervisor/deadline.js';
import './supervisor/canary.js';

/** Configuration of {@link createRuntime}. Every field is optional. */
export interface RuntimeConfig {
  /** SQLite file of the event log; `':memory:'` for tests (default `keel.db`). */
  db?: string;
  /** A ready event store (e.g. Postgres) instead of `db`. */
  store?: EventStore;
  /** `'normal'` (WAL, synchronous=NORMAL: survives a killed process; default) or `'fsync'` (survives power loss). */
  durability?: 'normal' | 'fsync';
  /**
   * Where the SQLite log chains, inserts and commits: `'auto'` (default: inline until commits
   * keep filling whole batches, then a writer thread while the load lasts), `'inline'` (always
   * this thread) or `'thread'` (always a writer thread). See `SqliteStoreOptions.writer`.
   */
  writer?: 'inline' | 'thread' | 'auto';
  /**
   * How long a commit waits on another process's lock of the SQLite file before failing with
   * `DatabaseLockedError`, in ms (default 5000). Inline, the wait blocks the event loop; with
   * `writer: 'thread'` only the writer thread waits (with `'auto'`, for commits made there).
   */
  busyTimeoutMs?: number;
  /**
   * Permission bits of the files the runtime creates: the SQLite log (and its `-wal`/`-shm`), the
   * cache file and the ECS log file (default `0o600`: only the service's user reads audit data and
   * raw outputs). `0o640` with a shared group lets auditors run the read-only `keel` commands.
   * Existing files keep their mode.
   */
  fileMode?: number;
  /** Source of time (default the wall clock; `simulatedClock()` in tests). */
  clock?: Clock;
  /** Seed of every random draw (retry jitter, AgentContext.rng, workflow ids); default random. */
  seed?: number | string;
  /** Model prices in USD per 1K tokens, added to / overriding the built-in table. */
  pricing?: Record<string, ModelPrice>;
  /**
   * Daily budgets: alert at `alertAt` (0.8), enforce at 100% by rejecting or downgrading. With
   * `shared: redis(url)` (from `keel/redis`) every process pointing at that Redis shares one budget:
   * reservations are atomic across them and each alert fires once for the fleet.
   */
  budget?: BudgetConfig & { shared?: BudgetBackend };
  /**
   * Error-rate targets per task type (the seed's defaults: payment 0.001, vendor 0.05, routing 0.10,
   * fraud 0.15). A rolling window per task type alerts once when its rate passes the target.
   */
  errorTargets?: ErrorTargets;
  /** Rolling error windows: `windowSize` tasks (default 100) or `windowMs`; weekly error budgets by volume. */
  monitor?: {
    windowSize?: number;
    windowMs?: number;
    minSamples?: number;
    /**
     * Expected tasks per week by task type: error budgets alert at 80% consumed. A week is an ISO
     * week, Monday 00:00 to Monday 00:00 in `timeZone`; a restart counts the week's failures again
     * from the log.
     */
    weeklyVolume?: Record<string, number>;
    /** IANA time zone of the error budgets' weeks, e.g. `Europe/Paris` (default `UTC`). */
    timeZone?: string;
  };
  /** Latency SLA: P95 of workflow latency over a rolling window (default 10 s over 1 h). */
  sla?: { p95Ms: number; windowMs?: number; minSamples?: number };
  /** Where alerts go: rules match by severity/kind and deliver to sinks (console, file, webhook, PagerDuty, Slack). */
  alerts?: { rules: readonly AlertRule[]; timeoutMs?: number; onSinkError?: (failure: SinkFailure) => void };
  /**
   * The TTL cache agents opt into with `cache: { ttlMs }`: a memory LRU in front of a SQLite file kept
   * apart from the audit log (it holds raw outputs). Default `<db>.cache` (memory only for `':memory:'`).
   * `redis(url)` (from `keel/redis`) shares one cache across processes: hits and single-flight cross
   * them, and a Redis outage turns lookups into misses (reported on `rt.on('error')`), never failures.
   */
  cache?: false | { path?: string; maxEntries?: number; maxStaleMs?: number } | CacheBackend;
  /**
   * PII redaction applied to every event before it is stored (and so before metrics, spans, logs and
   * exports see it): emails, phones, cards, IBANs, SSNs, IPs, secrets, names, custom patterns. On by
   * default; tokens, `inputHash` and cache keys are keyed HMACs under `hmacKey` (or KEEL_REDACT_KEY;
   * default: a key file `<db>.key` created once with mode 0600, or a random key per process without a
   * db file). `false` turns redaction off (hashes stay keyed).
   */
  redact?: false | RedactorConfig;
  /**
   * Retention per event class, in days (defaults: operational 90, audit 2557 ≈ 7 years), applied by
   * `rt.applyRetention()` or `keel retention apply` through the log's one sanctioned prune path.
   */
  retention?: { operationalDays?: number; auditDays?: number };
  /** Prometheus metrics in a registry the runtime owns (`rt.metrics`); `false` turns them off. */
  metrics?: false | { prefix?: string };
  /**
   * OpenTelemetry spans (`invoke_workflow` → `invoke_agent` → `chat`, GenAI attributes) on the given
   * tracer, or the global one (`trace.getTracer('keel')`; a no-op until you register an SDK).
   */
  tracing?: false | { tracer?: Tracer; captureContent?: boolean; providerName?: string };
  /** Elasticsearch-ready ECS JSON lines (pino + @elastic/ecs-pino-format), correlated with the spans. */
  logs?: { destination: string | DestinationStream; serviceName?: string; level?: EcsLogLevel };
  /** Defaults for breakers by name; an agent's own `breaker` fields override them. */
  breakers?: Record<string, Omit<BreakerConfig, 'name'>>;
  /** XState inspection observer (e.g. `createBrowserInspector().inspect` or `@statelyai/inspect`'s WebSocket inspector). */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
}

/** What `rt.run()` resolves to. */
export interface WorkflowResult<O> {
  workflowId: string;
  value: O;
  /** Confidence of the root result, when the topology reports one. */
  confidence?: number;
  /** Actual cost of every attempt of every agent, USD. */
  costUsd: number;
  /** Clock time from start to finish, ms. */
  latencyMs: number;
  /** Agent invocations (cache hits included). */
  agentsCalled: number;
  /**
   * Set when this run's `workflowId` had already completed: the result was read back from the log
   * and nothing was called. `value` is the output as recorded: its JSON form (a `Date` comes back as
   * its ISO string), after redaction (PII tokens in place of the matches) when redaction is on.
   */
  recorded?: true;
}

/** Options of one run. */
export interface RunOptions {
  /** Workflow name (default: the topology's name, or the agent's, or its kind). */
  name?: string;
  /**
   * Use this id instead of a generated one: an idempotency key, so a service can retry a request
   * safely. A second run under the id of a workflow that **completed** (in this runtime or any
   * earlier one on the same log) resolves with its recorded result (`recorded: true`, the output as
   * stored, i.e. after redaction) without calling anything; under the id of a workflow **still
   * running in this runtime** it joins that run (same result or error). Under the id of a workflow
   * that failed, was cancelled or interrupted it rejects with `RecordedWorkflowFailureError` (the
   * recorded category and message; nothing runs: use a new id to try again). The same id with
   * another workflow name rejects with `WorkflowIdConflictError`; an id started in another process
   * and not ended yet with `WorkflowInProgressError`. The input is not compared: the id names the
   * request. Must be a non-empty, well-formed string (no lone surrogates: `IllFormedUnicodeError`);
   * ids starting with `_` are reserved for Keel (`ReservedWorkflowIdError`).
   */
  workflowId?: string;
  /** Aborting it cancels the workflow. */
  signal?: AbortSignal;
}

/** Events `rt.on()` delivers. */
export interface RuntimeEvents {
  /** Every committed event, in seq order. */
  event: (event: KeelEvent) => void;
  /** A breaker changed state. */
  breaker: (change: { breaker: string; from: BreakerState; to: BreakerState; reason: string }) => void;
  /**
   * A runtime-level event (breaker, budget, alert) could not be written to the log, or a shared
   * backend failed (a Redis cache read answered as a miss, a write dropped).
   */
  error: (error: unknown) => void;
  /** An alert was raised or resolved (budget, error rate, error budget, SLA, breaker). */
  alert: (alert: Alert) => void;
  /**
   * A workflow finished (completed, failed or cancelled), or was marked interrupted after a crash
   * by `rt.markInterrupted()`.
   */
  workflow: (
    event: KeelEvent<
      'workflow.completed' | 'workflow.failed' | 'workflow.cancelled' | 'workflow.interrupted'
    >,
  ) => void;
}

/**
 * How a started workflow ended, as `start()` reports it. `fromLog` names the workflow whose recorded
 * events a `run$` subscriber is sent instead of live ones (a joined run, or a recorded outcome).
 */
type Outcome = ({ ok: true; result: WorkflowResult<unknown> } | { ok: false; error: unknown }) & {
  fromLog?: string;
};

/** End events of a workflow, and its start: what the idempotency lookup reads of an id. */
const LIFECYCLE_TYPES = [
  'workflow.started',
  'workflow.completed',
  'workflow.failed',
  'workflow.cancelled',
  'workflow.interrupted',
] as const;

/** How a workflow reaches the outside: its services, where its events go, and replay input. */
interface WorkflowEnv {
  services: Services;
  append: (event: NewEvent) => Promise<unknown>;
  replay: ReplaySource | undefined;
}

/** Options of {@link Runtime.replay}. */
export interface ReplayOptions {
  /** Topologies by workflow name (default: those this runtime has run or registered). */
  topologies?: Record<string, Topology<never, unknown>>;
  /** Called after each workflow is replayed, with how many are done out of how many (progress). */
  onReport?: (report: ReplayReport, done: number, total: number) => void;
}

/** Outcome of replaying one workflow. */
export interface ReplayReport {
  workflowId: string;
  name: string;
  /** True when every decision matched. */
  ok: boolean;
  divergences: Divergence[];
  /** Model calls made by the replay: always 0. */
  modelCalls: 0;
  /**
   * Set when the workflow was cut off by a crash and marked `workflow.interrupted`: it was not
   * replayed (its run never finished, so there is nothing to compare with) and `divergences` holds
   * one `not_replayable` entry saying so.
   */
  interrupted?: {
    /** Seq of the `workflow.interrupted` mark. */
    seq: number;
    /** Seq of the workflow's last event before the crash. */
    lastSeq: number;
    reason: string;
    markedBy: string;
  };
}

/** Live figures of a runtime: the same folds `keel report` runs over the log. */
export interface RuntimeStats {
  cost: CostSummary;
  errorRates: TaskTypeErrorState[];
  latency: LatencySnapshot;
}

/**
 * A running Keel runtime. `S` is its event store's type: the embedded SQLite store answers reads
 * synchronously (`rt.store.query(...)`), Postgres with promises.
 */
export interface Runtime<S extends EventStore = EventStore> {
  /** Runs a topology; resolves after its events are committed (durable before acknowledged). */
  run<I, O>(topology: Topology<I, O>, input: I, options?: RunOptions): Promise<WorkflowResult<O>>;
  /** The same run as a cold stream of its committed events; unsubscribing cancels it. */
  run$<I, O>(topology: Topology<I, O>, input: I, options?: RunOptions): Observable<KeelEvent>;
  /** Subscribes to runtime events (eventemitter3). */
  on: EventEmitter<RuntimeEvents>['on'];
  off: EventEmitter<RuntimeEvents>['off'];
  once: EventEmitter<RuntimeEvents>['once'];
  /** The event log. */
  readonly store: S;
  readonly clock: Clock;
  readonly pricing: Pricing;
  /**
   * Re-runs a recorded workflow (or `'all'`) with every model output taken from the log: zero model
   * calls. Reports any decision that differs.
   */
  replay(workflowId: string, options?: ReplayOptions): Promise<ReplayReport[]>;
  /** Registers a topology under a workflow name, for replay. */
  register(name: string, topology: Topology<never, unknown>): this;
  /** Prometheus metrics (prom-client registry owned by this runtime), unless `metrics: false`. */
  readonly metrics: KeelMetrics | undefined;
  /** Serves `/metrics`, `/healthz` and `/readyz` on loopback; closed with the runtime. */
  serveMetrics(options: { port: number; host?: string }): Promise<MetricsServer>;
  /** Live cost, error-rate and latency figures (folds over the committed events). */
  stats(): RuntimeStats;
  /** Prunes events past the configured retention, per class; the chain still verifies afterwards. */
  applyRetention(): Promise<PruneResult[]>;
  /**
   * Closes workflows a crash cut off: appends one `workflow.interrupted` for each workflow of the
   * log that started before `startedBefore` and has no end event, and returns them. Reports,
   * projections and what-ifs then stop counting them as running; replay reports them as not
   * replayable. Workflows this runtime is running itself are left open (returned as `running`).
   * Idempotent: a second call finds nothing left to mark.
   *
   * It never guesses which workflows are dead: the caller says so with the cutoff. On a log shared by
   * several processes (Postgres), another process may still be running a workflow that started
   * before it — choose a cutoff older than your longest workflow, or stop the fleet first.
   *
   * @throws ConfigError naming `startedBefore` when it is missing or in the future (by `rt.clock`),
   *   or `reason` / `markedBy` when empty.
   */
  markInterrupted(options: MarkInterruptedOptions): Promise<MarkInterruptedResult>;
  /**
   * Records ground truth for a finished workflow (was its answer correct?), for what-if accuracy.
   * Resolves once committed.
   */
  feedback(workflowId: string, feedback: { correct: boolean; expected?: unknown }): Promise<void>;
  /**
   * The shared breaker of that name, if any agent has used it — or if the log records a transition
   * of it: after a restart it answers with the restored state before first use.
   */
  breaker(name: string): Breaker | undefined;
  /**
   * The canary node at that path (e.g. `invoice/canary[1]`), or the only one of that name, as this
   * runtime judges it: once it ran, or once the log read on open knows it (a candidate rolled back
   * before a restart stays rolled back). `undefined` otherwise, or when several canaries share the
   * name (pass the path).
   */
  canary(pathOrName: string): CanaryControl | undefined;
  /**
   * Resolves once the runtime has read what it needs from the log (rolling windows, budgets,
   * breakers, canaries) and has committed the runtime-level events appended so far — so after
   * `await rt.run(…)` then `await rt.ready()`, every alert that run raised has been delivered to
   * `rt.on('alert')` (delivery follows the committed `alert.raised`, one commit after the event
   * that raised it). Immediate on SQLite; on an asynchronous store (Postgres) it rejects with the
   * store's error (unreachable, wrong credentials …). Runs wait for it by themselves.
   */
  ready(): Promise<void>;
  /**
   * Shuts the runtime down, in this order: cancels running workflows (their calls are charged);
   * stops breakers and budgets; waits for a shared (Redis) budget to answer every settle and
   * release already written, appending the `budget.alert`s they raise; delivers queued alerts;
   * closes the metrics server; commits what is pending and closes the log; then closes the cache
   * and the Redis connections. Idempotent.
   */
  close(): Promise<void>;
}

const configSchema = z.strictObject({
  db: z.string().min(1).optional(),
  store: z
    .custom<EventStore>((v) => typeof v === 'object' && v !== null && 'append' in v, {
      message: 'must be an EventStore (e.g. from openSqliteStore())',
    })
    .optional(),
  durability: z.enum(['normal', 'fsync']).optional(),
  writer: z.enum(['inline', 'thread', 'auto']).optional(),
  busyTimeoutMs: z
    .number({ error: 'must be a whole number of ms >= 0, e.g. 5000' })
    .int({ error: 'must be a whole number of ms >= 0, e.g. 5000' })
    .min(0, { error: 'must be a whole number of ms >= 0, e.g. 5000' })
    .optional(),
  fileMode: z
    .number()
    .int()
    .refine((m) => m >= 0 && m <= 0o777 && (m & 0o600) === 0o600, {
      error: 'must be permission bits that let the owner read and write, e.g. 0o600 or 0o640',
    })
    .optional(),
  clock: z
    .custom<Clock>((v) => typeof v === 'object' && v !== null && typeof (v as Clock).now === 'function', {
      message: 'must be a Clock ({ now, setTimeout, clearTimeout }), e.g. simulatedClock()',
    })
    .optional(),
  seed: z.union([z.number(), z.string()]).optional(),
  pricing: z.record(z.string(), z.unknown()).optional(),
  breakers: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
  budget: z.record(z.string(), z.unknown()).optional(),
  // errorTargets, monitor, sla and alerts: values checked by checkMonitoringConfig, by their paths here.
  errorTargets: z.unknown().optional(),
  monitor: z
    .strictObject({
      windowSize: z.unknown().optional(),
      windowMs: z.unknown().optional(),
      minSamples: z.unknown().optional(),
      weeklyVolume: z.unknown().optional(),
      timeZone: z.string({ error: 'must be an IANA time zone, e.g. "UTC" or "Europe/Paris"' }).optional(),
    })
    .optional(),
  sla: z
    .strictObject({
      p95Ms: z.unknown().optional(),
      windowMs: z.unknown().optional(),
      minSamples: z.unknown().optional(),
    })
    .optional(),
  alerts: z
    .strictObject({
      rules: z.unknown().optional(),
      timeoutMs: z.unknown().optional(),
      onSinkError: z.unknown().optional(),
    })
    .optional(),
  metrics: z
    .union([
      z.literal(false),
      z.strictObject({
        prefix: z
          .string()
          .regex(/^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/, {
            error: 'must be a Prometheus name prefix of letters, digits and _ (e.g. "keel_")',
          })
          .optional(),
      }),
    ])
    .optional(),
  cache: z
    .union([
      z.literal(false),
      z.custom<CacheBackend>(isCacheBackend),
      z.strictObject({
        path: z.string().min(1).optional(),
        maxEntries: z.number().int().nonnegative().optional(),
        maxStaleMs: z.number().nonnegative().optional(),
      }),
    ])
    .optional(),
  redact: z.union([z.literal(false), z.object({}).loose()]).optional(),
  retention: z
    .strictObject({
      operationalDays: z.number().positive().optional(),
      auditDays: z.number().positive().optional(),
    })
    .optional(),
  tracing: z.union([z.literal(false), z.object({}).loose()]).optional(),
  logs: z
    .object({
      destination: z.union(
        [
          z.string().min(1),
          z.custom<DestinationStream>(
            (v) =>
              typeof v === 'object' && v !== null && typeof (v as DestinationStream).write === 'function',
          ),
        ],
        { error: 'must be a file path or a writable stream, e.g. "logs/keel.ndjson" or process.stdout' },
      ),
      level: z.enum(['error', 'warn', 'info'], { error: "must be 'error', 'warn' or 'info'" }).optional(),
    })
    .loose()
    .optional(),
  inspect: z.unknown().optional(),
});

/** Validates the runtime config, naming the field and the fix. */
function parseConfig(config: unknown): RuntimeConfig {
  const parsed = configSchema.safeParse(config ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.length ? issue.path.join('.') : 'config';
    const message =
      issue?.code === 'unrecognized_keys'
        ? `unknown option(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}; see RuntimeConfig for the supported ones`
        : (issue?.message ?? 'invalid');
    throw new ConfigError(field, message);
  }
  checkMonitoringConfig(parsed.data);
  return config as RuntimeConfig;
}

/** Refuses a topology whose node, agent, task-type or breaker names carry PII (they label metrics and spans). */
function assertTopologyNamesHaveNoPii(t: AnyTopology, redactor: Redactor): void {
  if (t.kind === 'agent') {
    assertNameHasNoPii('agent.name', t.name, redactor);
    assertNameHasNoPii('agent.taskType', t.taskType, redactor);
    if (t.breaker !== undefined) assertNameHasNoPii('agent.breaker.name', t.breaker.name, redactor);
    return;
  }
  if (t.name !== undefined) assertNameHasNoPii('named(name)', t.name, redactor);
  for (const child of t.children) assertTopologyNamesHaveNoPii(child, redactor);
}

/** Refuses a run whose given workflow id or name carries PII: both are stored and exported as they are. */
function assertRunIdentifiersHaveNoPii(options: RunOptions | undefined, redactor: Redactor): void {
  if (typeof options?.workflowId === 'string') assertWorkflowIdHasNoPii(options.workflowId, redactor);
  if (typeof options?.name === 'string') assertNameHasNoPii('options.name', options.name, redactor);
}

/** Refuses task types and breaker names in the config that carry PII (they become metric labels). */
function assertConfigNamesHaveNoPii(config: RuntimeConfig, redactor: Redactor): void {
  for (const k of Object.keys(config.errorTargets ?? {})) assertNameHasNoPii('errorTargets', k, redactor);
  for (const k of Object.keys(config.monitor?.weeklyVolume ?? {}))
    assertNameHasNoPii('monitor.weeklyVolume', k, redactor);
  for (const k of Object.keys(config.breakers ?? {})) assertNameHasNoPii('breakers', k, redactor);
}

/** The workflow name used in paths and metrics. */
function workflowName(t: AnyTopology, options?: RunOptions): string {
  return options?.name ?? t.name ?? t.kind;
}

class KeelRuntime extends EventEmitter<RuntimeEvents> implements Runtime {
  readonly store: EventStore;
  readonly clock: Clock;
  readonly pricing: Pricing;
  private readonly root: AnyActorRef;
  private readonly breakers = new Map<string, Breaker>();
  private readonly budgets: Budgets | SharedBudgetsLike | undefined;
  private readonly budgetBackend: BudgetBackend | undefined;
  private readonly errorRates: ErrorRateProjection;
  private readonly latency: LatencyProjection;
  private readonly cost: CostTracker;
  /** What uncapped calls reserve, learned from committed `cost.incurred` (warmed from the log). */
  private readonly learned: ReservationLearner = createReservationLearner();
  /** One alert per agent, model and day that spent more than it reserved (`budget.overrun`). */
  private readonly overruns = createOverrunAlerts();
  private readonly router: AlertRouter | undefined;
  /** Every alert, derived from committed events (the same fold `keel report` runs). */
  private readonly alertFold: AlertFold;
  /** Reads committed `alert.*` events for delivery. */
  private readonly alertLedger = createAlertLedger();
  /** Canary judgements by node path, folded from committed canary events. */
  private readonly canaries: CanaryFold;
  /** The error budgets' weeks. */
  private readonly weeks: WeekCalendar;
  readonly metrics: KeelMetrics | undefined;
  private readonly tracing: KeelTracing | undefined;
  private readonly logSink: EcsLogSink | undefined;
  /** Callers' active OTel contexts, captured at `run()`, until their workflow starts. */
  private readonly parents = new Map<string, Context>();
  private readonly servers = new Set<MetricsServer>();
  private readonly cacheStore: Cache | undefined;
  private readonly cacheBackend: CacheBackend | undefined;
  private readonly redactor: Redactor | undefined;
  /** Keyed fingerprint of user content (`inputHash`): HMAC under the redaction key. */
  private readonly fingerprint: Fingerprint;
  private readonly breakerDefaults: Record<string, Omit<BreakerConfig, 'name'>>;
  private readonly rng: Random;
  private readonly seed: string;
  private readonly services: Services;
  private readonly liveEnv: WorkflowEnv;
  private readonly topologies = new Map<string, AnyTopology>();
  private readonly live = new Map<string, Subscriber<KeelEvent>>();
  private readonly running = new Map<string, (reason: string) => void>();
  /**
   * Caller-chosen workflow ids this runtime is looking up or running, until their end is committed:
   * a second run under one of them joins it (same outcome) instead of starting another.
   */
  private readonly claims = new Map<string, { name: string; done: Promise<Outcome> }>();
  /**
   * Ids of workflows this runtime started whose final event is not committed yet (longer than
   * `running`, which forgets a workflow once it settles): what `markInterrupted` must not mark.
   */
  private readonly unsettled = new Set<string>();
  /** The last `markInterrupted` call: calls run one after the other, so none marks a workflow twice. */
  private marking: Promise<unknown> = Promise.resolve();
  private readonly checkedTopologies = new WeakSet<object>();
  private readonly descriptions = new WeakMap<object, unknown>();
  private readonly unsubscribeCommit: () => void;
  private closed = false;
  private readonly retention: NonNullable<RuntimeConfig['retention']>;
  /** False after the log refused an append, until a commit succeeds again. */
  private storeHealthy = true;
  private idCounter = 0;
  /** Each breaker's last recorded transition, read from the log at startup. */
  private readonly breakerHistory = new Map<string, KeelEvent<'breaker.transitioned'>>();
  /** Commit of the last runtime-level event appended (breaker, budget, alert, canary). */
  private recorded: Promise<void> = Promise.resolve();
  /** Set while an asynchronous store is being read at startup; runs wait for it. */
  private restoring: Promise<void> | undefined;
  /** What the runtime reads from the log at startup (again on the next run, if reading failed). */
  private restoreSteps: readonly (() => Awaitable<void>)[] = [];
  private restoreStepsDone = 0;
  /** The shared budget's first read of the fleet's spend, for `rt.ready()`. */
  private budgetsReady: Promise<void> | undefined;
  /** Set after a failed startup read: starts it again. */
  private restoreFailed: (() => Promise<void> | undefined) | undefined;

  constructor(config: RuntimeConfig) {
    super();
    this.clock = config.clock ?? realClock;
    const seed = config.seed ?? randomInt(0, 2 ** 31);
    this.seed = String(seed);
    this.rng = seededRandom(`${this.seed}:ids`);
    this.pricing = createPricing(config.pricing ?? {});
    this.breakerDefaults = config.breakers ?? {};
    this.retention = config.retention ?? {};
    this.store =
      config.store ??
      openSqliteStore({
        path: config.db ?? 'keel.db',
        clock: this.clock,
        durability: config.durability ?? 'normal',
        writer: config.writer ?? 'auto',
        ...(config.busyTimeoutMs !== undefined ? { busyTimeoutMs: config.busyTimeoutMs } : {}),
        ...(config.fileMode !== undefined ? { fileMode: config.fileMode } : {}),
      });
    try {
      this.root = createActor(runtimeMachine, {
        clock: this.clock,
        systemId: 'keel',
        ...(config.inspect ? { inspect: config.inspect } : {}),
      }).start();
      const monitor = config.monitor ?? {};
      const timeZone = monitor.timeZone ?? 'UTC';
      this.weeks = weekCalendar(timeZone, 'monitor.timeZone');
      this.errorRates = createErrorRateProjection({
        targets: config.errorTargets ?? DEFAULT_ERROR_TARGETS,
        ...(monitor.windowSize !== undefined ? { windowSize: monitor.windowSize } : {}),
        ...(monitor.windowMs !== undefined ? { windowMs: monitor.windowMs } : {}),
        ...(monitor.minSamples !== undefined ? { minSamples: monitor.minSamples } : {}),
        ...(monitor.weeklyVolume ? { budget: { volumes: monitor.weeklyVolume, timeZone } } : {}),
        clock: this.clock,
      });
      this.latency = createLatencyProjection({
        slaP95Ms: config.sla?.p95Ms ?? 10_000,
        ...(config.sla?.windowMs !== undefined ? { windowMs: config.sla.windowMs } : {}),
        ...(config.sla?.minSamples !== undefined ? { minSamples: config.sla.minSamples } : {}),
      });
      this.alertFold = createAlertFold({ errorRates: this.errorRates, latency: this.latency });
      this.canaries = createCanaryFold({
        onRollback: (r) =>
          this.record({
            ts: r.ts,
            workflowId: SYSTEM_WORKFLOW_ID,
            type: 'canary.rolled_back',
            payload: { canary: r.name, path: r.path, reason: r.reason, data: r.verdict },
          }),
        onPromote: (c) =>
          this.record({
            ts: this.clock.now(),
            workflowId: SYSTEM_WORKFLOW_ID,
            type: 'canary.promoted',
            payload: { canary: c.name, path: c.path },
          }),
      });
      this.cost = createCostTracker();
      if (config.metrics !== false) {
        const targets: Record<string, number> = {};
        for (const [k, v] of Object.entries(config.errorTargets ?? DEFAULT_ERROR_TARGETS)) {
          targets[k] = typeof v === 'number' ? v : v.rate;
        }
        this.metrics = createMetrics({
          ...(config.metrics?.prefix !== undefined ? { prefix: config.metrics.prefix } : {}),
          errorTargets: targets,
          slaP95Ms: config.sla?.p95Ms ?? 10_000,
          // A bad limit is left to createBudgets, which names it `budget.dailyUsd`.
          ...(config.budget && config.budget.dailyUsd > 0 && Number.isFinite(config.budget.dailyUsd)
            ? { budgetLimitUsd: config.budget.dailyUsd }
            : {}),
        });
      }
      if (config.tracing !== false) {
        this.tracing = createTracing({
          ...(config.tracing?.tracer ? { tracer: config.tracing.tracer } : {}),
          ...(config.tracing?.captureContent !== undefined
            ? { captureContent: config.tracing.captureContent }
            : {}),
          ...(config.tracing?.providerName ? { providerName: config.tracing.providerName } : {}),
        });
      }
      if (config.logs) {
        this.logSink = createEcsLogSink({
          destination: config.logs.destination,
          serviceName: config.logs.serviceName ?? 'keel',
          ...(config.logs.level ? { level: config.logs.level } : {}),
          ...(config.fileMode !== undefined ? { fileMode: config.fileMode } : {}),
        });
      }
      this.router = config.alerts
        ? createAlertRouter({
            rules: config.alerts.rules,
            clock: this.clock,
            ...(config.alerts.timeoutMs !== undefined ? { timeoutMs: config.alerts.timeoutMs } : {}),
            ...(config.alerts.onSinkError ? { onSinkError: config.alerts.onSinkError } : {}),
          })
        : undefined;
      // Policy state is the fold of the log: read back what each fold needs (src/runtime/restore.ts).
      const restoring: (() => Awaitable<void>)[] = [
        // Alert fold (windows, the week's error budgets), alert ledger, canary outcomes, the last
        // hour's cost.
        () => {
          const nowMs = this.clock.now();
          const costFromMs = nowMs - 3_600_000;
          return applyEvents(this.store.iterate({ fromTs: restoreFromMs(nowMs, this.weeks) }), (e) =>
            this.restoreEvent(e, costFromMs),
          );
        },
        // The gauges show the restored windows and budgets before the first workflow ends.
        () => this.refreshErrorGauges(),
        // Canary verdicts of all time: the runtime records them in the system workflow, whose index
        // finds them in a log of any size (the outcomes they judge came with the read above).
        () =>
          applyEvents(
            this.store.iterate({
              workflowId: SYSTEM_WORKFLOW_ID,
              type: ['canary.rolled_back', 'canary.promoted'],
            }),
            (e) => this.canaries.apply(e),
          ),
        // Breakers resume from their last recorded transition (`rt.breaker(name)` answers from it).
        // Transitions belong to the system workflow, whose index finds them in a log of any size.
        () =>
          withEvents(
            this.store.iterate({ workflowId: SYSTEM_WORKFLOW_ID, type: 'breaker.transitioned' }),
            (events) => {
              for (const e of events) {
                if (e.type === 'breaker.transitioned') this.breakerHistory.set(e.payload.breaker, e);
              }
            },
          ),
      ];
      this.unsubscribeCommit = this.store.onCommit((batch, info) => {
        if (info) this.metrics?.observeCommit(info.commitMs / 1_000);
        this.onCommit(batch);
      });
      const pricing = this.pricing;
      const hmacKey = this.redactionKey(config);
      this.fingerprint = fingerprinter(hmacKey);
      if (config.redact !== false) this.redactor = createRedactor({ ...config.redact, hmacKey });
      if (this.redactor) assertConfigNamesHaveNoPii(config, this.redactor);
      if (isCacheBackend(config.cache)) {
        this.cacheBackend = config.cache;
        this.cacheStore = config.cache.openCache({
          clock: this.clock,
          sealKey: hmacKey,
          onError: (error) => this.emit('error', error),
        });
      } else if (config.cache !== false) {
        const dbPath = config.store ? undefined : (config.db ?? 'keel.db');
        const path = config.cache?.path ?? (dbPath && dbPath !== ':memory:' ? `${dbPath}.cache` : undefined);
        this.cacheStore = createCache({
          clock: this.clock,
          ...(path ? { path, sealKey: hmacKey } : {}),
          ...(config.fileMode !== undefined ? { fileMode: config.fileMode } : {}),
          ...(config.cache?.maxEntries !== undefined ? { maxEntries: config.cache.maxEntries } : {}),
          ...(config.cache?.maxStaleMs !== undefined ? { maxStaleMs: config.cache.maxStaleMs } : {}),
        });
      }
      if (config.budget) {
        const { shared, ...budgetConfig } = config.budget;
        const deps: BudgetDeps = {
          clock: this.clock,
          pricing,
          parent: this.root,
          // The alert fold derives the budget alert from the committed `budget.alert`.
          onAlert: (payload) => {
            this.record({
              ts: this.clock.now(),
              workflowId: SYSTEM_WORKFLOW_ID,
              type: 'budget.alert',
              payload,
            });
          },
        };
        if (shared !== undefined) {
          if (!isBudgetBackend(shared)) {
            throw new ConfigError(
              'budget.shared',
              "must be a shared budget backend, e.g. redis('redis://127.0.0.1:6379') from 'keel/redis'",
            );
          }
          // Redis is the source of truth: the fleet's spend, not this process's log, so no restore.
          const fleet = shared.openBudgets(budgetConfig, { ...deps, onError: (e) => this.emit('error', e) });
          this.budgets = fleet;
          this.budgetBackend = shared;
          // The fleet's spend so far today; `rt.ready()` reports a Redis it cannot reach.
          this.budgetsReady = fleet.refresh();
          this.budgetsReady.catch((e: unknown) => this.emit('error', e));
        } else {
          const budgets = createBudgets(budgetConfig, deps);
          this.budgets = budgets;
          restoring.push(() =>
            withEvents(
              this.store.iterate({
                type: RESTORED_BUDGET_EVENTS,
                fromTs: budgets.today().startMs,
              }),
              (events) => budgets.restore(events),
            ),
          );
        }
      }
      // SQLite answers at once, so the runtime is ready on return; an asynchronous store (Postgres)
      // restores in the background and workflows wait for it (`rt.ready()` surfaces its errors).
      this.restoreSteps = restoring;
      this.restore();
      this.services = {
        clock: this.clock,
        inspect: config.inspect,
        breaker: (c) => this.breakerFor(c),
        budgets: this.budgets,
        cache: this.cacheStore && {
          key: cacheKeyer(hmacKey),
          get: (key, options) => this.cacheStore?.get(key, options),
          set: (key, agent, value, ttlMs) => this.cacheStore?.set(key, agent, value, ttlMs),
          singleFlight: (key, compute) => (this.cacheStore as Cache).singleFlight(key, compute),
        },
        price: (model, usage) => pricing.price(model, usage),
        // An answered id with no price is logged once per id (`pricing.unknown_model`), never thrown.
        priceCall: createCallPricer(pricing, {
          onUnknownModel: (seen) =>
            this.record({
              ts: this.clock.now(),
              workflowId: SYSTEM_WORKFLOW_ID,
              type: 'pricing.unknown_model',
              payload: seen,
            }),
        }),
        learned: this.learned,
        seed: this.seed,
        canaries: this.canaries,
      };
      const store = this.store;
      const appendOne = store.appendOne?.bind(store);
      this.liveEnv = {
        services: this.services,
        append: appendOne ?? ((e) => store.append([e])),
        replay: undefined,
      };
    } catch (e) {
      this.abandon(config);
      throw e;
    }
  }

  /**
   * The redaction key, which keys tokens and every fingerprint of user content (`inputHash`, cache
   * keys): `redact.hmacKey`, else KEEL_REDACT_KEY, else the key file beside the SQLite log
   * (`<db>.key`, created once), else a random key per process — refused with a shared cache, whose
   * processes must all key entries alike.
   */
  private redactionKey(config: RuntimeConfig): Buffer {
    const given = config.redact === false ? undefined : config.redact?.hmacKey;
    if (given !== undefined) resolveRedactorConfig({ hmacKey: given }); // names a bad key
    const env = process.env.KEEL_REDACT_KEY;
    if (given === undefined && env !== undefined && env !== '' && Buffer.byteLength(env) < 16) {
      throw new ConfigError(
        'KEEL_REDACT_KEY',
        'must be at least 16 bytes; use a random secret of 32 bytes from your secret store',
      );
    }
    const dbPath = config.store ? undefined : (config.db ?? 'keel.db');
    const keyFile = dbPath !== undefined && dbPath !== ':memory:' ? `${dbPath}.key` : undefined;
    const resolved = resolveRedactionKey(given, env, keyFile);
    if (resolved.source === 'process' && isCacheBackend(config.cache)) {
      throw new ConfigError(
        'redact.hmacKey',
        'is required with a shared cache: every process must key cache entries with the same secret; ' +
          'give each the same 32-byte secret from your secret store (redact.hmacKey or KEEL_REDACT_KEY)',
      );
    }
    return resolved.key;
  }

  /**
   * A constructor step failed (a bad budget, cache path, a log that cannot be read): releases what
   * was already opened — the store it opened (not one it was given), the actor system, the cache —
   * so a failed `createRuntime` leaves no file handle, thread or timer behind.
   */
  private abandon(config: RuntimeConfig): void {
    const quietly = (p: unknown): void => {
      if (p instanceof Promise) p.catch(() => undefined);
    };
    try {
      (this.root as typeof this.root | undefined)?.stop();
    } catch {
      // already stopped
    }
    quietly(this.cacheStore?.close());
    quietly(this.logSink?.close());
    if (!config.store) quietly(this.store.close());
  }

  register(name: string, topology: Topology<never, unknown>): this {
    this.topologies.set(name, topology);
    return this;
  }

  async replay(target: string, options: ReplayOptions = {}): Promise<ReplayReport[]> {
    await this.restoring;
    const ids = target === 'all' ? await this.startedWorkflowIds() : [target];
    const reports: ReplayReport[] = [];
    for (const id of ids) {
      const r = await this.replayOne(id, options);
      reports.push(r);
      options.onReport?.(r, reports.length, ids.length);
    }
    return reports;
  }

  private async replayOne(workflowId: string, options: ReplayOptions): Promise<ReplayReport> {
    const recorded = await this.store.query({ workflowId });
    const started = recorded.find((e) => e.type === 'workflow.started');
    const report = (name: string, divergences: Divergence[]): ReplayReport => ({
      workflowId,
      name,
      ok: divergences.length === 0,
      divergences,
      modelCalls: 0,
    });
    if (!started || started.type !== 'workflow.started') {
      return report('?', [
        {
          kind: 'not_replayable',
          path: '',
          message: `workflow ${workflowId} has no workflow.started event in this log (wrong id, or pruned by retention)`,
          recorded: undefined,
          replayed: undefined,
        },
      ]);
    }
    const name = started.payload.name;
    const interrupted = interruptionOf(recorded);
    if (interrupted) {
      const p = interrupted.payload;
      return {
        ...report(name, [
          {
            kind: 'not_replayable',
            path: '',
            message: `workflow ${workflowId} was interrupted at seq ${p.lastSeq} (marked at seq ${interrupted.seq} by ${p.markedBy}: ${p.reason}): its run never finished, so there is no recorded outcome to replay against`,
            recorded: p,
            replayed: undefined,
          },
        ]),
        interrupted: { seq: interrupted.seq, lastSeq: p.lastSeq, reason: p.reason, markedBy: p.markedBy },
      };
    }
    const topology = options.topologies?.[name] ?? this.topologies.get(name);
    if (!topology) {
      return report(name, [
        {
          kind: 'not_replayable',
          path: '',
          message: `no topology registered for workflow "${name}": pass rt.replay(id, { topologies: { '${name}': topology } }) or rt.register('${name}', topology)`,
          recorded: undefined,
          replayed: undefined,
        },
      ]);
    }
    const divergences: Divergence[] = [];
    const now = canonicalJson(describe(topology));
    const then = canonicalJson(started.payload.topology);
    if (now !== then) {
      divergences.push({
        kind: 'topology_changed',
        path: name,
        message: `the topology of "${name}" differs from the one recorded`,
        recorded: started.payload.topology,
        replayed: describe(topology),
      });
    }
    const source = recordedSource(recorded);
    let missing = 0;
    const counting: ReplaySource = {
      next: (path) => {
        const o = source.next(path);
        if (!o) missing++;
        return o;
      },
      rejection: (path) => source.rejection(path),
      settledBy: (path) => source.settledBy(path),
      cached: (path) => source.cached(path),
    };
    const clock = simulatedClock(started.ts);
    const replayed: KeelEvent[] = [];
    const env: WorkflowEnv = {
      services: {
        ...this.services,
        clock,
        inspect: undefined,
        budgets: undefined,
        cache: undefined,
        price: (model, usage) => (this.pricing.has(model) ? this.pricing.price(model, usage) : 0),
        priceCall: createCallPricer(this.pricing),
      },
      append: (e) => {
        replayed.push({
          ...e,
          seq: replayed.length + 1,
          v: e.v ?? 1,
          class: e.class ?? 'audit',
        });
        return Promise.resolve();
      },
      replay: counting,
    };
    let done = false;
    this.start(topology, started.payload.input, { workflowId, name }, env, () => {
      done = true;
    });
    // Every recorded answer is delivered by the record's last timestamp; a day past it, whatever is
    // still waiting (an attempt the record never saw end) will not end.
    const horizon = (recorded.at(-1)?.ts ?? started.ts) + 86_400_000;
    while (!done && clock.now() < horizon) await clock.advanceAsync(60_000);
    divergences.push(...compareDecisions(decisionsOf(recorded), decisionsOf(replayed)));
    if (missing > 0) {
      divergences.push({
        kind: 'missing_output',
        path: name,
        message: `${missing} model call(s) in the replay have no recorded output in the log`,
        recorded: undefined,
        replayed: missing,
      });
    }
    for (const u of source.unused()) {
      divergences.push({
        kind: 'extra_output',
        path: u.path,
        message: `${u.count} recorded outcome(s) at ${u.path} were not used by the replay`,
        recorded: u.count,
        replayed: 0,
      });
    }
    return report(name, divergences);
  }

  breaker(name: string): Breaker | undefined {
    // A breaker the log knows is built from its last transition when first asked for (no agent
    // used it since the restart): no timer of it runs before anyone looks.
    if (!this.breakers.has(name) && this.breakerHistory.has(name)) this.restoredBreaker(name);
    return this.breakers.get(name);
  }

  canary(pathOrName: string): CanaryControl | undefined {
    return this.canaries.control(pathOrName);
  }

  async ready(): Promise<void> {
    await (this.restoring ?? this.restoreFailed?.());
    await this.budgetsReady;
    await this.settleRecords();
  }

  /** Waits until the runtime-level events appended so far (and those their commits append) are committed. */
  private async settleRecords(): Promise<void> {
    let last: Promise<void> | undefined;
    while (last !== this.recorded) {
      last = this.recorded;
      await last;
    }
  }

  /**
   * Reads the log's recent past into the projections, budgets and breakers: synchronously on
   * SQLite; on an asynchronous store, in the background with runs waiting. A failed read (the
   * store unreachable) fails the runs waiting for it; the next run reads again.
   */
  private restore(): void {
    // Steps already done (a retry after a failure) are not repeated: the windows would count twice.
    const steps = this.restoreSteps.slice(this.restoreStepsDone).map((step) => (): Awaitable<void> => {
      const pending = step();
      if (!pending) {
        this.restoreStepsDone++;
        return;
      }
      return pending.then(() => {
        this.restoreStepsDone++;
      });
    });
    const restored = inSequence(steps);
    if (!restored) return;
    this.restoreFailed = undefined;
    this.restoring = restored.then(
      () => {
        this.restoring = undefined;
      },
      (error: unknown) => {
        this.restoring = undefined;
        this.restoreFailed = () => {
          // Try again for whoever asks next, rather than failing forever.
          this.restore();
          return this.restoring;
        };
        throw error;
      },
    );
    // Reported to each waiting run (and to `rt.ready()`), not as an unhandled rejection.
    this.restoring.catch(() => undefined);
  }

  /** Ids of every recorded workflow, in the order they started. */
  private async startedWorkflowIds(): Promise<string[]> {
    const ids = new Set<string>();
    for await (const e of this.store.iterate({ type: 'workflow.started' })) ids.add(e.workflowId);
    return [...ids];
  }

  private breakerFor(config: BreakerConfig): Breaker {
    const existing = this.breakers.get(config.name);
    if (existing && !this.restoredOnly.has(config.name)) return existing;
    // A breaker created from the log alone (for `rt.breaker(name)`) takes its agent's config on
    // first use: rebuilt from its last transition, which it recorded if it made one since.
    existing?.stop();
    this.restoredOnly.delete(config.name);
    const breaker = this.newBreaker({ ...this.breakerDefaults[config.name], ...config });
    this.breakers.set(config.name, breaker);
    return breaker;
  }

  /** Breakers built from the log's transitions and the configured defaults, before any agent used them. */
  private readonly restoredOnly = new Set<string>();

  /** Creates the breaker `name` from its recorded state, for `rt.breaker(name)` before first use. */
  private restoredBreaker(name: string): void {
    if (this.breakers.has(name)) return;
    this.breakers.set(name, this.newBreaker({ ...this.breakerDefaults[name], name }));
    this.restoredOnly.add(name);
  }

  private newBreaker(merged: BreakerConfig): Breaker {
    const last = this.breakerHistory.get(merged.name);
    return createBreaker(merged, {
      clock: this.clock,
      parent: this.root,
      ...(last ? { restore: breakerRestoreFrom({ ...last.payload, ts: last.ts }) } : {}),
      onTransition: (t) => {
        // The alert fold derives `breaker` alerts from the committed transition.
        const event: NewEvent<'breaker.transitioned'> = {
          ts: t.atMs,
          workflowId: SYSTEM_WORKFLOW_ID,
          type: 'breaker.transitioned',
          payload: {
            breaker: t.breaker,
            from: t.from,
            to: t.to,
            reason: t.reason,
            failures: t.failures,
            ...(t.resetTimeoutMs !== undefined ? { resetTimeoutMs: t.resetTimeoutMs } : {}),
          },
        };
        this.breakerHistory.set(t.breaker, { ...event, seq: 0, v: 1, class: 'audit' });
        this.record(event);
        this.emit('breaker', { breaker: t.breaker, from: t.from, to: t.to, reason: t.reason });
      },
    });
  }

  /**
   * Folds one event read back from the log on open: state only. Nothing is delivered — its alerts
   * were delivered when their `alert.raised` was committed — and no metric, span or log line is
   * written again. `cost` keeps the last hour, as before.
   */
  private restoreEvent(e: KeelEvent, costFromMs: number): void {
    if (e.ts >= costFromMs) this.cost.apply(e);
    this.learned.apply(e);
    this.overruns.apply(e);
    this.alertFold.apply(e);
    this.alertLedger.read(e);
    this.canaries.apply(e);
  }

  /**
   * Feeds one committed event to the live folds. Alerts the alert fold derives are appended as
   * `alert.raised` / `alert.resolved`; delivery follows those events when they are committed.
   */
  private project(e: KeelEvent): void {
    this.cost.apply(e);
    this.learned.apply(e);
    // The first overrun of an agent and model each day: appended as `alert.raised`, delivered
    // when committed, like every other alert.
    const overrun = this.overruns.apply(e);
    if (overrun !== undefined) this.record(alertToEvent(overrun));
    const derived = this.alertFold.apply(e);
    for (let i = 0; i < derived.length; i++) this.record(alertToEvent(derived[i] as Alert));
    this.canaries.apply(e);
    if (e.type === 'alert.raised' || e.type === 'alert.resolved') this.deliver(e);
    this.metrics?.apply(e);
    if (this.tracing || this.logSink) {
      let parent: Context | undefined;
      if (e.type === 'workflow.started') {
        parent = this.parents.get(e.workflowId);
        this.parents.delete(e.workflowId);
      }
      const ids = this.tracing?.onEvent(e, parent);
      this.logSink?.write(e, ids);
    }
  }

  /** Tells `rt.on('alert')` listeners and the sinks about a committed alert event. */
  private deliver(e: KeelEvent): void {
    const alert = this.alertLedger.read(e);
    if (alert === undefined) return;
    this.emit('alert', alert);
    this.router?.route(alert);
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
    if (typeof feedback?.correct !== 'boolean') {
      throw new ConfigError('feedback.correct', 'must be true or false');
    }
    if ((await this.store.query({ workflowId, type: 'workflow.started', limit: 1 })).length === 0) {
      throw new ConfigError(
        'workflowId',
        `no workflow "${workflowId}" in this log; pass the id a run returned`,
      );
    }
    await this.store.append([
      {
        ts: this.clock.now(),
        workflowId,
        type: 'feedback.recorded',
        payload: {
          correct: feedback.correct,
          ...(feedback.expected !== undefined
            ? { expected: this.redactor ? this.redactor.redact(feedback.expected).value : feedback.expected }
            : {}),
        },
      },
    ]);
  }

  async applyRetention(): Promise<PruneResult[]> {
    const day = 86_400_000;
    const now = this.clock.now();
    return [
      await this.store.prune({
        class: 'operational',
        olderThan: now - (this.retention.operationalDays ?? 90) * day,
      }),
      await this.store.prune({ class: 'audit', olderThan: now - (this.retention.auditDays ?? 2557) * day }),
    ];
  }

  markInterrupted(options: MarkInterruptedOptions): Promise<MarkInterruptedResult> {
    const run = this.marking.then(() => this.markInterruptedNow(options));
    this.marking = run.catch(() => undefined);
    return run;
  }

  private async markInterruptedNow(options: MarkInterruptedOptions): Promise<MarkInterruptedResult> {
    const { startedBefore, reason, markedBy } = checkMarkOptions(options, this.clock.now());
    if (this.store.readonly) {
      throw new ReadOnlyDatabaseError(
        (this.store as { path?: string }).path ?? 'the event log',
        'the runtime was given a read-only store',
      );
    }
    // Live before or after the (possibly asynchronous) read: either way, not dead.
    const liveBefore = new Set(this.unsettled);
    const open = await findOpenWorkflows(this.store, { startedBefore });
    const running: OpenWorkflow[] = [];
    const dead: OpenWorkflow[] = [];
    for (const w of open) {
      if (liveBefore.has(w.workflowId) || this.unsettled.has(w.workflowId)) running.push(w);
      else dead.push(w);
    }
    const redact = this.redactor;
    const marked: InterruptedWorkflow[] = [];
    for (let i = 0; i < dead.length; i += MARK_BATCH) {
      const batch = dead.slice(i, i + MARK_BATCH);
      const ts = this.clock.now();
      const events = batch.map((w) => {
        const e = interruptedEvent(w, ts, reason, markedBy);
        return redact ? { ...e, payload: redact.redact(e.payload).value } : e;
      });
      const committed = await this.store.append(events);
      batch.forEach((w, j) => marked.push({ ...w, seq: committed[j]?.seq ?? 0 }));
    }
    return { marked, running };
  }

  stats(): RuntimeStats {
    return {
      cost: this.cost.summary(),
      errorRates: this.errorRates.snapshot(this.clock.now()),
      latency: this.latency.snapshot(this.clock.now()),
    };
  }

  /** Appends one runtime-level event (breaker, budget, alert); a failure is reported as `error`. */
  private record(event: NewEvent): void {
    const redacted = this.redactor ? this.redactor.redact(event.payload).value : event.payload;
    const stored = redacted === event.payload ? event : ({ ...event, payload: redacted } as NewEvent);
    const committed = this.store.append([stored]);
    committed.catch((e: unknown) => {
      this.emit('error', e);
    });
    // What `ready()` and `close()` wait for: settles either way (the failure went to `error`).
    this.recorded = committed.then(
      () => undefined,
      () => undefined,
    );
  }

  private onCommit(batch: readonly KeelEvent[]): void {
    this.storeHealthy = true;
    const hasListeners = this.listenerCount('event') > 0;
    let workflowsEnded = false;
    for (const e of batch) {
      this.project(e);
      if (hasListeners) this.emit('event', e);
      if (this.live.size > 0) this.live.get(e.workflowId)?.next(e);
      if (
        e.type === 'workflow.completed' ||
        e.type === 'workflow.failed' ||
        e.type === 'workflow.cancelled' ||
        e.type === 'workflow.interrupted'
      ) {
        workflowsEnded = true;
        this.emit('workflow', e);
      }
    }
    // Error-rate gauges follow the rolling windows, refreshed once per batch that ended workflows.
    if (workflowsEnded) this.refreshErrorGauges();
  }

  /** Sets the error-rate and error-budget gauges from the windows (after a batch, after the restore). */
  private refreshErrorGauges(): void {
    if (!this.metrics) return;
    for (const t of this.errorRates.snapshot(this.clock.now())) {
      this.metrics.setErrorRate(t.taskType, t.errorRate);
      if (t.budget) this.metrics.setErrorBudgetRemaining(t.taskType, t.budget.remainingRatio);
    }
  }

  private newWorkflowId(): string {
    const t = this.clock.now().toString(36).padStart(9, '0');
    const r = Math.floor(this.rng.next() * 2 ** 32)
      .toString(36)
      .padStart(7, '0');
    return `wf_${t}${r}${(this.idCounter++ % 1296).toString(36).padStart(2, '0')}`;
  }

  private check(topology: AnyTopology): void {
    if (this.checkedTopologies.has(topology)) return;
    checkTopologyStrings(topology);
    this.pricing.assertKnown(
      agentsOf(topology).map((a) => a.model),
      (model) => `agent model "${model}" (add it to createRuntime({ pricing }))`,
    );
    if (this.redactor) assertTopologyNamesHaveNoPii(topology, this.redactor);
    this.checkedTopologies.add(topology);
  }

  private describeOnce(topology: AnyTopology): unknown {
    let d = this.descriptions.get(topology);
    if (d === undefined) {
      d = describe(topology);
      this.descriptions.set(topology, d);
    }
    return d;
  }

  /**
   * Starts a workflow. `onDone` runs once, after its final event committed (or failed to).
   * A live run is refused before anything is written when its id, name, topology strings or input
   * cannot be stored; a caller-chosen id that is running or recorded gets that run's outcome.
   */
  private start(
    topology: AnyTopology,
    input: unknown,
    options: RunOptions | undefined,
    env: WorkflowEnv,
    onDone: (outcome: Outcome) => void,
    beforeStart?: (workflowId: string) => void,
  ): void {
    let inputJson: string;
    try {
      if (!env.replay) {
        // Replay re-runs what the log holds under its recorded id and name: only live runs are checked.
        if (options?.workflowId !== undefined) checkWorkflowId(options.workflowId);
        if (options?.name !== undefined) assertWellFormed('RunOptions.name', options.name);
      }
      inputJson = canonicalJson(input ?? null);
    } catch (error) {
      onDone({
        ok: false,
        error: isJsonValueError(error) ? new UnstorableInputError(error.path, error.problem) : error,
      });
      return;
    }
    if (this.closed) {
      onDone({
        ok: false,
        error: new WorkflowCancelledError('the runtime is closed; create a new one with createRuntime()'),
      });
      return;
    }
    if (!this.restoring && this.restoreFailed) void this.restoreFailed();
    if (this.restoring) {
      // An asynchronous store is still being read: start once the runtime has caught up.
      this.restoring.then(
        () => this.start(topology, input, options, env, onDone, beforeStart),
        (error: unknown) => onDone({ ok: false, error }),
      );
      return;
    }
    try {
      this.check(topology);
      if (!env.replay && this.redactor) assertRunIdentifiersHaveNoPii(options, this.redactor);
    } catch (error) {
      onDone({ ok: false, error });
      return;
    }
    if (!env.replay && this.store.readonly) {
      // Refuse before any model call: nothing the workflow did could be recorded.
      onDone({
        ok: false,
        error: new ReadOnlyDatabaseError(
          (this.store as { path?: string }).path ?? 'the event log',
          'the runtime was given a read-only store',
        ),
      });
      return;
    }
    if (!env.replay && options?.workflowId !== undefined) {
      this.startOnce(
        topology,
        input,
        { ...options, workflowId: options.workflowId },
        inputJson,
        onDone,
        beforeStart,
      );
      return;
    }
    this.begin(topology, input, options, inputJson, env, onDone, beforeStart);
  }

  /**
   * A live run under a caller-chosen id: joins the run of that id in this runtime, or answers with
   * what the log recorded under it, or else begins it — holding a claim on the id meanwhile, so
   * concurrent duplicates join instead of running twice.
   */
  private startOnce(
    topology: AnyTopology,
    input: unknown,
    options: RunOptions & { workflowId: string },
    inputJson: string,
    onDone: (outcome: Outcome) => void,
    beforeStart?: (workflowId: string) => void,
  ): void {
    const workflowId = options.workflowId;
    const name = workflowName(topology, options);
    const claim = this.claims.get(workflowId);
    if (claim) {
      if (claim.name !== name) {
        onDone({ ok: false, error: new WorkflowIdConflictError(workflowId, claim.name, name) });
      } else {
        // A joiner's signal stops its own wait, not the run it joined (whose caller owns it).
        const signal = options.signal;
        let waiting = true;
        const onAbort = (): void => {
          if (!waiting) return;
          waiting = false;
          onDone({ ok: false, error: new WorkflowCancelledError(String(signal?.reason ?? 'aborted')) });
        };
        void claim.done.then((outcome) => {
          signal?.removeEventListener('abort', onAbort);
          if (!waiting) return;
          waiting = false;
          onDone({ ...outcome, fromLog: workflowId });
        });
        if (signal?.aborted) onAbort();
        else signal?.addEventListener('abort', onAbort, { once: true });
      }
      return;
    }
    let settleClaim: (outcome: Outcome) => void = () => undefined;
    const done = new Promise<Outcome>((resolve) => {
      settleClaim = resolve;
    });
    this.claims.set(workflowId, { name, done });
    const finish = (outcome: Outcome): void => {
      this.claims.delete(workflowId);
      settleClaim(outcome);
      onDone(outcome);
    };
    const decide = (events: readonly KeelEvent[]): void => {
      const recorded = recordedWorkflow(workflowId, name, events);
      if (recorded === undefined) {
        if (this.closed) {
          finish({
            ok: false,
            error: new WorkflowCancelledError('the runtime is closed; create a new one with createRuntime()'),
          });
        } else this.begin(topology, input, options, inputJson, this.liveEnv, finish, beforeStart);
      } else if (recorded.kind === 'completed') {
        finish({
          ok: true,
          result: {
            workflowId,
            value: recorded.output,
            ...(recorded.confidence !== undefined ? { confidence: recorded.confidence } : {}),
            costUsd: recorded.costUsd,
            latencyMs: recorded.latencyMs,
            agentsCalled: recorded.agentsCalled,
            recorded: true,
          },
          fromLog: workflowId,
        });
      } else {
        const fromLog =
          isWorkflowIdConflictError(recorded.error) || isWorkflowInProgressError(recorded.error);
        finish({ ok: false, error: recorded.error, ...(fromLog ? {} : { fromLog: workflowId }) });
      }
    };
    let events: Awaitable<KeelEvent[]>;
    try {
      events = this.store.query({ workflowId, type: LIFECYCLE_TYPES });
    } catch (error) {
      finish({ ok: false, error });
      return;
    }
    if (events instanceof Promise) events.then(decide, (error: unknown) => finish({ ok: false, error }));
    else decide(events);
  }

  /** Runs a workflow that passed every check, from its `workflow.started` to its end event. */
  private begin(
    topology: AnyTopology,
    input: unknown,
    options: RunOptions | undefined,
    inputJson: string,
    env: WorkflowEnv,
    onDone: (outcome: Outcome) => void,
    beforeStart?: (workflowId: string) => void,
  ): void {
    const workflowId = options?.workflowId ?? this.newWorkflowId();
    if (!env.replay) this.unsettled.add(workflowId);
    if (this.tracing && !env.replay) this.parents.set(workflowId, otelContext.active());
    beforeStart?.(workflowId);
    const name = workflowName(topology, options);
    if (!env.replay) this.topologies.set(name, topology);
    const clock = env.services.clock;
    const startedAt = clock.now();
    let appendError: unknown;
    let last: Promise<unknown> = Promise.resolve();
    /** Set once the execution exists: stops it when the log refuses an event. */
    const onAppendFailure: { abort?: (error: unknown) => void; fail?: (error: unknown) => void } = {};
    const markStoreUnhealthy = (): void => {
      if (!env.replay) this.storeHealthy = false;
    };
    const stats = { costUsd: 0, agentsCalled: 0 };
    const redactor = env.replay ? undefined : this.redactor;
    /** Findings of this workflow's redactions, by kind (empty when nothing was found). */
    let redactions: Record<string, number> = {};
    const append = redactor
      ? (event: NewEvent): Promise<unknown> => {
          const payload = redactor.redactInto(event.payload, redactions);
          return env.append(payload === event.payload ? event : ({ ...event, payload } as NewEvent));
        }
      : env.append;
    /** Type of the end event this workflow emitted, once it did. */
    let endType: KeelEvent['type'] | undefined;
    /** Replaces the outcome when the log refused the content of the `workflow.completed` event. */
    let refusedOutcome: Outcome | undefined;
    const onAppendError = (e: unknown, type: KeelEvent['type']): void => {
      if (isContentRefusal(e)) {
        // The log is fine; this event's content is not storable (NaN, bigint, cycle...).
        onRefused(e, type);
        return;
      }
      if (appendError === undefined) {
        appendError = e;
        // The log refused an event (locked, full, read-only): stop the workflow now, so no
        // further model call runs unrecorded, and make later workflows wait for the log.
        markStoreUnhealthy();
        onAppendFailure.abort?.(e);
      }
    };
    const scope: WorkflowScope = {
      workflowId,
      services: env.services,
      stats,
      replay: env.replay,
      emit(event) {
        // Once the log refused one of its events the workflow has failed: a later event (an agent
        // cancelled by that failure) would only half-write it.
        if (appendError !== undefined) return;
        let p: Promise<unknown>;
        try {
          p = append(event);
        } catch (e) {
          // It could not even be prepared for the log (a value the redaction walk cannot handle).
          p = Promise.reject(
            e instanceof EventValidationError
              ? e
              : new EventValidationError('payload', `could not be prepared for the log (${messageOf(e)})`),
          );
        }
        // Events of one transaction may share one promise: one handler for them is enough.
        if (p !== last) p.catch((e: unknown) => onAppendError(e, event.type));
        last = p;
      },
      committed: () => last,
    };
    const emitFailed = (error: unknown): void => {
      endType = 'workflow.failed';
      scope.emit({
        ts: clock.now(),
        workflowId,
        type: 'workflow.failed',
        payload: {
          category: categoryOf(error),
          // Well-formed, so the end event stays storable whatever a user's error message holds.
          message: messageOf(error).toWellFormed(),
          latencyMs: clock.now() - startedAt,
          costUsd: stats.costUsd,
          agentsCalled: stats.agentsCalled,
        },
      });
    };
    /**
     * The log refused an event of this workflow for its content. Before the end: the workflow fails
     * (`workflow.failed`, malformed_output). Its `workflow.completed`: a `workflow.failed` is recorded
     * in its place and the run rejects. Its `workflow.started`: nothing of it could be recorded, so
     * it stops without an end event.
     */
    const onRefused = (e: unknown, type: KeelEvent['type']): void => {
      if (type === 'workflow.started') {
        if (appendError === undefined) {
          appendError = e;
          onAppendFailure.abort?.(e);
        }
        return;
      }
      const error = refusalError(e, type);
      if (!finished) onAppendFailure.fail?.(error);
      else if (type === 'workflow.completed' && endType === type) {
        emitFailed(error);
        refusedOutcome = { ok: false, error };
      }
    };
    scope.emit({
      ts: startedAt,
      workflowId,
      type: 'workflow.started',
      payload: {
        name,
        topology: this.describeOnce(topology),
        input,
        inputHash: this.fingerprint(inputJson),
      },
    });

    let finished = false;
    const settle = (
      outcome: { ok: true; result: WorkflowResult<unknown> } | { ok: false; error: unknown },
    ): void => {
      this.running.delete(workflowId);
      if (hasKeys(redactions)) {
        const counts = redactions;
        redactions = {};
        scope.emit({ ts: clock.now(), workflowId, type: 'redaction.applied', payload: { counts } });
      }
      options?.signal?.removeEventListener('abort', onAbort);
      // Waits for the last event; again if a refusal appended a `workflow.failed` meanwhile. Every
      // rejection already went through onAppendError, which set `appendError` or `refusedOutcome`.
      const drain = (): void => {
        const final = last;
        const next = (): void => {
          if (last !== final) {
            drain();
            return;
          }
          if (!env.replay) this.unsettled.delete(workflowId);
          onDone(appendError !== undefined ? { ok: false, error: appendError } : (refusedOutcome ?? outcome));
        };
        final.then(next, next);
      };
      drain();
    };
    const ctx: NodeContext = {
      scope,
      path: name,
      deadlineAt: undefined,
    };
    let result: { value: unknown; confidence?: number } | undefined;
    // While the log is failing, a workflow runs only once its `workflow.started` is committed.
    const execution: Observable<NodeResult> =
      this.storeHealthy || env.replay
        ? exec(topology, input, ctx)
        : from(last.then(() => undefined)).pipe(concatMap(() => exec(topology, input, ctx)));
    const subscription = execution.subscribe({
      next: (r) => {
        result = r;
      },
      error: (error: unknown) => {
        if (finished) return;
        finished = true;
        emitFailed(error);
        settle({ ok: false, error });
      },
      complete: () => {
        if (finished) return;
        finished = true;
        const latencyMs = clock.now() - startedAt;
        const value = result?.value;
        // An output the log cannot store faithfully fails the workflow, recorded as such.
        const bad = findUnstorable(value);
        if (bad !== undefined) {
          const error = new UnstorableOutputError(bad.path, bad.problem);
          emitFailed(error);
          settle({ ok: false, error });
          return;
        }
        endType = 'workflow.completed';
        scope.emit({
          ts: clock.now(),
          workflowId,
          type: 'workflow.completed',
          payload: {
            output: value,
            ...(result?.confidence !== undefined ? { confidence: result.confidence } : {}),
            latencyMs,
            costUsd: stats.costUsd,
            agentsCalled: stats.agentsCalled,
          },
        });
        settle({
          ok: true,
          result: {
            workflowId,
            value,
            ...(result?.confidence !== undefined ? { confidence: result.confidence } : {}),
            costUsd: stats.costUsd,
            latencyMs,
            agentsCalled: stats.agentsCalled,
          },
        });
      },
    });
    const cancel = (reason: string): void => {
      if (finished) return;
      finished = true;
      subscription.unsubscribe();
      endType = 'workflow.cancelled';
      scope.emit({
        ts: clock.now(),
        workflowId,
        type: 'workflow.cancelled',
        payload: {
          reason: reason.toWellFormed(),
          latencyMs: clock.now() - startedAt,
          costUsd: stats.costUsd,
        },
      });
      settle({ ok: false, error: new WorkflowCancelledError(reason) });
    };
    onAppendFailure.abort = (error: unknown): void => {
      if (finished) return;
      finished = true;
      subscription.unsubscribe();
      settle({ ok: false, error });
    };
    onAppendFailure.fail = (error: unknown): void => {
      if (finished) return;
      finished = true;
      subscription.unsubscribe();
      emitFailed(error);
      settle({ ok: false, error });
    };
    if (appendError !== undefined) onAppendFailure.abort(appendError);
    const onAbort = (): void => cancel(String(options?.signal?.reason ?? 'aborted'));
    if (!finished) {
      this.running.set(workflowId, cancel);
      if (options?.signal) {
        if (options.signal.aborted) onAbort();
        else options.signal.addEventListener('abort', onAbort, { once: true });
      }
    }
  }

  run<I, O>(topology: Topology<I, O>, input: I, options?: RunOptions): Promise<WorkflowResult<O>> {
    return new Promise((resolve, reject) => {
      this.start(topology, input, options, this.liveEnv, (outcome) => {
        if (outcome.ok) resolve(outcome.result as WorkflowResult<O>);
        else reject(outcome.error instanceof Error ? outcome.error : new Error(messageOf(outcome.error)));
      });
    });
  }

  run$<I, O>(topology: Topology<I, O>, input: I, options?: RunOptions): Observable<KeelEvent> {
    return new Observable<KeelEvent>((subscriber) => {
      let id: string | undefined;
      let done = false;
      this.start(
        topology,
        input,
        options,
        this.liveEnv,
        (outcome) => {
          done = true;
          if (id) this.live.delete(id);
          const end = (): void => {
            if (outcome.ok) subscriber.complete();
            else subscriber.error(outcome.error);
          };
          if (outcome.fromLog === undefined) {
            end();
            return;
          }
          // A joined or already recorded workflowId: its committed events come from the log.
          const send = (events: readonly KeelEvent[]): void => {
            for (const e of events) {
              if (subscriber.closed) return;
              subscriber.next(e);
            }
            end();
          };
          const fail = (error: unknown): void => subscriber.error(error);
          try {
            const events = this.store.query({ workflowId: outcome.fromLog });
            if (events instanceof Promise) events.then(send, fail);
            else send(events);
          } catch (error) {
            fail(error);
          }
        },
        (workflowId) => {
          id = workflowId;
          this.live.set(workflowId, subscriber);
        },
      );
      return () => {
        if (!done && id) {
          this.running.get(id)?.('unsubscribed');
          this.live.delete(id);
        }
      };
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const cancel of [...this.running.values()]) cancel('runtime closed');
    for (const b of this.breakers.values()) b.stop();
    this.budgets?.stop();
    // Settles of calls that were in flight (the cancelled ones included) reach the shared budget,
    // and the `budget.alert`s its replies raise are appended, while the log is still open.
    if (this.budgets && 'flush' in this.budgets) await this.budgets.flush();
    // Alerts raised by what committed so far are committed (and so delivered) before the sinks drain.
    await this.settleRecords();
    await this.router?.drain();
    for (const server of this.servers) await server.close();
    this.root.stop();
    await this.store.close();
    await this.logSink?.close();
    await this.cacheStore?.close();
    await this.cacheBackend?.close();
    await this.budgetBackend?.close();
    this.unsubscribeCommit();
    this.live.clear();
    this.removeAllListeners();
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

/** True when `o` has an own enumerable key (no array built, unlike `Object.keys`). */
function hasKeys(o: Record<string, unknown>): boolean {
  for (const k in o) if (Object.hasOwn(o, k)) return true;
  return false;
}

/** Most `workflow.interrupted` events appended in one transaction by `markInterrupted`. */
const MARK_BATCH = 500;

/**
 * The `workflow.interrupted` mark of a recorded workflow, unless a real end event shows it finished
 * after all (a process that was still running when it was marked).
 */
function interruptionOf(recorded: readonly KeelEvent[]): KeelEvent<'workflow.interrupted'> | undefined {
  let mark: KeelEvent<'workflow.interrupted'> | undefined;
  for (const e of recorded) {
    if (e.type === 'workflow.interrupted') mark ??= e;
    else if (
      e.type === 'workflow.completed' ||
      e.type === 'workflow.failed' ||
      e.type === 'workflow.cancelled'
    )
      return undefined;
  }
  return mark;
}

/** Runs each step after the previous one: synchronously while they answer at once. */
function inSequence(steps: readonly (() => Awaitable<void>)[]): Promise<void> | undefined {
  for (let i = 0; i < steps.length; i++) {
    const pending = (steps[i] as () => Awaitable<void>)();
    if (pending) {
      return steps.slice(i + 1).reduce<Promise<void>>((p, step) => p.then(step), pending);
    }
  }
  return undefined;
}

/** True when the log refused an event for its content (not for its own state: locked, closed, full). */
function isContentRefusal(e: unknown): boolean {
  return isKeelError(e) && e.code === 'EVENT_INVALID';
}

/** The error a workflow fails with when the log refused the content of one of its events. */
function refusalError(e: unknown, type: KeelEvent['type']): UnstorableOutputError {
  const field = (e as { field?: unknown }).field;
  const message = messageOf(e);
  if (typeof field !== 'string')
    return new UnstorableOutputError(type, `was refused by the event log (${message})`);
  const prefix = `Event refused: ${field} `;
  const problem = message.startsWith(prefix)
    ? message.slice(prefix.length).replace(/\. Nothing in the batch was written\.$/, '')
    : `was refused by the event log (${message})`;
  return new UnstorableOutputError(`${type} ${field.replace(/^events\[\d+\]\./, '')}`, problem);
}
