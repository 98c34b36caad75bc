/**
 * The invocation-level events every step records the same way: a success (of a call or of an answer
 * served without one) and a failure shared from another workflow's identical call.
 */
import type { ErrorCategory, Usage } from '../../eventlog/events.js';
import type { NodeContext } from '../scope.js';
import type { AnyAgent, CallResult } from './types.js';
import { DEFAULT_ESTIMATE } from './types.js';

/** Estimated cost of one call of `agent`, USD (0 when the model has no price). */
export function estimateUsd(ctx: NodeContext, agent: AnyAgent): number {
  return ctx.scope.services.price(agent.model, agent.estimate ?? DEFAULT_ESTIMATE);
}

/** Logs an invocation that failed through another workflow's identical call (0 attempts of its own). */
export function sharedFailure(
  agent: AnyAgent,
  ctx: NodeContext,
  category: ErrorCategory,
  message: string,
): void {
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

/** Logs a successful invocation (`cached`: answered without a call of its own). */
export function succeeded(
  agent: AnyAgent,
  ctx: NodeContext,
  result: CallResult,
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
