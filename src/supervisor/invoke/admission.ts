/**
 * Admission step (`gated`): whether an attempt may call the model, and what it holds while it does.
 * In order: the workflow deadline, a refusal the record made (replay), the breaker's permit, the
 * cost estimate, the budget's reservation (a shared budget answers asynchronously), and the
 * write-ahead wait for the log. Answers the machine with `GATE.PASS` or `GATE.REJECT`.
 */
import { estimateTokens } from '../../cost/estimate.js';
import { UnrecordedCallError } from '../../cost/errors.js';
import type { Usage } from '../../eventlog/events.js';
import { CircuitOpenError } from '../breaker.js';
import { messageOf } from '../errors.js';
import type { ReserveLikeResult } from '../scope.js';
import { refuseIfRecorded } from './replay.js';
import type { AdmissionStep, CallState } from './types.js';
import { DEFAULT_ESTIMATE, PASS, describeValue, isPromise, safeMessage } from './types.js';

function admit(call: CallState, attempt: number): void {
  const { agent, ctx, driver } = call;
  const { scope } = ctx;
  const { services } = scope;
  const t = call.now();
  // In replay a deadline refusal comes from the record (below), like every other time-bound decision.
  if (ctx.deadlineAt !== undefined && t >= ctx.deadlineAt && !scope.replay) {
    driver.send({ type: 'GATE.REJECT', category: 'timeout', reason: 'the workflow deadline passed' });
    return;
  }
  if (refuseIfRecorded(call, t)) return;
  if (agent.breaker && !scope.replay) {
    const breaker = services.breaker(agent.breaker);
    call.permit = breaker.acquire();
    if (!call.permit) {
      call.rejection = new CircuitOpenError(breaker.name, breaker.retryInMs?.());
      driver.send({ type: 'GATE.REJECT', category: 'circuit_open', reason: call.rejection.message });
      return;
    }
  }
  let usage: Usage;
  try {
    usage = expectedUsage(call);
    call.estimate = reservationUsd(call, usage);
  } catch (e) {
    call.permit?.release();
    call.permit = undefined;
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
      estimateUsd: call.estimate,
      usage,
      ...(scope.tenant !== undefined ? { tenant: scope.tenant } : {}),
    });
    if (isPromise(r)) {
      // A budget shared across processes answers asynchronously; the machine waits in `gated`.
      r.then(
        (result) => {
          if (driver.getSnapshot().value !== 'gated') {
            // Cancelled (or the deadline passed) while the reservation was on its way.
            if (result.ok) result.reservation.release();
            call.permit?.release();
            call.permit = undefined;
            return;
          }
          if (admitted(call, result, call.now(), attempt)) passWhenRecorded(call);
        },
        (e: unknown) => {
          if (driver.getSnapshot().value !== 'gated') return;
          call.permit?.release();
          call.permit = undefined;
          call.rejection = e instanceof Error ? e : new Error(messageOf(e));
          driver.send({ type: 'GATE.REJECT', category: 'budget_exceeded', reason: call.rejection.message });
        },
      );
      return;
    }
    if (!admitted(call, r, t, attempt)) return;
  }
  passWhenRecorded(call);
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
  const { agent, ctx } = call;
  if (!r.ok) {
    call.rejection = r.error;
    call.permit?.release();
    call.permit = undefined;
    call.driver.send({ type: 'GATE.REJECT', category: 'budget_exceeded', reason: r.error.message });
    return false;
  }
  call.reservation = r.reservation;
  if (r.estimateUsd !== undefined) call.estimate = r.estimateUsd;
  if (r.model !== agent.model) {
    call.emit({
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
    },
  });
  return true;
}

/**
 * Write-ahead: a call that can cost money starts only once everything emitted before it (its
 * `cost.reserved`, or its `agent.invoked`) is committed. If the log cannot commit it, the model
 * is not called: the attempt is refused with `log_unavailable` and its holds are returned.
 */
function passWhenRecorded(call: CallState): void {
  const { scope } = call.ctx;
  const { driver } = call;
  const committed = call.estimate > 0 && !scope.replay ? scope.committed?.() : undefined;
  if (committed === undefined) {
    driver.send(PASS);
    return;
  }
  committed.then(
    () => {
      if (driver.getSnapshot().value === 'gated') driver.send(PASS);
    },
    (e: unknown) => {
      if (driver.getSnapshot().value !== 'gated') return;
      call.permit?.release();
      call.permit = undefined;
      call.reservation?.release();
      call.reservation = undefined;
      call.rejection = new UnrecordedCallError(call.agent.name, e);
      driver.send({ type: 'GATE.REJECT', category: 'log_unavailable', reason: call.rejection.message });
    },
  );
}

/** The admission step. */
export const admission: AdmissionStep = { admit };
