/**
 * The public types of a runtime: what `createRuntime()` returns (`Runtime`), what a run takes and
 * resolves to, and the events `rt.on()` delivers.
 */
import type { TenantRow } from '../monitor/tenant-fold.js';
import type { ResumeOptions, ResumeReport } from '../durable/engine.js';
import type { EventEmitter } from 'eventemitter3';
import type { Observable } from 'rxjs';
import type { Clock } from '../core/clock.js';
import type { Pricing } from '../cost/pricing.js';
import type { CostSummary } from '../cost/tracker.js';
import type { Alert } from '../monitor/alert.js';
import type { CanaryControl } from '../monitor/canary-fold.js';
import type { TaskTypeErrorState } from '../monitor/error-rate-projection.js';
import type { LatencySnapshot } from '../monitor/latency-projection.js';
import type { MarkInterruptedOptions, MarkInterruptedResult } from '../compliance/interrupted.js';
import type { KeelMetrics } from '../observability/metrics.js';
import type { MetricsServer } from '../observability/serve.js';
import type { BreakerState, KeelEvent } from '../eventlog/events.js';
import type { EventStore, PruneResult } from '../eventlog/store.js';
import type { Breaker } from '../supervisor/breaker.js';
import type { Topology } from '../supervisor/topology.js';
import type { ReplayOptions, ReplayReport } from '../replay/engine.js';

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
  /**
   * The customer this workflow runs for: an internal customer id (`'acme'`, `'cust_4821'`), 1 to 64
   * letters, digits, `_`, `-`, `.` or `:`. Every event of the workflow carries it
   * (`payload.tenant`), its calls reserve in the tenant's budget (`budget.perTenant`), and cost,
   * errors, latency, metrics (`tenant` label, top-N + `other`), spans (`keel.tenant`), ECS lines
   * (`organization.id`) and `keel report --tenant` break down by it. An id the redactor's detectors
   * read as personal data (an email address, a phone number, a name) is refused with
   * `IdentifierPiiError`, a malformed one with `InvalidTenantError` — nothing is written. Absent:
   * the workflow has no tenant (no per-tenant budget applies; reported as `(none)`).
   */
  tenant?: string;
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

/** Live figures of a runtime: the same folds `keel report` runs over the log. */
export interface RuntimeStats {
  cost: CostSummary;
  errorRates: TaskTypeErrorState[];
  latency: LatencySnapshot;
  /**
   * Per tenant (`RunOptions.tenant`), most expensive first: workflows, model calls and cost (as
   * `cost` counts them), agent outcomes, errors and error rate, and workflow P95 latency — the
   * report's tenant table, live. Rebuilt from the log after a restart (over the restore window:
   * the current budget week, at least 7 days; `keel report --since` covers any range).
   */
  tenants: TenantRow[];
  /**
   * Budget actors in memory (0 without `budget`): one per fixed scope, plus tenants' — those with a
   * reservation open and at most `budget.idleTenantActors` idle ones (least recently used evicted).
   */
  budgetActors: number;
}

/**
 * A piece of text an agent's model streamed, as `rt.run$()` emits it beside the logged events:
 * `path` names the agent's node. Deltas are not written to the log (the agent's final output is),
 * and a broken stream's deltas are followed by its retry's, from the start.
 */
export interface RunDelta {
  type: 'delta';
  workflowId: string;
  path: string;
  text: string;
}

/** What `rt.run$()` emits: committed events and streamed text. */
export type RunItem = KeelEvent | RunDelta;

/** True when a `rt.run$()` item is streamed text rather than a logged event. */
export function isRunDelta(item: RunItem): item is RunDelta {
  return item.type === 'delta';
}

/**
 * A running Keel runtime. `S` is its event store's type: the embedded SQLite store answers reads
 * synchronously (`rt.store.query(...)`), Postgres with promises.
 */
export interface Runtime<S extends EventStore = EventStore> {
  /** Runs a topology; resolves after its events are committed (durable before acknowledged). */
  run<I, O>(topology: Topology<I, O>, input: I, options?: RunOptions): Promise<WorkflowResult<O>>;
  /**
   * The same run as a cold stream of its committed events, with the text agents stream as
   * {@link RunDelta} items beside them (in arrival order; not logged). Unsubscribing cancels it.
   */
  run$<I, O>(topology: Topology<I, O>, input: I, options?: RunOptions): Observable<RunItem>;
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
   * Continues the workflows of the log whose owner is gone (its lease lapsed, or its process is
   * not running on this host), and those a signal woke or whose wait timed out: recorded agent
   * outcomes are replayed, the agent in flight at the crash runs again (at-least-once: its
   * `AgentContext.attempt` continues the count), the rest runs live. Each is claimed atomically, so
   * several processes resuming at once never run one twice. Needs the topology registered under
   * the workflow's name (`rt.register`); one whose structure changed is refused
   * (`TopologyChangedError` in `refused`). Resolves once every resumed workflow ended or suspended.
   */
  resume(options?: ResumeOptions): Promise<ResumeReport>;
  /**
   * Delivers `value` to the `waitFor(name)` node a workflow waits in: validated by its schema,
   * recorded (`workflow.signalled`), and the workflow continues in this runtime. Resolves once the
   * signal is committed. Throws `UnknownWorkflowError`, `WorkflowFinishedError`,
   * `WorkflowNotWaitingError`, `WaitTimedOutError`, `SignalValidationError` or `WorkflowBusyError`.
   */
  signal(workflowId: string, name: string, value: unknown): Promise<{ workflowId: string; seq: number }>;
  /**
   * The result of a workflow by id: waits for it while this runtime runs it; else what the log
   * recorded (rejects with the recorded failure, `WorkflowWaitingError` while it waits,
   * `WorkflowInProgressError` while another process runs it, `UnknownWorkflowError`).
   */
  result<O = unknown>(workflowId: string): Promise<WorkflowResult<O>>;
  /**
   * Closes a workflow that cannot be resumed (its topology changed): appends `workflow.failed`
   * (category `unknown`, with `reason`). Throws `UnknownWorkflowError` or `WorkflowFinishedError`.
   */
  markFailed(workflowId: string, reason?: string): Promise<void>;
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
   * store's error (unreachable, wrong credentials …). Runs wait for it by themselves. With
   * `{ resume: true }` it then runs `rt.resume()` (durable execution) and resolves after it.
   */
  ready(options?: { resume?: boolean }): Promise<void>;
  /**
   * Shuts the runtime down, in this order: cancels running workflows (their calls are charged);
   * stops breakers and budgets; waits for a shared (Redis) budget to answer every settle and
   * release already written, appending the `budget.alert`s they raise, and closes its Redis
   * connection; delivers queued alerts; closes the metrics server; closes the cache (and a shared
   * cache's connection); commits what is pending and closes the log; then closes the ECS log file,
   * which the last commits still write to. Idempotent.
   */
  close(): Promise<void>;
}
