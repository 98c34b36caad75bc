import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import { ProviderError } from '../../src/providers/types.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent, AgentError, type AgentContext } from '../../src/supervisor/agent.js';
import {
  isAgentTimeoutError,
  isValidationError,
  isWorkflowCancelledError,
} from '../../src/supervisor/errors.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';

let rt: Runtime<SqliteEventStore> | undefined;
afterEach(async () => {
  await rt?.close();
  rt = undefined;
});

function setup(): { rt: Runtime<SqliteEventStore>; clock: SimulatedClock } {
  const clock = simulatedClock();
  rt = createRuntime({
    db: ':memory:',
    clock,
    seed: 1,
    pricing: { sim: { inputPer1K: 0.01, outputPer1K: 0.02 } },
  });
  return { rt, clock };
}

/** Resolves after `ms` of the clock's time. */
const sleep = (clock: SimulatedClock, ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const t = clock.setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clock.clearTimeout(t);
      reject(new ProviderError('cancelled', 'aborted'));
    });
  });

const types = (events: KeelEvent[]): string[] => events.map((e) => e.type);

describe('rt.run(agent)', () => {
  it('resolves with the value and its cost after every event is committed, in order', async () => {
    const { rt } = setup();
    const echo = agent({
      name: 'echo',
      model: 'sim',
      run: (input: { text: string }) =>
        Promise.resolve({
          value: input.text.toUpperCase(),
          confidence: 0.9,
          usage: { inputTokens: 1000, outputTokens: 500 },
        }),
    });
    const result = await rt.run(echo, { text: 'acme' });
    expect(result.value).toBe('ACME');
    expect(result.confidence).toBe(0.9);
    expect(result.costUsd).toBeCloseTo(0.01 + 0.01, 10);
    expect(result.agentsCalled).toBe(1);
    const events = rt.store.query({ workflowId: result.workflowId });
    expect(types(events)).toEqual([
      'workflow.started',
      'agent.invoked',
      'cost.incurred',
      'agent.succeeded',
      'workflow.completed',
    ]);
    const done = events.at(-1);
    expect(done?.type === 'workflow.completed' && done.payload.output).toBe('ACME');
    expect(rt.store.verify().ok).toBe(true);
  });

  it('retries with exponential backoff on the clock, costing every attempt', async () => {
    const { rt, clock } = setup();
    let calls = 0;
    const flaky = agent({
      name: 'flaky',
      model: 'sim',
      retry: { attempts: 3, baseDelayMs: 100, jitter: false },
      run: () => {
        calls++;
        const usage = { inputTokens: 100, outputTokens: 0 };
        return calls < 3
          ? Promise.reject(new ProviderError('provider_error', '503', { usage }))
          : Promise.resolve({ value: 'ok', usage });
      },
    });
    const p = rt.run(flaky, {});
    await clock.advanceAsync(99);
    expect(calls).toBe(1);
    await clock.advanceAsync(1);
    expect(calls).toBe(2);
    await clock.advanceAsync(199);
    expect(calls).toBe(2);
    await clock.advanceAsync(1);
    const result = await p;
    expect(calls).toBe(3);
    expect(result.value).toBe('ok');
    expect(result.costUsd).toBeCloseTo(3 * 0.001, 10);
    const events = rt.store.query({ workflowId: result.workflowId });
    const retried = events.filter((e) => e.type === 'agent.retried');
    expect(retried.map((e) => e.type === 'agent.retried' && e.payload.delayMs)).toEqual([100, 200]);
    expect(events.filter((e) => e.type === 'cost.incurred')).toHaveLength(3);
  });

  it('honours a provider retry-after longer than the backoff', async () => {
    const { rt, clock } = setup();
    let calls = 0;
    const limited = agent({
      name: 'limited',
      model: 'sim',
      retry: { attempts: 2, baseDelayMs: 100, jitter: false },
      run: () => {
        calls++;
        return calls === 1
          ? Promise.reject(new ProviderError('rate_limited', '429', { status: 429, retryAfterMs: 5_000 }))
          : Promise.resolve({ value: 'ok' });
      },
    });
    const p = rt.run(limited, {});
    await clock.advanceAsync(4_999);
    expect(calls).toBe(1);
    await clock.advanceAsync(1);
    await expect(p).resolves.toMatchObject({ value: 'ok' });
    expect(calls).toBe(2);
  });

  it('times out an attempt: aborts the call signal, fails with AgentTimeoutError and leaks no timer', async () => {
    const { rt, clock } = setup();
    const signals: AbortSignal[] = [];
    const hang = agent({
      name: 'hang',
      model: 'sim',
      timeoutMs: 1_000,
      run: (_input: unknown, ctx: AgentContext) => {
        signals.push(ctx.signal);
        return new Promise<never>((_, reject) =>
          ctx.signal.addEventListener('abort', () => reject(new ProviderError('cancelled', 'aborted'))),
        );
      },
    });
    const p = rt.run(hang, {});
    const outcome = p.catch((e: unknown) => e);
    await clock.advanceAsync(999);
    expect(signals[0]?.aborted).toBe(false);
    await clock.advanceAsync(1);
    const err = await outcome;
    expect(isAgentTimeoutError(err)).toBe(true);
    expect(signals[0]?.aborted).toBe(true);
    expect(clock.pendingTimers()).toBe(0);
    const events = rt.store.query({});
    expect(types(events)).toContain('agent.timed_out');
    const failed = events.find((e) => e.type === 'workflow.failed');
    expect(failed?.type === 'workflow.failed' && failed.payload.category).toBe('timeout');
  });

  it('fails an invalid output with validation_error and keeps the output for RCA', async () => {
    const { rt } = setup();
    const bad = agent({
      name: 'bad',
      model: 'sim',
      schema: z.object({ amount: z.number() }),
      run: () => Promise.resolve({ value: { amount: 'twelve' } as unknown as { amount: number } }),
    });
    const err = await rt.run(bad, {}).catch((e: unknown) => e);
    expect(isValidationError(err)).toBe(true);
    const failed = rt.store.query({ type: 'agent.failed' })[0];
    expect(failed?.type === 'agent.failed' && failed.payload.category).toBe('validation_error');
    expect(failed?.type === 'agent.failed' && failed.payload.output).toEqual({ amount: 'twelve' });
  });

  it('lets an agent classify its own failure', async () => {
    const { rt } = setup();
    const ocr = agent({
      name: 'ocr',
      model: 'sim',
      run: () => Promise.reject(new AgentError('ocr_error', 'page 2 unreadable')),
    });
    await expect(rt.run(ocr, {})).rejects.toMatchObject({ category: 'ocr_error' });
  });

  it('opens the shared breaker after N failures and then rejects without calling the model', async () => {
    const { rt } = setup();
    let calls = 0;
    const down = agent({
      name: 'down',
      model: 'sim',
      breaker: { name: 'sim-provider', failureThreshold: 2, resetTimeoutMs: 60_000 },
      run: () => {
        calls++;
        return Promise.reject(new ProviderError('provider_error', '500'));
      },
    });
    const breakerChanges: string[] = [];
    rt.on('breaker', (c) => breakerChanges.push(`${c.from}->${c.to}`));
    const alerts: string[] = [];
    rt.on('alert', (a) => alerts.push(`${a.kind}:${a.severity}`));
    await expect(rt.run(down, {})).rejects.toMatchObject({ category: 'provider_error' });
    await expect(rt.run(down, {})).rejects.toMatchObject({ category: 'provider_error' });
    await expect(rt.run(down, {})).rejects.toMatchObject({
      category: 'circuit_open',
      breaker: 'sim-provider',
      retryInMs: 60_000,
    });
    expect(calls).toBe(2);
    expect(breakerChanges).toEqual(['closed->open']);
    expect(alerts).toEqual(['breaker:high']);
    expect(rt.store.query({ type: 'agent.rejected' })).toHaveLength(1);
    expect(rt.store.query({ type: 'breaker.transitioned' })).toHaveLength(1);
  });

  it('cancels on abort: the call signal fires and workflow.cancelled is logged', async () => {
    const { rt, clock } = setup();
    let callSignal: AbortSignal | undefined;
    const slow = agent({
      name: 'slow',
      model: 'sim',
      run: async (_i: unknown, ctx: AgentContext) => {
        callSignal = ctx.signal;
        await sleep(clock, 10_000, ctx.signal);
        return { value: 1 };
      },
    });
    const ac = new AbortController();
    const p = rt.run(slow, {}, { signal: ac.signal }).catch((e: unknown) => e);
    await clock.advanceAsync(10);
    ac.abort('user left');
    const err = await p;
    expect(isWorkflowCancelledError(err)).toBe(true);
    expect(callSignal?.aborted).toBe(true);
    expect(types(rt.store.query({}))).toContain('workflow.cancelled');
    expect(clock.pendingTimers()).toBe(0);
  });

  it('refuses an agent whose model has no price, naming the model', async () => {
    const { rt } = setup();
    const unpriced = agent({ name: 'x', model: 'gpt-nonexistent', run: () => Promise.resolve({ value: 1 }) });
    await expect(rt.run(unpriced, {})).rejects.toThrow(/gpt-nonexistent/);
  });
});

describe('createRuntime config', () => {
  it('names an unknown option', () => {
    expect(() => createRuntime({ db: ':memory:', dbb: 'x' } as never)).toThrow(/dbb/);
  });
  it('names a bad field', () => {
    expect(() => createRuntime({ db: ':memory:', durability: 'sometimes' } as never)).toThrow(/durability/);
  });
});

describe('breaker probes and cancellation', () => {
  it('a half-open probe cancelled by a failing sibling frees its slot (the breaker is not stuck half-open)', async () => {
    const { rt, clock } = setup();
    const { par } = await import('../../src/supervisor/parallel.js');
    let probeCalls = 0;
    let healthy = false;
    const guarded = agent({
      name: 'guarded',
      model: 'sim',
      breaker: { name: 'shared', failureThreshold: 1, resetTimeoutMs: 1_000 },
      run: (_i: unknown, ctx: AgentContext) => {
        probeCalls++;
        if (!healthy) return Promise.reject(new ProviderError('provider_error', '500'));
        return sleep(clock, 500, ctx.signal).then(() => ({ value: 'ok' }));
      },
    });
    const failing = agent({
      name: 'failing',
      model: 'sim',
      run: () => Promise.reject(new AgentError('ocr_error', 'x')),
    });
    await expect(rt.run(guarded, {})).rejects.toMatchObject({ category: 'provider_error' });
    expect(rt.breaker('shared')?.state()).toBe('open');
    await clock.advanceAsync(1_000);
    expect(rt.breaker('shared')?.state()).toBe('halfOpen');
    healthy = true;
    // the probe starts, then its sibling fails and the par cancels it
    await expect(rt.run(par(guarded, failing), {})).rejects.toMatchObject({ category: 'ocr_error' });
    await clock.flush();
    expect(rt.breaker('shared')?.state()).toBe('halfOpen');
    // two agents on the breaker in one par: the second is refused while the first probes, and the
    // par's failure cancels the probe
    await expect(rt.run(par(guarded, guarded), {})).rejects.toMatchObject({ category: 'circuit_open' });
    await clock.flush();
    const next = rt.run(guarded, {});
    await clock.advanceAsync(500);
    await expect(next).resolves.toMatchObject({ value: 'ok' });
    expect(rt.breaker('shared')?.state()).toBe('closed');
    // 3: the probe of par(guarded, guarded) was cancelled before its call (the call waits for its
    // reservation to commit, and the refused sibling failed the par first)
    expect(probeCalls).toBe(3);
  });
});
