/**
 * Where a runtime's rate-limit buckets live: in the process (`createLimiter`), or on a backend every
 * process of a fleet shares (`limits: { shared: redis(url), 'openai:gpt-4': { rpm: 600 } }`, from
 * `keel/redis`). {@link openLimits} reads a `limits` config and opens the right one, so the runtime
 * wires one {@link Limiter} whichever it is.
 */
import type { Clock } from '../core/clock.js';
import { ConfigError, KeelError, isKeelError } from '../core/errors.js';
import { createLimiter, validateLimits, type LimitSpec, type Limiter, type LimiterEvent } from './limiter.js';

/** What a limits backend needs from the runtime. */
export interface LimitsBackendDeps {
  clock: Clock;
  /** Limits by key, validated (`validateLimits`). */
  limits: Readonly<Record<string, LimitSpec>>;
  tenantWeights?: Readonly<Record<string, number>>;
  onEvent?: (event: LimiterEvent) => void;
  /** Receives the backend's failures (a lost release, calls admitted unguarded while it is down). */
  onError(error: Error): void;
}

/** A limiter whose buckets live outside the process. */
export interface SharedLimiter extends Limiter {
  /**
   * Checks the backend answers (the runtime's `rt.ready()` awaits it): rejects with an error naming
   * the backend and the fix when it cannot be reached.
   */
  ready(): Promise<void>;
  /** Resolves once every release and pause written so far was answered (or timed out). */
  flush(): Promise<void>;
}

/** Opens rate-limit buckets shared across processes (`keel/redis`'s `redis(url)` or `redisLimits(url)`). */
export interface LimitsBackend {
  /** Where it lives, for messages (no password). */
  readonly description: string;
  openLimiter(deps: LimitsBackendDeps): SharedLimiter;
  /** Releases the connection; called by `rt.close()` after the limiter closed. Idempotent. */
  close(): Promise<void>;
}

/** True for a {@link LimitsBackend}. */
export function isLimitsBackend(value: unknown): value is LimitsBackend {
  return typeof (value as Partial<LimitsBackend> | null)?.openLimiter === 'function';
}

/**
 * The runtime's `limits` config: limits by `provider:model`, and optionally `shared`, a backend that
 * keeps the buckets for the whole fleet.
 */
export interface LimitsConfig {
  shared?: LimitsBackend;
  [key: string]: LimitSpec | LimitsBackend | undefined;
}

/** The limiter {@link openLimits} opened, and how to close it. */
export interface OpenedLimits {
  limiter: Limiter;
  /** The backend, when the buckets are shared (the runtime awaits `limiter.ready()` and closes it). */
  backend: LimitsBackend | undefined;
  /** `limiter.ready()` for a shared limiter; resolves at once for a local one. */
  ready: () => Promise<void>;
  /** Resolves once every release and pause written to the backend so far was answered (at once for a local one). */
  flush: () => Promise<void>;
  /** Closes the limiter, waits for its writes, then closes the backend's connection. */
  close: () => Promise<void>;
}

/**
 * Validates a `limits` config and opens its limiter: in the process, or on `limits.shared`.
 * A bad field throws a {@link ConfigError} naming it.
 *
 * @example
 * const { limiter, ready, close } = openLimits(
 *   { shared: redis(url), 'openai:gpt-4': { rpm: 600, tpm: 90_000 } },
 *   { clock, onError: (e) => console.error(e) },
 * );
 * await ready(); // fails fast when Redis is unreachable
 */
export function openLimits(
  config: LimitsConfig,
  deps: Omit<LimitsBackendDeps, 'limits'>,
  field = 'limits',
): OpenedLimits {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) validateLimits(config, field);
  const { shared, ...specs } = config;
  if (shared !== undefined && !isLimitsBackend(shared)) {
    throw new ConfigError(
      `${field}.shared`,
      "must be a shared limits backend, e.g. redis('redis://127.0.0.1:6379') from 'keel/redis'",
    );
  }
  validateLimits(specs, field);
  if (shared === undefined) {
    const limiter = createLimiter({ ...deps, limits: specs });
    return {
      limiter,
      backend: undefined,
      ready: () => Promise.resolve(),
      flush: () => Promise.resolve(),
      close: () => {
        limiter.close();
        return Promise.resolve();
      },
    };
  }
  for (const [tenant, w] of Object.entries(deps.tenantWeights ?? {})) {
    if (typeof w !== 'number' || !Number.isFinite(w) || !(w > 0)) {
      throw new ConfigError(`tenantWeights.${tenant}`, `expected a finite number > 0, got ${String(w)}`);
    }
  }
  const limiter = shared.openLimiter({ ...deps, limits: specs });
  return {
    limiter,
    backend: shared,
    ready: () => limiter.ready(),
    flush: () => limiter.flush(),
    close: async () => {
      limiter.close();
      await limiter.flush();
      await shared.close();
    },
  };
}

/** The shared rate limits could not be reached: `ready()` failed, or (with `onUnavailable: 'allow'`) calls ran unguarded. */
export class RateLimitsUnavailableError extends KeelError {
  constructor(
    /** Where the limits live, without credentials, e.g. `redis://10.0.0.5:6379`. */
    readonly store: string,
    /** What went wrong: the Redis error, or that no reply came within the timeout. */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      'RATE_LIMITS_UNAVAILABLE',
      `The shared rate limits at ${store} could not be reached (${reason}). ` +
        'Check that Redis is running and the URL, password and TLS settings are right; while it is ' +
        "down, calls are started unguarded (onUnavailable: 'allow') or shed (onUnavailable: 'shed').",
      options,
    );
  }
}

/** True when `e` is a {@link RateLimitsUnavailableError}. */
export function isRateLimitsUnavailableError(e: unknown): e is RateLimitsUnavailableError {
  return isKeelError(e) && e.code === 'RATE_LIMITS_UNAVAILABLE';
}
