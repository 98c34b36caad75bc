/**
 * A waiter that is cancelled (its workflow's AbortSignal fired, its deadline passed) leaves the
 * rate-limit queue at once: it takes no permit, counts against no limit, and the next waiter moves
 * up. Before `acquire` took a signal, it stayed queued until handed a permit, which it spent on rpm.
 * Virtual time only.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { createBulkheads } from '../../src/limits/bulkheads.js';
import {
  createLimiter,
  isRateLimitedError,
  type AcquireResult,
  type LimiterEvent,
} from '../../src/limits/index.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';
import { withDeadline } from '../../src/supervisor/deadline.js';

const KEY = 'openai:gpt-4';

const open: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
});

/** Lets promise callbacks run (no time passes on the simulated clock). */
const flush = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

describe('limiter: a cancelled waiter', () => {
  it('rpm 1, three waiters, the 2nd cancelled: the 3rd starts at the next window; nothing counts the 2nd', async () => {
    const clock = simulatedClock(0);
    const events: LimiterEvent[] = [];
    const limiter = createLimiter({
      clock,
      limits: { [KEY]: { rpm: 1, maxQueueMs: 300_000 } },
      onEvent: (e) => events.push(e),
    });
    const first = limiter.acquire({ key: KEY });
    expect(first).toMatchObject({ ok: true });
    const second = new AbortController();
    const startedAt: Record<string, number> = {};
    const answers: Record<string, AcquireResult> = {};
    for (const [name, signal] of [
      ['second', second.signal],
      ['third', undefined],
    ] as const) {
      const r = limiter.acquire({ key: KEY, ...(signal ? { signal } : {}) });
      expect(r).toBeInstanceOf(Promise);
      void (r as Promise<AcquireResult>).then((x) => {
        answers[name] = x;
        if (x.ok) startedAt[name] = clock.now();
      });
    }
    expect(limiter.stats(KEY).queued).toBe(2);
    clock.advance(1_000);
    second.abort('the caller gave up');
    await flush();
    // Answered at once, with the reason and no permit; the queue holds the 3rd only.
    expect(answers.second).toMatchObject({ ok: false });
    const error = (answers.second as { error: unknown }).error;
    expect(isRateLimitedError(error) && error.reason).toBe('cancelled');
    expect(String((error as Error).message)).toContain('cancelled it after 1000 ms');
    expect(limiter.stats(KEY)).toMatchObject({ queued: 1, started: 1, shed: 0, cancelled: 1 });
    clock.advance(58_999);
    await flush();
    expect(startedAt.third).toBeUndefined();
    clock.advance(1);
    await flush();
    // The 3rd starts where the 2nd would have: 60 s, not 120 s.
    expect(startedAt).toEqual({ third: 60_000 });
    expect(limiter.stats(KEY)).toMatchObject({ queued: 0, started: 2, waited: 1, shed: 0, cancelled: 1 });
    expect(events).toEqual([
      { type: 'cancelled', key: KEY, tenant: undefined, waitedMs: 1_000 },
      { type: 'waited', key: KEY, tenant: undefined, waitedMs: 60_000 },
    ]);
    // A 4th waits a full window after the 3rd: the cancelled one spent no request.
    const fourth = limiter.acquire({ key: KEY });
    void (fourth as Promise<AcquireResult>).then(() => (startedAt.fourth = clock.now()));
    clock.advance(60_000);
    await flush();
    expect(startedAt.fourth).toBe(120_000);
    limiter.close();
  });

  it('an already-aborted signal is answered at once without a permit, even when one is free', () => {
    const clock = simulatedClock(0);
    const limiter = createLimiter({ clock, limits: { [KEY]: { rpm: 60, concurrency: 1 } } });
    const r = limiter.acquire({ key: KEY, tokens: 10, signal: AbortSignal.abort() });
    expect(r).not.toBeInstanceOf(Promise);
    expect(r).toMatchObject({ ok: false, error: { reason: 'cancelled' } });
    expect(limiter.stats(KEY)).toMatchObject({ inFlight: 0, started: 0, cancelled: 1 });
    // The slot and the request are still there.
    expect(limiter.acquire({ key: KEY })).toMatchObject({ ok: true });
  });

  it('an abort after the call started does nothing: the permit stands until released', async () => {
    const clock = simulatedClock(0);
    const limiter = createLimiter({ clock, limits: { [KEY]: { concurrency: 1 } } });
    const held = limiter.acquire({ key: KEY }) as Extract<AcquireResult, { ok: true }>;
    const ac = new AbortController();
    const waiting = limiter.acquire({ key: KEY, signal: ac.signal }) as Promise<AcquireResult>;
    held.permit.release();
    const r = await waiting;
    expect(r.ok).toBe(true);
    ac.abort();
    expect(limiter.stats(KEY)).toMatchObject({ inFlight: 1, cancelled: 0 });
    // The next caller waits for that permit, not for the aborted signal.
    const third = limiter.acquire({ key: KEY });
    expect(third).toBeInstanceOf(Promise);
    if (r.ok) r.permit.release();
    expect(await third).toMatchObject({ ok: true });
  });

  it('a tenant whose waiters were all cancelled is not queued behind them (fair-queue tags)', async () => {
    const clock = simulatedClock(0);
    const limiter = createLimiter({ clock, limits: { [KEY]: { concurrency: 1 } } });
    const held = limiter.acquire({ key: KEY, tenant: 'a' }) as Extract<AcquireResult, { ok: true }>;
    const cancels = Array.from({ length: 5 }, () => new AbortController());
    const order: string[] = [];
    const note = (name: string) => (r: AcquireResult) => {
      order.push(`${name}:${r.ok ? 'ok' : r.error.reason}`);
      if (r.ok) r.permit.release();
    };
    cancels.forEach((c, i) => {
      void (limiter.acquire({ key: KEY, tenant: 'a', signal: c.signal }) as Promise<AcquireResult>).then(
        note(`a${i}`),
      );
    });
    for (const c of cancels) c.abort();
    await flush();
    expect(limiter.stats(KEY)).toMatchObject({ queued: 0, cancelled: 5 });
    // a's burst is gone: its next call is tagged as if it had none, and arrived before b's.
    void (limiter.acquire({ key: KEY, tenant: 'a' }) as Promise<AcquireResult>).then(note('a5'));
    void (limiter.acquire({ key: KEY, tenant: 'b' }) as Promise<AcquireResult>).then(note('b'));
    held.permit.release();
    await flush();
    expect(order).toEqual([
      'a0:cancelled',
      'a1:cancelled',
      'a2:cancelled',
      'a3:cancelled',
      'a4:cancelled',
      'a5:ok',
      'b:ok',
    ]);
    limiter.close();
  });

  it('bulkheads: a cancelled waiter leaves the queue; the next gets the slot', async () => {
    const clock = simulatedClock(0);
    const bulkheads = createBulkheads(clock);
    const spec = { name: 'ocr', concurrency: 1 };
    const held = bulkheads.acquire(spec, undefined);
    expect(held).toMatchObject({ ok: true });
    const ac = new AbortController();
    const second = bulkheads.acquire(spec, undefined, ac.signal) as Promise<unknown>;
    const third = bulkheads.acquire(spec, undefined) as Promise<unknown>;
    ac.abort();
    const r2 = (await second) as { ok: false; error: { reason: string; message: string } };
    expect(r2.ok).toBe(false);
    expect(r2.error.reason).toBe('cancelled');
    expect(r2.error.message).toMatch(/the caller cancelled it after 0 ms of waiting/);
    if ((held as { ok: boolean }).ok) (held as { permit: { release(): void } }).permit.release();
    expect(await third).toMatchObject({ ok: true });
    bulkheads.close();
  });
});

describe('rt.run: a cancelled workflow waiting for its rate limit', () => {
  function setup(clock: SimulatedClock) {
    const rt = createRuntime<SqliteEventStore>({
      db: ':memory:',
      clock,
      seed: 1,
      pricing: { 'gpt-4': { inputPer1K: 0, outputPer1K: 0, perCall: 0.01 } },
      limits: { [KEY]: { rpm: 1, maxQueueMs: 300_000 } },
    });
    open.push(rt);
    const starts: { input: string; at: number }[] = [];
    const a = agent<string, string>({
      name: 'extract',
      model: 'gpt-4',
      providerName: 'openai',
      run: (input) => {
        starts.push({ input, at: clock.now() });
        return Promise.resolve({ value: input, usage: { inputTokens: 10, outputTokens: 1 } });
      },
    });
    return { rt, a, starts };
  }

  it("the caller's signal: the 3rd workflow's call starts at the next window; no shed or wait is recorded for the 2nd", async () => {
    const clock = simulatedClock(0);
    const { rt, a, starts } = setup(clock);
    await rt.run(a, 'one');
    const ac = new AbortController();
    const second = rt.run(a, 'two', { signal: ac.signal, workflowId: 'wf-two' }).catch((e: unknown) => e);
    const third = rt.run(a, 'three', { workflowId: 'wf-three' });
    await flush();
    clock.advance(5_000);
    ac.abort('user left');
    const e2 = await second;
    expect((e2 as { category?: string }).category).toBe('cancelled');
    clock.advance(55_000);
    await flush();
    await third;
    expect(starts.map((s) => [s.input, s.at])).toEqual([
      ['one', 0],
      ['three', 60_000],
    ]);
    const of = <T extends KeelEvent['type']>(type: T) => rt.store.query({ type }) as KeelEvent<T>[];
    expect(of('ratelimit.shed')).toEqual([]);
    const waited = of('ratelimit.waited');
    expect(waited.map((e) => [e.workflowId, e.payload.waitedMs])).toEqual([['wf-three', 60_000]]);
    expect(of('workflow.cancelled').map((e) => e.workflowId)).toEqual(['wf-two']);
  });

  it('the workflow deadline: a waiter whose deadline passed leaves the queue', async () => {
    const clock = simulatedClock(0);
    const { rt, a, starts } = setup(clock);
    await rt.run(a, 'one');
    const second = rt.run(withDeadline(10_000, a), 'two').catch((e: unknown) => e);
    const third = rt.run(a, 'three');
    await flush();
    clock.advance(10_000);
    const e2 = await second;
    expect((e2 as { category?: string }).category).toBe('timeout');
    clock.advance(50_000);
    await flush();
    await third;
    expect(starts.map((s) => [s.input, s.at])).toEqual([
      ['one', 0],
      ['three', 60_000],
    ]);
    expect(rt.store.query({ type: 'ratelimit.shed' })).toEqual([]);
  });
});
