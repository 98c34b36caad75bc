/** The error of a call a rate limit shed (in-process or shared on Redis). */
import { KeelError } from '../core/errors.js';
import type { ShedReason } from './limiter.js';

/** A call shed by a rate limit: it never reached the provider. Category `rate_limited`. */
export class RateLimitedError extends KeelError {
  readonly category = 'rate_limited' as const;
  constructor(
    readonly key: string,
    readonly reason: ShedReason,
    readonly tenant: string | undefined,
    detail: string,
  ) {
    super('RATE_LIMITED', `rate limit "${key}": call shed before reaching the provider (${detail})`);
  }
}

/** True when `e` is a {@link RateLimitedError}. */
export function isRateLimitedError(e: unknown): e is RateLimitedError {
  return e instanceof KeelError && e.code === 'RATE_LIMITED';
}
