/**
 * What the in-process limiter's keys (`createLimiter`) and the Redis-shared ones (`keel/redis`)
 * have in common: the key's queue limits and counters, its fair wait queue and timer, and how a
 * waiting call is shed (past `maxQueueMs`, or when the limiter closes). Each subclass decides how
 * its head may start (a local bucket, or a Lua script on Redis).
 */
import type { Clock } from '../core/clock.js';
import { RateLimitedError } from './errors.js';
import type {
  AcquireRequest,
  AcquireResult,
  CancelSignal,
  LimiterEvent,
  LimiterStats,
  LimitSpec,
  ShedReason,
} from './limiter.js';
import { DEFAULT_MAX_QUEUE, DEFAULT_MAX_QUEUE_MS, FairQueue, KeyTimer, type Waiter } from './queue.js';

/** What a key needs of its limiter: the clock and where its events go. */
export interface KeyOwner {
  readonly clock: Clock;
  emit(event: LimiterEvent): void;
}

/** The tokens a request asks for (default 0); anything but a finite number >= 0 is a bug. */
export function tokensOf(request: AcquireRequest): number {
  const tokens = request.tokens ?? 0;
  if (!(tokens >= 0) || !Number.isFinite(tokens)) {
    throw new TypeError(`limiter.acquire: tokens must be a finite number >= 0, got ${String(tokens)}`);
  }
  return tokens;
}

/** The counters of a key nobody has limits for. */
export const IDLE_STATS: LimiterStats = Object.freeze({
  inFlight: 0,
  queued: 0,
  started: 0,
  waited: 0,
  shed: 0,
  cancelled: 0,
  pausedUntil: undefined,
});

/** One rate-limit key's queue, counters and shedding. */
export abstract class QueuedKey {
  readonly maxQueue: number;
  readonly maxQueueMs: number;
  /** This process's calls of the key in flight. */
  inFlight = 0;
  started = 0;
  waitedCount = 0;
  shedCount = 0;
  cancelledCount = 0;
  /** When the key's pause ends, by the owner's clock (0: not paused). */
  pausedUntil = 0;
  protected readonly queue = new FairQueue();
  protected readonly timer: KeyTimer;

  constructor(
    readonly key: string,
    spec: LimitSpec,
    protected readonly base: KeyOwner,
  ) {
    this.maxQueue = spec.maxQueue ?? DEFAULT_MAX_QUEUE;
    this.maxQueueMs = spec.maxQueueMs ?? DEFAULT_MAX_QUEUE_MS;
    this.timer = new KeyTimer(base.clock, () => this.onTimer());
  }

  /** The key's timer fired: look at the queue again. */
  protected abstract onTimer(): void;

  /** A waiter was cancelled and left the queue: the next one may move up. */
  protected abstract onCancelled(): void;

  /**
   * Queues a call; when `signal` aborts while it waits, it leaves the queue at once (see
   * {@link AcquireRequest.signal}). The listener is removed once the call is answered.
   */
  protected enqueue(
    tenant: string | undefined,
    tokens: number,
    cost: number,
    weight: number,
    now: number,
    resolve: (r: AcquireResult) => void,
    signal: CancelSignal | undefined,
  ): Waiter {
    if (signal === undefined) return this.queue.enqueue(tenant, tokens, cost, weight, now, resolve);
    const onAbort = (): void => this.cancel(w);
    const w = this.queue.enqueue(tenant, tokens, cost, weight, now, (r) => {
      signal.removeEventListener('abort', onAbort);
      resolve(r);
    });
    signal.addEventListener('abort', onAbort, { once: true });
    return w;
  }

  /** Counts and reports a call cancelled after `waitedMs`; the answer its `acquire` gives. */
  cancelledResult(tenant: string | undefined, waitedMs: number): AcquireResult {
    this.cancelledCount++;
    this.base.emit({ type: 'cancelled', key: this.key, tenant, waitedMs });
    return {
      ok: false,
      error: new RateLimitedError(
        this.key,
        'cancelled',
        tenant,
        `the caller cancelled it after ${waitedMs} ms of waiting`,
      ),
    };
  }

  /** Takes a waiter whose signal aborted out of the queue (nothing if it was already answered). */
  private cancel(w: Waiter): void {
    if (w.done) return;
    this.queue.remove(w);
    w.resolve(this.cancelledResult(w.tenant, this.base.clock.now() - w.enqueuedAt));
    this.onCancelled();
  }

  get queued(): number {
    return this.queue.size;
  }

  stats(now: number): LimiterStats {
    return {
      inFlight: this.inFlight,
      queued: this.queue.size,
      started: this.started,
      waited: this.waitedCount,
      shed: this.shedCount,
      cancelled: this.cancelledCount,
      pausedUntil: this.pausedUntil > now ? this.pausedUntil : undefined,
    };
  }

  /** Counts and reports a shed call; the answer its `acquire` gives. */
  shedResult(
    tenant: string | undefined,
    waitedMs: number,
    reason: Exclude<ShedReason, 'cancelled'>,
    detail: string,
  ): AcquireResult {
    this.shedCount++;
    this.base.emit({ type: 'shed', key: this.key, tenant, waitedMs, reason });
    return { ok: false, error: new RateLimitedError(this.key, reason, tenant, detail) };
  }

  /** Sheds waiters whose `maxQueueMs` passed. */
  protected expire(now: number): void {
    for (
      let w = this.queue.expireOne(now, this.maxQueueMs);
      w;
      w = this.queue.expireOne(now, this.maxQueueMs)
    ) {
      const waited = now - w.enqueuedAt;
      w.resolve(
        this.shedResult(
          w.tenant,
          waited,
          'queue_timeout',
          `waited ${waited} ms (maxQueueMs ${this.maxQueueMs})`,
        ),
      );
    }
  }

  /** Sheds every waiting call (`closed`) and clears the timer. */
  close(): void {
    this.timer.clear();
    const now = this.base.clock.now();
    for (let w = this.queue.removeOldest(); w !== undefined; w = this.queue.removeOldest()) {
      w.resolve(this.shedResult(w.tenant, now - w.enqueuedAt, 'closed', 'the runtime closed'));
    }
  }
}
