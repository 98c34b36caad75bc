/**
 * Runs one agent invocation: cache, then the agent machine (machines/agent.machine.ts, driven by
 * ./agent-driver.ts) whose states ask for the effects — gate (deadline, breaker, budget), call, and
 * the outcome — which this file performs and reports back. Every transition becomes a `KeelEvent`.
 *
 * Hot path: one invocation is one {@link AgentInvocation} and, when it calls the model, one
 * {@link AgentCall}; their steps are methods, not closures. An attempt's `AbortSignal` exists only
 * once the agent reads `context.signal`.
 */
import {
  DEFAULT_RETRY_ON,
  type AgentMachineEvent,
  type AgentMachineInput,
} from '../../machines/agent.machine.js';
import type { Clock } from '../core/clock.js';
import { hashSeed, seededRandom, type Random } from '../core/random.js';
import { ERROR_CATEGORIES, type ErrorCategory, type Usage } from '../eventlog/events.js';
import { estimateTokens } from '../cost/estimate.js';
import { UnrecordedCallError } from '../cost/errors.js';
import { classifyError } from '../providers/classify.js';
import { ProviderError } from '../providers/types.js';
import { driveAgent, type AgentDriver, type AgentListener, type AgentSnapshot } from './agent-driver.js';
import { isUsage, type Agent, type AgentContext, type AgentOutput, type CachePolicy } from './agent.js';
import {
  AgentFailedError,
  AgentTimeoutError,
  ValidationError,
  WorkflowCancelledError,
  categoryOf,
  messageOf,
} from './errors.js';
import type { NodeResult } from './topology.js';
import type { NodeContext } from './scope.js';
import { CircuitOpenError } from './breaker.js';
import type {
  CacheLike,
  CachedLike,
  PermitLike,
  RecordedHit,
  RecordedOutcome,
  ReservationLike,
  ReserveLikeResult,
} from './scope.js';

type AnyAgent = Agent<never, unknown>;

const ZERO_USAGE: Usage = Object.freeze({ inputTokens: 0, outputTokens: 0 });
/** An attempt timeout that never fires on the replay's simulated clock (~31,700 years). */
const REPLAY_NO_TIMEOUT_MS = 1e15;
const DEFAULT_ESTIMATE: Usage = Object.freeze({ inputTokens: 1000, outputTokens: 500 });
/** START without a jitter seed: for agents whose delays are never jittered. */
const START: AgentMachineEvent = Object.freeze({ type: 'START' });
/** The CANCEL reason of an invocation whose subscriber went away. */
const UNSUBSCRIBED = new WorkflowCancelledError('unsubscribed').message;
/** Money comparisons tolerate float drift of one nano-dollar (as the budget machine does). */
const USD_EPSILON = 1e-9;
const PASS: AgentMachineEvent = Object.freeze({ type: 'GATE.PASS' });

/** A message for any thrown value, even one whose `message` or JSON form throws. */
function safeMessage(e: unknown): string {
  try {
    return messageOf(e);
  } catch {
    return Object.prototype.toString.call(e);
  }
}

/** A short, safe description of what `run()` resolved with, for an error message. */
function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return 'a string';
  return typeof v === 'number' || typeof v === 'boolean' ? String(v) : typeof v;
}

/**
 * What is wrong with a `run()` answer (its shape, `model`, `confidence`; usage is judged apart),
 * or undefined when it can be used.
 */
function outputProblem(out: unknown): string | undefined {
  if (typeof out !== 'object' || out === null || Array.isArray(out))
    return `run() resolved ${describeValue(out)}; it must resolve { value, confidence?, usage?, model? }`;
  const { model, confidence } = out as { model?: unknown; confidence?: unknown };
  if (model !== undefined && (typeof model !== 'string' || model.length === 0))
    return `run() answered model ${describeValue(model)}; "model" must be the id of the model that answered, or left out`;
  if (confidence !== undefined && !(typeof confidence === 'number' && confidence >= 0 && confidence <= 1))
    return `run() answered confidence ${describeValue(confidence)}; "confidence" must be a number in [0, 1], or left out`;
  return undefined;
}

/** Estimated cost of one call of `agent`, USD (0 when the model has no price). */
export function estimateUsd(ctx: NodeContext, agent: AnyAgent): number {
  return ctx.scope.services.price(agent.model, agent.estimate ?? DEFAULT_ESTIMATE);
}

/** Where an invocation's outcome goes: an RxJS subscriber fits. */
export interface InvocationSink {
  next(result: NodeResult): void;
  complete(): void;
  error(error: unknown): void;
}

/** A running invocation. `unsubscribe()` cancels it; once it has settled that does nothing. */
export interface Invocation {
  unsubscribe(): void;
}

/** How an outcome is reported: to the invocation (hot path) or to a promise (a shared cache call). */
interface Outcome {
  resolve(result: NodeResult): void;
  reject(error: Error): void;
}

/** What cancellation reaches: the running call, or a wait on another workflow's identical call. */
interface Cancellable {
  cancel(reason: string): void;
}

/** Checks an output against the agent's schema and validator. */
function validate(
  agent: AnyAgent,
  value: unknown,
): { ok: true; value: unknown } | { ok: false; category: ErrorCategory; message: string } {
  let v = value;
  if (agent.schema) {
    const parsed = agent.schema.safeParse(value);
    if (!parsed.success) return { ok: false, category: 'validation_error', message: parsed.error.message };
    v = parsed.data;
  }
  if (agent.validate) {
    let verdict: ReturnType<NonNullable<AnyAgent['validate']>>;
    try {
      verdict = agent.validate(v);
    } catch (e) {
      return {
        ok: false,
        category: 'validation_error',
        message: `validate() threw (${safeMessage(e)}); make it return a string or { category, message } to reject an output`,
      };
    }
    if (verdict !== true) {
      if (typeof verdict === 'string') return { ok: false, category: 'validation_error', message: verdict };
      if (typeof verdict === 'object' && verdict !== null && ERROR_CATEGORIES.includes(verdict.category))
        return { ok: false, category: verdict.category, message: String(verdict.message) };
      return {
        ok: false,
        category: 'validation_error',
        message: `validate() returned ${describeValue(verdict)}; return true, a string or { category, message }`,
      };
    }
  }
  return { ok: true, value: v };
}

/**
 * Invokes an agent under every policy it declares. The result (or an {@link AgentFailedError}
 * carrying the category) reaches `sink` one microtask after the invocation settles, as a promise's
 * `then` would; `unsubscribe()` on the returned invocation cancels it. All events go to
 * `ctx.scope.emit`.
 */
export function invokeAgent(
  agent: AnyAgent,
  input: unknown,
  ctx: NodeContext,
  sink: InvocationSink,
): Invocation {
  const invocation = new AgentInvocation(agent, ctx, sink);
  invocation.start(input);
  return invocation;
}

/** One invocation: its sink, whether it settled, and what a cancellation reaches. */
class AgentInvocation implements Invocation, Outcome {
  private settled = false;
  private failure: Error | undefined;
  private result: NodeResult | undefined;
  /** Set once cancelled: the reason (a later phase checks it before it starts). */
  cancelReason: string | undefined;
  /** What a cancellation reaches now. */
  target: Cancellable | undefined;

  constructor(
    readonly agent: AnyAgent,
    readonly ctx: NodeContext,
    private readonly sink: InvocationSink,
  ) {}

  start(input: unknown): void {
    const { agent, ctx } = this;
    const { scope, path } = ctx;
    const { services } = scope;
    scope.emit({
      ts: services.clock.now(),
      workflowId: scope.workflowId,
      type: 'agent.invoked',
      payload: {
        path,
        agent: agent.name,
        agentVersion: agent.version,
        taskType: agent.taskType,
        model: agent.model,
      },
    });
    scope.stats.agentsCalled++;

    const recordedHit = scope.replay?.cached?.(path);
    if (recordedHit) {
      // Replaying a call the record answered without a call of its own (cache, or another
      // workflow's identical call): answer it the same way, when the record did.
      const wait = recordedHit.at === undefined ? 0 : recordedHit.at - services.clock.now();
      if (!(wait > 0)) {
        this.answerAsRecorded(recordedHit);
        return;
      }
      const timer = services.clock.setTimeout(() => {
        this.target = undefined;
        this.answerAsRecorded(recordedHit);
      }, wait);
      this.target = {
        cancel: () => {
          services.clock.clearTimeout(timer);
          sharedFailure(agent, ctx, 'cancelled', 'cancelled while waiting for the recorded answer');
        },
      };
      return;
    }
    const cache = agent.cache && !scope.replay ? services.cache : undefined;
    if (!cache || !agent.cache) {
      startCall(agent, input, ctx, this, undefined, this);
      return;
    }

    const policy = agent.cache;
    let key: string;
    try {
      key = cacheKeyOf(cache, agent, policy, input);
    } catch (e) {
      this.unkeyable(e);
      return;
    }
    const hit = cache.get(key);
    if (!isPromise(hit)) {
      if (hit) {
        serveHit(agent, ctx, key, hit);
        this.resolve({ value: hit.value });
        return;
      }
      this.follow(afterMiss(agent, input, ctx, cache, policy, key, this));
      return;
    }
    // A shared cache (Redis) answers asynchronously; an unreachable one resolves as a miss.
    this.follow(
      hit.then(
        (found) => {
          if (this.cancelReason !== undefined) {
            sharedFailure(agent, ctx, 'cancelled', 'cancelled during the cache lookup');
            throw new WorkflowCancelledError(this.cancelReason);
          }
          if (found) {
            serveHit(agent, ctx, key, found);
            return Promise.resolve({ value: found.value });
          }
          return afterMiss(agent, input, ctx, cache, policy, key, this);
        },
        () => afterMiss(agent, input, ctx, cache, policy, key, this),
      ),
    );
  }

  /** Replay: the recorded answer of an invocation that made no call of its own. */
  private answerAsRecorded(recorded: RecordedHit): void {
    const { agent, ctx } = this;
    if (!recorded.ok) {
      sharedFailure(agent, ctx, recorded.category, recorded.message);
      this.reject(
        new AgentFailedError(recorded.category, recorded.message, { agent: agent.name, path: ctx.path }),
      );
      return;
    }
    const hit = {
      value: recorded.value,
      ...(recorded.confidence !== undefined ? { confidence: recorded.confidence } : {}),
    };
    succeeded(agent, ctx, hit, 0, 0, ZERO_USAGE, 0, true);
    this.resolve(hit);
  }

  /** The input could not be keyed (the policy's `key` threw or returned `undefined`): no call is made. */
  private unkeyable(error: unknown): void {
    const { agent, ctx } = this;
    const message = `agent "${agent.name}": the cache key could not be built from the input (${messageOf(error)}); fix cache.key or the input`;
    sharedFailure(agent, ctx, 'validation_error', message);
    this.reject(
      new AgentFailedError('validation_error', message, {
        agent: agent.name,
        path: ctx.path,
        attempts: 0,
        cause: error,
      }),
    );
  }

  unsubscribe(): void {
    if (this.settled || this.cancelReason !== undefined) return;
    this.cancelReason = UNSUBSCRIBED;
    this.target?.cancel(UNSUBSCRIBED);
  }

  /** Settles with `result`; the sink hears it one microtask later (where a promise's `then` would). */
  resolve(result: NodeResult): void {
    if (this.settled) return;
    this.settled = true;
    this.result = result;
    queueMicrotask(() => this.deliver());
  }

  reject(error: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.failure = error;
    queueMicrotask(() => this.deliver());
  }

  private deliver(): void {
    if (this.failure !== undefined) this.sink.error(this.failure);
    else {
      this.sink.next(this.result as NodeResult);
      this.sink.complete();
    }
  }

  /** Settles with what `work` settles with, delivered straight from its reaction. */
  private follow(work: Promise<NodeResult>): void {
    work.then(
      (result) => {
        this.settled = true;
        this.sink.next(result);
        this.sink.complete();
      },
      (error: unknown) => {
        this.settled = true;
        this.sink.error(error);
      },
    );
  }
}

/**
 * The cache key of this invocation: agent name and version with the policy's `key(input)`, or with
 * the whole input. Throws when `key` throws or returns `undefined`, or the key is not JSON.
 */
function cacheKeyOf(
  cache: CacheLike,
  agent: AnyAgent,
  policy: Exclude<CachePolicy<never>, false>,
  input: unknown,
): string {
  if (policy.key === undefined) return cache.key(agent.name, agent.version, input);
  const part = policy.key(input as never);
  if (part === undefined) throw new TypeError('cache.key returned undefined');
  return cache.key(agent.name, agent.version, part);
}

/** Logs a cache hit and its success (no call of its own). */
function serveHit(agent: AnyAgent, ctx: NodeContext, key: string, hit: CachedLike): void {
  const { scope, path } = ctx;
  scope.emit({
    ts: scope.services.clock.now(),
    workflowId: scope.workflowId,
    type: 'cache.hit',
    payload: { path, agent: agent.name, key, ageMs: hit.ageMs, savedUsd: estimateUsd(ctx, agent) },
  });
  succeeded(agent, ctx, { value: hit.value }, 0, 0, ZERO_USAGE, 0, true);
}

/** The cache has nothing for `key`: make the call, or share another workflow's identical one. */
function afterMiss(
  agent: AnyAgent,
  input: unknown,
  ctx: NodeContext,
  cache: CacheLike,
  policy: Exclude<CachePolicy<never>, false>,
  key: string,
  invocation: AgentInvocation,
): Promise<NodeResult> {
  const { scope, path } = ctx;
  const { services } = scope;
  scope.emit({
    ts: services.clock.now(),
    workflowId: scope.workflowId,
    type: 'cache.miss',
    payload: { path, agent: agent.name, key },
  });
  const cacheWrite = { key, ttlMs: policy.ttlMs, staleIfError: policy.staleIfError !== false };
  let leader = false;
  const flight = cache.singleFlight(
    key,
    () =>
      new Promise<NodeResult>((resolve, reject) => {
        leader = true;
        startCall(agent, input, ctx, { resolve, reject }, cacheWrite, invocation);
      }),
  );
  // When another workflow is making this exact call, share its answer, unless this workflow is
  // cancelled first (the other call goes on for its own workflow). The leader's own cancellation
  // reaches its call.
  return new Promise<NodeResult>((resolve, reject) => {
    let done = false;
    const waiting: Cancellable = {
      cancel: () => {
        if (done || leader) return;
        done = true;
        sharedFailure(agent, ctx, 'cancelled', 'cancelled while sharing an identical in-flight call');
        reject(new WorkflowCancelledError(invocation.cancelReason ?? 'cancelled'));
      },
    };
    if (!leader) invocation.target = waiting;
    flight.then(
      (result) => {
        if (done) return;
        done = true;
        if (!leader) {
          scope.emit({
            ts: services.clock.now(),
            workflowId: scope.workflowId,
            type: 'cache.hit',
            payload: { path, agent: agent.name, key, ageMs: 0, savedUsd: estimateUsd(ctx, agent) },
          });
          succeeded(agent, ctx, result, 0, 0, ZERO_USAGE, 0, true);
        }
        resolve(result);
      },
      (error: unknown) => {
        if (done) return;
        done = true;
        if (!leader) sharedFailure(agent, ctx, categoryOf(error), messageOf(error));
        reject(error instanceof Error ? error : new Error(messageOf(error)));
      },
    );
    if (invocation.cancelReason !== undefined) waiting.cancel(invocation.cancelReason);
  });
}

/** True for a promise (or any thenable) rather than a value answered at once. */
function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
}

/** Logs an invocation that failed through another workflow's identical call (0 attempts of its own). */
function sharedFailure(agent: AnyAgent, ctx: NodeContext, category: ErrorCategory, message: string): void {
  ctx.scope.emit({
    ts: ctx.scope.services.clock.now(),
    workflowId: ctx.scope.workflowId,
    type: 'agent.failed',
    payload: {
      path: ctx.path,
      agent: agent.name,
      taskType: agent.taskType,
      model: agent.model,
      category,
      message,
      attempts: 0,
      latencyMs: 0,
      costUsd: 0,
    },
  });
}

function succeeded(
  agent: AnyAgent,
  ctx: NodeContext,
  result: NodeResult & { model?: string },
  attempts: number,
  latencyMs: number,
  usage: Usage,
  costUsd: number,
  cached: boolean,
): void {
  ctx.scope.emit({
    ts: ctx.scope.services.clock.now(),
    workflowId: ctx.scope.workflowId,
    type: 'agent.succeeded',
    payload: {
      path: ctx.path,
      agent: agent.name,
      taskType: agent.taskType,
      model: result.model ?? agent.model,
      output: result.value,
      ...(result.confidence !== undefined ? { confidence: result.confidence } : {}),
      attempts,
      latencyMs,
      usage,
      costUsd,
      ...(cached ? { cached: true } : {}),
    },
  });
}

interface CacheWrite {
  key: string;
  ttlMs: number;
  staleIfError: boolean;
}

/** Machine inputs by agent (for its own `timeoutMs`). */
const policies = new WeakMap<AnyAgent, AgentMachineInput>();

function policyOf(agent: AnyAgent, timeoutMs: number): AgentMachineInput {
  const retry = agent.retry;
  return {
    agent: agent.name,
    timeoutMs,
    maxAttempts: retry?.attempts ?? 1,
    backoff: retry?.backoff ?? 'exponential',
    baseDelayMs: retry?.baseDelayMs ?? 200,
    maxDelayMs: retry?.maxDelayMs ?? 30_000,
    jitter: retry?.jitter ?? true,
    retryOn: retry?.retryOn ?? DEFAULT_RETRY_ON,
  };
}

/** Starts the machine-driven part of an invocation: gate, call, retry, outcome. */
function startCall(
  agent: AnyAgent,
  input: unknown,
  ctx: NodeContext,
  outcome: Outcome,
  cacheWrite: CacheWrite | undefined,
  invocation: AgentInvocation,
): void {
  const call = new AgentCall(agent, input, ctx, outcome, cacheWrite);
  invocation.target = call;
  try {
    call.driver = driveAgent(call.machineInput(), call.driveOptions(), call);
  } catch (error) {
    outcome.reject(error instanceof Error ? error : new Error(String(error)));
    return;
  }
  if (invocation.cancelReason !== undefined) {
    call.cancel(invocation.cancelReason);
    return;
  }
  call.driver.send(call.startEvent());
}

/** One attempt's `AbortSignal`, made only when the agent asks for it. */
class AttemptSignal {
  private controller: AbortController | undefined;
  /** Why the attempt was abandoned (timeout, cancelled, finished); undefined while it runs. */
  reason: string | undefined;

  get(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.reason !== undefined) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  abort(reason: string): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.controller?.abort(reason);
  }
}

/** The call of one invocation, driven by the agent machine's states. */
class AgentCall implements AgentListener, Cancellable {
  driver!: AgentDriver;
  private readonly startedAt: number;
  private readonly timeoutMs: number;
  private readonly seed: string;
  private model: string;
  private costUsd = 0;
  private usageTotal: Usage = ZERO_USAGE;
  private permit: PermitLike | undefined;
  private reservation: ReservationLike | undefined;
  private estimate = 0;
  /** Why the last answer could not be priced (set by `emitCost` when it returns false). */
  private pricingFailure = '';
  /** With `maxOutputTokens`: the worst-case usage of one call (computed once). */
  private worst: Usage | undefined;
  /** The attempt in flight; cleared when its outcome arrives or it is abandoned. */
  private attempt: AttemptSignal | undefined;
  private handledState = '';
  private handledAttempt = 0;
  private lastResult: (NodeResult & { model?: string }) | undefined;
  private lastOutput: unknown;
  private rejection: Error | undefined;

  constructor(
    private readonly agent: AnyAgent,
    private readonly input: unknown,
    private readonly ctx: NodeContext,
    private readonly outcome: Outcome,
    private readonly cacheWrite: CacheWrite | undefined,
  ) {
    const { scope, path } = ctx;
    const { services } = scope;
    this.startedAt = services.clock.now();
    const remaining = ctx.deadlineAt !== undefined ? Math.max(1, ctx.deadlineAt - this.startedAt) : Infinity;
    // In replay an attempt times out when its recorded outcome says so (delivered at the recorded
    // time): a timer of its own would race recorded times that include the live run's delays.
    this.timeoutMs = scope.replay ? REPLAY_NO_TIMEOUT_MS : Math.min(agent.timeoutMs, remaining);
    this.seed = `${services.seed}:${scope.workflowId}:${path}`;
    this.model = agent.model;
  }

  /** The machine's input: the agent's policy, one object per agent (and per deadline-cut timeout). */
  machineInput(): AgentMachineInput {
    const { agent, timeoutMs } = this;
    if (timeoutMs === agent.timeoutMs) {
      let policy = policies.get(agent);
      if (policy === undefined) {
        policy = policyOf(agent, timeoutMs);
        policies.set(agent, policy);
      }
      return policy;
    }
    return policyOf(agent, timeoutMs);
  }

  /**
   * START, seeding the retry jitter from the workflow's seed and this call's path (so replays wait
   * the same) when a delay can be jittered at all.
   */
  startEvent(): AgentMachineEvent {
    const retry = this.agent.retry;
    if (retry === undefined || retry.attempts <= 1 || retry.jitter === false) return START;
    return { type: 'START', jitterSeed: hashSeed(this.seed) };
  }

  driveOptions(): Parameters<typeof driveAgent>[1] {
    const { services } = this.ctx.scope;
    return { clock: services.clock, inspect: services.inspect };
  }

  cancel(reason: string): void {
    this.driver.send({ type: 'CANCEL', reason });
  }

  onError(error: unknown): void {
    this.outcome.reject(error instanceof Error ? error : new Error(String(error)));
  }

  onSnapshot(snap: AgentSnapshot): void {
    const state = snap.value;
    const attempt = snap.context.attempt;
    if (state === this.handledState && attempt === this.handledAttempt) return;
    const previous = this.handledState;
    this.handledState = state;
    this.handledAttempt = attempt;
    // Leaving `calling` without an outcome (timeout, cancel): abort the attempt's call.
    if (previous === 'calling' && this.attempt) {
      this.attempt.abort(state === 'cancelled' ? 'cancelled' : 'timeout');
      this.attempt = undefined;
      this.chargeEstimate(attempt);
      if (state !== 'cancelled') {
        this.permit?.failure('timeout');
        this.permit = undefined;
        this.emit({
          ts: this.now(),
          workflowId: this.ctx.scope.workflowId,
          type: 'agent.timed_out',
          payload: { path: this.ctx.path, agent: this.agent.name, attempt, timeoutMs: this.timeoutMs },
        });
      } else {
        this.permit?.release();
        this.permit = undefined;
      }
    }
    switch (state) {
      case 'gated':
        this.gate(attempt + 1);
        return;
      case 'calling':
        this.call(attempt);
        return;
      case 'retrying': {
        const c = snap.context;
        this.emit({
          ts: this.now(),
          workflowId: this.ctx.scope.workflowId,
          type: 'agent.retried',
          payload: {
            path: this.ctx.path,
            agent: this.agent.name,
            attempt,
            category: c.category ?? 'unknown',
            message: c.message ?? '',
            delayMs: c.retryDelayMs,
            ...(c.retryAfterMs !== undefined ? { retryAfterMs: c.retryAfterMs } : {}),
          },
        });
        return;
      }
      case 'idle':
        return;
      default:
        this.finish(snap);
    }
  }

  private now(): number {
    return this.ctx.scope.services.clock.now();
  }

  private emit(event: Parameters<NodeContext['scope']['emit']>[0]): void {
    this.ctx.scope.emit(event);
  }

  /**
   * Charges attempt `attempt` its reported `usage` priced on `answeredModel`. Returns false when
   * the usage cannot be priced (the attempt's estimate is charged instead, marked `estimated`).
   * A charge above what the attempt reserved is a `budget.overrun`.
   */
  private emitCost(attempt: number, usage: Usage, answeredModel: string): boolean {
    const { scope, path } = this.ctx;
    let usd: number;
    try {
      usd = scope.services.priceCall(this.model, answeredModel, usage, this.agent.name);
      if (!(usd >= 0) || !Number.isFinite(usd)) throw new RangeError(`the price came out as ${usd}`);
    } catch (e) {
      this.pricingFailure = `the answer of model "${answeredModel}" could not be priced (${safeMessage(e)}); add the model to the pricing table`;
      this.chargeEstimate(attempt, answeredModel);
      return false;
    }
    this.costUsd += usd;
    scope.stats.costUsd += usd;
    this.usageTotal = {
      inputTokens: this.usageTotal.inputTokens + usage.inputTokens,
      outputTokens: this.usageTotal.outputTokens + usage.outputTokens,
    };
    const reservation = this.reservation;
    this.reservation = undefined;
    reservation?.settle(usd);
    this.emit({
      ts: this.now(),
      workflowId: scope.workflowId,
      type: 'cost.incurred',
      payload: {
        path,
        agent: this.agent.name,
        model: answeredModel,
        taskType: this.agent.taskType,
        attempt,
        usage,
        costUsd: usd,
        estimateUsd: this.estimate,
      },
    });
    if (reservation !== undefined && usd > this.estimate + USD_EPSILON) {
      this.emit({
        ts: this.now(),
        workflowId: scope.workflowId,
        type: 'budget.overrun',
        payload: {
          path,
          agent: this.agent.name,
          model: answeredModel,
          taskType: this.agent.taskType,
          attempt,
          reservedUsd: this.estimate,
          actualUsd: usd,
          overrunUsd: usd - this.estimate,
          capped: this.agent.maxOutputTokens !== undefined,
        },
      });
    }
    return true;
  }

  /**
   * Charges attempt `attempt` its reservation (its estimate), marked `estimated` in the log: the
   * attempt ended without usable usage (timed out, cancelled, none or a malformed one reported,
   * or unpriceable). Budgets restore from `cost.incurred`, so the spend survives a restart.
   */
  private chargeEstimate(attempt: number, model: string = this.model): void {
    const usd = this.estimate;
    const reservation = this.reservation;
    this.reservation = undefined;
    reservation?.settle(usd);
    if (usd <= 0) return;
    const { scope, path } = this.ctx;
    this.costUsd += usd;
    scope.stats.costUsd += usd;
    this.emit({
      ts: this.now(),
      workflowId: scope.workflowId,
      type: 'cost.incurred',
      payload: {
        path,
        agent: this.agent.name,
        model,
        taskType: this.agent.taskType,
        attempt,
        usage: ZERO_USAGE,
        costUsd: usd,
        estimateUsd: this.estimate,
        estimated: true,
      },
    });
  }

  private finish(snap: AgentSnapshot): void {
    const { agent, ctx, outcome, cacheWrite } = this;
    const { scope, path } = ctx;
    const { services } = scope;
    this.attempt?.abort('finished');
    // Whatever ended the invocation (cancel while gated, a sibling's failure), never keep a
    // breaker probe slot or a budget reservation: a held probe would leave the breaker half-open.
    this.permit?.release();
    this.permit = undefined;
    this.reservation?.release();
    this.reservation = undefined;
    const latencyMs = this.now() - this.startedAt;
    const c = snap.context;
    const lastResult = this.lastResult;
    if (snap.value === 'succeeded' && lastResult) {
      succeeded(agent, ctx, lastResult, c.attempt, latencyMs, this.usageTotal, this.costUsd, false);
      if (cacheWrite && services.cache)
        services.cache.set(cacheWrite.key, agent.name, lastResult.value, cacheWrite.ttlMs);
      outcome.resolve(lastResult);
      return;
    }
    const category: ErrorCategory = c.category ?? 'unknown';
    const message = c.message ?? String(snap.value);
    const replayedStale = snap.value === 'failed' ? scope.replay?.cached?.(path) : undefined;
    if (replayedStale?.ok) {
      succeeded(agent, ctx, replayedStale, c.attempt, latencyMs, this.usageTotal, this.costUsd, true);
      outcome.resolve(replayedStale);
      return;
    }
    if (snap.value !== 'cancelled' && cacheWrite?.staleIfError && services.cache) {
      const serveStale = (stale: CachedLike | undefined): void => {
        if (!stale) return this.fail(snap, category, message, latencyMs);
        this.emit({
          ts: this.now(),
          workflowId: scope.workflowId,
          type: 'cache.stale_served',
          payload: { path, agent: agent.name, key: cacheWrite.key, ageMs: stale.ageMs, reason: category },
        });
        succeeded(
          agent,
          ctx,
          { value: stale.value },
          c.attempt,
          latencyMs,
          this.usageTotal,
          this.costUsd,
          true,
        );
        outcome.resolve({ value: stale.value });
      };
      const stale = services.cache.get(cacheWrite.key, { allowStale: true });
      if (isPromise(stale)) stale.then(serveStale, () => serveStale(undefined));
      else serveStale(stale);
      return;
    }
    this.fail(snap, category, message, latencyMs);
  }

  private fail(snap: AgentSnapshot, category: ErrorCategory, message: string, latencyMs: number): void {
    const { agent, ctx, outcome } = this;
    const { scope, path } = ctx;
    const attempts = snap.context.attempt;
    if (snap.value === 'rejected') {
      this.emit({
        ts: this.now(),
        workflowId: scope.workflowId,
        type: 'agent.rejected',
        payload: { path, agent: agent.name, taskType: agent.taskType, category, reason: message },
      });
    } else {
      this.emit({
        ts: this.now(),
        workflowId: scope.workflowId,
        type: 'agent.failed',
        payload: {
          path,
          agent: agent.name,
          taskType: agent.taskType,
          model: this.model,
          category,
          message,
          attempts,
          latencyMs,
          costUsd: this.costUsd,
          ...(this.lastOutput !== undefined ? { output: this.lastOutput } : {}),
        },
      });
    }
    const details = { agent: agent.name, path, attempts };
    // The agent's name once: an agent's own error often starts with it already.
    const named = message.startsWith(`${agent.name}: `) ? message : `${agent.name}: ${message}`;
    if (snap.value === 'rejected' && this.rejection) outcome.reject(this.rejection);
    else if (snap.value === 'cancelled') outcome.reject(new WorkflowCancelledError(message));
    else if (category === 'timeout') outcome.reject(new AgentTimeoutError(named, details));
    else if (category === 'validation_error' || category === 'hallucination')
      outcome.reject(new ValidationError(named, details, category));
    else outcome.reject(new AgentFailedError(category, named, details));
  }

  /** Applies a budget's answer for attempt `attempt`; false when it refused (the machine was told). */
  private admitted(r: ReserveLikeResult, t: number, attempt: number): boolean {
    const { agent, ctx } = this;
    if (!r.ok) {
      this.rejection = r.error;
      this.permit?.release();
      this.permit = undefined;
      this.driver.send({ type: 'GATE.REJECT', category: 'budget_exceeded', reason: r.error.message });
      return false;
    }
    this.reservation = r.reservation;
    if (r.estimateUsd !== undefined) this.estimate = r.estimateUsd;
    if (r.model !== agent.model) {
      this.emit({
        ts: t,
        workflowId: ctx.scope.workflowId,
        type: 'budget.downgraded',
        payload: {
          path: ctx.path,
          agent: agent.name,
          fromModel: agent.model,
          toModel: r.model,
          scope: r.downgradeScope ?? 'global',
        },
      });
      this.model = r.model;
    }
    this.emit({
      ts: t,
      workflowId: ctx.scope.workflowId,
      type: 'cost.reserved',
      payload: {
        path: ctx.path,
        agent: agent.name,
        model: this.model,
        taskType: agent.taskType,
        estimateUsd: this.estimate,
        attempt,
      },
    });
    return true;
  }

  private gate(attempt: number): void {
    const { agent, ctx, driver } = this;
    const { scope, path } = ctx;
    const { services } = scope;
    const t = this.now();
    // In replay a deadline refusal comes from the record (below), like every other time-bound decision.
    if (ctx.deadlineAt !== undefined && t >= ctx.deadlineAt && !scope.replay) {
      driver.send({ type: 'GATE.REJECT', category: 'timeout', reason: 'the workflow deadline passed' });
      return;
    }
    const refused = scope.replay?.rejection?.(path);
    if (refused) {
      // When the record refused it: a refusal earlier than live could fail a par before a sibling's
      // recorded success.
      const reject = (): void => {
        if (driver.getSnapshot().value !== 'gated') return; // cancelled meanwhile
        driver.send({ type: 'GATE.REJECT', category: refused.category, reason: refused.reason });
      };
      const wait = refused.at === undefined ? 0 : refused.at - t;
      if (wait > 0) services.clock.setTimeout(reject, wait);
      else reject();
      return;
    }
    if (agent.breaker && !scope.replay) {
      const breaker = services.breaker(agent.breaker);
      this.permit = breaker.acquire();
      if (!this.permit) {
        this.rejection = new CircuitOpenError(breaker.name, breaker.retryInMs?.());
        driver.send({ type: 'GATE.REJECT', category: 'circuit_open', reason: this.rejection.message });
        return;
      }
    }
    let usage: Usage;
    try {
      usage = this.expectedUsage();
      this.estimate = this.reservationUsd(usage);
    } catch (e) {
      this.permit?.release();
      this.permit = undefined;
      driver.send({
        type: 'GATE.REJECT',
        category: 'validation_error',
        reason: `agent "${agent.name}": the call's cost could not be estimated before it was made (${safeMessage(e)}); fix estimateInputTokens, estimate or the pricing table`,
      });
      return;
    }
    if (services.budgets && !scope.replay) {
      const r = services.budgets.reserve({
        model: agent.model,
        taskType: agent.taskType,
        estimateUsd: this.estimate,
        usage,
      });
      if (isPromise(r)) {
        // A budget shared across processes answers asynchronously; the machine waits in `gated`.
        r.then(
          (result) => {
            if (driver.getSnapshot().value !== 'gated') {
              // Cancelled (or the deadline passed) while the reservation was on its way.
              if (result.ok) result.reservation.release();
              this.permit?.release();
              this.permit = undefined;
              return;
            }
            if (this.admitted(result, this.now(), attempt)) this.passWhenRecorded();
          },
          (e: unknown) => {
            if (driver.getSnapshot().value !== 'gated') return;
            this.permit?.release();
            this.permit = undefined;
            this.rejection = e instanceof Error ? e : new Error(messageOf(e));
            driver.send({ type: 'GATE.REJECT', category: 'budget_exceeded', reason: this.rejection.message });
          },
        );
        return;
      }
      if (!this.admitted(r, t, attempt)) return;
    }
    this.passWhenRecorded();
  }

  /**
   * Usage a call is expected to reach: with `maxOutputTokens`, the worst case — the request's
   * input estimate plus the cap (computed once per invocation); without, the agent's `estimate`.
   */
  private expectedUsage(): Usage {
    const { agent } = this;
    if (agent.maxOutputTokens === undefined) return agent.estimate ?? DEFAULT_ESTIMATE;
    if (this.worst !== undefined) return this.worst;
    const counted = agent.estimateInputTokens
      ? (agent.estimateInputTokens as (input: unknown) => unknown)(this.input)
      : estimateTokens(this.input);
    if (typeof counted !== 'number' || !(counted >= 0) || !Number.isFinite(counted))
      throw new TypeError(
        `estimateInputTokens returned ${describeValue(counted)}; return a finite number of tokens >= 0`,
      );
    const inputTokens = Math.max(Math.ceil(counted), agent.estimate?.inputTokens ?? 0);
    this.worst = { inputTokens, outputTokens: agent.maxOutputTokens };
    return this.worst;
  }

  /** The amount one call reserves, USD: its usage priced, raised to what the agent really spends (no cap). */
  private reservationUsd(usage: Usage): number {
    const { agent, ctx } = this;
    const { services, replay } = ctx.scope;
    const usd = services.price(agent.model, usage);
    if (agent.maxOutputTokens !== undefined || services.learned === undefined || replay) return usd;
    return services.learned.reserveUsd(agent.name, agent.model, usd);
  }

  /**
   * Write-ahead: a call that can cost money starts only once everything emitted before it (its
   * `cost.reserved`, or its `agent.invoked`) is committed. If the log cannot commit it, the model
   * is not called: the attempt is refused with `log_unavailable` and its holds are returned.
   */
  private passWhenRecorded(): void {
    const { scope } = this.ctx;
    const committed = this.estimate > 0 && !scope.replay ? scope.committed?.() : undefined;
    if (committed === undefined) {
      this.driver.send(PASS);
      return;
    }
    committed.then(
      () => {
        if (this.driver.getSnapshot().value === 'gated') this.driver.send(PASS);
      },
      (e: unknown) => {
        if (this.driver.getSnapshot().value !== 'gated') return;
        this.permit?.release();
        this.permit = undefined;
        this.reservation?.release();
        this.reservation = undefined;
        this.rejection = new UnrecordedCallError(this.agent.name, e);
        this.driver.send({
          type: 'GATE.REJECT',
          category: 'log_unavailable',
          reason: this.rejection.message,
        });
      },
    );
  }

  private call(attempt: number): void {
    const { agent, ctx } = this;
    const { scope, path } = ctx;
    const signal = new AttemptSignal();
    this.attempt = signal;
    const work: Promise<AgentOutput<unknown>> = scope.replay
      ? replayOutcome(scope.replay.next(path), agent.name, path, scope.services.clock)
      : runAgent(agent, this.input, this.attemptContext(attempt, signal));
    work.then(
      (out) => this.answered(signal, attempt, out),
      (e: unknown) => this.threw(signal, attempt, e),
    );
  }

  /** What `run` sees of attempt `attempt`: `signal` and `rng` are made on first use. */
  private attemptContext(attempt: number, signal: AttemptSignal): AgentContext {
    const { scope, path } = this.ctx;
    const seed = this.seed;
    let rng: Random | undefined;
    return {
      get signal(): AbortSignal {
        return signal.get();
      },
      attempt,
      model: this.model,
      workflowId: scope.workflowId,
      path,
      clock: scope.services.clock,
      get rng(): Random {
        return (rng ??= seededRandom(`${seed}:${attempt}`));
      },
      maxOutputTokens: this.agent.maxOutputTokens,
    };
  }

  /** `run` resolved: whatever it resolved with, the attempt ends (never a throw out of here). */
  private answered(signal: AttemptSignal, attempt: number, out: unknown): void {
    if (this.attempt !== signal || signal.reason !== undefined) return; // timed out, cancelled or finished
    this.attempt = undefined;
    try {
      this.judge(attempt, out);
    } catch (e) {
      this.crashed(attempt, e);
    }
  }

  /** Charges and checks one answer, then tells the machine how the attempt went. */
  private judge(attempt: number, out: unknown): void {
    const problem = outputProblem(out);
    const answer = (problem === undefined ? out : {}) as AgentOutput<unknown>;
    const answered = answer.model ?? this.model;
    const reported = problem === undefined ? answer.usage : (out as { usage?: unknown } | null)?.usage;
    let failure: string | undefined = problem;
    if (reported === undefined) {
      this.chargeEstimate(attempt, answered);
      if (failure === undefined && this.agent.onMissingUsage === 'fail')
        failure = `run() reported no usage, and the agent has onMissingUsage: 'fail'; return usage: { inputTokens, outputTokens } from run() (it was charged its reservation, $${this.estimate.toFixed(6)})`;
    } else if (!isUsage(reported)) {
      this.chargeEstimate(attempt, answered);
      failure ??= `run() reported usage ${safeJson(reported)}; "usage" must be { inputTokens, outputTokens } with finite numbers >= 0`;
    } else if (!this.emitCost(attempt, reported, answered)) {
      failure ??= this.pricingFailure;
    }
    if (failure !== undefined) {
      this.lastOutput = problem === undefined ? answer.value : undefined;
      this.failAttempt('malformed_output', failure);
      return;
    }
    const verdict = validate(this.agent, answer.value);
    if (!verdict.ok) {
      this.lastOutput = answer.value;
      this.failAttempt(verdict.category, verdict.message);
      return;
    }
    this.lastResult = {
      value: verdict.value,
      ...(answer.confidence !== undefined ? { confidence: answer.confidence } : {}),
      model: answered,
    };
    this.permit?.success();
    this.permit = undefined;
    this.driver.send({ type: 'CALL.SUCCEEDED' });
  }

  /** The output was unusable: the attempt fails (not counted against the breaker: the dependency answered). */
  private failAttempt(category: ErrorCategory, message: string): void {
    this.permit?.release();
    this.permit = undefined;
    this.driver.send({ type: 'CALL.FAILED', category, message });
  }

  /** `run` rejected (or threw): the attempt fails with the error's category. */
  private threw(signal: AttemptSignal, attempt: number, e: unknown): void {
    if (this.attempt !== signal || signal.reason !== undefined) return;
    this.attempt = undefined;
    try {
      const f = classifyError(e, this.now());
      if (f.usage === undefined) this.emitCost(attempt, ZERO_USAGE, this.model);
      else if (!isUsage(f.usage)) this.chargeEstimate(attempt);
      else this.emitCost(attempt, f.usage, this.model);
      this.permit?.failure(f.category);
      this.permit = undefined;
      this.driver.send({
        type: 'CALL.FAILED',
        category: f.category,
        message: f.message,
        ...(f.retryAfterMs !== undefined ? { retryAfterMs: f.retryAfterMs } : {}),
      });
    } catch (error) {
      this.crashed(attempt, error);
    }
  }

  /**
   * Last resort: handling an attempt's outcome threw (a hostile error object, an output the log
   * cannot take). Returns the holds and fails the invocation; never throws.
   */
  private crashed(attempt: number, error: unknown): void {
    const message = `agent "${this.agent.name}": its answer could not be handled (${safeMessage(error)})`;
    try {
      if (this.reservation !== undefined) this.chargeEstimate(attempt);
    } catch {
      this.reservation = undefined;
    }
    try {
      this.permit?.release();
      this.permit = undefined;
      if (this.driver.getSnapshot().value === 'calling') {
        this.driver.send({ type: 'CALL.FAILED', category: 'malformed_output', message });
        return;
      }
    } catch {
      // the machine itself failed: settle the invocation below
    }
    this.outcome.reject(
      new AgentFailedError('malformed_output', message, {
        agent: this.agent.name,
        path: this.ctx.path,
        attempts: attempt,
        cause: error,
      }),
    );
  }
}

/** JSON of a reported value for an error message (its type when it has none). */
function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? describeValue(v);
  } catch {
    return describeValue(v);
  }
}

/**
 * Calls the agent's `run`: a synchronous throw becomes a rejection, and a value that is not a
 * promise is taken as the answer.
 */
function runAgent(agent: AnyAgent, input: unknown, context: AgentContext): Promise<AgentOutput<unknown>> {
  try {
    return Promise.resolve(
      (agent.run as (input: unknown, context: AgentContext) => Promise<AgentOutput<unknown>>)(input, context),
    );
  } catch (e) {
    return Promise.reject(e instanceof Error ? e : new Error(safeMessage(e)));
  }
}

/**
 * During replay: the recorded outcome instead of a model call, delivered when the record saw it
 * (on the replay's simulated clock), so a retry's backoff, a timeout and a sibling's outcome happen
 * in the order they did live.
 */
function replayOutcome(
  recorded: RecordedOutcome | undefined,
  agentName: string,
  path: string,
  clock: Clock,
): Promise<AgentOutput<unknown>> {
  if (!recorded) {
    return Promise.reject(
      new AgentFailedError('unknown', `replay: no recorded outcome for ${agentName} at ${path}`, {
        agent: agentName,
        path,
      }),
    );
  }
  if (!recorded.ok && recorded.category === 'cancelled') {
    // The record never saw this call finish (its workflow or a sibling ended first): in replay it
    // stays pending until the same thing cancels it again.
    return new Promise<never>(() => undefined);
  }
  const settle = (): Promise<AgentOutput<unknown>> =>
    recorded.ok
      ? Promise.resolve({
          value: recorded.value,
          ...(recorded.confidence !== undefined ? { confidence: recorded.confidence } : {}),
          usage: recorded.usage,
          model: recorded.model,
        })
      : Promise.reject(
          new ProviderError(recorded.category, recorded.message, {
            ...(recorded.retryAfterMs !== undefined ? { retryAfterMs: recorded.retryAfterMs } : {}),
          }),
        );
  const wait = recorded.at === undefined ? 0 : recorded.at - clock.now();
  if (!(wait > 0)) return settle();
  return new Promise<void>((resolve) => {
    clock.setTimeout(resolve, wait);
  }).then(settle);
}
