/**
 * What the steps of one agent call share: the call's state ({@link CallState}) and the interface of
 * each step. `AgentCall` (./agent-call.ts) composes the steps in the order the agent machine asks
 * for them — admission, attempt, outcome, cost — the way cockatiel's `wrap` nests policies: a step
 * reaches another only through `call.steps` and this file's interfaces. The replay hooks
 * (./replay.ts) and the shared success/failure records (./record.ts) are plain functions.
 */
import type { AgentMachineEvent } from '../../../machines/agent.machine.js';
import type { ErrorCategory, NewEvent, Usage } from '../../eventlog/events.js';
import type { AgentDriver, AgentSnapshot } from '../agent-driver.js';
import type { Agent } from '../agent.js';
import type { LimitPermit } from '../../limits/limiter.js';
import type { GateWait } from './limits.js';
import { messageOf } from '../errors.js';
import type { NodeContext, PermitLike, ReservationLike } from '../scope.js';
import type { NodeResult } from '../topology.js';

/** Any agent, as the supervisor runs it (input and output unchecked). */
export type AnyAgent = Agent<never, unknown>;

/** Usage of an answer that made no call (a cache hit, a recorded answer, a failure without usage). */
export const ZERO_USAGE: Usage = Object.freeze({ inputTokens: 0, outputTokens: 0 });
/** What an agent without `estimate` is expected to use per call. */
export const DEFAULT_ESTIMATE: Usage = Object.freeze({ inputTokens: 1000, outputTokens: 500 });
/** Money comparisons tolerate float drift of one nano-dollar (as the budget machine does). */
export const USD_EPSILON = 1e-9;
/** The admission step's answer when the attempt may call the model. */
export const PASS: AgentMachineEvent = Object.freeze({ type: 'GATE.PASS' });

/** How an outcome is reported: to the invocation (hot path) or to a promise (a shared cache call). */
export interface Outcome {
  resolve(result: NodeResult): void;
  reject(error: Error): void;
}

/** What cancellation reaches: the running call, or a wait on another workflow's identical call. */
export interface Cancellable {
  cancel(reason: string): void;
}

/** One invocation as the steps before the call see it (the cache, a recorded answer). */
export interface InvocationState extends Outcome {
  readonly agent: AnyAgent;
  readonly ctx: NodeContext;
  /** Set once cancelled: the reason (a later step checks it before it starts). */
  cancelReason: string | undefined;
  /** What a cancellation reaches now. */
  target: Cancellable | undefined;
  /** Settles with what `work` settles with. */
  follow(work: Promise<NodeResult>): void;
}

/** Starts the model path of an invocation (admission, attempts, outcome), reporting to `outcome`. */
export type StartCall = (
  inv: InvocationState,
  input: unknown,
  outcome: Outcome,
  cacheWrite: CacheWrite | undefined,
) => void;

/** Where the leader of a cache miss writes its answer. */
export interface CacheWrite {
  key: string;
  ttlMs: number;
  staleIfError: boolean;
}

/** A successful answer with the model that gave it. */
export type CallResult = NodeResult & { model?: string };

/** One attempt's `AbortSignal`, made only when the agent asks for it. */
export class AttemptSignal {
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

/** The state of one call (one invocation that reached the model path), shared by its steps. */
export interface CallState {
  readonly agent: AnyAgent;
  readonly input: unknown;
  readonly ctx: NodeContext;
  readonly driver: AgentDriver;
  readonly outcome: Outcome;
  /** Set when this call leads a cache miss: where its answer is written. */
  readonly cacheWrite: CacheWrite | undefined;
  readonly startedAt: number;
  /** Per-attempt timeout, ms (the agent's, cut by the workflow deadline). */
  readonly timeoutMs: number;
  /** Seed of this call's randomness (jitter, `context.rng`): workflow seed, id and path. */
  readonly seed: string;
  /**
   * Attempts a crashed run already made at this path (`NodeContext.priorAttempts`, 0 unless
   * resumed): the machine counts this run's attempts from 1, the log and `context.attempt` number
   * them after these.
   */
  readonly attemptBase: number;
  readonly steps: CallSteps;
  /** The model to call (a budget downgrade changes it). */
  model: string;
  /** Charged so far, USD, and the usage reported so far. */
  costUsd: number;
  usageTotal: Usage;
  /** The breaker permit and budget reservation the attempt holds. */
  permit: PermitLike | undefined;
  reservation: ReservationLike | undefined;
  /** The attempt's rate-limit permit (`config.limits`) and bulkhead slot; see ./limits.ts. */
  limit: LimitPermit | undefined;
  bulkhead: LimitPermit | undefined;
  /** The cancel signal of the attempt's waits in `gated`, made on first use; see ./limits.ts. */
  gateWait: GateWait | undefined;
  /** The limits key of the last attempt that took a rate-limit permit (a 429 pauses it). */
  limitKey: string | undefined;
  /** What the attempt reserved, USD. */
  estimate: number;
  /** Why the last answer could not be priced (set by `cost.charge` when it returns false). */
  pricingFailure: string;
  /** With `maxOutputTokens`: the worst-case usage of one call (computed once). */
  worst: Usage | undefined;
  /** The attempt in flight; cleared when its outcome arrives or it is abandoned. */
  attempt: AttemptSignal | undefined;
  lastResult: CallResult | undefined;
  /**
   * Model turns the attempt in flight metered through `context.turn` (a tool loop); when > 0 its
   * turns were charged one by one, and the attempt's own usage is not charged again.
   */
  turns: number;
  /** The turn being admitted, made or charged (its `step`, written on its cost events). */
  step: number | undefined;
  /** True while a metered turn's model call is out (an abandoned attempt is charged for it). */
  turnCalling: boolean;
  /** The last unusable output (recorded on `agent.failed`). */
  lastOutput: unknown;
  /** The error a gate refusal rejects the invocation with. */
  rejection: Error | undefined;
  now(): number;
  emit(event: NewEvent): void;
}

/**
 * Gate of one attempt (`gated`): deadline, bulkhead, breaker, cost estimate, budget, rate limit,
 * write-ahead.
 */
export interface AdmissionStep {
  /** Answers the machine with `GATE.PASS` or `GATE.REJECT` (now or once an async answer arrives). */
  admit(call: CallState, attempt: number): void;
}

/** One attempt of the model call (`calling`): `run()`, or the recorded outcome in replay. */
export interface AttemptStep {
  start(call: CallState, attempt: number): void;
  /** The machine left `calling` without an outcome (timeout or cancel): abort and charge it. */
  abandon(call: CallState, attempt: number, cancelled: boolean): void;
}

/** Judges what an attempt produced and tells the machine; settles the invocation at the end. */
export interface OutcomeStep {
  answered(call: CallState, signal: AttemptSignal, attempt: number, out: unknown): void;
  threw(call: CallState, signal: AttemptSignal, attempt: number, error: unknown): void;
  /** The machine reached a final state: record the outcome and settle the invocation. */
  finish(call: CallState, snap: AgentSnapshot): void;
}

/** Charges attempts and settles their reservations. */
export interface CostStep {
  /** Charges `usage` priced on `answeredModel`; false when it cannot be priced (the estimate is charged). */
  charge(call: CallState, attempt: number, usage: Usage, answeredModel: string): boolean;
  /** Charges the attempt its reservation, marked `estimated`. */
  chargeEstimate(call: CallState, attempt: number, model?: string): void;
}

/** The cache's part in a call: its leader writes the answer, or serves a stale one on failure. */
export interface CallCacheStep {
  /** A successful call that leads a cache miss writes its answer. */
  remember(call: CallState, result: CallResult): void;
  /**
   * The call failed with `category`: serves a stale cached answer when the policy allows
   * (`staleIfError`), else calls `fallback`. False when the policy does not apply (nothing done).
   */
  serveStale(
    call: CallState,
    attempts: number,
    latencyMs: number,
    category: ErrorCategory,
    fallback: () => void,
  ): boolean;
}

/** The steps a call is composed of. */
export interface CallSteps {
  readonly cache: CallCacheStep;
  readonly admission: AdmissionStep;
  readonly attempt: AttemptStep;
  readonly outcome: OutcomeStep;
  readonly cost: CostStep;
}

/** A message for any thrown value, even one whose `message` or JSON form throws. */
export function safeMessage(e: unknown): string {
  try {
    return messageOf(e);
  } catch {
    return Object.prototype.toString.call(e);
  }
}

/** A short, safe description of a value a user's code returned, for an error message. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return 'a string';
  return typeof v === 'number' || typeof v === 'boolean' ? String(v) : typeof v;
}

/** JSON of a reported value for an error message (its type when it has none). */
export function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? describeValue(v);
  } catch {
    return describeValue(v);
  }
}

/** True for a promise (or any thenable) rather than a value answered at once. */
export function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
}
