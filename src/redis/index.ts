/**
 * `keel/redis`: the cache, the budget and the rate limits shared by every runtime process through
 * one Redis.
 *
 * @example
 * import { createRuntime } from 'keel';
 * import { redis } from 'keel/redis';
 * const shared = redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
 * const rt = createRuntime({ db: 'keel.db', cache: shared, budget: { dailyUsd: 100, shared } });
 */
import type { BudgetBackend, CacheBackend, SharedBudgetsLike } from '../backends.js';
import type { Cache } from '../cache/cache.js';
import type { Clock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import { withoutPassword } from '../core/url.js';
import type { BudgetConfig, BudgetDeps } from '../cost/budget.js';
import type { LimitsBackend, LimitsBackendDeps, SharedLimiter } from '../limits/backend.js';
import { createSharedBudgets, type SharedBudgetOptions } from './budget.js';
import { createRedisCache, type RedisCacheOptions } from './cache.js';
import { RedisConnection, type RedisConnectionOptions } from './connection.js';
import { createRedisLimiter, resolveOptions, type RedisLimitsOptions } from './limits.js';

/** Options of {@link redis}: the connection's, plus how the cache and the budget on it behave. */
export interface RedisBackendOptions extends RedisConnectionOptions {
  /** The shared cache's settings (lock and wait times, local copies …); clock and errors come from the runtime. */
  cache?: Omit<RedisCacheOptions, 'clock' | 'onError'>;
  /** The shared budget's settings (reservation TTL, timeout, `onUnavailable: 'admit'` to fail open). */
  budget?: Omit<SharedBudgetOptions, 'onError'>;
  /** The shared rate limits' settings (concurrency lease, timeout, `onUnavailable: 'shed'` to fail closed). */
  limits?: RedisLimitsOptions;
}

/** A Redis that runtimes share for their cache, budget and rate limits. */
export class RedisBackend extends RedisConnection implements CacheBackend, BudgetBackend, LimitsBackend {
  private readonly cacheOptions: Omit<RedisCacheOptions, 'clock' | 'onError'>;
  private readonly budgetOptions: Omit<SharedBudgetOptions, 'onError'>;
  private readonly limitsOptions: RedisLimitsOptions;

  constructor(url: string, options: RedisBackendOptions = {}) {
    const { cache, budget, limits, ...connection } = options;
    super(url, connection);
    this.cacheOptions = cache ?? {};
    this.budgetOptions = budget ?? {};
    this.limitsOptions = limits ?? {};
    resolveOptions(this.limitsOptions); // a bad option fails here, at config time
  }

  get description(): string {
    return withoutPassword(this.url);
  }

  openCache(deps: {
    clock: Clock;
    maxStaleMs?: number;
    onError(error: Error): void;
    sealKey?: Uint8Array;
  }): Cache {
    return createRedisCache(this, {
      ...this.cacheOptions,
      clock: deps.clock,
      ...(deps.sealKey !== undefined ? { sealKey: deps.sealKey } : {}),
      ...(deps.maxStaleMs !== undefined ? { maxStaleMs: deps.maxStaleMs } : {}),
      onError: (e) => deps.onError(e),
    });
  }

  openBudgets(config: BudgetConfig, deps: BudgetDeps & { onError(error: Error): void }): SharedBudgetsLike {
    return createSharedBudgets(this, config, {
      ...this.budgetOptions,
      ...deps,
      onError: (e) => deps.onError(e),
    });
  }

  openLimiter(deps: LimitsBackendDeps): SharedLimiter {
    return createRedisLimiter(this, deps, this.limitsOptions);
  }
}

/**
 * A Redis (`redis://` or `rediss://` URL) for `createRuntime({ cache: redis(url), budget: { dailyUsd, shared: redis(url) } })`.
 * Pass the same object to both to share one connection.
 *
 * @example
 * const shared = redis('redis://127.0.0.1:6379', {
 *   keyPrefix: 'invoices:',
 *   budget: { reservationTtlMs: 600_000, onUnavailable: 'reject' },
 *   cache: { waitForLeaderMs: 30_000 },
 * });
 */
export function redis(url: string, options: RedisBackendOptions = {}): RedisBackend {
  return new RedisBackend(url, options);
}

/**
 * Rate limits shared by a fleet on Redis, for `createRuntime({ limits: { shared: redisLimits(url),
 * 'openai:gpt-4': { rpm: 600 } } })`. Given a URL it opens its own connection (closed by
 * `rt.close()`); given a connection (e.g. the `redis(url)` the cache and budget use) it shares it
 * and leaves closing it to its owner. `redis(url)` itself also works as `limits.shared`.
 *
 * @example
 * const shared = redis('redis://127.0.0.1:6379', { keyPrefix: 'invoices:' });
 * const limits = { shared: redisLimits(shared, { leaseMs: 30_000 }), 'openai:gpt-4': { rpm: 600 } };
 */
export function redisLimits(
  target: string | RedisConnection,
  options: RedisLimitsOptions & RedisConnectionOptions = {},
): LimitsBackend {
  const { keyPrefix, redis: ioredis, onError, ...limits } = options;
  if (typeof target === 'string')
    return new RedisBackend(target, { keyPrefix, redis: ioredis, onError, limits });
  if (!(target instanceof RedisConnection)) {
    throw new ConfigError(
      'limits.shared',
      "redisLimits() takes a redis:// URL or a connection from redis(url), e.g. redisLimits('redis://127.0.0.1:6379')",
    );
  }
  if (keyPrefix !== undefined || ioredis !== undefined || onError !== undefined) {
    throw new ConfigError(
      'limits.shared',
      'keyPrefix, redis and onError belong to the connection passed to redisLimits(); set them there',
    );
  }
  const settings = resolveOptions(limits);
  return {
    description: withoutPassword(target.url),
    openLimiter: (deps) => createRedisLimiter(target, deps, settings),
    close: () => Promise.resolve(),
  };
}

export { RedisConnection, type RedisConnectionOptions } from './connection.js';
export { createRedisLimiter, type RedisLimitsOptions } from './limits.js';
export { RateLimitsUnavailableError } from '../limits/backend.js';
export { createRedisCache, type RedisCache, type RedisCacheOptions } from './cache.js';
export {
  createSharedBudgets,
  type SharedBudgets,
  type SharedBudgetOptions,
  type SharedBudgetDeps,
  type SharedReserveResult,
} from './budget.js';
