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
import { createSharedBudgets } from './budget.js';
import { createRedisCache } from './cache.js';
import { RedisConnection, type RedisConnectionOptions } from './connection.js';

/** A Redis that runtimes share for their cache and budget. */
export class RedisBackend extends RedisConnection implements CacheBackend, BudgetBackend {
  get description(): string {
    return withoutPassword(this.url);
  }

  openCache(deps: { clock: Clock; maxStaleMs?: number; onError(error: Error): void }): Cache {
    return createRedisCache(this, {
      clock: deps.clock,
      ...(deps.maxStaleMs !== undefined ? { maxStaleMs: deps.maxStaleMs } : {}),
      onError: (e) => deps.onError(e),
    });
  }

  openBudgets(config: BudgetConfig, deps: BudgetDeps & { onError(error: Error): void }): SharedBudgetsLike {
    return createSharedBudgets(this, config, { ...deps, onError: (e) => deps.onError(e) });
  }
}

/**
 * A Redis (`redis://` or `rediss://` URL) for `createRuntime({ cache: redis(url), budget: { dailyUsd, shared: redis(url) } })`.
 * Pass the same object to both to share one connection.
 *
 * @example
 * const shared = redis('redis://127.0.0.1:6379', { keyPrefix: 'invoices:' });
 */
export function redis(url: string, options: RedisConnectionOptions = {}): RedisBackend {
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
