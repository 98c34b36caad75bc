/** Event builders for the monitor tests. */
import {
  DEFAULT_EVENT_CLASS,
  EVENT_VERSIONS,
  type ErrorCategory,
  type EventPayloads,
  type KeelEvent,
  type KeelEventType,
} from '../../src/eventlog/events.js';

let seq = 0;

/** A committed event with the next seq. */
export function event<T extends KeelEventType>(
  type: T,
  payload: EventPayloads[T],
  ts: number,
  workflowId = 'wf',
): KeelEvent<T> {
  seq++;
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

export interface OutcomeOpts {
  taskType?: string;
  agent?: string;
  ts?: number;
  latencyMs?: number;
}

export function succeeded(opts: OutcomeOpts = {}): KeelEvent<'agent.succeeded'> {
  const { taskType = 'vendor', agent = 'vendor_extraction', ts = 0, latencyMs = 100 } = opts;
  return event(
    'agent.succeeded',
    {
      path: agent,
      agent,
      taskType,
      model: 'gpt-4',
      output: 'ok',
      attempts: 1,
      latencyMs,
      usage: { inputTokens: 10, outputTokens: 10 },
      costUsd: 0.001,
    },
    ts,
  );
}

export function failed(category: ErrorCategory, opts: OutcomeOpts = {}): KeelEvent<'agent.failed'> {
  const { taskType = 'vendor', agent = 'vendor_extraction', ts = 0, latencyMs = 100 } = opts;
  return event(
    'agent.failed',
    {
      path: agent,
      agent,
      taskType,
      model: 'gpt-4',
      category,
      message: category,
      attempts: 1,
      latencyMs,
      costUsd: 0.001,
    },
    ts,
  );
}

export function rejected(category: ErrorCategory, opts: OutcomeOpts = {}): KeelEvent<'agent.rejected'> {
  const { taskType = 'vendor', agent = 'vendor_extraction', ts = 0 } = opts;
  return event('agent.rejected', { path: agent, agent, taskType, category, reason: category }, ts);
}
