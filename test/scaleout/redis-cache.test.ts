import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { CacheClosedError, CacheValueError, isCacheError } from '../../src/cache/errors.js';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { isConfigError } from '../../src/core/errors.js';
import { createRedisCache } from '../../src/redis/cache.js';
import { RedisConnection } from '../../src/redis/connection.js';
import { describeRedis, redisPrefix, redisUrl } from '../support/scaleout.js';
import { redisCaches } from './redis-cache-helpers.js';

const MINUTE = 60_000;

describeRedis('Redis cache: entries shared through Redis', () => {
  const caches = redisCaches();
  let clock: SimulatedClock;
  let prefix: string;
  beforeEach(() => {
    clock = simulatedClock();
    prefix = redisPrefix();
  });
  afterEach(() => caches.closeAll());

  it('serves a value until ttlMs has passed on the injected clock, then only as stale, then not at all', async () => {
    const { cache } = caches.open(prefix, { clock, maxStaleMs: MINUTE });
    cache.set('k', 'vendor', { vendor: 'Acme' }, MINUTE);
    clock.advance(MINUTE - 1);
    expect(await cache.get('k')).toEqual({ value: { vendor: 'Acme' }, ageMs: MINUTE - 1, stale: false });
    clock.advance(1);
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.get('k', { allowStale: true })).toEqual({
      value: { vendor: 'Acme' },
      ageMs: MINUTE,
      stale: true,
    });
    clock.advance(MINUTE - 1);
    expect((await cache.get('k', { allowStale: true }))?.stale).toBe(true);
    clock.advance(1);
    expect(await cache.get('k', { allowStale: true })).toBeUndefined();
  });

  it('stores entries with a native Redis TTL of ttlMs + maxStaleMs', async () => {
    const { cache } = caches.open(prefix, { clock, maxStaleMs: 2 * MINUTE });
    cache.set('k', 'vendor', 1, MINUTE);
    await cache.get('k'); // same connection: the write has landed
    const pttl = await caches.raw().pttl(`${prefix}cache:v:k`);
    expect(pttl).toBeGreaterThan(3 * MINUTE - 5_000);
    expect(pttl).toBeLessThanOrEqual(3 * MINUTE);
  });

  it('lets a second connection read what the first stored, with the age from the stored time', async () => {
    const a = caches.open(prefix, { clock });
    const b = caches.open(prefix, { clock });
    a.cache.set('inv-42', 'vendor', { vendor: 'Acme', amount: 1250.5 }, MINUTE);
    await a.cache.get('inv-42');
    clock.advance(1_500);
    expect(await b.cache.get('inv-42')).toEqual({
      value: { vendor: 'Acme', amount: 1250.5 },
      ageMs: 1_500,
      stale: false,
    });
    expect(await b.cache.get('other')).toBeUndefined();
  });

  it('returns a fresh copy on every read', async () => {
    const { cache } = caches.open(prefix, { clock });
    cache.set('k', 'vendor', { items: [1, 2] }, MINUTE);
    const first = await cache.get('k');
    (first?.value as { items: number[] }).items.push(3);
    expect((await cache.get('k'))?.value).toEqual({ items: [1, 2] });
  });

  it('refuses values JSON cannot hold and bad TTLs at the call, storing nothing', async () => {
    const { cache } = caches.open(prefix, { clock });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const bad of [undefined, cyclic, 10n, () => 1]) {
      let error: unknown;
      try {
        cache.set('k', 'vendor', bad, MINUTE);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(CacheValueError);
      expect(isCacheError(error)).toBe(true);
    }
    for (const ttl of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      let error: unknown;
      try {
        cache.set('k', 'vendor', 1, ttl);
      } catch (e) {
        error = e;
      }
      expect(isConfigError(error)).toBe(true);
    }
    expect(await cache.get('k')).toBeUndefined();
  });

  it('treats a value under its key that Keel did not write as a miss and reports it', async () => {
    const { cache, errors } = caches.open(prefix, { clock });
    await caches.raw().set(`${prefix}cache:v:k`, 'not a cache entry', 'PX', MINUTE);
    expect(await cache.get('k')).toBeUndefined();
    expect(errors).toHaveLength(1);
    expect(errors[0]?.operation).toBe('get');
  });

  it('rejects bad options with a ConfigError naming the field', () => {
    const connection = new RedisConnection(redisUrl(), { keyPrefix: prefix });
    const fields: string[] = [];
    for (const options of [
      { clock: undefined as unknown as SimulatedClock },
      { clock, lockTtlMs: 0 },
      { clock, waitForLeaderMs: -1 },
      { clock, maxStaleMs: 1.5 },
      { clock, localMaxEntries: -3 },
    ]) {
      try {
        createRedisCache(connection, options);
      } catch (e) {
        if (isConfigError(e)) fields.push(e.field);
      }
    }
    expect(fields).toEqual([
      'cache.clock',
      'cache.lockTtlMs',
      'cache.waitForLeaderMs',
      'cache.maxStaleMs',
      'cache.localMaxEntries',
    ]);
  });

  it('refuses reads and writes once closed, and closing twice is harmless', async () => {
    const { cache } = caches.open(prefix, { clock });
    await cache.close();
    await cache.close();
    await expect(cache.get('k')).rejects.toBeInstanceOf(CacheClosedError);
    expect(() => cache.set('k', 'vendor', 1, MINUTE)).toThrow(CacheClosedError);
    await expect(cache.invalidate({ all: true })).rejects.toBeInstanceOf(CacheClosedError);
  });

  describeRedis('invalidation', () => {
    it('removes one key, then one agent, then all of this prefix, leaving other prefixes alone', async () => {
      const other = redisPrefix();
      const a = caches.open(prefix, { clock });
      const b = caches.open(prefix, { clock });
      const neighbour = caches.open(other, { clock });
      a.cache.set('k1', 'vendor', 1, MINUTE);
      a.cache.set('k2', 'vendor', 2, MINUTE);
      a.cache.set('k3', 'amount', 3, MINUTE);
      neighbour.cache.set('k1', 'vendor', 'theirs', MINUTE);
      neighbour.cache.set('k9', 'amount', 'theirs too', MINUTE);
      await a.cache.get('k1');
      await neighbour.cache.get('k1');

      expect(await b.cache.invalidate({ key: 'k1' })).toBe(1);
      expect(await a.cache.get('k1')).toBeUndefined();
      expect((await a.cache.get('k2'))?.value).toBe(2);

      expect(await b.cache.invalidate({ agent: 'vendor' })).toBe(1);
      expect(await a.cache.get('k2')).toBeUndefined();
      expect((await a.cache.get('k3'))?.value).toBe(3);

      expect(await b.cache.invalidate({ all: true })).toBe(1);
      expect(await a.cache.get('k3')).toBeUndefined();
      expect(await caches.raw().keys(`${prefix}*`)).toEqual([]);

      expect((await neighbour.cache.get('k1'))?.value).toBe('theirs');
      expect((await neighbour.cache.get('k9'))?.value).toBe('theirs too');
    });

    it('removes every key of an agent, however many', async () => {
      const { cache } = caches.open(prefix, { clock });
      for (let i = 0; i < 1_234; i++) cache.set(`k${i}`, 'vendor', i, MINUTE);
      cache.set('kept', 'amount', 'x', MINUTE);
      await cache.get('kept');
      expect(await cache.invalidate({ agent: 'vendor' })).toBe(1_234);
      expect(await cache.get('k1233')).toBeUndefined();
      expect((await cache.get('kept'))?.value).toBe('x');
    });

    it('reaches the in-memory copies of other processes', async () => {
      const a = caches.open(prefix, { clock, localMaxEntries: 100 });
      const b = caches.open(prefix, { clock });
      const entryKey = `${prefix}cache:v:k`;
      // Once `a` listens for invalidations it keeps a copy: a hit survives the key vanishing behind
      // its back (which only the test does).
      await vi.waitFor(async () => {
        b.cache.set('k', 'vendor', 'v1', MINUTE);
        await b.cache.get('k');
        await a.cache.get('k');
        await caches.raw().del(entryKey);
        expect((await a.cache.get('k'))?.value).toBe('v1');
      });
      await b.cache.invalidate({ key: 'k' });
      await vi.waitFor(async () => expect(await a.cache.get('k')).toBeUndefined());
    });
  });
});
