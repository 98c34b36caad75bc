/**
 * The call of one invocation: the agent machine (machines/agent.machine.ts, driven by
 * ../agent-driver.ts) decides; this composition performs what each state asks for with the steps —
 * `gated` → admission, `calling` → attempt (its answer to the outcome step, which charges through
 * the cost step), leaving `calling` without an answer → the attempt is abandoned, a final state →
 * the outcome step settles the invocation (through the cache step for a stale answer).
 */
import {
  DEFAULT_RETRY_ON,
  type AgentMachineEvent,
  type AgentMachineInput,
} from '../../../machines/agent.machine.js';
import { hashSeed } from '../../core/random.js';
import type { NewEvent, Usage } from '../../eventlog/events.js';
import { driveAgent, type AgentDriver, type AgentListener, type AgentSnapshot } from '../agent-driver.js';
import type { LimitPermit } from '../../limits/limiter.js';
import type { GateWait } from './limits.js';
import type { NodeContext, PermitLike, ReservationLike } from '../scope.js';
import { admission } from './admission.js';
import { callCache } from './cache.js';
import { attempt } from './call.js';
import { cost } from './cost.js';
import { outcome } from './outcome.js';
import type {
  AnyAgent,
  AttemptSignal,
  CacheWrite,
  CallResult,
  CallState,
  CallSteps,
  Cancellable,
  Outcome,
  StartCall,
} from './types.js';
import { ZERO_USAGE } from './types.js';

/** The steps every call runs, in the machine's order. */
export const CALL_STEPS: CallSteps = Object.freeze({ cache: callCache, admission, attempt, outcome, cost });

/** An attempt timeout that never fires on the replay's simulated clock (~31,700 years). */
const REPLAY_NO_TIMEOUT_MS = 1e15;
/** START without a jitter seed: for agents whose delays are never jittered. */
const START: AgentMachineEvent = Object.freeze({ type: 'START' });

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
export const startCall: StartCall = (inv, input, out, cacheWrite) => {
  const call = new AgentCall(inv.agent, input, inv.ctx, out, cacheWrite, CALL_STEPS);
  inv.target = call;
  try {
    call.driver = driveAgent(call.machineInput(), call.driveOptions(), call);
  } catch (error) {
    out.reject(error instanceof Error ? error : new Error(String(error)));
    return;
  }
  if (inv.cancelReason !== undefined) {
    call.cancel(inv.cancelReason);
    return;
  }
  call.driver.send(call.startEvent());
};

/** The call of one invocation, driven by the agent machine's states. */
class AgentCall implements CallState, AgentListener, Cancellable {
  driver!: AgentDriver;
  readonly startedAt: number;
  readonly timeoutMs: number;
  readonly attemptBase: number;
  model: string;
  costUsd = 0;
  usageTotal: Usage = ZERO_USAGE;
  permit: PermitLike | undefined;
  reservation: ReservationLike | undefined;
  limit: LimitPermit | undefined;
  bulkhead: LimitPermit | undefined;
  gateWait: GateWait | undefined;
  limitKey: string | undefined;
  estimate = 0;
  pricingFailure = '';
  worst: Usage | undefined;
  attempt: AttemptSignal | undefined;
  turns = 0;
  step: number | undefined;
  turnCalling = false;
  lastResult: CallResult | undefined;
  lastOutput: unknown;
  rejection: Error | undefined;
  private handledState = '';
  private handledAttempt = 0;

  constructor(
    readonly agent: AnyAgent,
    readonly input: unknown,
    readonly ctx: NodeContext,
    readonly outcome: Outcome,
    readonly cacheWrite: CacheWrite | undefined,
    readonly steps: CallSteps,
  ) {
    const { scope } = ctx;
    const { services } = scope;
    this.startedAt = services.clock.now();
    const remaining = ctx.deadlineAt !== undefined ? Math.max(1, ctx.deadlineAt - this.startedAt) : Infinity;
    // In replay an attempt times out when its recorded outcome says so (delivered at the recorded
    // time): a timer of its own would race recorded times that include the live run's delays.
    this.timeoutMs = scope.replay ? REPLAY_NO_TIMEOUT_MS : Math.min(agent.timeoutMs, remaining);
    this.model = agent.model;
    this.attemptBase = ctx.priorAttempts ?? 0;
  }

  /** Made when asked for (jitter, `context.rng`), not kept: most calls never need it. */
  get seed(): string {
    const { scope, path } = this.ctx;
    return `${scope.services.seed}:${scope.workflowId}:${path}`;
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
    // The attempt's number in the log: after a crashed run's attempts when resumed.
    const n = snap.context.attempt + this.attemptBase;
    if (state === this.handledState && n === this.handledAttempt) return;
    const previous = this.handledState;
    this.handledState = state;
    this.handledAttempt = n;
    const { steps } = this;
    // Leaving `calling` without an outcome (timeout, cancel): abandon the attempt's call.
    if (previous === 'calling' && this.attempt) steps.attempt.abandon(this, n, state === 'cancelled');
    // Cancelled in `gated`: a wait for a bulkhead slot or a rate-limit permit leaves its queue.
    if (previous === 'gated' && this.gateWait) {
      if (state === 'cancelled') this.gateWait.abort();
      this.gateWait = undefined;
    }
    switch (state) {
      case 'gated':
        steps.admission.admit(this, n + 1);
        return;
      case 'calling':
        steps.attempt.start(this, n);
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
            attempt: n,
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
        steps.outcome.finish(this, snap);
    }
  }

  now(): number {
    return this.ctx.scope.services.clock.now();
  }

  emit(event: NewEvent): void {
    this.ctx.scope.emit(event);
  }
}
