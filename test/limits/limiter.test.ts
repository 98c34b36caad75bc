import { describe, expect, it } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { isConfigError } from '../../src/core/errors.js';
import {
  createLimiter,
  isRateLimitedError,
  type AcquireResult,
  type LimitSpec,
  type Limiter,
  type LimiterEvent,
} from '../../src/limits/index.js';

const KEY = 'openai:gpt-4';

/** A deterministic generator for call sizes (tests only). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

interface Call {
  at: number;
  tenant: string | undefined;
  tokens: number;
  started?: number;
  shed?: string;
}

/**
 * Issues `calls` at their times through `limiter`; each started call "reaches the provider" (is
 * recorded with its start time) and ends `holdMs` later, releasing `actual(call)` tokens.
 */
async function drive(
  clock: SimulatedClock,
  limiter: Limiter,
  calls: Call[],
  untilMs: number,
  holdMs = 0,
  actual?: (c: Call) => number,
): Promise<void> {
  const t0 = clock.now();
  const onResult = (c: Call, r: AcquireResult): void => {
    if (!r.ok) {
      c.shed = r.error.reason;
      return;
    }
    c.started = clock.now() - t0;
    const end = (): void => r.permit.release(actual?.(c));
    if (holdMs === 0) end();
    else clock.setTimeout(end, holdMs);
  };
  for (const c of calls) {
    clock.setTimeout(() => {
      const r = limiter.acquire({ key: KEY, tokens: c.tokens, tenant: c.tenant });
      if (r instanceof Promise) void r.then((x) => onResult(c, x));
      else onResult(c, r);
    }, c.at);
  }
  await clock.advanceAsync(untilMs);
}

/** The most of `weight(call)` started in any half-open window of `windowMs`. */
function maxInWindow(calls: Call[], windowMs: number, weight: (c: Call) => number = () => 1): number {
  const started = calls.filter((c) => c.started !== undefined).sort((a, b) => a.started! - b.started!);
  let best = 0;
  let sum = 0;
  let lo = 0;
  for (const c of started) {
    sum += weight(c);
    while (started[lo]!.started! <= c.started! - windowMs) sum -= weight(started[lo++]!);
    best = Math.max(best, sum);
  }
  return best;
}

function p95(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)]!;
}

function make(spec: LimitSpec, extra: { tenantWeights?: Record<string, number> } = {}) {
  const clock = simulatedClock();
  const events: LimiterEvent[] = [];
  const limiter = createLimiter({ clock, limits: { [KEY]: spec }, onEvent: (e) => events.push(e), ...extra });
  return { clock, limiter, events };
}

describe('limiter: requests per minute', () => {
  it('1,000 calls in one second against rpm 600: at most 600 reach the provider in any 60 s window', async () => {
    const { clock, limiter, events } = make({ rpm: 600, maxQueue: 10_000, maxQueueMs: 120_000 });
    const calls: Call[] = Array.from({ length: 1_000 }, (_, i) => ({ at: i, tenant: undefined, tokens: 0 }));
    await drive(clock, limiter, calls, 200_000);
    expect(calls.every((c) => c.started !== undefined)).toBe(true);
    expect(maxInWindow(calls, 60_000)).toBeLessThanOrEqual(600);
    // The bucket is used, not idle: the burst (10) plus ~590/min after it.
    const last = Math.max(...calls.map((c) => c.started!));
    expect(last).toBeLessThan(((1_000 - 10) / 590) * 60_000 + 1_000);
    expect(events.filter((e) => e.type === 'waited').length).toBe(1_000 - 10);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('sheds what would wait longer than maxQueueMs; shed calls never start', async () => {
    const { clock, limiter, events } = make({ rpm: 600, maxQueueMs: 30_000 });
    const calls: Call[] = Array.from({ length: 1_000 }, (_, i) => ({ at: i, tenant: 't', tokens: 0 }));
    await drive(clock, limiter, calls, 120_000);
    const started = calls.filter((c) => c.started !== undefined);
    const shed = calls.filter((c) => c.shed !== undefined);
    expect(started.length + shed.length).toBe(1_000);
    expect(shed.every((c) => c.shed === 'queue_timeout' && c.started === undefined)).toBe(true);
    // 30 s of waiting (the last arrival at 1 s) allows the burst plus 30 to 31 s of refill.
    expect(started.length).toBeGreaterThanOrEqual(10 + Math.floor((590 * 30) / 60));
    expect(started.length).toBeLessThanOrEqual(10 + Math.ceil((590 * 31) / 60));
    expect(limiter.stats(KEY).shed).toBe(shed.length);
    expect(events.filter((e) => e.type === 'shed').length).toBe(shed.length);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('sheds at once past maxQueue, with an error naming the key and the limit', () => {
    const { limiter } = make({ rpm: 60, maxQueue: 2 });
    expect(limiter.acquire({ key: KEY }).constructor).toBe(Object); // the burst of 1
    const waiting = [limiter.acquire({ key: KEY }), limiter.acquire({ key: KEY })];
    expect(waiting.every((w) => w instanceof Promise)).toBe(true);
    const r = limiter.acquire({ key: KEY, tenant: 'acme' });
    expect(r).not.toBeInstanceOf(Promise);
    const res = r as AcquireResult;
    expect(res.ok).toBe(false);
    if (res.ok) return;
    expect(isRateLimitedError(res.error)).toBe(true);
    expect(res.error.category).toBe('rate_limited');
    expect(res.error.reason).toBe('queue_full');
    expect(res.error.message).toContain('openai:gpt-4');
    expect(res.error.message).toContain('maxQueue 2');
    limiter.close();
  });
});

describe('limiter: tokens per minute', () => {
  it('honours tpm with varying sizes, settled to actual usage', async () => {
    const tpm = 60_000;
    const { clock, limiter } = make({ tpm, maxQueue: 10_000, maxQueueMs: 600_000 });
    const rnd = lcg(7);
    const calls: Call[] = Array.from({ length: 300 }, (_, i) => ({
      at: i * 10,
      tenant: undefined,
      tokens: 50 + Math.floor(rnd() * 3_000), // some above the 1,000-token burst
    }));
    // Actual usage is 80% of the reservation: the refund lets later calls start sooner.
    const actual = (c: Call): number => Math.floor(c.tokens * 0.8);
    await drive(clock, limiter, calls, 1_200_000, 0, actual);
    expect(calls.every((c) => c.started !== undefined)).toBe(true);
    const biggest = Math.max(...calls.map((c) => c.tokens));
    // Bound: tpm, plus one borrowing call's excess over the burst (1,000 tokens).
    expect(maxInWindow(calls, 60_000, actual)).toBeLessThanOrEqual(tpm + biggest - 1_000);
    const total = calls.reduce((s, c) => s + actual(c), 0);
    const last = Math.max(...calls.map((c) => c.started!));
    // And it is not over-conservative: everything started within ~the time tpm needs for it.
    expect(last).toBeLessThan((total / (tpm - 1_000)) * 60_000 + 60_000);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a settle above the reservation charges the difference (the next call waits for it)', () => {
    const { limiter } = make({ tpm: 6_000 }); // burst 100, 5,900/min
    const r = limiter.acquire({ key: KEY, tokens: 10 }) as AcquireResult;
    expect(r.ok).toBe(true);
    if (r.ok) r.permit.release(100); // used 90 more than reserved: the bucket is empty
    expect(limiter.acquire({ key: KEY, tokens: 10 })).toBeInstanceOf(Promise);
    limiter.close();
  });
});

describe('limiter: 429 pause, concurrency, close', () => {
  it('a 429 retry-after pauses the bucket for every caller, then calls resume', async () => {
    const { clock, limiter } = make({ rpm: 6_000, maxQueueMs: 60_000 });
    limiter.pause(KEY, 5_000);
    const calls: Call[] = [
      { at: 0, tenant: 'a', tokens: 0 },
      { at: 100, tenant: 'b', tokens: 0 },
      { at: 4_000, tenant: undefined, tokens: 0 },
    ];
    await drive(clock, limiter, calls, 10_000);
    expect(calls.map((c) => c.started)).toEqual([5_000, 5_000, 5_000]);
    expect(limiter.stats(KEY).pausedUntil).toBeUndefined();
  });

  it('caps calls in flight; a release starts the next', async () => {
    const { clock, limiter } = make({ concurrency: 2, maxQueueMs: 60_000 });
    const calls: Call[] = Array.from({ length: 5 }, () => ({ at: 0, tenant: undefined, tokens: 0 }));
    await drive(clock, limiter, calls, 10_000, 1_000);
    expect(calls.map((c) => c.started)).toEqual([0, 0, 1_000, 1_000, 2_000]);
    expect(limiter.stats(KEY).inFlight).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a release is idempotent (a double release does not free two slots)', () => {
    const { limiter } = make({ concurrency: 1 });
    const r = limiter.acquire({ key: KEY }) as AcquireResult;
    if (!r.ok) throw r.error;
    r.permit.release();
    r.permit.release();
    expect((limiter.acquire({ key: KEY }) as AcquireResult).ok).toBe(true);
    expect(limiter.acquire({ key: KEY })).toBeInstanceOf(Promise);
    limiter.close();
  });

  it('close sheds waiting calls and leaves no timer behind', async () => {
    const { clock, limiter } = make({ rpm: 60 });
    expect((limiter.acquire({ key: KEY }) as AcquireResult).ok).toBe(true);
    const waiting = limiter.acquire({ key: KEY }) as Promise<AcquireResult>;
    expect(clock.pendingTimers()).toBe(1);
    limiter.close();
    const r = await waiting;
    expect(r.ok === false && r.error.reason).toBe('closed');
    expect(clock.pendingTimers()).toBe(0);
  });

  it('keys without limits are not limited', () => {
    const { limiter } = make({ rpm: 1 });
    for (let i = 0; i < 100; i++)
      expect((limiter.acquire({ key: 'anthropic:claude' }) as AcquireResult).ok).toBe(true);
  });
});

describe('limiter: tenants share a bucket fairly', () => {
  /**
   * rpm 600 starts one call every ~102 ms once the burst is spent. The quiet tenant sends one call
   * a second; the noisy one ten times its share of the bucket (~100 a second). Bound: with weighted
   * fair queueing a quiet call waits for at most the call being served and one of the noisy
   * tenant's with an equal tag: P95 wait <= 2 service intervals = 2 x 60,000 / 590 ms (~204 ms).
   */
  const interval = 60_000 / 590;
  const scenario = (noisyTenant: string): Call[] => [
    ...Array.from({ length: 60 }, (_, i) => ({ at: i * 1_000 + 500, tenant: 'quiet', tokens: 0 })),
    ...Array.from({ length: 6_000 }, (_, i) => ({ at: i * 10, tenant: noisyTenant, tokens: 0 })),
  ];

  it("a tenant bursting 10x does not stretch the quiet tenant's wait past its fair share", async () => {
    const { clock, limiter } = make({ rpm: 600, maxQueue: 100_000, maxQueueMs: 30_000 });
    const calls = scenario('noisy');
    await drive(clock, limiter, calls, 120_000);
    const quiet = calls.filter((c) => c.tenant === 'quiet');
    expect(quiet.every((c) => c.started !== undefined)).toBe(true);
    expect(p95(quiet.map((c) => c.started! - c.at))).toBeLessThanOrEqual(2 * interval);
    expect(calls.some((c) => c.tenant === 'noisy' && c.shed === 'queue_timeout')).toBe(true);
    expect(maxInWindow(calls, 60_000)).toBeLessThanOrEqual(600);
  });

  it('without tenants the same burst starves the quiet calls (the test above can fail)', async () => {
    const { clock, limiter } = make({ rpm: 600, maxQueue: 100_000, maxQueueMs: 30_000 });
    const calls = scenario('quiet');
    await drive(clock, limiter, calls, 120_000);
    const quietish = calls.filter((c) => c.at % 1_000 === 500);
    const waits = quietish.map((c) => (c.started === undefined ? 30_000 : c.started - c.at));
    expect(p95(waits)).toBeGreaterThan(10 * interval);
  });

  it('weights: a tenant of weight 3 gets ~3x the starts of weight 1 while both wait', async () => {
    const { clock, limiter } = make(
      { rpm: 6_000, maxQueue: 100_000, maxQueueMs: 600_000 },
      { tenantWeights: { big: 3 } },
    );
    const calls: Call[] = [
      ...Array.from({ length: 2_000 }, () => ({ at: 0, tenant: 'big', tokens: 0 })),
      ...Array.from({ length: 2_000 }, () => ({ at: 0, tenant: 'small', tokens: 0 })),
    ];
    await drive(clock, limiter, calls, 10_000);
    // Calls that started from the queue (the burst of 100 started on arrival, before any wait).
    const big = calls.filter((c) => c.tenant === 'big' && c.started! > 0).length;
    const small = calls.filter((c) => c.tenant === 'small' && c.started! > 0).length;
    expect(big / small).toBeGreaterThan(2.8);
    expect(big / small).toBeLessThan(3.2);
    limiter.close();
  });
});

describe('limiter: config', () => {
  it.each([
    [{ rpm: 0 }, 'limits.openai:gpt-4.rpm'],
    [{ tpm: -1 }, 'limits.openai:gpt-4.tpm'],
    [{ concurrency: 1.5 }, 'limits.openai:gpt-4.concurrency'],
    [{ maxQueueMs: Number.NaN }, 'limits.openai:gpt-4.maxQueueMs'],
    [{ rmp: 5 }, 'limits.openai:gpt-4.rmp'],
  ])('rejects %j naming the field', (spec, field) => {
    const clock = simulatedClock();
    let err: unknown;
    try {
      createLimiter({ clock, limits: { [KEY]: spec as LimitSpec } });
    } catch (e) {
      err = e;
    }
    expect(isConfigError(err)).toBe(true);
    expect((err as { field: string }).field).toBe(field);
  });

  it('rejects a bad tenant weight and bad tokens', () => {
    const clock = simulatedClock();
    expect(() => createLimiter({ clock, limits: {}, tenantWeights: { acme: 0 } })).toThrow(
      /tenantWeights.acme/,
    );
    const limiter = createLimiter({ clock, limits: { [KEY]: { rpm: 10 } } });
    expect(() => limiter.acquire({ key: KEY, tokens: Number.NaN })).toThrow(/tokens must be a finite number/);
  });
});
