/**
 * The Redis half of the scale-out benchmark (`bench/scaleout.bench.ts`): the shared cache and the
 * shared budget, each next to the raw ioredis code it replaces, on one server given by URL.
 *
 * - cache hit: `RedisCache.get` vs `GET` + `JSON.parse` of the same value;
 * - cache miss path: `get` (miss) → `singleFlight` (lock script, compute, `set`, release script) vs a
 *   hand-written `GET` (nil) → `SET lock NX PX` → compute → `SET value PX` → `DEL lock`; the trailing
 *   writes are sent without awaiting on both sides (Keel sends them so), and each run ends with a
 *   `PING` on the same connection, so every write was answered before the clock stops;
 * - budget: `SharedBudgets.reserve` + `settle` (two Lua scripts) vs one `EVALSHA` of a script doing
 *   one `INCRBYFLOAT`; the budget's run ends with `flush()` (every settle answered).
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { realClock } from '../src/core/clock.js';
import { createPricing } from '../src/cost/pricing.js';
import { createSharedBudgets, type SharedBudgets } from '../src/redis/budget.js';
import { createRedisCache, type RedisCache } from '../src/redis/cache.js';
import { RedisConnection } from '../src/redis/connection.js';
import { pool, timed, type Cost } from './harness.js';

/** A cached agent output, about 300 bytes of JSON. */
export const CACHED_VALUE = {
  vendor: 'Acme GmbH',
  iban: 'DE89 3704 0044 0532 0130 00',
  invoiceNumber: 'INV-2026-000417',
  total: { amountMinor: 1_249_900, currency: 'EUR' },
  lines: [
    { sku: 'A-100', qty: 4, unitMinor: 199_900 },
    { sku: 'B-220', qty: 1, unitMinor: 449_300 },
  ],
  confidence: 0.94,
};

const TTL_MS = 3_600_000;
const INCR_LUA = "return redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])";

/** The contenders of the Redis benchmark, on connections opened once. */
export interface RedisBench {
  /** `n` × `cache.get(key)` of one stored entry, `inFlight` at a time. */
  cacheHit: (n: number, inFlight: number) => Promise<Cost>;
  /** `n` × raw `GET` + `JSON.parse` of the same value, `inFlight` at a time. */
  rawGet: (n: number, inFlight: number) => Promise<Cost>;
  /** `n` × miss path through the cache on new keys (get, singleFlight, set), `inFlight` at a time. */
  cacheMiss: (n: number, inFlight: number) => Promise<Cost>;
  /** `n` × hand-written miss path with a lock on new keys, `inFlight` at a time. */
  rawMiss: (n: number, inFlight: number) => Promise<Cost>;
  /** `n` × `budgets.reserve` + `settle`, `inFlight` at a time, then `flush()`. */
  budget: (n: number, inFlight: number) => Promise<Cost>;
  /** `n` × `EVALSHA` of a one-`INCRBYFLOAT` script, `inFlight` at a time. */
  rawIncr: (n: number, inFlight: number) => Promise<Cost>;
  /**
   * Redis server time per operation of `work` (which runs `ops` operations), µs: resets the server's
   * command statistics (`CONFIG RESETSTAT`, so only on a server of the bench's own), runs `work`,
   * and sums `usec` over `INFO commandstats`.
   */
  serverUsPerOp: (ops: number, work: () => Promise<unknown>) => Promise<number>;
  /** Deletes every key written under the prefix and closes the connections. */
  close: () => Promise<void>;
}

/**
 * Opens the contenders on `url`, every key under `keyPrefix` (Keel's connection and the raw client
 * alike), and stores the entry the hit runs read.
 *
 * @example
 * const bench = await openRedisBench('redis://127.0.0.1:6379', 'keel-bench:1:');
 * const keel = per(await bench.cacheHit(1000, 1), 1000);
 * await bench.close();
 */
export async function openRedisBench(url: string, keyPrefix: string): Promise<RedisBench> {
  const connection = new RedisConnection(url, { keyPrefix });
  const cache: RedisCache = createRedisCache(connection, { clock: realClock });
  const budgets: SharedBudgets = createSharedBudgets(
    connection,
    { dailyUsd: 1_000_000 },
    { clock: realClock, pricing: createPricing(), onAlert: () => undefined },
  );
  const raw = new Redis(url, { lazyConnect: true });
  raw.on('error', () => undefined);
  await raw.connect();

  const hitKey = 'hit';
  cache.set(hitKey, 'vendor', CACHED_VALUE, TTL_MS);
  if ((await cache.get(hitKey)) === undefined) throw new Error('bench: the cache did not store its entry');
  const rawHitKey = `${keyPrefix}raw:hit`;
  await raw.set(rawHitKey, JSON.stringify(CACHED_VALUE), 'PX', TTL_MS);
  const incrSha = (await raw.script('LOAD', INCR_LUA)) as string;
  const incrKey = `${keyPrefix}raw:spent`;

  let run = 0;
  const keelClient = (): Redis => connection.client();

  return {
    cacheHit: (n, inFlight) =>
      pool(n, inFlight, async () => {
        if ((await cache.get(hitKey)) === undefined) throw new Error('bench: cache hit expected');
      }),

    rawGet: (n, inFlight) =>
      pool(n, inFlight, async () => {
        const text = await raw.get(rawHitKey);
        if (text === null || JSON.parse(text) === null) throw new Error('bench: raw hit expected');
      }),

    cacheMiss: (n, inFlight) => {
      const prefix = `miss:${++run}:`;
      return timed(async () => {
        await pool(n, inFlight, async (i) => {
          const key = prefix + i;
          if ((await cache.get(key)) !== undefined) throw new Error('bench: cache miss expected');
          await cache.singleFlight(key, () => {
            cache.set(key, 'vendor', CACHED_VALUE, TTL_MS);
            return Promise.resolve(CACHED_VALUE);
          });
        });
        await keelClient().ping();
      });
    },

    rawMiss: (n, inFlight) => {
      const prefix = `${keyPrefix}raw:miss:${++run}:`;
      return timed(async () => {
        await pool(n, inFlight, async (i) => {
          const key = prefix + i;
          if ((await raw.get(key)) !== null) throw new Error('bench: raw miss expected');
          const lock = `${key}:lock`;
          if ((await raw.set(lock, '1', 'PX', 60_000, 'NX')) !== 'OK')
            throw new Error('bench: lock expected');
          const json = JSON.stringify(CACHED_VALUE);
          void raw.set(key, json, 'PX', TTL_MS);
          void raw.del(lock);
        });
        await raw.ping();
      });
    },

    budget: (n, inFlight) =>
      timed(async () => {
        await pool(n, inFlight, async () => {
          const r = await budgets.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 0.03 });
          if (!r.ok) throw r.error;
          r.reservation.settle(0.028);
        });
        await budgets.flush();
      }),

    rawIncr: (n, inFlight) =>
      pool(n, inFlight, async () => {
        await raw.evalsha(incrSha, 1, incrKey, '0.028');
      }),

    async serverUsPerOp(ops, work) {
      await raw.config('RESETSTAT');
      await work();
      const stats = await raw.info('commandstats');
      let usec = 0;
      for (const m of stats.matchAll(/^cmdstat_([^:]+):.*?usec=(\d+)/gm)) {
        if (m[1] !== 'config' && m[1] !== 'info') usec += Number(m[2]);
      }
      return usec / ops;
    },

    async close() {
      budgets.stop();
      await budgets.flush();
      await cache.close();
      const pattern = `${keyPrefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
      let cursor = '0';
      do {
        const [next, keys] = await raw.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await raw.unlink(...keys);
      } while (cursor !== '0');
      await connection.close();
      await raw.quit();
    },
  };
}

/** The server's version and the settings that decide what a write costs. */
export async function redisSettings(url: string): Promise<Record<string, string>> {
  const client = new Redis(url, { lazyConnect: true, retryStrategy: () => null });
  let lastError: Error | undefined;
  client.on('error', (e: Error) => (lastError = e));
  try {
    // With retries off, ioredis rejects with "Connection is closed"; the error event says why.
    await client.connect().catch((e: unknown) => {
      throw lastError ?? e;
    });
    const info = await client.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
    const out: Record<string, string> = { redis_version: version };
    for (const name of ['appendonly', 'appendfsync', 'save', 'io-threads']) {
      const reply = (await client.config('GET', name)) as string[];
      out[name] = reply[1] ?? '?';
    }
    return out;
  } finally {
    client.disconnect();
  }
}

/** A key prefix no other run uses. */
export function benchPrefix(): string {
  return `keel-bench:${randomUUID().slice(0, 8)}:`;
}
