import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CacheRedisError } from '../../src/cache/errors.js';
import { simulatedClock } from '../../src/core/clock.js';
import { createRedisCache, type RedisCache } from '../../src/redis/cache.js';
import { RedisConnection } from '../../src/redis/connection.js';

/** A loopback port nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

describe('Redis cache: Redis unreachable', () => {
  let connection: RedisConnection | undefined;
  let cache: RedisCache | undefined;
  afterEach(async () => {
    await cache?.close();
    await connection?.close();
  });

  async function unreachable(): Promise<{ cache: RedisCache; errors: CacheRedisError[] }> {
    const port = await closedPort();
    connection = new RedisConnection(`redis://:s3cret@127.0.0.1:${port}`, {
      keyPrefix: 'keel-test:outage:',
      redis: { connectTimeout: 200, maxRetriesPerRequest: 0 },
    });
    const errors: CacheRedisError[] = [];
    cache = createRedisCache(connection, { clock: simulatedClock(), onError: (e) => errors.push(e) });
    return { cache, errors };
  }

  it('answers reads as misses and drops writes, reporting each failure instead of throwing', async () => {
    const { cache, errors } = await unreachable();
    expect(await cache.get('k')).toBeUndefined();
    expect(() => cache.set('k', 'vendor', { vendor: 'Acme' }, 60_000)).not.toThrow();
    expect(await cache.get('k', { allowStale: true })).toBeUndefined();
    await expect.poll(() => errors.map((e) => e.operation).sort()).toEqual(['get', 'get', 'set']);
    for (const e of errors) {
      expect(e).toBeInstanceOf(CacheRedisError);
      expect(e.code).toBe('CACHE_REDIS_FAILED');
      expect(e.message).not.toContain('s3cret');
      expect(e.url).toContain('127.0.0.1');
    }
  });

  it('still makes one call for concurrent callers in this process', async () => {
    const { cache, errors } = await unreachable();
    let calls = 0;
    const compute = () => Promise.resolve(`call ${++calls}`);
    const results = await Promise.all([1, 2, 3].map(() => cache.singleFlight('k', compute)));
    expect(results).toEqual(['call 1', 'call 1', 'call 1']);
    expect(errors.map((e) => e.operation)).toEqual(['lock']);
  });

  it('rejects an invalidation, which the caller asked for and must know did not happen', async () => {
    const { cache } = await unreachable();
    await expect(cache.invalidate({ agent: 'vendor' })).rejects.toBeInstanceOf(CacheRedisError);
  });
});
