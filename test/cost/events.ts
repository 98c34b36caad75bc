/** Builds committed-looking KeelEvents for cost tests (seq assigned in creation order). */
import {
  DEFAULT_EVENT_CLASS,
  EVENT_VERSIONS,
  type EventPayloads,
  type KeelEvent,
  type KeelEventType,
} from '../../src/eventlog/events.js';

let seq = 0;

export function ev<T extends KeelEventType>(
  type: T,
  ts: number,
  workflowId: string,
  payload: EventPayloads[T],
): KeelEvent<T> {
  seq += 1;
  return {
    seq,
    ts,
    workflowId,
    type,
    v: EVENT_VERSIONS[type],
    class: DEFAULT_EVENT_CLASS[type],
    payload,
  };
}

/** A `cost.incurred` event for one attempt. */
export function incurred(
  ts: number,
  workflowId: string,
  fields: {
    model: string;
    costUsd: number;
    taskType?: string;
    agent?: string;
    attempt?: number;
    estimateUsd?: number;
  },
): KeelEvent<'cost.incurred'> {
  return ev('cost.incurred', ts, workflowId, {
    path: `${workflowId}/${fields.agent ?? 'agent'}`,
    agent: fields.agent ?? 'agent',
    model: fields.model,
    taskType: fields.taskType ?? 'task',
    attempt: fields.attempt ?? 1,
    usage: { inputTokens: 800, outputTokens: 200 },
    costUsd: fields.costUsd,
    estimateUsd: fields.estimateUsd ?? fields.costUsd,
  });
}

export function started(ts: number, workflowId: string, name: string): KeelEvent<'workflow.started'> {
  return ev('workflow.started', ts, workflowId, { name, topology: null, input: null, inputHash: '0' });
}

export function completed(ts: number, workflowId: string, costUsd: number): KeelEvent<'workflow.completed'> {
  return ev('workflow.completed', ts, workflowId, { output: null, latencyMs: 10, costUsd, agentsCalled: 3 });
}
