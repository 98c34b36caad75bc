import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { isConfigError } from '../../src/core/errors.js';
import { createRedisCache, type RedisCacheOptions } from '../../src/redis/cache.js';
import { RedisConnection } from '../../src/redis/connection.js';
import { describeRedis, redisPrefix, redisUrl } from '../support/scaleout.js';
import { deferred, redisCaches, type OpenedCache } from './redis-cache-helpers.js';

const LOCK_TTL_MS = 300;
/** The default renewal period: a third of the lock's TTL. */
const RENEW_MS = LOCK_TTL_MS / 3;

describeRedis('Redis cache: the leader renews its single-flight lock while its call runs', () => {
  const caches = redisCaches();
  /** Logical time of every process (freshness, the followers' waits). */
  let clock: SimulatedClock;
  /** The leader's renewal timer: Redis real time, driven by hand. */
  let timer: SimulatedClock;
  let prefix: string;
  let lockKey: string;
  beforeEach(() => {
    clock = simulatedClock();
    timer = simulatedClock();
    prefix = redisPrefix();
    lockKey = `${prefix}cache:l:k`;
  });
  afterEach(() => caches.closeAll());

  /** The lock's PTTL, read on `o`'s own connection: after every command that cache has sent. */
  const pttlSeenBy = (o: OpenedCache): Promise<number> => o.connection.client().pttl(lockKey);

  /**
   * A leader (process A) whose call stays pending and a follower (process B) waiting for it. Then five
   * times: 200 ms of the lock's 300 pass (set by hand with PEXPIRE, instead of sleeping) and the
   * renewal period comes due on the leader's timer; 500 ms of renewal time in all, past the first TTL.
   */
  const longCall = async (leader: Partial<RedisCacheOptions>) => {
    const a = caches.open(prefix, { clock, lockTtlMs: LOCK_TTL_MS, renewTimer: timer, ...leader });
    const b = caches.open(prefix, { clock, lockTtlMs: LOCK_TTL_MS });
    const gate = deferred<string>();
    const calls: string[] = [];
    const leaderFlight = a.cache.singleFlight('k', () => {
      calls.push('A');
      return gate.promise;
    });
    await vi.waitFor(() => expect(calls).toEqual(['A']));
    const followerFlight = b.cache.singleFlight('k', () => {
      calls.push('B');
      return Promise.resolve('B computed');
    });
    await vi.waitFor(() => expect(clock.pendingTimers()).toBe(1)); // B waits for A's announcement
    const pttls: number[] = [];
    for (let i = 0; i < 5; i++) {
      await caches.raw().pexpire(lockKey, LOCK_TTL_MS - 200);
      timer.advance(RENEW_MS);
      pttls.push(await pttlSeenBy(a));
    }
    return { a, b, gate, calls, leaderFlight, followerFlight, pttls };
  };

  it('keeps the lock past its first TTL, so a waiting process gets the leader’s result: one call', async () => {
    const { a, b, gate, calls, leaderFlight, followerFlight, pttls } = await longCall({});
    for (const pttl of pttls) {
      expect(pttl).toBeGreaterThan(LOCK_TTL_MS - 100); // extended back to 300 each time
      expect(pttl).toBeLessThanOrEqual(LOCK_TTL_MS);
    }
    // B's wait (bounded by the lock's TTL) runs out; it claims again, finds the lock held, waits again.
    await clock.advanceAsync(LOCK_TTL_MS);
    await vi.waitFor(() => expect(clock.pendingTimers()).toBe(1));
    expect(calls).toEqual(['A']);

    gate.resolve('Acme');
    expect(await leaderFlight).toBe('Acme');
    expect(await followerFlight).toBe('Acme');
    expect(calls).toEqual(['A']);
    expect([...a.errors, ...b.errors]).toEqual([]);
  });

  it('without renewal (lockRenewMs: 0) lets the lock expire under a running call: two calls', async () => {
    const { gate, calls, leaderFlight, followerFlight, pttls } = await longCall({ lockRenewMs: 0 });
    for (const pttl of pttls) expect(pttl).toBeLessThanOrEqual(LOCK_TTL_MS - 200);
    // Redis's own expiry: at most 100 ms of real time.
    await vi.waitFor(async () => expect(await caches.raw().exists(lockKey)).toBe(0), { timeout: 1_000 });
    await clock.advanceAsync(LOCK_TTL_MS);
    expect(await followerFlight).toBe('B computed');
    gate.resolve('Acme');
    expect(await leaderFlight).toBe('Acme');
    expect(calls).toEqual(['A', 'B']);
  });

  type Gate = ReturnType<typeof deferred<string>>;
  it.each([
    ['succeeds', (gate: Gate) => gate.resolve('Acme'), 'Acme'],
    ['fails', (gate: Gate) => gate.reject(new Error('provider down')), 'provider down'],
    ['is cancelled', (gate: Gate) => gate.reject(AbortSignal.abort().reason), 'This operation was aborted'],
  ])('stops renewing and frees the lock once the call %s', async (_outcome, settle, outcome) => {
    const a = caches.open(prefix, { clock, lockTtlMs: LOCK_TTL_MS, renewTimer: timer });
    const gate = deferred<string>();
    const flight = a.cache.singleFlight('k', () => gate.promise);
    await vi.waitFor(() => expect(timer.pendingTimers()).toBe(1));
    timer.advance(RENEW_MS); // one renewal, and the next one scheduled
    expect(timer.pendingTimers()).toBe(1);
    expect(await pttlSeenBy(a)).toBeGreaterThan(LOCK_TTL_MS - 100);

    settle(gate);
    const settled = await flight.then(
      (value) => value,
      (e: unknown) => (e as Error).message,
    );
    expect(settled).toBe(outcome);
    expect(timer.pendingTimers()).toBe(0);
    expect(await a.connection.client().exists(lockKey)).toBe(0);
    expect(a.errors).toEqual([]);
  });

  it('never extends a lock another process took over, reports it, and still delivers the call’s result', async () => {
    const a = caches.open(prefix, { clock, lockTtlMs: LOCK_TTL_MS, renewTimer: timer });
    const gate = deferred<string>();
    const flight = a.cache.singleFlight('k', () => gate.promise);
    await vi.waitFor(() => expect(timer.pendingTimers()).toBe(1));
    // A's lock expired and another process took it, with its own (longer) expiry.
    await caches.raw().set(lockKey, 'other-process', 'PX', 100_000);
    timer.advance(RENEW_MS);
    await vi.waitFor(() => expect(a.errors).toHaveLength(1));
    expect(a.errors[0]?.operation).toBe('renew');
    expect(a.errors[0]?.message).toContain('expired or was taken by another process');
    expect(timer.pendingTimers()).toBe(0); // renewal stopped
    expect(await caches.raw().get(lockKey)).toBe('other-process');
    expect(await caches.raw().pttl(lockKey)).toBeGreaterThan(LOCK_TTL_MS); // not reset to A's 300 ms

    gate.resolve('Acme');
    expect(await flight).toBe('Acme');
    expect(await a.connection.client().get(lockKey)).toBe('other-process'); // A did not free it
    // A's result was stored for processes that were waiting on the key.
    const late = caches.open(prefix, { clock });
    expect(await late.cache.singleFlight('k', () => Promise.resolve('second call'))).toBe('Acme');
    expect(a.errors).toHaveLength(1);
  });

  it('reports a lock that vanished under the call, and does not recreate it', async () => {
    const a = caches.open(prefix, { clock, lockTtlMs: LOCK_TTL_MS, renewTimer: timer });
    const gate = deferred<string>();
    const flight = a.cache.singleFlight('k', () => gate.promise);
    await vi.waitFor(() => expect(timer.pendingTimers()).toBe(1));
    await caches.raw().del(lockKey); // e.g. evicted, or lost in a Redis restart
    timer.advance(RENEW_MS);
    await vi.waitFor(() => expect(a.errors).toHaveLength(1));
    expect(a.errors[0]?.message).toContain(lockKey);
    expect(timer.pendingTimers()).toBe(0);
    expect(await caches.raw().exists(lockKey)).toBe(0);
    gate.resolve('Acme');
    expect(await flight).toBe('Acme');
  });

  it('stops renewing on close(), while the call still runs and completes', async () => {
    const a = caches.open(prefix, { clock, lockTtlMs: LOCK_TTL_MS, renewTimer: timer });
    const gate = deferred<string>();
    const flight = a.cache.singleFlight('k', () => gate.promise);
    await vi.waitFor(() => expect(timer.pendingTimers()).toBe(1));
    await a.cache.close();
    expect(timer.pendingTimers()).toBe(0);
    await caches.raw().pexpire(lockKey, LOCK_TTL_MS - 200);
    timer.advance(5 * RENEW_MS);
    expect(await pttlSeenBy(a)).toBeLessThanOrEqual(LOCK_TTL_MS - 200); // not extended any more
    gate.resolve('Acme');
    expect(await flight).toBe('Acme');
    expect(a.errors).toEqual([]);
  });

  it('rejects a renewal period not shorter than lockTtlMs, and a timer without setTimeout', () => {
    const connection = new RedisConnection(redisUrl(), { keyPrefix: prefix });
    const fields: string[] = [];
    for (const options of [
      { clock, lockTtlMs: 1_000, lockRenewMs: 1_000 },
      { clock, lockRenewMs: -1 },
      { clock, renewTimer: {} as unknown as SimulatedClock },
    ]) {
      try {
        createRedisCache(connection, options);
      } catch (e) {
        if (isConfigError(e)) fields.push(e.field);
      }
    }
    expect(fields).toEqual(['cache.lockRenewMs', 'cache.lockRenewMs', 'cache.renewTimer']);
  });
});
