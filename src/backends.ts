/**
 * What the runtime needs from parts that live outside the process, so several runtimes (processes,
 * hosts) share them: a cache (`cache: redis(url)`) and a budget (`budget: { shared: redis(url) }`).
 * `keel/redis` implements both; the runtime itself never imports a Redis client.
 */
import type { Cache } from './cache/cache.js';
import type { Clock } from './core/clock.js';
import type { BudgetConfig, BudgetDeps, BudgetView, ReserveRequest, ReserveResult } from './cost/budget.js';

/** Opens the cache agents share across processes. */
export interface CacheBackend {
  /** Where it lives, for messages (no password). */
  readonly description: string;
  /**
   * A cache on this backend. `onError` receives its failures (a read answered as a miss, a write
   * dropped): a cache outage never fails a workflow.
   */
  openCache(deps: {
    clock: Clock;
    maxStaleMs?: number;
    onError(error: Error): void;
    /** Encrypt stored values under a key derived from this one (the runtime's redaction key). */
    sealKey?: Uint8Array;
  }): Cache;
  /** Releases the connection; called by `rt.close()` after the cache closed. Idempotent. */
  close(): Promise<void>;
}

/**
 * Budgets kept on a shared backend. `spent()`/`state()` are this process's view as of the backend's
 * last reply; reservations answer asynchronously and never reject (an unreachable backend refuses).
 */
export interface SharedBudgetsLike extends BudgetView {
  reserve(request: ReserveRequest): Promise<ReserveResult | { ok: false; scope: string; error: Error }>;
  /** Reads today's fleet-wide figures into the local view. */
  refresh(): Promise<void>;
  /** Resolves once every settle and release written so far was answered (or timed out). */
  flush(): Promise<void>;
}

/** Opens budgets shared across processes: reservations and settlements are atomic on the backend. */
export interface BudgetBackend {
  /** Where it lives, for messages (no password). */
  readonly description: string;
  /** Budgets with `config`'s limits, kept on this backend; `deps.onAlert` fires once per threshold and day across every process. */
  openBudgets(config: BudgetConfig, deps: BudgetDeps & { onError(error: Error): void }): SharedBudgetsLike;
  /** Releases the connection; called by `rt.close()` after the budgets stopped. Idempotent. */
  close(): Promise<void>;
}

/** True for a {@link CacheBackend} (as opposed to the local cache's options). */
export function isCacheBackend(value: unknown): value is CacheBackend {
  return typeof (value as Partial<CacheBackend> | null)?.openCache === 'function';
}

/** True for a {@link BudgetBackend}. */
export function isBudgetBackend(value: unknown): value is BudgetBackend {
  return typeof (value as Partial<BudgetBackend> | null)?.openBudgets === 'function';
}
