/**
 * Turn step: one model turn of a multi-turn attempt (a tool loop), metered like a call of its own.
 * Before the turn: the agent's breaker permit, the turn's budget reservation (`cost.reserved` with
 * `step`), the rate limit's permit for the turn's model (`config.limits`; a shed turn ends the loop
 * with `rate_limited`) and the write-ahead wait for the log; the attempt's first turn uses what
 * admission took for the attempt, and each turn settles its rate-limit tokens to what it reported.
 * The attempt's bulkhead slot is held across all its turns. After it: the turn is charged what it reported (`cost.incurred` with `step`,
 * `budget.overrun` above its reservation) and its permit settled (a failed turn counts against the
 * breaker). An attempt that metered its turns is not charged again when it ends (see the outcome
 * step): its usage is the sum of its turns.
 */
import { UnrecordedCallError } from '../../cost/errors.js';
import type { Usage } from '../../eventlog/events.js';
import { classifyError } from '../../providers/classify.js';
import { AgentError, isUsage, type ModelTurn, type TurnAnswer, type TurnOptions } from '../agent.js';
import { CircuitOpenError } from '../breaker.js';
import { messageOf } from '../errors.js';
import type { ReserveLikeResult } from '../scope.js';
import { holdReservation, writesAhead } from './admission.js';
import { applyLimit, limitKeyOf, pauseLimit, settleLimit } from './limits.js';
import type { AttemptSignal, CallState } from './types.js';
import { DEFAULT_ESTIMATE, ZERO_USAGE, isPromise, safeMessage } from './types.js';

/** The attempt ended (timed out, cancelled) while a turn was being admitted. */
class AttemptEndedError extends AgentError {
  constructor(reason: string) {
    super('cancelled', `the attempt ended (${reason}) before the model turn was made`);
  }
}

/**
 * The `turn` of attempt `attempt`'s context: meters each model turn through the call's holds.
 * Turns run one after another; a turn refused by the budget or the breaker rejects with
 * `BudgetExceededError` / `CircuitOpenError`, which ends the loop with that category.
 */
export function modelTurn(call: CallState, attempt: number, signal: AttemptSignal): ModelTurn {
  return async <R extends TurnAnswer>(
    step: number,
    make: (model: string) => Promise<R>,
    options?: TurnOptions,
  ): Promise<R> => {
    if (signal.reason !== undefined) throw new AttemptEndedError(signal.reason);
    if (!(Number.isInteger(step) && step >= 1))
      throw new AgentError(
        'validation_error',
        `turn(step): step must be an integer >= 1, got ${String(step)}`,
      );
    if (call.step !== undefined)
      throw new AgentError(
        'validation_error',
        `turn(${step}) was started while turn ${call.step} is still running; run the turns of one attempt one after another`,
      );
    call.step = step;
    try {
      // The attempt's first turn goes out on the holds admission took for the attempt.
      if (call.turns++ > 0) await admitTurn(call, attempt, step, signal, options);
      if (signal.reason !== undefined) throw new AttemptEndedError(signal.reason);
      call.turnCalling = true;
      let answer: R;
      try {
        answer = await make(call.model);
      } catch (e) {
        if (signal.reason === undefined) turnFailed(call, attempt, e);
        throw e;
      }
      if (signal.reason === undefined) turnAnswered(call, attempt, answer);
      return answer;
    } finally {
      if (call.attempt === signal) {
        call.step = undefined;
        call.turnCalling = false;
      }
    }
  };
}

/** Breaker permit, reservation and write-ahead for a turn after the first; throws a refusal. */
async function admitTurn(
  call: CallState,
  attempt: number,
  step: number,
  signal: AttemptSignal,
  options: TurnOptions | undefined,
): Promise<void> {
  const { agent, ctx } = call;
  const { services } = ctx.scope;
  if (agent.breaker) {
    const breaker = services.breaker(agent.breaker);
    call.permit = breaker.acquire();
    if (call.permit === undefined) throw new CircuitOpenError(breaker.name, breaker.retryInMs?.());
  }
  const usage = turnUsage(call, options);
  call.estimate = reservationUsd(call, usage);
  if (services.budgets) {
    let r: ReserveLikeResult;
    try {
      r = await services.budgets.reserve({
        model: call.model,
        taskType: agent.taskType,
        estimateUsd: call.estimate,
        usage,
      });
    } catch (e) {
      releaseHolds(call);
      throw e instanceof Error ? e : new Error(messageOf(e));
    }
    if (signal.reason !== undefined) {
      if (r.ok) r.reservation.release();
      releaseHolds(call);
      throw new AttemptEndedError(signal.reason);
    }
    if (!r.ok) {
      releaseHolds(call);
      throw r.error;
    }
    holdReservation(call, r, call.now(), call.model, attempt, step);
  }
  await limitTurn(call, usage, signal);
  // Write-ahead: the turn is made once its reservation is committed.
  const committed = writesAhead(call) ? ctx.scope.committed?.() : undefined;
  if (committed === undefined) return;
  try {
    await committed;
  } catch (e) {
    releaseHolds(call);
    throw new UnrecordedCallError(agent.name, e);
  }
  if (signal.reason !== undefined) {
    releaseHolds(call);
    throw new AttemptEndedError(signal.reason);
  }
}

/**
 * Usage a turn is expected to reach: with `maxOutputTokens`, the turn's input (as the caller
 * counted it, at least the agent's estimate and the attempt's worst case) plus the cap; without,
 * the agent's `estimate`.
 */
function turnUsage(call: CallState, options: TurnOptions | undefined): Usage {
  const { agent } = call;
  if (agent.maxOutputTokens === undefined) return agent.estimate ?? DEFAULT_ESTIMATE;
  const counted = options?.inputTokens;
  const inputTokens = Math.max(
    typeof counted === 'number' && counted >= 0 && Number.isFinite(counted) ? Math.ceil(counted) : 0,
    call.worst?.inputTokens ?? 0,
    agent.estimate?.inputTokens ?? 0,
  );
  return { inputTokens, outputTokens: agent.maxOutputTokens };
}

/** A turn's reservation, USD: its usage priced, raised to what the agent really spends (no cap). */
function reservationUsd(call: CallState, usage: Usage): number {
  const { agent, ctx } = call;
  const { services } = ctx.scope;
  const usd = services.price(call.model, usage);
  if (agent.maxOutputTokens !== undefined || services.learned === undefined) return usd;
  return services.learned.reserveUsd(agent.name, call.model, usd);
}

/**
 * The rate limit of the turn's model (after a downgrade, the cheaper one's key): waits for a permit
 * like admission does; a shed turn is recorded (`ratelimit.shed`) and ends the loop with
 * `RateLimitedError`, giving back the turn's breaker permit and reservation.
 */
async function limitTurn(call: CallState, usage: Usage, signal: AttemptSignal): Promise<void> {
  const { scope } = call.ctx;
  const limiter = scope.services.limiter;
  const key = limiter === undefined || scope.replay ? undefined : limitKeyOf(call);
  call.limitKey = key;
  if (key === undefined || limiter === undefined) return;
  const tenant = scope.tenant !== undefined ? { tenant: scope.tenant } : {};
  const t = call.now();
  const answer = limiter.acquire({
    key,
    tokens: usage.inputTokens + usage.outputTokens,
    ...tenant,
    // The attempt ending (timeout, cancel) takes a waiting turn out of the queue at once.
    signal: signal.get(),
  });
  const r = isPromise(answer) ? await answer : answer;
  const waitedMs = isPromise(answer) ? call.now() - t : 0;
  if (signal.reason !== undefined) {
    if (r.ok) r.permit.release(0);
    releaseHolds(call);
    throw new AttemptEndedError(signal.reason);
  }
  const shed = applyLimit(call, key, r, waitedMs);
  if (shed !== undefined) {
    releaseHolds(call);
    throw shed;
  }
}

function releaseHolds(call: CallState): void {
  // A turn refused before it was made: its rate-limit tokens come back whole.
  settleLimit(call, ZERO_USAGE);
  call.permit?.release();
  call.permit = undefined;
  call.reservation?.release();
  call.reservation = undefined;
}

/**
 * The turn answered: charges what it reported (its reservation when it reported no usable usage,
 * marked `estimated`), and the breaker counts a success — the model answered. A turn without usage
 * under `onMissingUsage: 'fail'`, with malformed usage or one that cannot be priced fails the
 * attempt with `malformed_output`, as a single call would.
 */
function turnAnswered(call: CallState, attempt: number, answer: TurnAnswer): void {
  const { cost } = call.steps;
  const reported = (answer as { usage?: unknown } | null)?.usage;
  const answered = (answer as { model?: unknown } | null)?.model;
  const model = typeof answered === 'string' && answered !== '' ? answered : call.model;
  call.turnCalling = false;
  call.permit?.success();
  call.permit = undefined;
  settleLimit(call, isUsage(reported) ? reported : undefined);
  const name = call.agent.name;
  if (reported === undefined) {
    cost.chargeEstimate(call, attempt, model);
    if (call.agent.onMissingUsage === 'fail')
      throw new AgentError(
        'malformed_output',
        `${name}: model turn ${call.step ?? 0} reported no usage, and the agent has onMissingUsage: 'fail'; the provider must report usage (the turn was charged its reservation, $${call.estimate.toFixed(6)})`,
      );
  } else if (!isUsage(reported)) {
    cost.chargeEstimate(call, attempt, model);
    throw new AgentError(
      'malformed_output',
      `${name}: model turn ${call.step ?? 0} reported usage ${describe(reported)}; usage must be { inputTokens, outputTokens } with finite numbers >= 0 (the turn was charged its reservation)`,
    );
  } else if (!cost.charge(call, attempt, reported, model)) {
    throw new AgentError('malformed_output', `${name}: ${call.pricingFailure}`);
  }
}

/** The turn failed: charged what the error says it cost, and counted by the breaker. */
function turnFailed(call: CallState, attempt: number, e: unknown): void {
  const { cost } = call.steps;
  call.turnCalling = false;
  let category;
  try {
    const f = classifyError(e, call.now());
    category = f.category;
    // A 429 with retry-after pauses the key for every caller, as for a single call.
    if (f.category === 'rate_limited' && f.retryAfterMs !== undefined) pauseLimit(call, f.retryAfterMs);
    // As for a single call (see the outcome step): no usage and no sign of a refusal → reservation.
    const unbilled = f.usage === undefined && f.unbilled === true;
    settleLimit(call, unbilled ? ZERO_USAGE : isUsage(f.usage) ? f.usage : undefined);
    if (unbilled) cost.charge(call, attempt, ZERO_USAGE, call.model);
    else if (!isUsage(f.usage)) cost.chargeEstimate(call, attempt);
    else cost.charge(call, attempt, f.usage, call.model);
  } catch {
    category = undefined;
    if (call.reservation !== undefined) cost.chargeEstimate(call, attempt);
  }
  if (category === undefined || category === 'cancelled') call.permit?.release();
  else call.permit?.failure(category);
  call.permit = undefined;
}

function describe(v: unknown): string {
  try {
    return JSON.stringify(v) ?? typeof v;
  } catch {
    return safeMessage(v);
  }
}
