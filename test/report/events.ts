/** Builders of committed events for the report tests that need exact, hand-made logs. */
import {
  DEFAULT_EVENT_CLASS,
  EVENT_VERSIONS,
  type ErrorCategory,
  type EventPayloads,
  type KeelEvent,
  type KeelEventType,
} from '../../src/eventlog/events.js';

/** A log under construction: `add` assigns the next seq. */
export class Log {
  readonly events: KeelEvent[] = [];

  add<T extends KeelEventType>(
    type: T,
    payload: EventPayloads[T],
    ts: number,
    workflowId = '_system',
  ): KeelEvent<T> {
    const e = {
      seq: this.events.length + 1,
      ts,
      workflowId,
      type,
      v: EVENT_VERSIONS[type],
      class: DEFAULT_EVENT_CLASS[type],
      payload,
    } as KeelEvent<T>;
    this.events.push(e as KeelEvent);
    return e;
  }

  /** A workflow of `name` that ends `how` after `latencyMs`. */
  workflow(
    id: string,
    name: string,
    ts: number,
    latencyMs: number,
    how: 'completed' | 'failed' | 'cancelled' = 'completed',
  ): void {
    this.add('workflow.started', { name, topology: {}, input: {}, inputHash: 'h' }, ts, id);
    const end = ts + latencyMs;
    if (how === 'completed')
      this.add('workflow.completed', { output: 1, latencyMs, costUsd: 0, agentsCalled: 1 }, end, id);
    else if (how === 'failed')
      this.add(
        'workflow.failed',
        { category: 'timeout', message: 'm', latencyMs, costUsd: 0, agentsCalled: 1 },
        end,
        id,
      );
    else this.add('workflow.cancelled', { reason: 'r', latencyMs, costUsd: 0 }, end, id);
  }

  /** One agent outcome (a success when `category` is undefined). */
  outcome(
    ts: number,
    taskType: string,
    category?: ErrorCategory,
    agent = `${taskType}_agent`,
    latencyMs = 100,
    workflowId = 'wf',
  ): void {
    const base = { path: agent, agent, taskType, model: 'm', attempts: 1, latencyMs, costUsd: 0 };
    if (category === undefined)
      this.add(
        'agent.succeeded',
        { ...base, output: 1, usage: { inputTokens: 1, outputTokens: 1 } },
        ts,
        workflowId,
      );
    else this.add('agent.failed', { ...base, category, message: 'x' }, ts, workflowId);
  }

  /** One priced attempt. */
  cost(ts: number, model: string, costUsd: number, workflowId = 'wf'): void {
    this.add(
      'cost.incurred',
      {
        path: 'p',
        agent: 'a',
        model,
        taskType: 't',
        attempt: 1,
        usage: { inputTokens: 100, outputTokens: 10 },
        costUsd,
        estimateUsd: costUsd,
      },
      ts,
      workflowId,
    );
  }
}
