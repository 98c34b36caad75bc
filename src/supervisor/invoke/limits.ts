/**
 * What an attempt holds of the runtime's rate limits and its agent's bulkhead, and how it gives
 * them back. Admission (./admission.ts) takes them; every step that ends an attempt — the outcome,
 * a timeout or cancellation (./call.ts), a refusal, the end of the invocation — calls
 * {@link releaseLimits}, settling the token reservation to the usage the provider reported.
 */
import type { Usage } from '../../eventlog/events.js';
import type { AcquireResult, CancelSignal, RateLimitedError } from '../../limits/limiter.js';
import type { CallState } from './types.js';

/**
 * The limits key of the call's next attempt, or undefined when it is not limited: the agent's
 * `providerName:model` when that key has limits, else the bare model id when it has. The model is
 * the one the attempt calls (after a budget downgrade, the cheaper one).
 */
export function limitKeyOf(call: CallState): string | undefined {
  const limiter = call.ctx.scope.services.limiter;
  if (limiter === undefined) return undefined;
  const { providerName } = call.agent;
  if (providerName !== undefined) {
    const key = `${providerName}:${call.model}`;
    if (limiter.limits(key)) return key;
  }
  return limiter.limits(call.model) ? call.model : undefined;
}

/**
 * Gives back the attempt's rate-limit permit and bulkhead slot (idempotent). `usage`: what the
 * provider reported, to settle the token reservation to; absent, the reservation stands (a call
 * that timed out or reported nothing may still have been billed).
 */
export function releaseLimits(call: CallState, usage?: Usage): void {
  settleLimit(call, usage);
  const bulkhead = call.bulkhead;
  if (bulkhead !== undefined) {
    call.bulkhead = undefined;
    bulkhead.release();
  }
}

/**
 * Gives back the rate-limit permit of the call's current model call only (a tool loop's turn ends;
 * the attempt keeps its bulkhead slot), settling its tokens to `usage` as {@link releaseLimits} does.
 */
export function settleLimit(call: CallState, usage?: Usage): void {
  const limit = call.limit;
  if (limit === undefined) return;
  call.limit = undefined;
  limit.release(usage !== undefined ? usage.inputTokens + usage.outputTokens : undefined);
}

/**
 * A 429 said `retry-after`: no call of the attempt's key starts for `retryAfterMs`, whichever
 * workflow asks (the provider is telling every caller, not just this one).
 */
export function pauseLimit(call: CallState, retryAfterMs: number): void {
  const key = call.limitKey;
  if (key !== undefined) call.ctx.scope.services.limiter?.pause(key, retryAfterMs);
}

/**
 * Applies the limiter's answer for the call's next model call after `waitedMs`: a permit is held
 * on the call (`ratelimit.waited` recorded when it waited); a shed call is recorded
 * (`ratelimit.shed`) and its error returned for the caller to refuse with.
 */
export function applyLimit(
  call: CallState,
  key: string,
  r: AcquireResult,
  waitedMs: number,
): RateLimitedError | undefined {
  const { scope, path } = call.ctx;
  const tenant = scope.tenant !== undefined ? { tenant: scope.tenant } : {};
  if (!r.ok) {
    const { reason } = r.error;
    // A cancelled wait is not a shed: the invocation's cancellation is what the log records.
    if (reason === 'cancelled') return r.error;
    call.emit({
      ts: call.now(),
      workflowId: scope.workflowId,
      type: 'ratelimit.shed',
      payload: { path, agent: call.agent.name, key, reason, waitedMs, ...tenant },
    });
    return r.error;
  }
  call.limit = r.permit;
  if (waitedMs > 0)
    call.emit({
      ts: call.now(),
      workflowId: scope.workflowId,
      type: 'ratelimit.waited',
      payload: { path, agent: call.agent.name, key, waitedMs, ...tenant },
    });
  return undefined;
}

/**
 * The cancel signal of an attempt's wait in `gated` (bulkhead slot, rate-limit permit): aborted
 * when the machine leaves `gated` without an answer (the invocation was cancelled — the caller's
 * signal, the workflow deadline, `rt.close()`), so the waiter leaves the queue at once, takes no
 * permit and counts against no limit. A plain object, not an `AbortController` (≈ 4 µs each):
 * admission makes one per limited call.
 */
export class GateWait implements CancelSignal {
  aborted = false;
  private listener: (() => void) | undefined;

  addEventListener(_type: 'abort', listener: () => void): void {
    this.listener = listener;
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    if (this.listener === listener) this.listener = undefined;
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listener = this.listener;
    this.listener = undefined;
    listener?.();
  }
}
