/**
 * Admission step (`gated`): whether an attempt may call the model, and what it holds while it does.
 * In order: the workflow deadline, a refusal the record made (replay), the agent's bulkhead slot,
 * the breaker's permit, the cost estimate, the budget's reservation (a shared budget answers
 * asynchronously), the rate limit's permit (taken last, so a call shed by the limiter gives back
 * its breaker permit and reservation, and never holds a slot others could use while it waits for
 * the breaker or the budget), and the write-ahead wait for the log. Answers the machine with
 * `GATE.PASS` or `GATE.REJECT`. Replay takes no bulkhead slot or rate-limit permit: a recorded
 * outcome is never limited.
 */
import { estimateTokens } from '../../cost/estimate.js';
import { UnrecordedCallError } from '../../cost/errors.js';
import type { ErrorCategory, Usage } from '../../eventlog/events.js';
import type { AcquireResult } from '../../limits/limiter.js';
import type { BulkheadResult } from '../../limits/bulkheads.js';
import { CircuitOpenError } from '../breaker.js';
import { messageOf } from '../errors.js';
import type { ReserveLikeResult } from '../scope.js';
import { GateWait, applyLimit, limitKeyOf, releaseLimits } from './limits.js';
import { refuseIfRecorded } from './replay.js';
import type { AdmissionStep, CallState } from './types.js';
import { DEFAULT_ESTIMATE, PASS, ZERO_USAGE, describeValue, isPromise, safeMessage } from './types.js';

function admit(call: CallState, attempt: number): void {
  const { agent, ctx, driver } = call;
  const { scope } = ctx;
  const t = call.now();
  // In replay a deadline refusal comes from the record (below), like every other time-bound decision.
  if (ctx.deadlineAt !== undefined && t >= ctx.deadlineAt && !scope.replay) {
    driver.send({ type: 'GATE.REJECT', category: 'timeout', reason: 'the workflow deadline passed' });
    return;
  }
  if (refuseIfRecorded(call, t)) return;
  const bulkheads = scope.services.bulkheads;
  if (agent.concurrency !== undefined && bulkheads !== undefined && !scope.replay) {
    const r = bulkheads.acquire(agent, scope.tenant, gateWait(call));
    if (isPromise(r)) {
      // The machine waits in `gated` for a slot; a cancel meanwhile gets it back on arrival.
      r.then(
        (result) => {
          if (!gated(call)) {
            if (result.ok) result.permit.release();
            return;
          }
          if (bulkheadAdmitted(call, result)) gate(call, attempt);
        },
        (e: unknown) => refuseAfterWait(call, 'rate_limited', e),
      );
      return;
    }
    if (!bulkheadAdmitted(call, r)) return;
  }
  gate(call, attempt);
}

/** The cancel signal of the attempt's waits in `gated` (aborted when the machine leaves it). */
function gateWait(call: CallState): GateWait {
  return (call.gateWait ??= new GateWait());
}

/** True while the machine still waits for this admission (a cancel moves it on). */
function gated(call: CallState): boolean {
  return call.driver.getSnapshot().value === 'gated';
}

/** The breaker, the estimate, the budget, then the rate limit. */
function gate(call: CallState, attempt: number): void {
  const { agent, ctx } = call;
  const { scope } = ctx;
  const { services } = scope;
  const t = call.now();
  if (agent.breaker && !scope.replay) {
    const breaker = services.breaker(agent.breaker);
    call.permit = breaker.acquire();
    if (!call.permit) {
      const error = new CircuitOpenError(breaker.name, breaker.retryInMs?.());
      refuse(call, 'circuit_open', error.message, error);
      return;
    }
  }
  let usage: Usage;
  try {
    usage = expectedUsage(call);
    call.estimate = reservationUsd(call, usage);
  } catch (e) {
    refuse(
      call,
      'validation_error',
      `agent "${agent.name}": the call's cost could not be estimated before it was made (${safeMessage(e)}); fix estimateInputTokens, estimate or the pricing table`,
    );
    return;
  }
  if (services.budgets && !scope.replay) {
    const r = services.budgets.reserve({
      model: agent.model,
      taskType: agent.taskType,
      estimateUsd: call.estimate,
      usage,
      ...(scope.tenant !== undefined ? { tenant: scope.tenant } : {}),
    });
    if (isPromise(r)) {
      // A budget shared across processes answers asynchronously; the machine waits in `gated`.
      r.then(
        (result) => {
          if (!gated(call)) {
            // Cancelled (or the deadline passed) while the reservation was on its way.
            if (result.ok) result.reservation.release();
            call.permit?.release();
            call.permit = undefined;
            releaseLimits(call, ZERO_USAGE);
            return;
          }
          if (admitted(call, result, call.now(), attempt)) limit(call, usage);
        },
        (e: unknown) => refuseAfterWait(call, 'budget_exceeded', e),
      );
      return;
    }
    if (!admitted(call, r, t, attempt)) return;
  }
  limit(call, usage);
}

/**
 * Refuses the attempt with `category`: gives back everything it holds (breaker permit, budget
 * reservation, bulkhead slot, rate-limit permit, none of them used) and tells the machine.
 */
function refuse(call: CallState, category: ErrorCategory, reason: string, error?: Error): void {
  call.permit?.release();
  call.permit = undefined;
  call.reservation?.release();
  call.reservation = undefined;
  releaseLimits(call, ZERO_USAGE);
  if (error !== undefined) call.rejection = error;
  call.driver.send({ type: 'GATE.REJECT', category, reason });
}

/** An asynchronous answer failed (a shared budget or limiter could not answer): refuses, if still gated. */
function refuseAfterWait(call: CallState, category: ErrorCategory, e: unknown): void {
  if (!gated(call)) return;
  const error = e instanceof Error ? e : new Error(messageOf(e));
  refuse(call, category, error.message, error);
}

/** Applies the bulkhead's answer; false when it rejected the call (recorded, the machine told). */
function bulkheadAdmitted(call: CallState, r: BulkheadResult): boolean {
  if (r.ok) {
    call.bulkhead = r.permit;
    return true;
  }
  const { scope, path } = call.ctx;
  const { error } = r;
  const { reason } = error;
  if (reason === 'cancelled') {
    // Not reached while gated (a cancel moves the machine on); a cancelled wait writes no rejection.
    refuse(call, 'cancelled', error.message, error);
    return false;
  }
  call.emit({
    ts: call.now(),
    workflowId: scope.workflowId,
    type: 'bulkhead.rejected',
    payload: {
      path,
      agent: call.agent.name,
      reason,
      waitedMs: error.waitedMs,
      ...(scope.tenant !== undefined ? { tenant: scope.tenant } : {}),
    },
  });
  refuse(call, 'rate_limited', error.message, error);
  return false;
}

/**
 * The rate limit of the call's key (`config.limits`), asked for the tokens the budget expects the
 * call to use; a call that must wait waits in `gated`. Unlimited keys go straight on.
 */
function limit(call: CallState, usage: Usage): void {
  const { scope } = call.ctx;
  const limiter = scope.services.limiter;
  const key = limiter === undefined || scope.replay ? undefined : limitKeyOf(call);
  call.limitKey = key;
  if (key === undefined || limiter === undefined) {
    passWhenRecorded(call);
    return;
  }
  const t = call.now();
  const r = limiter.acquire({
    key,
    tokens: usage.inputTokens + usage.outputTokens,
    ...(scope.tenant !== undefined ? { tenant: scope.tenant } : {}),
    signal: gateWait(call),
  });
  if (isPromise(r)) {
    r.then(
      (result) => {
        if (!gated(call)) {
          // Cancelled while it waited: it left the queue (`cancelled`); a permit that was already on
          // its way comes back unused (its tokens refunded).
          if (result.ok) result.permit.release(0);
          return;
        }
        if (limited(call, key, result, call.now() - t)) passWhenRecorded(call);
      },
      (e: unknown) => refuseAfterWait(call, 'rate_limited', e),
    );
    return;
  }
  // Answered at once: no wait, whatever the clock read meanwhile.
  if (limited(call, key, r, 0)) passWhenRecorded(call);
}

/** Applies the limiter's answer after `waitedMs`; false when it shed the call (recorded, the machine told). */
function limited(call: CallState, key: string, r: AcquireResult, waitedMs: number): boolean {
  const shed = applyLimit(call, key, r, waitedMs);
  if (shed === undefined) return true;
  refuse(call, 'rate_limited', shed.message, shed);
  return false;
}

/**
 * Usage a call is expected to reach: with `maxOutputTokens`, the worst case — the request's
 * input estimate plus the cap (computed once per invocation); without, the agent's `estimate`.
 */
function expectedUsage(call: CallState): Usage {
  const { agent } = call;
  if (agent.maxOutputTokens === undefined) return agent.estimate ?? DEFAULT_ESTIMATE;
  if (call.worst !== undefined) return call.worst;
  const counted = agent.estimateInputTokens
    ? (agent.estimateInputTokens as (input: unknown) => unknown)(call.input)
    : estimateTokens(call.input);
  if (typeof counted !== 'number' || !(counted >= 0) || !Number.isFinite(counted))
    throw new TypeError(
      `estimateInputTokens returned ${describeValue(counted)}; return a finite number of tokens >= 0`,
    );
  const inputTokens = Math.max(Math.ceil(counted), agent.estimate?.inputTokens ?? 0);
  call.worst = { inputTokens, outputTokens: agent.maxOutputTokens };
  return call.worst;
}

/** The amount one call reserves, USD: its usage priced, raised to what the agent really spends (no cap). */
function reservationUsd(call: CallState, usage: Usage): number {
  const { agent, ctx } = call;
  const { services, replay } = ctx.scope;
  const usd = services.price(agent.model, usage);
  if (agent.maxOutputTokens !== undefined || services.learned === undefined || replay) return usd;
  return services.learned.reserveUsd(agent.name, agent.model, usd);
}

/** Applies a budget's answer for attempt `attempt`; false when it refused (the machine was told). */
function admitted(call: CallState, r: ReserveLikeResult, t: number, attempt: number): boolean {
  const { agent } = call;
  if (!r.ok) {
    refuse(call, 'budget_exceeded', r.error.message, r.error);
    return false;
  }
  holdReservation(call, r, t, agent.model, attempt);
  return true;
}

/**
 * Holds a budget's reservation for the call's next model call (an attempt, or a tool loop's turn
 * `step`): a downgrade from `fromModel` is recorded (`budget.downgraded`) and switches the call's
 * model; then `cost.reserved`, which the write-ahead wait makes durable before the call.
 */
export function holdReservation(
  call: CallState,
  r: Extract<ReserveLikeResult, { ok: true }>,
  t: number,
  fromModel: string,
  attempt: number,
  step?: number,
): void {
  const { agent, ctx } = call;
  call.reservation = r.reservation;
  if (r.estimateUsd !== undefined) call.estimate = r.estimateUsd;
  if (r.model !== fromModel) {
    call.emit({
      ts: t,
      workflowId: ctx.scope.workflowId,
      type: 'budget.downgraded',
      payload: {
        path: ctx.path,
        agent: agent.name,
        fromModel,
        toModel: r.model,
        scope: r.downgradeScope ?? 'global',
      },
    });
    call.model = r.model;
  }
  call.emit({
    ts: t,
    workflowId: ctx.scope.workflowId,
    type: 'cost.reserved',
    payload: {
      path: ctx.path,
      agent: agent.name,
      model: call.model,
      taskType: agent.taskType,
      estimateUsd: call.estimate,
      attempt,
      ...(step !== undefined ? { step } : {}),
    },
  });
}

/**
 * Whether the call's next model call waits for the log first (write-ahead): one that can cost
 * money, unless the runtime has `writeAhead: 'reservations'` and the call holds no budget
 * reservation (then there is no `cost.reserved` to make durable first).
 */
export function writesAhead(call: CallState): boolean {
  return (
    call.estimate > 0 &&
    (call.reservation !== undefined || call.ctx.scope.services.writeAhead !== 'reservations')
  );
}

/**
 * Write-ahead: a call that can cost money starts only once everything emitted before it (its
 * `cost.reserved`, or its `agent.invoked`) is committed. If the log cannot commit it, the model
 * is not called: the attempt is refused with `log_unavailable` and its holds are returned.
 * With `writeAhead: 'reservations'` only a call holding a reservation waits ({@link writesAhead}).
 */
function passWhenRecorded(call: CallState): void {
  const { scope } = call.ctx;
  const { driver } = call;
  const committed = !scope.replay && writesAhead(call) ? scope.committed?.() : undefined;
  if (committed === undefined) {
    driver.send(PASS);
    return;
  }
  committed.then(
    () => {
      if (gated(call)) driver.send(PASS);
    },
    (e: unknown) => {
      if (!gated(call)) return;
      const error = new UnrecordedCallError(call.agent.name, e);
      refuse(call, 'log_unavailable', error.message, error);
    },
  );
}

/** The admission step. */
export const admission: AdmissionStep = { admit };
