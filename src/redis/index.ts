/**
 * `keel/redis`: the cache and the budget shared by every runtime process through one Redis.
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
import { withoutPassword } from '../core/url.js';
import type { BudgetConfig, BudgetDeps } from '../cost/budget.js';
import { createSharedBudgets, type SharedBudgetOptions } from './budget.js';
import { createRedisCache, type RedisCacheOptions } from './cache.js';
import { RedisConnection, type RedisConnectionOptions } from './connection.js';

/** Options of {@link redis}: the connection's, plus how the cache and the budget on it behave. */
export interface RedisBackendOptions extends RedisConnectionOptions {
  /** The shared cache's settings (lock and wait times, local copies …); clock and errors come from the runtime. */
  cache?: Omit<RedisCacheOptions, 'clock' | 'onError'>;
  /** The shared budget's settings (reservation TTL, timeout, `onUnavailable: 'admit'` to fail open). */
  budget?: Omit<SharedBudgetOptions, 'onError'>;
}

/** A Redis that runtimes share for their cache and budget. */
export class RedisBackend extends RedisConnection implements CacheBackend, BudgetBackend {
  private readonly cacheOptions: Omit<RedisCacheOptions, 'clock' | 'onError'>;
  private readonly budgetOptions: Omit<SharedBudgetOptions, 'onError'>;

  constructor(url: string, options: RedisBackendOptions = {}) {
    const { cache, budget, ...connection } = options;
    super(url, connection);
    this.cacheOptions = cache ?? {};
    this.budgetOptions = budget ?? {};
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

export { RedisConnection, type RedisConnectionOptions } from './connection.js';
export { createRedisCache, type RedisCache, type RedisCacheOptions } from './cache.js';
export {
  createSharedBudgets,
  type SharedBudgets,
  type SharedBudgetOptions,
  type SharedBudgetDeps,
  type SharedReserveResult,
} from './budget.js';
