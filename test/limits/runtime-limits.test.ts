/**
 * Provider rate limits through `rt.run`: the limiter sits in the invoke pipeline after the breaker
 * and the budget, is shared by every workflow of the runtime, and every wait and shed is an event.
 * Virtual time only.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { isConfigError } from '../../src/core/errors.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { isRateLimitedError } from '../../src/limits/limiter.js';
import { createRuntime, type Runtime, type RuntimeConfig } from '../../src/runtime.js';
import { agent, type AgentConfig } from '../../src/supervisor/agent.js';
import { isBudgetExceededError } from '../../src/cost/errors.js';
import { isCircuitOpenError } from '../../src/supervisor/breaker.js';

const open: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
});

const PRICING = { 'gpt-4': { inputPer1K: 0, outputPer1K: 0, perCall: 0.01 } };

function runtime(clock: SimulatedClock, config: RuntimeConfig = {}): Runtime<SqliteEventStore> {
  const rt = createRuntime({ db: ':memory:', clock, seed: 1, pricing: PRICING, ...config });
  open.push(rt as Runtime<SqliteEventStore>);
  return rt as Runtime<SqliteEventStore>;
}

/** Resolves after `ms` of the clock's time. */
const after = (clock: SimulatedClock, ms: number): Promise<void> =>
  new Promise((resolve) => clock.setTimeout(resolve, ms));

/** A model call: records when it reached the provider, answers after `holdMs`. */
function provider(
  clock: SimulatedClock,
  starts: number[],
  extra: Partial<AgentConfig<unknown, string>> = {},
  holdMs = 0,
) {
  return agent<unknown, string>({
    name: 'extract',
    model: 'gpt-4',
    providerName: 'openai',
    estimate: { inputTokens: 100, outputTokens: 0 },
    run: async () => {
      starts.push(clock.now());
      if (holdMs > 0) await after(clock, holdMs);
      return { value: 'ok', usage: { inputTokens: 100, outputTokens: 0 } };
    },
    ...extra,
  });
}

/** 'ok', 'shed:<reason>' or the error's category. */
type Outcome = string;
/** Runs that settle to 'ok' or the error's category (never reject). */
const settle = (p: Promise<unknown>): Promise<Outcome> =>
  p.then(
    () => 'ok',
    (e: unknown) =>
      isRateLimitedError(e) ? `shed:${e.reason}` : ((e as { category?: string }).category ?? String(e)),
  );

const ofType = <T extends KeelEvent['type']>(rt: Runtime<SqliteEventStore>, type: T) =>
  rt.store.query({ type }) as KeelEvent<T>[];

/** Largest number of `starts` (sorted) inside any half-open window of `windowMs`. */
function maxInWindow(starts: number[], windowMs: number, weight: (i: number) => number = () => 1): number {
  const order = starts.map((t, i) => ({ t, w: weight(i) })).sort((a, b) => a.t - b.t);
  let best = 0;
  let sum = 0;
  let lo = 0;
  for (let hi = 0; hi < order.length; hi++) {
    sum += order[hi]!.w;
    while (order[hi]!.t - order[lo]!.t >= windowMs) sum -= order[lo++]!.w;
    best = Math.max(best, sum);
  }
  return best;
}

describe('limits config', () => {
  it('names the key and the field of a bad limit, and the fix', () => {
    const clock = simulatedClock();
    const bad = (limits: unknown): string => {
      try {
        runtime(clock, { limits } as RuntimeConfig);
      } catch (e) {
        expect(isConfigError(e)).toBe(true);
        return (e as Error).message;
      }
      throw new Error('expected a ConfigError');
    };
    expect(bad({ 'openai:gpt-4': { rpm: 0 } })).toMatch(/limits\.openai:gpt-4\.rpm.*requests per minute > 0/);
    expect(bad({ 'openai:gpt-4': { rpm: Infinity } })).toMatch(/limits\.openai:gpt-4\.rpm/);
    expect(bad({ 'gpt-4': { concurrency: 1.5 } })).toMatch(/limits\.gpt-4\.concurrency.*whole number/);
    expect(bad({ 'gpt-4': { maxQueueMs: -1 } })).toMatch(/limits\.gpt-4\.maxQueueMs/);
    expect(bad({ 'gpt-4': { rpmm: 5 } })).toMatch(/"rpmm".*rpm, tpm, concurrency, maxQueue and maxQueueMs/);
    expect(bad({ 'gpt-4': 600 })).toMatch(/limits\.gpt-4.*\{ rpm\?, tpm\?/);
    expect(bad({ shared: 'redis://127.0.0.1:6379', 'gpt-4': { rpm: 1 } })).toMatch(
      /limits\.shared.*redis\('redis:\/\/127\.0\.0\.1:6379'\) from 'keel\/redis'/,
    );
    expect(bad([1])).toMatch(/^.*limits.*object of limits by key/);
    expect(bad({ '': { rpm: 1 } })).toMatch(/"limits".*empty key.*"openai:gpt-4" \(provider:model\)/);
  });

  it("matches the agent's provider:model key, else the bare model; other keys do not limit", async () => {
    const clock = simulatedClock();
    // burst 1, nothing may wait: a second call within the minute is shed at once.
    const tight = { rpm: 60, maxQueue: 0 };
    const twice = async (rt: Runtime<SqliteEventStore>, providerName?: string, model = 'gpt-4') => {
      const a = agent({
        name: `a_${providerName ?? 'none'}_${model}`,
        model,
        ...(providerName !== undefined ? { providerName } : {}),
        run: () => Promise.resolve({ value: 1, usage: { inputTokens: 1, outputTokens: 1 } }),
      });
      return [await settle(rt.run(a, 1)), await settle(rt.run(a, 2))];
    };
    const provider = runtime(clock, { limits: { 'openai:gpt-4': tight } });
    expect(await twice(provider, 'openai')).toEqual(['ok', 'shed:queue_full']);
    expect(await twice(provider, 'azure.ai.openai')).toEqual(['ok', 'ok']); // another provider's gpt-4
    expect(await twice(provider)).toEqual(['ok', 'ok']); // no providerName: only bare keys apply
    const bare = runtime(clock, {
      limits: { 'gpt-4': tight },
      pricing: { ...PRICING, 'gpt-3.5-turbo': PRICING['gpt-4'] },
    });
    expect(await twice(bare)).toEqual(['ok', 'shed:queue_full']);
    clock.advance(60_000);
    expect(await twice(bare, 'openai')).toEqual(['ok', 'shed:queue_full']); // falls back to the model
    expect(await twice(bare, 'openai', 'gpt-3.5-turbo')).toEqual(['ok', 'ok']); // unknown key
    const shed = ofType(bare, 'ratelimit.shed');
    expect(shed.map((e) => e.payload)).toEqual([
      { path: 'a_none_gpt-4', agent: 'a_none_gpt-4', key: 'gpt-4', reason: 'queue_full', waitedMs: 0 },
      { path: 'a_openai_gpt-4', agent: 'a_openai_gpt-4', key: 'gpt-4', reason: 'queue_full', waitedMs: 0 },
    ]);
    const rejected = ofType(bare, 'agent.rejected').map((e) => e.payload.category);
    expect(rejected).toEqual(['rate_limited', 'rate_limited']);
  });
});

describe('rate limits through rt.run', () => {
  it('1,000 calls in one second against rpm 600: at most 600 reach the provider in any 60 s window; the rest wait or are shed at maxQueueMs', async () => {
    const clock = simulatedClock();
    const rt = runtime(clock, { limits: { 'openai:gpt-4': { rpm: 600, maxQueueMs: 60_000 } } });
    const starts: number[] = [];
    const a = provider(clock, starts);
    const t0 = clock.now();
    const runs: Promise<Outcome>[] = [];
    for (let i = 0; i < 1_000; i++) {
      runs.push(settle(rt.run(a, i)));
      await clock.advanceAsync(1);
    }
    await clock.advanceAsync(200_000);
    const outcomes = await Promise.all(runs);
    const ok = outcomes.filter((o) => o === 'ok').length;
    const shed = outcomes.filter((o) => o === 'shed:queue_timeout').length;
    expect(ok + shed).toBe(1_000);
    expect(starts).toHaveLength(ok); // a shed call never reached the provider
    expect(maxInWindow(starts, 60_000)).toBeLessThanOrEqual(600);
    // Not just "few": the bucket let through what it allows while the calls could wait.
    expect(ok).toBeGreaterThanOrEqual(595);
    expect(shed).toBeGreaterThan(300);
    // Every shed call waited its maxQueueMs; every one that waited says how long.
    const shedEvents = ofType(rt, 'ratelimit.shed');
    expect(shedEvents).toHaveLength(shed);
    expect(shedEvents.every((e) => e.payload.waitedMs === 60_000 && e.payload.key === 'openai:gpt-4')).toBe(
      true,
    );
    const waited = ofType(rt, 'ratelimit.waited');
    expect(waited.length).toBe(ok - 10); // the burst of 10 started at once
    expect(Math.max(...waited.map((e) => e.payload.waitedMs))).toBeLessThanOrEqual(60_000);
    expect(Math.max(...starts) - t0).toBeLessThan(61_000);
  });

  it('tpm with calls of varying sizes: the tokens started in any 60 s window stay within tpm', async () => {
    const clock = simulatedClock();
    const tpm = 600_000; // burst 10,000 tokens a second
    const rt = runtime(clock, { limits: { 'openai:gpt-4': { tpm, maxQueueMs: 600_000 } } });
    const starts: number[] = [];
    const sizes: number[] = [];
    const a = agent<{ size: number }, number>({
      name: 'sized',
      model: 'gpt-4',
      providerName: 'openai',
      maxOutputTokens: 1,
      estimateInputTokens: (input) => input.size - 1,
      run: (input) => {
        starts.push(clock.now());
        sizes.push(input.size);
        return Promise.resolve({
          value: input.size,
          usage: { inputTokens: input.size - 1, outputTokens: 1 },
        });
      },
    });
    let s = 7;
    const runs: Promise<Outcome>[] = [];
    let total = 0;
    for (let i = 0; i < 600; i++) {
      s = (s * 48271) % 2147483647;
      const size = 500 + (s % 4_501); // 500 .. 5,000 tokens
      total += size;
      runs.push(settle(rt.run(a, { size })));
      if (i % 2 === 0) await clock.advanceAsync(1);
    }
    await clock.advanceAsync(700_000);
    expect((await Promise.all(runs)).every((o) => o === 'ok')).toBe(true);
    expect(maxInWindow(starts, 60_000, (i) => sizes[i]!)).toBeLessThanOrEqual(tpm);
    // ~1.65 M tokens at 590,000 a minute after the first 10,000: the last ones start minutes in.
    const refill = (tpm - tpm / 60) / 60_000;
    expect(Math.max(...starts) - Math.min(...starts)).toBeGreaterThanOrEqual(
      (total - 10_000 - 5_000) / refill,
    );
  });

  it('a run() reporting more usage than estimated settles the tpm bucket to the actual tokens', async () => {
    const clock = simulatedClock();
    // burst 1,000 tokens; a call is expected to use 100.
    const rt = runtime(clock, { limits: { 'openai:gpt-4': { tpm: 60_000 } } });
    let reported = 1_000;
    const a = agent({
      name: 'greedy',
      model: 'gpt-4',
      providerName: 'openai',
      estimate: { inputTokens: 100, outputTokens: 0 },
      run: () => Promise.resolve({ value: 1, usage: { inputTokens: reported, outputTokens: 0 } }),
    });
    await rt.run(a, 1); // reserved 100, used 1,000: the bucket is now empty
    reported = 100;
    const second = rt.run(a, 2);
    await clock.advanceAsync(200);
    await second;
    const waited = ofType(rt, 'ratelimit.waited');
    expect(waited).toHaveLength(1);
    // 100 tokens at 59,000 a minute: ~102 ms (had it settled to the estimate, no wait at all).
    expect(waited[0]!.payload.waitedMs).toBeGreaterThanOrEqual(100);
    expect(waited[0]!.payload.waitedMs).toBeLessThanOrEqual(110);
  });

  it("a user's own run() throwing an SDK-shaped 429 with retry-after pauses the key for every other caller", async () => {
    const clock = simulatedClock();
    const rt = runtime(clock, { limits: { 'openai:gpt-4': { rpm: 6_000, maxQueueMs: 60_000 } } });
    const starts: number[] = [];
    // What the openai SDK throws: a plain Error subclass with status and a headers object.
    const sdk429 = Object.assign(new Error('429 Rate limit reached for gpt-4'), {
      status: 429,
      headers: { 'retry-after': '20' },
    });
    const limited = agent({
      name: 'limited',
      model: 'gpt-4',
      providerName: 'openai',
      run: () => Promise.reject(sdk429),
    });
    const other = provider(clock, starts);
    const t0 = clock.now();
    await expect(rt.run(limited, 1)).rejects.toMatchObject({ category: 'rate_limited' });
    const next = rt.run(other, 2); // another agent, another workflow, the same key
    await clock.advanceAsync(19_999);
    expect(starts).toEqual([]);
    await clock.advanceAsync(1);
    await next;
    expect(starts).toEqual([t0 + 20_000]);
    expect(ofType(rt, 'ratelimit.waited').map((e) => e.payload.waitedMs)).toEqual([20_000]);
  });

  it('a shed call gives back its breaker probe and its budget reservation', async () => {
    const clock = simulatedClock();
    const rt = runtime(clock, {
      limits: { 'openai:gpt-4': { rpm: 60, maxQueue: 0 } }, // one a second, nothing waits
      budget: { dailyUsd: 0.03, onExhausted: 'reject' }, // three calls' worth
    });
    let fail = true;
    const starts: number[] = [];
    const a = agent({
      name: 'probe',
      model: 'gpt-4',
      providerName: 'openai',
      breaker: { name: 'openai', failureThreshold: 1, resetTimeoutMs: 500, halfOpenMaxProbes: 1 },
      run: () => {
        starts.push(clock.now());
        return fail
          ? Promise.reject(new Error('boom')) // a plain Error: counted by the breaker
          : Promise.resolve({ value: 1, usage: { inputTokens: 1, outputTokens: 1 } });
      },
    });
    expect(await settle(rt.run(a, 1))).toBe('unknown'); // the breaker opens
    expect(rt.breaker('openai')?.state()).toBe('open');
    clock.advance(500); // half-open: one probe; the bucket holds < 1 request
    for (let i = 0; i < 10; i++) expect(await settle(rt.run(a, 2))).toBe('shed:queue_full');
    expect(rt.breaker('openai')?.state()).toBe('halfOpen');
    fail = false;
    clock.advance(60_000);
    // Had a shed call kept the probe, this would be circuit_open; its $0.01, budget_exceeded.
    const probe = await settle(rt.run(a, 3));
    expect(probe).toBe('ok');
    expect(rt.breaker('openai')?.state()).toBe('closed');
    expect(starts).toHaveLength(2);
    const spent = ofType(rt, 'cost.incurred').reduce((sum, e) => sum + e.payload.costUsd, 0);
    expect(spent).toBeCloseTo(0.02, 10); // the failed call and the probe, $0.01 a call each
    clock.advance(1_100); // rpm 60 refills 59 a minute after the burst: ~1.02 s a request
    expect(await settle(rt.run(a, 4))).toBe('ok'); // the budget's third call
    clock.advance(1_100);
    const over = await rt.run(a, 5).catch((e: unknown) => e);
    expect(isBudgetExceededError(over)).toBe(true);
    expect(isCircuitOpenError(over)).toBe(false);
  });

  it('a call cancelled while it waits takes no slot: the permit that arrives later is given back', async () => {
    const clock = simulatedClock();
    const rt = runtime(clock, { limits: { 'openai:gpt-4': { concurrency: 1, maxQueueMs: 60_000 } } });
    const starts: number[] = [];
    const a = provider(clock, starts, {}, 1_000);
    const first = rt.run(a, 1);
    const abort = new AbortController();
    const cancelled = settle(rt.run(a, 2, { signal: abort.signal }));
    await clock.advanceAsync(10);
    abort.abort();
    expect(await cancelled).toBe('cancelled');
    const third = settle(rt.run(a, 3));
    await clock.advanceAsync(990);
    await first;
    await clock.advanceAsync(61_000);
    // Had the cancelled call kept the slot it was handed, this one would be shed after 60 s.
    expect(await third).toBe('ok');
    expect(starts).toEqual([starts[0], starts[0]! + 1_000]);
    expect(ofType(rt, 'ratelimit.shed')).toHaveLength(0);
  });

  it('closing the runtime sheds the calls still waiting; nothing is left pending', async () => {
    const clock = simulatedClock();
    const rt = runtime(clock, { limits: { 'openai:gpt-4': { rpm: 60 } } });
    const starts: number[] = [];
    const a = provider(clock, starts);
    await rt.run(a, 1);
    const waiting = Array.from({ length: 5 }, (_, i) => settle(rt.run(a, i)));
    await clock.advanceAsync(10);
    await rt.close();
    open.splice(0);
    expect(await Promise.all(waiting)).toEqual(Array<string>(5).fill('cancelled'));
    expect(starts).toHaveLength(1);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('replay is never limited: a recorded run that waited replays without divergence', async () => {
    const clock = simulatedClock();
    const rt = runtime(clock, { limits: { 'openai:gpt-4': { rpm: 60 } } });
    const starts: number[] = [];
    const a = provider(clock, starts, { name: 'replayed' });
    const runs = [rt.run(a, 1), rt.run(a, 2), rt.run(a, 3)];
    await clock.advanceAsync(3_000);
    const results = await Promise.all(runs);
    expect(ofType(rt, 'ratelimit.waited')).toHaveLength(2);
    for (const r of results) {
      const [report] = await rt.replay(r.workflowId);
      expect(report).toMatchObject({ ok: true, divergences: [], modelCalls: 0 });
    }
    expect(starts).toHaveLength(3);
  });
});
