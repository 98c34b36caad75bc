/**
 * Opens Redis caches for the scale-out cache tests: each `open` is a separate RedisConnection (a
 * separate "process" as far as Redis can tell); `closeAll` closes every cache and connection.
 */
import { Redis } from 'ioredis';
import type { CacheRedisError } from '../../src/cache/errors.js';
import { createRedisCache, type RedisCache, type RedisCacheOptions } from '../../src/redis/cache.js';
import { RedisConnection } from '../../src/redis/connection.js';
import { redisUrl } from '../support/scaleout.js';

export interface OpenedCache {
  cache: RedisCache;
  connection: RedisConnection;
  /** Every error the cache reported through `onError`. */
  errors: CacheRedisError[];
}

export function redisCaches(): {
  open(prefix: string, options: RedisCacheOptions): OpenedCache;
  /** A plain client on the test server, for looking at (or tampering with) the keys directly. */
  raw(): Redis;
  closeAll(): Promise<void>;
} {
  const opened: OpenedCache[] = [];
  let raw: Redis | undefined;
  return {
    open(prefix, options) {
      const connection = new RedisConnection(redisUrl(), { keyPrefix: prefix });
      const errors: CacheRedisError[] = [];
      const cache = createRedisCache(connection, { onError: (e) => errors.push(e), ...options });
      const o = { cache, connection, errors };
      opened.push(o);
      return o;
    },
    raw() {
      raw ??= new Redis(redisUrl());
      return raw;
    },
    async closeAll() {
      for (const o of opened.splice(0)) {
        await o.cache.close();
        await o.connection.close();
      }
      raw?.disconnect();
      raw = undefined;
    },
  };
}

/** A promise with its resolve/reject handles. */
export function deferred<T>(): {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** How many connections listen on `channel`. */
export async function listeners(raw: Redis, channel: string): Promise<number> {
  const reply = await raw.pubsub('NUMSUB', channel);
  return Number(reply[1] ?? 0);
}
