/**
 * One Redis connection shared by the parts of a runtime that scale out on Redis: the cache
 * (`cache: redis(url)`) and the shared budget (`budget: { shared: redis(url) }`). The ioredis client
 * is created on first use, every key Keel writes starts with `keyPrefix`, and closing is idempotent.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { ConfigError } from '../core/errors.js';

/** Options of {@link RedisConnection}. */
export interface RedisConnectionOptions {
  /** Prefix of every key Keel writes, so several apps can share one Redis (default `keel:`). */
  keyPrefix?: string;
  /** Extra ioredis options (TLS, password, sentinels …); `lazyConnect` is always on. */
  redis?: RedisOptions;
}

/** A lazily opened Redis connection (ioredis) with Keel's key prefix. */
export class RedisConnection {
  /** `redis://host:port/db` as given. */
  readonly url: string;
  /** Prefix of every key Keel writes. */
  readonly keyPrefix: string;
  private readonly options: RedisOptions;
  private redis: Redis | undefined;
  private closed = false;

  constructor(url: string, options: RedisConnectionOptions = {}) {
    if (typeof url !== 'string' || !/^rediss?:\/\//.test(url)) {
      throw new ConfigError('redis', `must be a redis:// or rediss:// URL, got ${JSON.stringify(url)}`);
    }
    const keyPrefix = options.keyPrefix ?? 'keel:';
    if (typeof keyPrefix !== 'string') throw new ConfigError('redis.keyPrefix', 'must be a string, e.g. "keel:"');
    this.url = url;
    this.keyPrefix = keyPrefix;
    this.options = { ...options.redis, lazyConnect: true };
  }

  /** The ioredis client (created on first call; it connects by itself on the first command). */
  client(): Redis {
    if (this.closed) throw new Error(`the Redis connection to ${this.url} is closed`);
    this.redis ??= new Redis(this.url, this.options);
    return this.redis;
  }

  /** `keyPrefix` + `parts` joined with `:`. */
  key(...parts: string[]): string {
    return this.keyPrefix + parts.join(':');
  }

  /** Closes the client after pending replies (QUIT). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const r = this.redis;
    this.redis = undefined;
    if (!r) return;
    try {
      await r.quit();
    } catch {
      r.disconnect();
    }
  }
}
