/**
 * The limiter sees the workflow's tenant (`WorkflowScope.tenant`, set by the runtime from
 * `RunOptions.tenant`): it queues fairly by it, and the rate-limit events carry it.
 */
import { describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import type { NewEvent } from '../../src/eventlog/events.js';
import { createLimiter, type AcquireRequest } from '../../src/limits/limiter.js';
import { agent } from '../../src/supervisor/agent.js';
import { invokeAgent } from '../../src/supervisor/invoke.js';
import type { Services, WorkflowScope } from '../../src/supervisor/scope.js';

describe('the tenant of a workflow reaches the limiter', () => {
  it('asks with the scope tenant and records it on ratelimit.waited and ratelimit.shed', async () => {
    const clock = simulatedClock();
    const asked: AcquireRequest[] = [];
    const limiter = createLimiter({ clock, limits: { 'openai:gpt-4': { rpm: 60, maxQueue: 1 } } });
    const services = {
      clock,
      inspect: undefined,
      budgets: undefined,
      cache: undefined,
      price: () => 0,
      priceCall: () => 0,
      seed: 's',
      limiter: {
        ...limiter,
        limits: (key: string) => limiter.limits(key),
        acquire: (request: AcquireRequest) => {
          asked.push(request);
          return limiter.acquire(request);
        },
      },
    } as unknown as Services;
    const events: NewEvent[] = [];
    const scope: WorkflowScope = {
      workflowId: 'wf',
      services,
      tenant: 'acme',
      emit: (e) => events.push(e),
      stats: { costUsd: 0, agentsCalled: 0 },
      replay: undefined,
    };
    const a = agent({
      name: 'x',
      model: 'gpt-4',
      providerName: 'openai',
      estimate: { inputTokens: 30, outputTokens: 12 },
      run: () => Promise.resolve({ value: 1, usage: { inputTokens: 1, outputTokens: 1 } }),
    });
    const outcomes: string[] = [];
    for (const path of ['a', 'b', 'c'])
      invokeAgent(
        a,
        1,
        { scope, path, deadlineAt: undefined },
        {
          next: () => outcomes.push(`${path} ok`),
          complete: () => undefined,
          error: (e: unknown) => outcomes.push(`${path} ${(e as { category?: string }).category}`),
        },
      );
    await clock.advanceAsync(2_000);
    expect(outcomes.sort()).toEqual(['a ok', 'b ok', 'c rate_limited']);
    // Each request also carries the cancel signal of its wait in `gated` (not aborted: they were answered).
    expect(asked.map(({ signal, ...rest }) => [rest, signal?.aborted])).toEqual(
      Array(3).fill([{ key: 'openai:gpt-4', tokens: 42, tenant: 'acme' }, false]),
    );
    const limits = events.filter((e) => e.type.startsWith('ratelimit.')).map((e) => [e.type, e.payload]);
    expect(limits).toEqual([
      [
        'ratelimit.shed',
        { path: 'c', agent: 'x', key: 'openai:gpt-4', reason: 'queue_full', waitedMs: 0, tenant: 'acme' },
      ],
      ['ratelimit.waited', { path: 'b', agent: 'x', key: 'openai:gpt-4', waitedMs: 1_017, tenant: 'acme' }],
    ]);
    limiter.close();
  });
});
