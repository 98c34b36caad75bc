/**
 * A workflow's result by id (`rt.result`) and closing one that cannot be resumed (`rt.markFailed`),
 * read from and written to the log.
 */
import type { Clock } from '../core/clock.js';
import type { KeelEvent } from '../eventlog/events.js';
import type { EventStore } from '../eventlog/store.js';
import { WorkflowInProgressError } from '../runtime/errors.js';
import type { WorkflowResult } from '../runtime/types.js';
import { recordedWorkflow } from '../runtime/workflow-ids.js';
import type { Outcome } from '../runtime/workflow-run.js';
import { UnknownWorkflowError, WorkflowFinishedError, WorkflowWaitingError } from './errors.js';
import { DURABLE_TYPES } from './scan.js';

/**
 * The result of `workflowId`: the outcome of the run this runtime holds (`joinable`), else what
 * the log recorded.
 */
export async function resultOf<O>(
  store: EventStore,
  workflowId: string,
  joinable: Promise<Outcome> | undefined,
): Promise<WorkflowResult<O>> {
  const outcome = joinable ? await joinable : undefined;
  if (outcome) {
    if (outcome.ok) return outcome.result as WorkflowResult<O>;
    throw outcome.error;
  }
  const events: readonly KeelEvent[] = await store.query({ workflowId, type: DURABLE_TYPES });
  if (events.length === 0) throw new UnknownWorkflowError(workflowId);
  const started = events.find((e) => e.type === 'workflow.started');
  const name = started?.type === 'workflow.started' ? started.payload.name : '';
  const recorded = recordedWorkflow(workflowId, name, events);
  if (recorded?.kind === 'completed') {
    return {
      workflowId,
      value: recorded.output as O,
      ...(recorded.confidence !== undefined ? { confidence: recorded.confidence } : {}),
      costUsd: recorded.costUsd,
      latencyMs: recorded.latencyMs,
      agentsCalled: recorded.agentsCalled,
      recorded: true,
    };
  }
  const last = events.at(-1);
  if (last?.type === 'workflow.waiting') {
    throw new WorkflowWaitingError(workflowId, last.payload.name, last.payload.timeoutAt);
  }
  throw recorded?.kind === 'refused' ? recorded.error : new UnknownWorkflowError(workflowId);
}

/** Appends `workflow.failed` (category `unknown`) for an open workflow this runtime does not run. */
export async function markFailed(
  store: EventStore,
  clock: Clock,
  workflowId: string,
  reason: string,
  runsHere: boolean,
): Promise<void> {
  const events: readonly KeelEvent[] = await store.query({ workflowId, type: DURABLE_TYPES });
  const started = events.find((e) => e.type === 'workflow.started');
  if (!started) throw new UnknownWorkflowError(workflowId);
  const end = events.find(
    (e) =>
      e.type === 'workflow.completed' ||
      e.type === 'workflow.failed' ||
      e.type === 'workflow.cancelled' ||
      e.type === 'workflow.interrupted',
  );
  if (end) throw new WorkflowFinishedError(workflowId, end.type);
  if (runsHere) throw new WorkflowInProgressError(workflowId, started.seq);
  await store.append([
    {
      ts: clock.now(),
      workflowId,
      type: 'workflow.failed',
      payload: {
        category: 'unknown',
        message: reason.toWellFormed(),
        latencyMs: clock.now() - started.ts,
        costUsd: 0,
        agentsCalled: 0,
      },
    },
  ]);
}
