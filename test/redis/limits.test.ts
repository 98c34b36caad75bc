/**
 * Rate limits shared on Redis (`limits: { shared: redis(url) }`), against the real test server:
 * several connections ("processes" with their own clocks) and real OS processes share one key's
 * buckets, concurrency slots and pause. Bucket time is Redis's `TIME`, so tests that need a bucket
 * to refill use a long `minuteMs` (nothing refills during the test) or, in the process tests, a
 * short one; the limiters' own timers run on simulated clocks unless a test says otherwise.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { realClock, simulatedClock, type Clock, type SimulatedClock } from '../../src/core/clock.js';
import { isConfigError } from '../../src/core/errors.js';
import { isRateLimitsUnavailableError } from '../../src/errors.js';
import {
  isRateLimitedError,
  openLimits,
  type AcquireResult,
  type LimitSpec,
  type Limiter,
  type LimiterEvent,
  type LimitsConfig,
  type OpenedLimits,
} from '../../src/limits/index.js';
import { bucketShape } from '../../src/limits/queue.js';
import {
  RateLimitsUnavailableError,
  redis,
  redisLimits,
  RedisConnection,
  type RedisLimitsOptions,
} from '../../src/redis/index.js';
import type { LuaScript } from '../../src/redis/connection.js';
import { describeRedis, redisPrefix, redisUrl } from '../support/scaleout.js';

const KEY = 'openai:gpt-4';
const CHILD = fileURLToPath(new URL('./limits-child.ts', import.meta.url));
/** Script timeout of the simulated members; any other timer a member arms is a wait's retry or deadline. */
const TIMEOUT_MS = 7_777;
/** A minute 10x longer than real: buckets refill ten times slower, so nothing refills during a test. */
const SLOW_MINUTE = 600_000;

interface Member {
  limiter: Limiter;
  opened: OpenedLimits;
  clock: SimulatedClock | Clock;
  /** Delays of the timers the limiter armed other than script timeouts (retries and deadlines). */
  retries: number[];
  errors: Error[];
  events: LimiterEvent[];
}

let members: Member[] = [];
let children: ChildProcessWithoutNullStreams[] = [];
let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  const [ms, cs, fs] = [members, children, cleanups];
  members = [];
  children = [];
  cleanups = [];
  for (const c of cs) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const m of ms) m.limiter.close();
  // Let script timeouts of unanswered writes pass in virtual time, then close the connections.
  for (const m of ms) if ('advanceAsync' in m.clock) await m.clock.advanceAsync(60_000);
  await Promise.all(ms.map((m) => m.opened.close()));
  for (const f of fs) await f();
});

/** One process of the fleet: its own connection and clock (simulated unless given), on `prefix`. */
function member(
  prefix: string,
  spec: LimitSpec,
  {
    url = redisUrl(),
    clock = simulatedClock(),
    tenantWeights,
    connection,
    ...options
  }: RedisLimitsOptions & {
    url?: string;
    clock?: SimulatedClock | Clock;
    tenantWeights?: Record<string, number>;
    /** A connection of the test's own (its prefix is used; `prefix` is ignored); closed after the test. */
    connection?: RedisConnection;
  } = {},
): Member {
  const retries: number[] = [];
  const errors: Error[] = [];
  const events: LimiterEvent[] = [];
  const timeoutMs = options.timeoutMs ?? (clock === realClock ? 2_000 : TIMEOUT_MS);
  const spy: Clock = {
    now: () => clock.now(),
    setTimeout: (fn, ms) => {
      if (ms !== timeoutMs) retries.push(ms);
      return clock.setTimeout(fn, ms);
    },
    clearTimeout: (h) => clock.clearTimeout(h),
  };
  if (connection) cleanups.push(() => connection.close());
  const shared = connection
    ? redisLimits(connection, { timeoutMs, ...options })
    : redisLimits(url, { keyPrefix: prefix, timeoutMs, ...options });
  const opened = openLimits(
    { shared, [KEY]: spec },
    {
      clock: spy,
      ...(tenantWeights ? { tenantWeights } : {}),
      onError: (e) => errors.push(e),
      onEvent: (e) => events.push(e),
    },
  );
  const m = { limiter: opened.limiter, opened, clock, retries, errors, events };
  members.push(m);
  return m;
}

/**
 * A connection that delivers the replies of acquire scripts only when the test says so: the script
 * has run on Redis (its take is done), but the limiter has not heard back yet.
 */
class HeldReplies extends RedisConnection {
  private readonly held: (() => void)[] = [];

  override evalScript(
    script: LuaScript,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    const reply = super.evalScript(script, keys, args);
    if (!script.source.includes("redis.call('HVALS', s)")) return reply; // not the acquire script
    reply.catch(() => {}); // handled where it is delivered; never unhandled while held
    const gate = new Promise<void>((open) => this.held.push(open));
    return gate.then(() => reply);
  }

  /** Acquire scripts sent whose replies are held. */
  get pending(): number {
    return this.held.length;
  }

  /** Delivers the held replies. */
  deliver(): void {
    for (const f of this.held.splice(0)) f();
  }
}

/** Resolves once `m` was refused by Redis at least `n` times (it armed a retry or deadline timer). */
async function refused(m: Member, n = 1): Promise<void> {
  await vi.waitFor(() => expect(m.retries.length).toBeGreaterThanOrEqual(n), { timeout: 5_000, interval: 5 });
}

function configErrorField(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isConfigError(e)) return e.field;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

function ok(r: AcquireResult): Extract<AcquireResult, { ok: true }> {
  if (!r.ok) throw r.error;
  return r;
}

describe('shared rate limits config', () => {
  it('names the bad field and sends nothing', () => {
    const connection = new RedisConnection('redis://127.0.0.1:1', { keyPrefix: 'keel-test:config:' });
    const open = (config: LimitsConfig) => openLimits(config, { clock: simulatedClock(), onError: () => {} });
    expect(configErrorField(() => open({ shared: {} as never, [KEY]: { rpm: 1 } }))).toBe('limits.shared');
    expect(
      configErrorField(() => open({ shared: redisLimits(connection), [KEY]: { rpmm: 1 } as never })),
    ).toBe(`limits.${KEY}.rpmm`);
    expect(configErrorField(() => redis('redis://127.0.0.1:1', { limits: { leaseMs: 0 } }))).toBe(
      'limits.shared.leaseMs',
    );
    expect(configErrorField(() => redisLimits('redis://127.0.0.1:1', { minuteMs: Number.NaN }))).toBe(
      'limits.shared.minuteMs',
    );
    expect(configErrorField(() => redisLimits(connection, { onUnavailable: 'panic' as never }))).toBe(
      'limits.shared.onUnavailable',
    );
    expect(configErrorField(() => redisLimits(connection, { keyPrefix: 'other:' }))).toBe('limits.shared');
    expect(configErrorField(() => redisLimits(42 as never))).toBe('limits.shared');
    expect(() => redisLimits('http://127.0.0.1:6379')).toThrow(/redis:\/\/ or rediss:\/\//);
    // Nothing was sent: the connection is lazy and config errors come first.
    expect(connection.client().status).toBe('wait');
    connection.client().disconnect();
  });
});

describe('openLimits without a shared backend', () => {
  it('opens the in-process limiter: synchronous answers, nothing to wait for', async () => {
    const clock = simulatedClock();
    const opened = openLimits({ [KEY]: { rpm: 60, maxQueueMs: 0 } }, { clock, onError: () => {} });
    expect(opened.backend).toBeUndefined();
    await opened.ready();
    const first = opened.limiter.acquire({ key: KEY });
    expect(first).toMatchObject({ ok: true }); // not a promise
    const second = opened.limiter.acquire({ key: KEY });
    expect(!(second instanceof Promise) && !second.ok && second.error.reason).toBe('queue_full');
    await opened.close();
  });
});

describeRedis('rate limits shared on Redis', () => {
  it('ready() fails with the server (no password) and the fix when Redis is unreachable', async () => {
    const port = await closedPort();
    const m = member(redisPrefix(), { rpm: 60 }, { url: `redis://:s3cret@127.0.0.1:${port}` });
    const error = await m.opened.ready().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RateLimitsUnavailableError);
    const message = (error as Error).message;
    expect(message).toContain(`redis://127.0.0.1:${port}`);
    expect(message).not.toContain('s3cret');
    expect(message).toMatch(/Check that Redis is running/);
    expect((error as RateLimitsUnavailableError).code).toBe('RATE_LIMITS_UNAVAILABLE');
    expect(isRateLimitsUnavailableError(error)).toBe(true);
    expect(isRateLimitsUnavailableError(new Error(message))).toBe(false);
  });

  it('one request bucket for every process: what one took, another waits for', async () => {
    const prefix = redisPrefix();
    const a = member(prefix, { rpm: 60, maxQueueMs: 100 }, { minuteMs: SLOW_MINUTE }); // burst 1
    const b = member(prefix, { rpm: 60, maxQueueMs: 100 }, { minuteMs: SLOW_MINUTE });
    await Promise.all([a.opened.ready(), b.opened.ready()]);
    ok(await a.limiter.acquire({ key: KEY, tenant: 'acme' })).permit.release();

    const pending = b.limiter.acquire({ key: KEY, tenant: 'globex' });
    await refused(b);
    expect(b.limiter.stats(KEY)).toMatchObject({ queued: 1, started: 0 });
    await (b.clock as SimulatedClock).advanceAsync(100);
    const r = await pending;
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(isRateLimitedError(r.error)).toBe(true);
    expect(r.error).toMatchObject({
      key: KEY,
      reason: 'queue_timeout',
      tenant: 'globex',
      category: 'rate_limited',
    });
    expect(b.events).toEqual([
      { type: 'shed', key: KEY, tenant: 'globex', waitedMs: 100, reason: 'queue_timeout' },
    ]);
    // The first process is held back by its own take too.
    const again = a.limiter.acquire({ key: KEY });
    await refused(a);
    await (a.clock as SimulatedClock).advanceAsync(100);
    expect((await again).ok).toBe(false);
    // Another key prefix is another fleet, with a bucket of its own.
    const other = member(redisPrefix(), { rpm: 60 }, { minuteMs: SLOW_MINUTE });
    expect((await other.limiter.acquire({ key: KEY })).ok).toBe(true);
    // Keys without limits are not limited and never touch Redis.
    expect(b.limiter.acquire({ key: 'other:model' })).toMatchObject({ ok: true });
    expect(b.limiter.limits('other:model')).toBe(false);
  });

  it("redisLimits(connection) shares the caller's connection and leaves closing it to its owner", async () => {
    const prefix = redisPrefix();
    const connection = new RedisConnection(redisUrl(), { keyPrefix: prefix });
    cleanups.push(() => connection.close());
    const opened = openLimits(
      { shared: redisLimits(connection, { minuteMs: SLOW_MINUTE }), [KEY]: { rpm: 60, maxQueueMs: 0 } },
      { clock: simulatedClock(), onError: (e) => expect.unreachable(e.message) },
    );
    await opened.ready();
    ok(await opened.limiter.acquire({ key: KEY })).permit.release();
    await opened.close();
    expect(connection.client().status).toBe('ready');
    // The bucket it used lives under the connection's prefix.
    expect(await connection.client().exists(connection.key('limits', 'state', KEY))).toBe(1);
  });

  it('tpm: a call settled below its reservation gives the tokens back to the whole fleet', async () => {
    const prefix = redisPrefix();
    const spec = { tpm: 6_000, maxQueueMs: 60_000 }; // burst 100 tokens
    const a = member(prefix, spec, { minuteMs: SLOW_MINUTE });
    const b = member(prefix, spec, { minuteMs: SLOW_MINUTE });
    const first = ok(await a.limiter.acquire({ key: KEY, tokens: 100 }));
    const pending = b.limiter.acquire({ key: KEY, tokens: 60, tenant: 'acme' });
    await refused(b);
    const waitMs = b.retries[0] ?? 0;
    expect(waitMs).toBeGreaterThan(5_000); // 60 tokens at 5,900 per 10 min
    first.permit.release(10); // used 10 of its 100: 90 go back
    await a.opened.close();
    await (b.clock as SimulatedClock).advanceAsync(waitMs); // looks again: the refund is there
    const r = ok(await pending);
    expect(b.events).toEqual([{ type: 'waited', key: KEY, tenant: 'acme', waitedMs: waitMs }]);
    expect(b.limiter.stats(KEY)).toMatchObject({ inFlight: 1, waited: 1, started: 1 });
    const c = new RedisConnection(redisUrl(), { keyPrefix: prefix });
    cleanups.push(() => c.close());
    const level = Number(await c.client().hget(c.key('limits', 'state', KEY), 't'));
    expect(level).toBeGreaterThanOrEqual(30); // 100 - 100 + 90 - 60, plus what refilled meanwhile
    expect(level).toBeLessThan(35);
    r.permit.release(60);
  });

  it('concurrency is counted across processes; a release in one lets another start', async () => {
    const prefix = redisPrefix();
    const spec = { concurrency: 1, maxQueueMs: 60_000 };
    const a = member(prefix, spec, { pollMs: 40 });
    const b = member(prefix, spec, { pollMs: 40 });
    const held = ok(await a.limiter.acquire({ key: KEY }));
    const pending = b.limiter.acquire({ key: KEY });
    await refused(b);
    expect(b.retries[0]).toBe(40); // only other processes' calls hold it back: poll
    await (b.clock as SimulatedClock).advanceAsync(40);
    await refused(b, 2);
    held.permit.release();
    await a.opened.close();
    await (b.clock as SimulatedClock).advanceAsync(40);
    ok(await pending).permit.release();
    expect(b.limiter.stats(KEY)).toMatchObject({ waited: 1, started: 1 });
  });

  it('waiting calls of one process are served by weighted fair queueing between tenants', async () => {
    const m = member(redisPrefix(), { concurrency: 1 });
    const first = ok(await m.limiter.acquire({ key: KEY, tenant: 'bulk' }));
    const order: string[] = [];
    const calls = ['bulk', 'bulk', 'bulk', 'bulk', 'quiet'].map(async (tenant) => {
      const r = ok(await m.limiter.acquire({ key: KEY, tenant }));
      order.push(tenant);
      r.permit.release();
    });
    first.permit.release();
    await Promise.all(calls);
    expect(order).toEqual(['bulk', 'quiet', 'bulk', 'bulk', 'bulk']);
  });

  it('a cancelled waiter leaves the queue at once, takes no slot, and the next moves up', async () => {
    const m = member(redisPrefix(), { concurrency: 1, maxQueueMs: 60_000 }, { pollMs: 40 });
    const first = ok(await m.limiter.acquire({ key: KEY }));
    const ac = new AbortController();
    const second = m.limiter.acquire({ key: KEY, signal: ac.signal });
    const third = Promise.resolve(m.limiter.acquire({ key: KEY }));
    ac.abort();
    const r2 = await second;
    expect(!r2.ok && r2.error.reason).toBe('cancelled');
    expect(m.limiter.stats(KEY)).toMatchObject({ queued: 1, cancelled: 1, shed: 0 });
    first.permit.release();
    // The release may reach Redis after the next head's script (its first EVALSHA): then it polls.
    const next = third.then((r) => ok(r));
    for (let i = 0; i < 50; i++) {
      const n = m.retries.length;
      const moved = () => m.limiter.stats(KEY).queued === 0 || m.retries.length > n;
      await vi.waitFor(() => expect(moved()).toBe(true), { timeout: 5_000, interval: 5 });
      if (m.limiter.stats(KEY).queued === 0) break;
      await (m.clock as SimulatedClock).advanceAsync(40);
    }
    (await next).permit.release();
    expect(m.limiter.stats(KEY)).toMatchObject({ started: 2, cancelled: 1, shed: 0, inFlight: 0 });
    expect(m.events.filter((e) => e.type === 'cancelled')).toHaveLength(1);
    // Already aborted: answered at once, nothing sent to Redis.
    expect(m.limiter.acquire({ key: KEY, signal: AbortSignal.abort() })).toMatchObject({
      ok: false,
      error: { reason: 'cancelled' },
    });
  });

  it('a call cancelled while its acquire script is in flight gives back the request, slot and tokens it took', async () => {
    const prefix = redisPrefix();
    const spec = { rpm: 60, tpm: 6_000, concurrency: 1, maxQueueMs: 0 }; // burst: 1 request, 100 tokens
    const connection = new HeldReplies(redisUrl(), { keyPrefix: prefix });
    const a = member(prefix, spec, { minuteMs: SLOW_MINUTE, connection });
    await a.opened.ready();
    const deadline = new AbortController(); // e.g. the workflow's deadline, or its client went away
    const pending = a.limiter.acquire({ key: KEY, tokens: 80, tenant: 'acme', signal: deadline.signal });
    await vi.waitFor(() => expect(connection.pending).toBe(1));
    // The script has taken the request, 80 tokens and the slot on Redis; its reply is on the way.
    const state = connection.key('limits', 'state', KEY);
    await vi.waitFor(async () => expect(Number(await connection.client().hget(state, 'r'))).toBeLessThan(1));
    deadline.abort();
    const r = await pending;
    expect(!r.ok && r.error.reason).toBe('cancelled');
    connection.deliver(); // the reply says "started", for a caller that is gone
    await vi.waitFor(() =>
      expect(a.limiter.stats(KEY)).toMatchObject({ queued: 0, inFlight: 0, cancelled: 1 }),
    );
    await a.opened.flush();
    expect(a.errors).toEqual([]);
    const c = connection.client();
    expect(Number(await c.hget(state, 'r'))).toBe(1); // the whole burst again
    expect(Number(await c.hget(state, 't'))).toBe(100);
    expect(await c.hlen(connection.key('limits', 'slots', KEY))).toBe(0);
    expect(await c.zcard(connection.key('limits', 'leases', KEY))).toBe(0);
    // Another process may use what the cancelled call never did: it starts at once (maxQueueMs 0).
    const b = member(prefix, spec, { minuteMs: SLOW_MINUTE });
    const started = ok(await b.limiter.acquire({ key: KEY, tokens: 100 }));
    expect(b.limiter.stats(KEY)).toMatchObject({ started: 1, shed: 0 });
    started.permit.release(100);
  });

  it("an acquire answered after timeoutMs, its call shed meanwhile ('shed'), gives back what it took", async () => {
    const prefix = redisPrefix();
    const spec = { rpm: 60, tpm: 6_000, concurrency: 1, maxQueueMs: 0 };
    const connection = new HeldReplies(redisUrl(), { keyPrefix: prefix });
    const a = member(prefix, spec, { minuteMs: SLOW_MINUTE, connection, onUnavailable: 'shed' });
    await a.opened.ready();
    const pending = a.limiter.acquire({ key: KEY, tokens: 80 });
    await vi.waitFor(() => expect(connection.pending).toBe(1));
    await (a.clock as SimulatedClock).advanceAsync(TIMEOUT_MS); // Redis is slow: no answer in time
    const r = await pending;
    expect(!r.ok && r.error.reason).toBe('unavailable');
    connection.deliver(); // ... and then it answers "started"
    const state = connection.key('limits', 'state', KEY);
    const c = connection.client();
    await vi.waitFor(async () => expect(Number(await c.hget(state, 'r'))).toBe(1));
    await a.opened.flush();
    expect(Number(await c.hget(state, 't'))).toBe(100);
    expect(await c.hlen(connection.key('limits', 'slots', KEY))).toBe(0);
    expect(a.errors).toHaveLength(1); // the outage, once
    const b = member(prefix, spec, { minuteMs: SLOW_MINUTE });
    ok(await b.limiter.acquire({ key: KEY, tokens: 100 })).permit.release(100);
  });

  it('a 429 seen by one process pauses the key for every process', async () => {
    const prefix = redisPrefix();
    const child = spawnChild('pause', prefix, { rpm: 6_000 }, {}, '30000');
    await child.line('ready');
    child.process.stdin.end('go\n');
    await child.line('paused');
    const a = member(prefix, { rpm: 6_000, maxQueueMs: 1_000 });
    const b = member(prefix, { rpm: 6_000, maxQueueMs: 1_000 });
    const [pa, pb] = [a.limiter.acquire({ key: KEY }), b.limiter.acquire({ key: KEY })];
    await Promise.all([refused(a), refused(b)]);
    for (const m of [a, b]) {
      const until = (m.limiter.stats(KEY).pausedUntil ?? 0) - m.clock.now();
      expect(until).toBeGreaterThan(20_000);
      expect(until).toBeLessThanOrEqual(30_000);
      await (m.clock as SimulatedClock).advanceAsync(1_000);
    }
    for (const r of await Promise.all([pa, pb])) expect(!r.ok && r.error.reason).toBe('queue_timeout');
  });

  it("a live holder keeps its slot past its lease; a crashed holder's slot comes back after it", async () => {
    const prefix = redisPrefix();
    const spec = { concurrency: 1, maxQueueMs: 10_000 };
    // Live: renewed every leaseMs / 3, so another process waits its whole maxQueueMs.
    const a = member(prefix, spec, { clock: realClock, leaseMs: 300 });
    const b = member(prefix, { ...spec, maxQueueMs: 900 }, { clock: realClock, leaseMs: 300, pollMs: 20 });
    const held = ok(await a.limiter.acquire({ key: KEY }));
    const shed = await b.limiter.acquire({ key: KEY });
    expect(!shed.ok && shed.error.reason).toBe('queue_timeout');
    held.permit.release();
    await a.opened.close();

    // Crashed: a child takes the slot and is killed without releasing it.
    const child = spawnChild('hold', prefix, spec, { leaseMs: 1_500 });
    await child.line('held');
    child.process.kill('SIGKILL');
    await once(child.process, 'exit');
    const killedAt = Date.now();
    const c = member(prefix, spec, { clock: realClock, leaseMs: 1_500, pollMs: 20 });
    const r = ok(await c.limiter.acquire({ key: KEY }));
    const waited = Date.now() - killedAt;
    expect(c.events[0]).toMatchObject({ type: 'waited' }); // refused while the lease ran
    expect(waited).toBeLessThan(1_500 + 1_000);
    r.permit.release();
  });

  it('close() while a script is in flight sheds the call and gives its request, slot and tokens back to the fleet', async () => {
    const prefix = redisPrefix();
    const m = member(prefix, { rpm: 60, concurrency: 1, tpm: 6_000 }, { minuteMs: SLOW_MINUTE });
    await m.opened.ready();
    const pending = m.limiter.acquire({ key: KEY, tokens: 50, tenant: 'acme' });
    m.limiter.close(); // before Redis answered
    const r = await pending;
    expect(!r.ok && r.error.reason).toBe('closed');
    await vi.waitFor(() => expect(m.limiter.stats(KEY).queued).toBe(0));
    await m.opened.close(); // flushes the give-back
    // Another process finds the slot and the tokens free.
    const other = member(
      prefix,
      { rpm: 60, concurrency: 1, tpm: 6_000, maxQueueMs: 0 },
      { minuteMs: SLOW_MINUTE },
    );
    const again = await other.limiter.acquire({ key: KEY, tokens: 100 });
    expect(again.ok).toBe(true);
    // After close, calls are not limited and never touch Redis.
    expect(m.limiter.acquire({ key: KEY })).toMatchObject({ ok: true });
  });

  for (const onUnavailable of ['allow', 'shed'] as const) {
    it(`Redis going away mid-run: onUnavailable '${onUnavailable}'`, async () => {
      const proxy = await redisProxy();
      const m = member(redisPrefix(), { rpm: 6_000, concurrency: 5 }, { url: proxy.url, onUnavailable });
      await m.opened.ready();
      ok(await m.limiter.acquire({ key: KEY })).permit.release();
      await m.opened.flush(); // the release reached Redis before the outage
      expect(m.errors).toEqual([]);

      await proxy.cut();
      const results = await Promise.all(
        [1, 2, 3].map(async () => m.limiter.acquire({ key: KEY, tenant: 'acme' })),
      );
      if (onUnavailable === 'allow') {
        for (const r of results) ok(r).permit.release();
        expect(m.limiter.stats(KEY)).toMatchObject({ started: 4, inFlight: 0 });
      } else {
        for (const r of results) {
          expect(r.ok).toBe(false);
          if (!r.ok) expect(r.error).toMatchObject({ reason: 'unavailable', tenant: 'acme' });
          if (!r.ok) expect(r.error.message).toMatch(/Redis unavailable/);
        }
        expect(m.events.filter((e) => e.type === 'shed')).toHaveLength(3);
      }
      // Reported once per outage, naming the server.
      expect(m.errors).toHaveLength(1);
      expect(m.errors[0]).toBeInstanceOf(RateLimitsUnavailableError);
      expect(m.errors[0]?.message).toContain(proxy.url.replace('redis://', ''));

      // Redis is back: calls are guarded again (the fleet counts this one's slot).
      await proxy.reopen();
      const connection = m.opened.backend as unknown as RedisConnection;
      await vi.waitFor(() => expect(connection.client().status).toBe('ready'), { timeout: 10_000 });
      const back = ok(await m.limiter.acquire({ key: KEY }));
      const slots = await connection.client().hvals(connection.key('limits', 'slots', KEY));
      expect(slots.map(Number)).toEqual([1]);
      back.permit.release();
      expect(m.errors).toHaveLength(1);
    });
  }

  it('a Redis that never answers: the call is decided after timeoutMs', async () => {
    const silent = await silentServer();
    const allow = member(redisPrefix(), { rpm: 60 }, { url: silent.url, onUnavailable: 'allow' });
    const shed = member(redisPrefix(), { rpm: 60 }, { url: silent.url, onUnavailable: 'shed' });
    const [pa, ps] = [allow.limiter.acquire({ key: KEY }), shed.limiter.acquire({ key: KEY })];
    for (const m of [allow, shed]) await (m.clock as SimulatedClock).advanceAsync(TIMEOUT_MS);
    ok(await pa).permit.release();
    const r = await ps;
    expect(!r.ok && r.error.reason).toBe('unavailable');
    for (const m of [allow, shed]) expect(m.errors[0]?.message).toMatch(/no reply within 7777 ms/);
  });

  it('3 OS processes firing 200 calls each at one bucket stay within rpm together', async () => {
    const prefix = redisPrefix();
    // rpm 120 over a 3 s "minute": the bucket holds 2 and refills 118 per 3 s.
    const minuteMs = 3_000;
    const spec = { rpm: 120, maxQueueMs: 3_000 };
    const { burst, rate } = bucketShape(spec.rpm, minuteMs);
    const procs = [0, 1, 2].map(() => spawnChild('burst', prefix, spec, { minuteMs }, '200'));
    await Promise.all(procs.map((p) => p.line('ready')));
    for (const p of procs) p.process.stdin.end('go\n');
    const outs = await Promise.all(procs.map((p) => p.exit()));

    const grants: number[] = [];
    let calls = 0;
    let started = 0;
    let shed = 0;
    for (const out of outs) {
      for (const line of out.split('\n')) {
        const [word, x, y] = line.split(' ');
        if (word === 'grant') grants.push(Number(x));
        if (word === 'call') calls++;
        if (word === 'done') {
          started += Number(x);
          shed += Number(y);
        }
      }
    }
    expect(started + shed).toBe(600);
    expect(calls).toBe(started); // every started call reached the provider, no other did
    // A start Redis granted may still be shed (its wait ran out while the reply was on its way).
    expect(started).toBeLessThanOrEqual(grants.length);
    expect(grants.length).toBeGreaterThanOrEqual(burst); // the first scripts find the bucket full
    grants.sort((a, b) => a - b);
    // Every grant is stamped with the Redis TIME its script ran at, so no scheduling of the
    // processes can move it: in any minute of Redis time the fleet started at most rpm calls (the
    // bucket's own bound, burst + rate × 2,999 ms, is 119.96). Each process alone would have let
    // 120 through in its first minute, 360 together.
    expect(maxInWindow(grants, minuteMs)).toBeLessThanOrEqual(spec.rpm);
    expect(maxInWindow(grants, minuteMs)).toBeLessThanOrEqual(burst + rate * (minuteMs - 1));
    // Over the whole run as well: never more than a full bucket plus its refill.
    const span = (grants.at(-1) ?? 0) - (grants[0] ?? 0);
    expect(grants.length).toBeLessThanOrEqual(burst + rate * span);
  }, 60_000);
});

/** The most timestamps in any half-open window of `windowMs` (sorted input). */
function maxInWindow(sorted: number[], windowMs: number): number {
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < sorted.length; hi++) {
    while ((sorted[lo] as number) <= (sorted[hi] as number) - windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

interface Child {
  process: ChildProcessWithoutNullStreams;
  line(text: string): Promise<void>;
  exit(): Promise<string>;
}

function spawnChild(
  mode: string,
  prefix: string,
  spec: LimitSpec,
  options: RedisLimitsOptions,
  arg = '',
): Child {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', CHILD, mode, redisUrl(), prefix, JSON.stringify(spec), JSON.stringify(options), arg],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  children.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = once(child, 'exit');
  return {
    process: child,
    line: (text) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (out.split('\n').includes(text)) resolve();
        };
        check();
        child.stdout.on('data', check);
        void exited.then(() => {
          check();
          reject(new Error(`child exited before "${text}": ${err}`));
        });
      }),
    exit: async () => {
      const [code] = (await exited) as [number | null];
      if (code !== 0) throw new Error(`child exited ${String(code)}: ${err}`);
      return out;
    },
  };
}

/** A TCP proxy to the test Redis that `cut()` severs (and keeps refusing), as an outage would. */
async function redisProxy(): Promise<{ url: string; cut(): Promise<void>; reopen(): Promise<void> }> {
  const target = new URL(redisUrl());
  const sockets = new Set<Socket>();
  const proxy: Server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client);
    sockets.add(upstream);
    client.pipe(upstream).pipe(client);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const address = proxy.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  let open = true;
  const cut = async (): Promise<void> => {
    if (!open) return;
    open = false;
    const closed = new Promise((resolve) => proxy.close(resolve));
    for (const s of sockets) s.destroy();
    await closed;
  };
  const reopen = async (): Promise<void> => {
    proxy.listen(port, '127.0.0.1');
    await once(proxy, 'listening');
    open = true;
  };
  cleanups.push(cut);
  return { url: `redis://127.0.0.1:${port}`, cut, reopen };
}

/** A server that accepts connections and never answers. */
async function silentServer(): Promise<{ url: string }> {
  const sockets = new Set<Socket>();
  const srv = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const address = srv.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  cleanups.push(async () => {
    const closed = new Promise((resolve) => srv.close(resolve));
    for (const s of sockets) s.destroy();
    await closed;
  });
  return { url: `redis://127.0.0.1:${port}` };
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const address = srv.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}
