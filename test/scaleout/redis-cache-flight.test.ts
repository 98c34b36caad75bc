import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { describeRedis, redisPrefix } from '../support/scaleout.js';
import { deferred, listeners, redisCaches } from './redis-cache-helpers.js';

describeRedis('Redis cache: single-flight across processes', () => {
  const caches = redisCaches();
  let clock: SimulatedClock;
  let prefix: string;
  let lockKey: string;
  let channel: string;
  beforeEach(() => {
    clock = simulatedClock();
    prefix = redisPrefix();
    lockKey = `${prefix}cache:l:k`;
    channel = `${prefix}cache:f:k`;
  });
  afterEach(() => caches.closeAll());

  it('makes one call for concurrent callers on two connections, and all of them get its result', async () => {
    const a = caches.open(prefix, { clock });
    const b = caches.open(prefix, { clock });
    const gate = deferred<string>();
    let calls = 0;
    const compute = async (): Promise<{ value: string; confidence: number }> => {
      calls++;
      return { value: await gate.promise, confidence: 0.9 };
    };
    const callers = Array.from({ length: 5 }, () => [
      a.cache.singleFlight('k', compute),
      b.cache.singleFlight('k', compute),
    ]).flat();
    // One process computes; the other listens for its result.
    await vi.waitFor(async () => {
      expect(calls).toBe(1);
      expect(await listeners(caches.raw(), channel)).toBe(1);
    });
    gate.resolve('Acme');
    const results = await Promise.all(callers);
    expect(calls).toBe(1);
    expect(results).toHaveLength(10);
    for (const r of results) expect(r).toEqual({ value: 'Acme', confidence: 0.9 });
    expect(await caches.raw().exists(lockKey)).toBe(0);
    expect([...a.errors, ...b.errors]).toEqual([]);
  });

  it('gives a caller arriving just after the call finished its result without a second call', async () => {
    const a = caches.open(prefix, { clock });
    const b = caches.open(prefix, { clock });
    let calls = 0;
    const compute = () => Promise.resolve(`call ${++calls}`);
    expect(await a.cache.singleFlight('k', compute)).toBe('call 1');
    await vi.waitFor(async () => expect(await caches.raw().exists(lockKey)).toBe(0));
    expect(await b.cache.singleFlight('k', compute)).toBe('call 1');
    expect(calls).toBe(1);
  });

  it('passes a failure to the leader’s own callers and frees the lock, so a waiting process calls', async () => {
    const a = caches.open(prefix, { clock });
    const b = caches.open(prefix, { clock });
    const gate = deferred<string>();
    let callsA = 0;
    let callsB = 0;
    const leader = a.cache.singleFlight('k', () => {
      callsA++;
      return gate.promise;
    });
    const leaderSibling = a.cache.singleFlight('k', () => Promise.resolve('never called'));
    await vi.waitFor(() => expect(callsA).toBe(1));
    const follower = b.cache.singleFlight('k', () => Promise.resolve(`B computed ${++callsB}`));
    await vi.waitFor(async () => expect(await listeners(caches.raw(), channel)).toBe(1));
    expect(callsB).toBe(0);

    gate.reject(new Error('provider down'));
    await expect(leader).rejects.toThrow('provider down');
    await expect(leaderSibling).rejects.toThrow('provider down');
    expect(await follower).toBe('B computed 1');
    expect([callsA, callsB]).toEqual([1, 1]);
    expect(await caches.raw().exists(lockKey)).toBe(0);
  });

  it('stops waiting for a dead leader that never frees its lock after waitForLeaderMs, and calls itself', async () => {
    await caches.raw().set(lockKey, 'dead-leader'); // held forever: no expiry
    const b = caches.open(prefix, { clock, waitForLeaderMs: 5_000 });
    let calls = 0;
    const flight = b.cache.singleFlight('k', () => Promise.resolve(`B computed ${++calls}`));
    await vi.waitFor(() => expect(clock.pendingTimers()).toBe(1)); // waiting for the leader
    await clock.advanceAsync(4_999);
    expect(calls).toBe(0);
    await clock.advanceAsync(1);
    expect(await flight).toBe('B computed 1');
    expect(await caches.raw().get(lockKey)).toBe('dead-leader'); // never takes a lock it does not own
  });

  it('takes over as soon as a dead leader’s lock expires, holding the lock while it calls', async () => {
    await caches.raw().set(lockKey, 'dead-leader', 'PX', 300);
    const b = caches.open(prefix, { clock }); // waits up to the default 60 s otherwise
    let lockDuringCall: string | null = null;
    const flight = b.cache.singleFlight('k', async () => {
      lockDuringCall = await caches.raw().get(lockKey);
      return 'B computed';
    });
    await vi.waitFor(() => expect(clock.pendingTimers()).toBe(1));
    await vi.waitFor(async () => expect(await caches.raw().exists(lockKey)).toBe(0), { timeout: 5_000 });
    await clock.advanceAsync(300); // the wait was bounded by the lock's remaining TTL
    expect(await flight).toBe('B computed');
    expect(lockDuringCall).not.toBeNull();
    expect(lockDuringCall).not.toBe('dead-leader');
    await vi.waitFor(async () => expect(await caches.raw().exists(lockKey)).toBe(0));
  });

  it('lets processes that cannot share a result (not JSON) make their own call', async () => {
    const a = caches.open(prefix, { clock });
    const b = caches.open(prefix, { clock });
    const gate = deferred<void>();
    const leader = a.cache.singleFlight('k', async () => {
      await gate.promise;
      return { big: 1n };
    });
    await vi.waitFor(async () => expect(await caches.raw().exists(lockKey)).toBe(1));
    const follower = b.cache.singleFlight('k', () => Promise.resolve({ big: 2n }));
    await vi.waitFor(async () => expect(await listeners(caches.raw(), channel)).toBe(1));
    gate.resolve();
    expect(await leader).toEqual({ big: 1n });
    expect(await follower).toEqual({ big: 2n });
  });

  it('keys flights apart: a call on one key does not hold up another', async () => {
    const a = caches.open(prefix, { clock });
    const b = caches.open(prefix, { clock });
    const gate = deferred<string>();
    const slow = a.cache.singleFlight('k', () => gate.promise);
    expect(await b.cache.singleFlight('other', () => Promise.resolve('quick'))).toBe('quick');
    gate.resolve('slow');
    expect(await slow).toBe('slow');
  });
});
