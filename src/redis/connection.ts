/**
 * One Redis connection shared by the parts of a runtime that scale out on Redis: the cache
 * (`cache: redis(url)`) and the shared budget (`budget: { shared: redis(url) }`). The ioredis client
 * is created on first use, every key Keel writes starts with `keyPrefix`, and closing is idempotent.
 */
import { createHash } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { ConfigError } from '../core/errors.js';

/** A Lua script and the SHA-1 `EVALSHA` names it by. */
export interface LuaScript {
  readonly source: string;
  readonly sha: string;
}

/** Names a Lua script by its SHA-1, once, at module load. */
export function luaScript(source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/** Options of {@link RedisConnection}. */
export interface RedisConnectionOptions {
  /** Prefix of every key Keel writes, so several apps can share one Redis (default `keel:`). */
  keyPrefix?: string;
  /**
   * Extra ioredis options (TLS, password, sentinels …); `lazyConnect` is always on. Keel's defaults
   * fail fast rather than queue behind a dead server: `maxRetriesPerRequest` 1 (ioredis's own
   * default made the first command to an unreachable Redis take ~10 s; a refused connection now
   * fails at once) and `connectTimeout` 10000 ms (a loaded process can take seconds to see its
   * connect complete; 2000 ms made subscribers on a busy CI box drop and re-subscribe).
   */
  redis?: RedisOptions;
  /** Receives connection errors (reconnects are ioredis's); default: ignored, each failed command reports its own. */
  onError?: (error: Error) => void;
}

/** A lazily opened Redis connection (ioredis) with Keel's key prefix. */
export class RedisConnection {
  /** `redis://host:port/db` as given. */
  readonly url: string;
  /** Prefix of every key Keel writes. */
  readonly keyPrefix: string;
  private readonly options: RedisOptions;
  private readonly onError: ((error: Error) => void) | undefined;
  private redis: Redis | undefined;
  private closed = false;

  constructor(url: string, options: RedisConnectionOptions = {}) {
    if (typeof url !== 'string' || !/^rediss?:\/\//.test(url)) {
      throw new ConfigError('redis', `must be a redis:// or rediss:// URL, got ${JSON.stringify(url)}`);
    }
    const keyPrefix = options.keyPrefix ?? 'keel:';
    if (typeof keyPrefix !== 'string')
      throw new ConfigError('redis.keyPrefix', 'must be a string, e.g. "keel:"');
    this.url = url;
    this.keyPrefix = keyPrefix;
    this.options = { connectTimeout: 10_000, maxRetriesPerRequest: 1, ...options.redis, lazyConnect: true };
    this.onError = options.onError;
  }

  /** The ioredis client (created on first call; it connects by itself on the first command). */
  client(): Redis {
    if (this.closed) throw new Error(`the Redis connection to ${this.url} is closed`);
    if (!this.redis) {
      const client = new Redis(this.url, this.options);
      // Without a listener ioredis prints "Unhandled error event" on every failed reconnect.
      client.on('error', (e: Error) => this.onError?.(e));
      this.redis = client;
    }
    return this.redis;
  }

  /**
   * Runs `script` with `EVALSHA`, sending its source with `EVAL` when Redis answers `NOSCRIPT` (a
   * restarted or flushed server). A closed connection rejects rather than throws.
   */
  evalScript(
    script: LuaScript,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    let redis: Redis;
    try {
      redis = this.client();
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    return redis.evalsha(script.sha, keys.length, ...keys, ...args).catch((e: unknown) => {
      if (e instanceof Error && e.message.startsWith('NOSCRIPT'))
        return redis.eval(script.source, keys.length, ...keys, ...args);
      throw e;
    });
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
    // QUIT waits in the offline queue while ioredis reconnects: only a ready client gets one.
    if (r.status !== 'ready') {
      r.disconnect();
      return;
    }
    try {
      await r.quit();
    } catch {
      r.disconnect();
    }
  }
}
