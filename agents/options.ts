/**
 * Options every ready-made agent takes: where its model is called and the policies Keel enforces
 * around it, defaulting to the tutorial's production checklist (10 s timeout, retries, a breaker
 * of 5 failures / 60 s, a 24 h cache where caching is safe).
 */
import type { BreakerConfig, CachePolicy, ModelProvider, RetryConfig } from '../src/index.js';

/** Policies and model of a ready-made agent; every field is optional. */
export interface ReadyAgentOptions {
  /** Where the model is called (default: the agent's simulated model, seeded with `seed`). */
  provider?: ModelProvider;
  /** Seed of the default simulated provider (default 0). Ignored when `provider` is given. */
  seed?: number;
  /** Agent name: keys the cache, metrics and replay (default: the factory's, e.g. `vendor_extraction`). */
  name?: string;
  /** Model id from the pricing table (default `gpt-4`). */
  model?: string;
  /** Per-attempt timeout in ms (default 10_000, the tutorial's request timeout). */
  timeoutMs?: number;
  /** Retry policy (default 2 attempts, exponential backoff); `false` for a single attempt. */
  retry?: RetryConfig | false;
  /**
   * Circuit breaker (default `{ name: 'openai', failureThreshold: 5, resetTimeoutMs: 60_000 }`);
   * `false` for none.
   */
  breaker?: BreakerConfig | false;
  /** Result cache (default: 24 h, `{ ttlMs: 86_400_000 }`, where caching is safe); `false` turns it off. */
  cache?: CachePolicy;
}

/** Defaults of the ready-made agents: the tutorial's checklist values. */
export const READY_AGENT_DEFAULTS: Readonly<{
  /** Model id. */
  model: string;
  /** Per-attempt timeout, ms. */
  timeoutMs: number;
  retry: RetryConfig;
  breaker: BreakerConfig;
  /** TTL of cached results, ms (24 h). */
  cacheTtlMs: number;
}> = Object.freeze({
  model: 'gpt-4',
  timeoutMs: 10_000,
  retry: Object.freeze({ attempts: 2, backoff: 'exponential' as const }),
  breaker: Object.freeze({ name: 'openai', failureThreshold: 5, resetTimeoutMs: 60_000 }),
  cacheTtlMs: 86_400_000,
});

/** The `agent()` policies an options object asks for. @internal */
export function policiesOf(
  options: ReadyAgentOptions,
  defaultName: string,
  defaultCache: CachePolicy,
): {
  name: string;
  model: string;
  timeoutMs: number;
  retry?: RetryConfig;
  breaker?: BreakerConfig;
  cache: CachePolicy;
} {
  const retry = options.retry === undefined ? READY_AGENT_DEFAULTS.retry : options.retry;
  const breaker = options.breaker === undefined ? READY_AGENT_DEFAULTS.breaker : options.breaker;
  return {
    name: options.name ?? defaultName,
    model: options.model ?? READY_AGENT_DEFAULTS.model,
    timeoutMs: options.timeoutMs ?? READY_AGENT_DEFAULTS.timeoutMs,
    ...(retry ? { retry } : {}),
    ...(breaker ? { breaker } : {}),
    cache: options.cache ?? defaultCache,
  };
}
