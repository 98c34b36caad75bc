/**
 * Bulkheads: `agent({ concurrency, maxQueue, maxQueueMs })` caps one agent's calls in flight across
 * every workflow of the runtime; a call that cannot wait is rejected before it reaches the provider.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { isConfigError } from '../../src/core/errors.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { isBulkheadRejectedError } from '../../src/limits/bulkheads.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent, type AgentConfig } from '../../src/supervisor/agent.js';
import { par } from '../../src/supervisor/parallel.js';

const open: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
});

function runtime(clock: SimulatedClock): Runtime<SqliteEventStore> {
  const rt = createRuntime({
    db: ':memory:',
    clock,
    seed: 1,
    pricing: { m: { inputPer1K: 0, outputPer1K: 0, perCall: 0.01 } },
    budget: { dailyUsd: 1 },
  });
  open.push(rt);
  return rt;
}

/** An agent whose calls take `holdMs`; `inFlight.max` is the most at once. */
function slow(clock: SimulatedClock, extra: Partial<AgentConfig<number, number>>, holdMs = 1_000) {
  const inFlight = { now: 0, max: 0, calls: 0 };
  const a = agent<number, number>({
    name: 'ocr',
    model: 'm',
    run: (input) => {
      inFlight.calls++;
      inFlight.max = Math.max(inFlight.max, ++inFlight.now);
      return new Promise((resolve) =>
        clock.setTimeout(() => {
          inFlight.now--;
          resolve({ value: input, usage: { inputTokens: 1, outputTokens: 1 } });
        }, holdMs),
      );
    },
    ...extra,
  });
  return { a, inFlight };
}

const settle = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'ok',
    (e: unknown) => (isBulkheadRejectedError(e) ? `rejected:${e.reason}` : String(e)),
  );

describe('bulkheads', () => {
  it('caps the calls of one agent in flight across workflows; the rest wait, past maxQueue they are rejected', async () => {
    const clock = simulatedClock();
    const rt = runtime(clock);
    const { a, inFlight } = slow(clock, { concurrency: 2, maxQueue: 3 });
    const runs = Array.from({ length: 7 }, (_, i) => settle(rt.run(a, i)));
    await clock.advanceAsync(10_000);
    expect(await Promise.all(runs)).toEqual([
      ...Array<string>(5).fill('ok'),
      'rejected:queue_full',
      'rejected:queue_full',
    ]);
    expect(inFlight.max).toBe(2);
    expect(inFlight.calls).toBe(5);
    const rejected = rt.store.query({ type: 'bulkhead.rejected' }) as KeelEvent<'bulkhead.rejected'>[];
    expect(rejected.map((e) => e.payload)).toEqual([
      { path: 'ocr', agent: 'ocr', reason: 'queue_full', waitedMs: 0 },
      { path: 'ocr', agent: 'ocr', reason: 'queue_full', waitedMs: 0 },
    ]);
    const categories = rt.store
      .query({ type: 'agent.rejected' })
      .map((e) => e.type === 'agent.rejected' && e.payload.category);
    expect(categories).toEqual(['rate_limited', 'rate_limited']);
    // A rejected call reserved nothing and cost nothing: five calls, $0.05.
    const spent = rt.store.query({ type: 'cost.incurred' }).length;
    expect(spent).toBe(5);
  });

  it('rejects a call that waited maxQueueMs, inside one par() as across workflows', async () => {
    const clock = simulatedClock();
    const rt = runtime(clock);
    const { a, inFlight } = slow(clock, { concurrency: 1, maxQueueMs: 1_500 });
    const run = rt.run(par(a, a, a), 1).catch((e: unknown) => e);
    await clock.advanceAsync(5_000);
    const error = await run;
    expect(isBulkheadRejectedError(error)).toBe(true);
    expect((error as Error).message).toMatch(
      /agent "ocr": bulkhead full.*waited 1500 ms \(maxQueueMs 1500\); raise the agent's concurrency/,
    );
    expect(inFlight.max).toBe(1);
    const rejected = rt.store.query({ type: 'bulkhead.rejected' }) as KeelEvent<'bulkhead.rejected'>[];
    expect(rejected.map((e) => [e.payload.reason, e.payload.waitedMs])).toContainEqual([
      'queue_timeout',
      1_500,
    ]);
  });

  it('an agent without concurrency has no bulkhead', async () => {
    const clock = simulatedClock();
    const rt = runtime(clock);
    const { a, inFlight } = slow(clock, {});
    const runs = Array.from({ length: 50 }, (_, i) => settle(rt.run(a, i)));
    await clock.advanceAsync(1_000);
    expect((await Promise.all(runs)).every((o) => o === 'ok')).toBe(true);
    expect(inFlight.max).toBe(50);
  });

  it('refuses bad bulkhead options with the field and the fix', () => {
    const run = () => Promise.resolve({ value: 1 });
    const bad = (extra: Partial<AgentConfig<unknown, number>>): string => {
      try {
        agent({ name: 'b', model: 'm', run, ...extra });
      } catch (e) {
        expect(isConfigError(e)).toBe(true);
        return (e as Error).message;
      }
      throw new Error('expected a ConfigError');
    };
    expect(bad({ concurrency: 0 })).toMatch(/agent "b"\.concurrency.*whole number of calls in flight >= 1/);
    expect(bad({ concurrency: 2.5 })).toMatch(/concurrency.*got 2\.5/);
    expect(bad({ concurrency: 2, maxQueue: -1 })).toMatch(/agent "b"\.maxQueue.*>= 0/);
    expect(bad({ concurrency: 2, maxQueueMs: Infinity })).toMatch(/agent "b"\.maxQueueMs/);
    expect(bad({ maxQueue: 10 })).toMatch(/agent "b"\.maxQueue.*needs concurrency too/);
    expect(bad({ concurrency: '4' as unknown as number })).toMatch(/concurrency/);
  });
});
