/**
 * Cost step: charges each attempt what it used (`cost.incurred`), settles the attempt's budget
 * reservation with it, and records a charge above the reservation as `budget.overrun`. An attempt
 * without usable usage is charged its reservation, marked `estimated`. A tool loop's model turns
 * are charged one by one through the same functions (./turn.ts), their events carrying `step`.
 */
import type { Usage } from '../../eventlog/events.js';
import type { CallState, CostStep } from './types.js';
import { USD_EPSILON, ZERO_USAGE, safeMessage } from './types.js';

/**
 * Charges attempt `attempt` its reported `usage` priced on `answeredModel`. Returns false when
 * the usage cannot be priced (the attempt's estimate is charged instead, marked `estimated`).
 * A charge above what the attempt reserved is a `budget.overrun`.
 */
function charge(call: CallState, attempt: number, usage: Usage, answeredModel: string): boolean {
  const { scope, path } = call.ctx;
  let usd: number;
  try {
    usd = scope.services.priceCall(call.model, answeredModel, usage, call.agent.name);
    if (!(usd >= 0) || !Number.isFinite(usd)) throw new RangeError(`the price came out as ${usd}`);
  } catch (e) {
    call.pricingFailure = `the answer of model "${answeredModel}" could not be priced (${safeMessage(e)}); add the model to the pricing table`;
    chargeEstimate(call, attempt, answeredModel);
    return false;
  }
  call.costUsd += usd;
  scope.stats.costUsd += usd;
  call.usageTotal = {
    inputTokens: call.usageTotal.inputTokens + usage.inputTokens,
    outputTokens: call.usageTotal.outputTokens + usage.outputTokens,
  };
  const reservation = call.reservation;
  call.reservation = undefined;
  reservation?.settle(usd);
  call.emit({
    ts: call.now(),
    workflowId: scope.workflowId,
    type: 'cost.incurred',
    payload: {
      path,
      agent: call.agent.name,
      model: answeredModel,
      taskType: call.agent.taskType,
      attempt,
      ...(call.step !== undefined ? { step: call.step } : {}),
      usage,
      costUsd: usd,
      estimateUsd: call.estimate,
    },
  });
  if (reservation !== undefined && usd > call.estimate + USD_EPSILON) {
    call.emit({
      ts: call.now(),
      workflowId: scope.workflowId,
      type: 'budget.overrun',
      payload: {
        path,
        agent: call.agent.name,
        model: answeredModel,
        taskType: call.agent.taskType,
        attempt,
        ...(call.step !== undefined ? { step: call.step } : {}),
        reservedUsd: call.estimate,
        actualUsd: usd,
        overrunUsd: usd - call.estimate,
        capped: call.agent.maxOutputTokens !== undefined,
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
function chargeEstimate(call: CallState, attempt: number, model: string = call.model): void {
  const usd = call.estimate;
  const reservation = call.reservation;
  call.reservation = undefined;
  reservation?.settle(usd);
  if (usd <= 0) return;
  const { scope, path } = call.ctx;
  call.costUsd += usd;
  scope.stats.costUsd += usd;
  call.emit({
    ts: call.now(),
    workflowId: scope.workflowId,
    type: 'cost.incurred',
    payload: {
      path,
      agent: call.agent.name,
      model,
      taskType: call.agent.taskType,
      attempt,
      ...(call.step !== undefined ? { step: call.step } : {}),
      usage: ZERO_USAGE,
      costUsd: usd,
      estimateUsd: call.estimate,
      estimated: true,
    },
  });
}

/** The cost step. */
export const cost: CostStep = { charge, chargeEstimate };
