/**
 * What a running workflow can reach: the runtime's services (breakers, budgets, cache, pricing,
 * clock) and the workflow's own recorder. The supervisor depends on these small interfaces only;
 * `createRuntime()` supplies the real parts.
 */
import type { InspectionEvent, Observer } from 'xstate';
import type { Clock } from '../core/clock.js';
import type { BreakerState, ErrorCategory, NewEvent, Usage } from '../eventlog/events.js';
import type { Awaitable } from '../eventlog/store.js';
import type { CanaryFold } from '../monitor/canary-fold.js';
import type { Observable } from 'rxjs';
import type { Bulkheads } from '../limits/bulkheads.js';
import type { Limiter } from '../limits/limiter.js';
import type { Agent, BreakerConfig } from './agent.js';
import type { NodeResult } from './topology.js';

/** A permit to make one call through a breaker; settles once. */
export interface PermitLike {
  readonly probe: boolean;
  success(): void;
  failure(category: ErrorCategory): void;
  release(): void;
}

/** A shared circuit breaker as the supervisor uses it. */
export interface BreakerLike {
  readonly name: string;
  state(): BreakerState;
  /** A permit, or `undefined` when the breaker rejects the call. */
  acquire(): PermitLike | undefined;
  /** While open: ms until a probe is admitted. */
  retryInMs?(): number | undefined;
}

/** A budget reservation held during a call. */
export interface ReservationLike {
  settle(actualUsd: number): void;
  release(): void;
}

/** Budgets as the supervisor uses them. */
export interface BudgetsLike {
  /** Local budgets answer at once; a budget shared across processes (Redis) answers with a promise. */
  reserve(request: {
    model: string;
    taskType: string;
    estimateUsd: number;
    usage?: Usage;
    /** The workflow's tenant: the call also reserves in its `budget.perTenant` scope. */
    tenant?: string;
  }): Awaitable<ReserveLikeResult>;
}

/** Outcome of {@link BudgetsLike.reserve}. */
export type ReserveLikeResult =
  | {
      ok: true;
      reservation: ReservationLike;
      /** Model to call (a downgrade may change it). */
      model: string;
      /** Estimate after a downgrade re-priced it, USD. */
      estimateUsd?: number;
      /** Scope whose exhaustion caused a downgrade. */
      downgradeScope?: string;
    }
  | { ok: false; scope: string; error: Error };

/** A cached value as read back. */
export interface CachedLike {
  value: unknown;
  ageMs: number;
  stale: boolean;
}

/** The TTL cache as the supervisor uses it. */
export interface CacheLike {
  key(agentName: string, agentVersion: string, input: unknown): string;
  /** A memory/SQLite cache answers at once; a cache shared across processes (Redis) with a promise. */
  get(key: string, options?: { allowStale?: boolean }): Awaitable<CachedLike | undefined>;
  set(key: string, agent: string, value: unknown, ttlMs: number): void;
  singleFlight<T>(key: string, compute: () => Promise<T>): Promise<T>;
}

/** A recorded agent outcome, fed back during replay instead of calling the model. */
export type RecordedOutcome = (
  | { ok: true; value: unknown; confidence?: number; usage: Usage; model: string; costUsd: number }
  | { ok: false; category: ErrorCategory; message: string; costUsd: number; retryAfterMs?: number }
) & {
  /**
   * When the record saw this outcome (ms since epoch; a fraction orders outcomes recorded in the
   * same millisecond by their place in the log). Replay delivers it then, so siblings' outcomes,
   * retry backoffs and timeouts interleave as they did live. Absent: delivered at once.
   */
  at?: number;
};

/**
 * A recorded answer that needed no call of its own (a cache hit, or another workflow's identical
 * in-flight call): delivered at `at` (see {@link RecordedOutcome}).
 */
export type RecordedHit = (
  { ok: true; value: unknown; confidence?: number } | { ok: false; category: ErrorCategory; message: string }
) & { at?: number };

/** Source of recorded outcomes during replay; `undefined` when the log has none for that call. */
export interface ReplaySource {
  /** The next recorded attempt outcome at `path`. */
  next(path: string): RecordedOutcome | undefined;
  /**
   * The recorded outcome of the next invocation at `path` when it made no call of its own (a cache
   * hit, or another workflow's identical in-flight call, successful or not).
   */
  cached?(path: string): RecordedHit | undefined;
  /** The recorded gate refusal (breaker, budget, deadline) of the next invocation at `path`, if any. */
  rejection?(path: string): { category: ErrorCategory; reason: string; at?: number } | undefined;
  /**
   * When the last answer recorded at `path` or below it arrived (cancellations aside): a replayed
   * deadline fires no earlier, since live every one of them came before it.
   */
  settledBy?(path: string): number | undefined;
  /** The value signalled to the `waitFor` node at `path` (consumed), when the record has one. */
  signal?(path: string): RecordedWait | undefined;
}

/** Runtime services shared by every workflow. */
export interface Services {
  clock: Clock;
  /**
   * The runtime's inspection observer, if any. Agent actors are short-lived roots of their own (a
   * shared parent would make XState cache a transition per finished child and scan every scheduled
   * timer of the system on each stop); the same observer shows them next to the breakers.
   */
  inspect: Observer<InspectionEvent> | ((event: InspectionEvent) => void) | undefined;
  /** The shared breaker for a config (created on first use). */
  breaker(config: BreakerConfig): BreakerLike;
  budgets: BudgetsLike | undefined;
  cache: CacheLike | undefined;
  /** Actual cost of a call, USD. */
  price(model: string, usage: Usage): number;
  /**
   * Actual cost of a call already made, USD: priced by the model that answered when it has a price,
   * else by the requested one; never throws for an unknown model id (see `createCallPricer`).
   */
  priceCall(requestedModel: string, answeredModel: string, usage: Usage, agent: string): number;
  /**
   * What a call without an output cap reserves, learned from what the agent really spent on the
   * model (`src/cost/reservations.ts`); absent: the static estimate.
   */
  learned?: { reserveUsd(agent: string, model: string, estimateUsd: number): number };
  /**
   * Provider rate limits (`config.limits`), shared by every workflow; absent when none are
   * configured (and in replay: a recorded outcome is never limited).
   */
  limiter?: Limiter;
  /** Per-agent bulkheads (`agent({ concurrency })`); absent in replay. */
  bulkheads?: Bulkheads;
  /** Seed for per-call randomness (retry jitter, AgentContext.rng). */
  seed: string;
  /**
   * `'reservations'`: only a call holding a budget reservation waits for the log before it is made
   * (`RuntimeConfig.writeAhead`); absent or `'always'`: every priced call waits.
   */
  writeAhead?: 'always' | 'reservations';
  /** The runtime's canary judgements, by node path. */
  canaries: CanaryFold;
}

/** One running workflow. */
export interface WorkflowScope {
  readonly workflowId: string;
  /** The tenant the workflow runs for (`RunOptions.tenant`), when it has one. */
  readonly tenant?: string;
  readonly services: Services;
  /** Records an event for the log (committed in order, group-committed). */
  emit(event: NewEvent): void;
  /**
   * Settles once every event emitted so far is committed; rejects when the log refused one
   * (locked, read-only, full). A model call that costs money waits for it (write-ahead).
   * Absent: calls do not wait.
   */
  committed?(): Promise<unknown>;
  /** Totals the workflow result reports. */
  readonly stats: { costUsd: number; agentsCalled: number };
  /** Set while replaying: outcomes come from the log, and no model is called. */
  readonly replay: ReplaySource | undefined;
  /**
   * Set while a caller streams the workflow (`rt.run$()`): receives the text an agent's model
   * streams, by node path, as it arrives. Not logged (the agent's final output is).
   */
  readonly delta?: (path: string, text: string) => void;
  /**
   * Set while resuming a workflow cut off by a crash or suspended by a wait (`src/durable`):
   * recorded outcomes are replayed, the rest runs live.
   */
  readonly resume?: ResumeSource;
}

/** A finished agent invocation as recorded (what a resumed workflow replays instead of calling). */
export type RecordedFinal =
  | { ok: true; value: unknown; confidence?: number; costUsd: number }
  | { ok: false; category: ErrorCategory; message: string; costUsd: number };

/** A wait as recorded: when it times out, and the value signalled to it, if any. */
export interface RecordedWait {
  name: string;
  timeoutAt?: number;
  signalled?: { value: unknown };
}

/**
 * What a resumed workflow reads back from its own record (built by `src/durable/resume-source.ts`).
 */
export interface ResumeSource {
  /** The recorded final outcome of the next invocation at `path`, consumed; `undefined`: run it live. */
  take(path: string): RecordedFinal | undefined;
  /** Attempts already made by the invocation at `path` that was in flight at the crash. */
  priorAttempts(path: string): number;
  /**
   * The logged result of the tool call at `step`/`index` of the tool loop at `path` that was in
   * flight at the crash, when it succeeded and is asked for again with the same tool and arguments.
   */
  toolResult?(
    path: string,
    step: number,
    index: number,
    tool: string,
    args: unknown,
  ): { result: unknown } | undefined;
  /** True when the invocation at `path` has logged tool results to feed back. */
  hasToolResults?(path: string): boolean;
  /** The recorded wait at `path`, consumed (a `waitFor` node that ran before). */
  wait(path: string): RecordedWait | undefined;
  /** True (and consumed) when this topology decision is already in the log: do not write it again. */
  recorded(event: NewEvent): boolean;
  /** Paths of agent invocations that were in flight at the crash (they run again). */
  readonly inFlight: readonly string[];
  /** Runs an agent node: its recorded outcome if any, else `live` (attempt numbers continuing). */
  runAgent(
    agent: Agent<never, unknown>,
    input: unknown,
    ctx: NodeContext,
    live: (agent: Agent<never, unknown>, input: unknown, ctx: NodeContext) => Observable<NodeResult>,
  ): Observable<NodeResult>;
}

/** Where a node runs: its path and deadline (a node is cancelled by unsubscribing from it). */
export interface NodeContext {
  readonly scope: WorkflowScope;
  readonly path: string;
  /** Absolute time (ms since epoch) by which the node must finish. */
  readonly deadlineAt: number | undefined;
  /**
   * Set by `rt.resume()` on an agent node whose invocation was in flight at the crash: the attempts
   * it already made. The re-run's attempts are numbered after them (`context.attempt`, and the
   * `attempt` of its events), so no two attempts of the path share a number in the log.
   */
  readonly priorAttempts?: number;
}
