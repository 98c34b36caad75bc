/**
 * Provider rate limits: per key (`'openai:gpt-4'`) a request bucket (`rpm`), a token bucket
 * (`tpm`), a concurrency cap and a bounded wait queue. A call that cannot start at once waits in the
 * queue; past `maxQueue` waiting calls, or after `maxQueueMs` of waiting, it is shed with
 * {@link RateLimitedError} (category `rate_limited`) and never reaches the provider. A 429 with
 * `retry-after` pauses the key for every caller ({@link Limiter.pause}). Calls of different tenants
 * waiting on one key are served by weighted fair queueing, so one tenant's burst cannot starve
 * another.
 *
 * Buckets: a bucket of `rpm` holds `burst = max(1, floor(rpm / 60))` requests (one second's worth)
 * and refills at `(rpm - burst)` per minute, so that for `rpm >= 2` no more than `rpm` calls start
 * in any half-open 60 s window (`burst` + refill over the window). `tpm` works the same in tokens; a
 * call that needs more tokens than the burst starts when the bucket is full and borrows the rest
 * (the bucket goes negative), so a window may then hold up to `tpm` plus that one call's excess.
 *
 * Time comes from the injected {@link Clock}; at most one timer per key is pending, and only while
 * calls wait. {@link Limiter.close} sheds every waiting call and clears them.
 */
import type { Clock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import { RateLimitedError } from './errors.js';
import { bucketShape, FREE_RESULT } from './queue.js';
import { IDLE_STATS, QueuedKey, tokensOf } from './queued-key.js';

/** Limits of one provider/model key. Every field is optional; an absent one does not limit. */
export interface LimitSpec {
  /** Requests per minute. */
  rpm?: number;
  /** Tokens per minute (input + expected output, reserved before the call, settled to actual). */
  tpm?: number;
  /** Calls in flight at once. */
  concurrency?: number;
  /** Calls that may wait at once; one more is shed at once (default 1_000). */
  maxQueue?: number;
  /** Longest a call waits before it is shed, ms (default 30_000). */
  maxQueueMs?: number;
}

/** Options of {@link createLimiter}. */
export interface LimiterOptions {
  clock: Clock;
  /** Limits by key, e.g. `{ 'openai:gpt-4': { rpm: 600, tpm: 90_000, concurrency: 20 } }`. */
  limits: Readonly<Record<string, LimitSpec>>;
  /** Fair-queueing weights by tenant (default 1 each): a tenant of weight 2 gets twice the share. */
  tenantWeights?: Readonly<Record<string, number>>;
  /** Called for every wait that ended in a start, and every shed call. */
  onEvent?: (event: LimiterEvent) => void;
}

/** What the limiter reports. */
export type LimiterEvent =
  | { type: 'waited'; key: string; tenant: string | undefined; waitedMs: number }
  | {
      type: 'shed';
      key: string;
      tenant: string | undefined;
      waitedMs: number;
      reason: Exclude<ShedReason, 'cancelled'>;
    }
  /** A waiting call's `signal` aborted: it left the queue, took no permit and counted nothing. */
  | { type: 'cancelled'; key: string; tenant: string | undefined; waitedMs: number };

/**
 * Why a call did not start: the queue was full, it waited `maxQueueMs`, the limiter closed, (a
 * limiter shared on Redis with `onUnavailable: 'shed'`) the shared buckets could not be reached, or
 * the caller cancelled it (its `signal` aborted) before it could start.
 */
export type ShedReason = 'queue_full' | 'queue_timeout' | 'closed' | 'unavailable' | 'cancelled';

/**
 * What {@link AcquireRequest.signal} needs of an `AbortSignal` (an `AbortSignal` fits): whether it
 * aborted, and one `abort` listener while the call waits.
 */
export interface CancelSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** One call's request to start. */
export interface AcquireRequest {
  /** The limits key, `provider:model`. A key without limits is not limited. */
  key: string;
  /** Tokens the call is expected to use (the budget's estimate); default 0. */
  tokens?: number;
  /** Whose call it is, for fair queueing. */
  tenant?: string;
  /**
   * Cancels the call while it waits (an `AbortSignal`, e.g. the workflow's): on abort it leaves the
   * queue at once, answers `{ ok: false, error }` with reason `cancelled`, takes no permit and
   * counts against no limit, and the next waiting call moves up. Already aborted: answered so at
   * once. Aborting after the call started does nothing (release its permit).
   */
  signal?: CancelSignal;
}

/** What a started call holds until it ends. */
export interface LimitPermit {
  /**
   * Ends the call: frees its concurrency slot and settles its token reservation to `actualTokens`
   * (refunding or charging the difference; omitted: keeps the reservation). Idempotent.
   */
  release(actualTokens?: number): void;
}

/** The answer of {@link Limiter.acquire}. */
export type AcquireResult = { ok: true; permit: LimitPermit } | { ok: false; error: RateLimitedError };

/** Counters of one key. */
export interface LimiterStats {
  inFlight: number;
  queued: number;
  started: number;
  waited: number;
  /** Calls shed (queue full, `maxQueueMs`, closed, unavailable); cancelled ones are not counted here. */
  shed: number;
  /** Calls whose `signal` aborted before they started (counted nowhere else). */
  cancelled: number;
  pausedUntil: number | undefined;
}

/** Per-key rate limits, shared by every caller of the runtime. */
export interface Limiter {
  /**
   * Asks to start a call. Synchronous when it can start at once (or is shed at once: queue full);
   * a promise when it must wait. Never rejects: a shed call answers `{ ok: false, error }`.
   */
  acquire(request: AcquireRequest): AcquireResult | Promise<AcquireResult>;
  /** A 429 said `retry-after`: no call of `key` starts for `retryAfterMs`, whoever asks. */
  pause(key: string, retryAfterMs: number): void;
  /** True when `key` has limits. */
  limits(key: string): boolean;
  stats(key: string): LimiterStats;
  /** Sheds every waiting call (`closed`) and clears the timers; later calls are not limited. */
  close(): void;
}

export { RateLimitedError, isRateLimitedError } from './errors.js';

/** A refilling bucket; `level` may go negative (borrowed tokens, settled charges). */
interface Bucket {
  readonly burst: number;
  /** Refill per ms. */
  readonly rate: number;
  level: number;
  at: number;
}

function bucketOf(perMinute: number, now: number): Bucket {
  const { burst, rate } = bucketShape(perMinute);
  return { burst, rate, level: burst, at: now };
}

function refill(b: Bucket, now: number): void {
  if (now > b.at) {
    b.level = Math.min(b.burst, b.level + (now - b.at) * b.rate);
    b.at = now;
  }
}

/** Ms until `b` holds `need`, 0 when it does. */
function waitFor(b: Bucket, need: number): number {
  if (b.level >= need) return 0;
  return Math.max(1, Math.ceil((need - b.level) / b.rate));
}

/** One key's state. */
class KeyLimiter extends QueuedKey {
  readonly requests: Bucket | undefined;
  readonly tokenBucket: Bucket | undefined;
  readonly concurrency: number;

  constructor(
    key: string,
    spec: LimitSpec,
    private readonly owner: LimiterImpl,
  ) {
    super(key, spec, owner);
    const now = owner.clock.now();
    this.requests = spec.rpm !== undefined ? bucketOf(spec.rpm, now) : undefined;
    this.tokenBucket = spec.tpm !== undefined ? bucketOf(spec.tpm, now) : undefined;
    this.concurrency = spec.concurrency ?? Infinity;
  }

  protected onTimer(): void {
    this.pump();
  }

  acquire(
    tokens: number,
    tenant: string | undefined,
    signal: CancelSignal | undefined,
  ): AcquireResult | Promise<AcquireResult> {
    const now = this.owner.clock.now();
    if (signal?.aborted === true) return this.cancelledResult(tenant, 0);
    if (this.queue.size === 0 && this.wait(tokens, now) === 0)
      return { ok: true, permit: this.start(tokens) };
    if (this.queue.size >= this.maxQueue || this.maxQueueMs === 0) {
      return this.shedResult(
        tenant,
        0,
        'queue_full',
        `${this.queue.size} calls already waiting (maxQueue ${this.maxQueue})`,
      );
    }
    return new Promise<AcquireResult>((resolve) => {
      const cost = this.tokenBucket ? Math.max(1, tokens) : 1;
      this.enqueue(tenant, tokens, cost, this.owner.weight(tenant), now, resolve, signal);
      this.pump();
    });
  }

  protected onCancelled(): void {
    // The next waiter may start now (it may need fewer tokens), or its deadline is later.
    this.pump();
  }

  /** Ms until a call of `tokens` may start; 0 now; Infinity when only a release can free it. */
  private wait(tokens: number, now: number): number {
    let ms = this.pausedUntil > now ? this.pausedUntil - now : 0;
    if (this.requests) {
      refill(this.requests, now);
      ms = Math.max(ms, waitFor(this.requests, 1));
    }
    if (this.tokenBucket && tokens > 0) {
      refill(this.tokenBucket, now);
      ms = Math.max(ms, waitFor(this.tokenBucket, Math.min(tokens, this.tokenBucket.burst)));
    }
    if (ms === 0 && this.inFlight >= this.concurrency) return Infinity;
    return ms;
  }

  private start(tokens: number): LimitPermit {
    if (this.requests) this.requests.level -= 1;
    if (this.tokenBucket) this.tokenBucket.level -= tokens;
    this.inFlight++;
    this.started++;
    let released = false;
    return {
      release: (actualTokens?: number) => {
        if (released) return;
        released = true;
        this.inFlight--;
        const tb = this.tokenBucket;
        if (tb && actualTokens !== undefined && Number.isFinite(actualTokens) && actualTokens >= 0) {
          refill(tb, this.owner.clock.now());
          tb.level = Math.min(tb.burst, tb.level + tokens - actualTokens);
        }
        if (this.queue.size > 0) this.pump();
      },
    };
  }

  /** Starts what can start, sheds what waited too long, and sets the one timer for the rest. */
  pump(): void {
    const now = this.owner.clock.now();
    this.expire(now);
    let next = Infinity;
    for (let w = this.queue.peek(); w !== undefined; w = this.queue.peek()) {
      const ms = this.wait(w.tokens, now);
      if (ms !== 0) {
        next = ms;
        break;
      }
      this.queue.takeHead();
      this.waitedCount++;
      const permit = this.start(w.tokens);
      this.owner.emit({ type: 'waited', key: this.key, tenant: w.tenant, waitedMs: now - w.enqueuedAt });
      w.resolve({ ok: true, permit });
    }
    this.timer.arm(Math.min(next, this.queue.deadlineIn(now, this.maxQueueMs)), now);
  }

  pause(ms: number): void {
    const now = this.owner.clock.now();
    this.pausedUntil = Math.max(this.pausedUntil, now + ms);
    if (this.queue.size > 0) this.pump();
  }
}

class LimiterImpl implements Limiter {
  readonly clock: Clock;
  private readonly keys = new Map<string, KeyLimiter>();
  private readonly weights: Readonly<Record<string, number>>;
  private readonly onEvent: ((event: LimiterEvent) => void) | undefined;
  private closed = false;

  constructor(options: LimiterOptions) {
    this.clock = options.clock;
    this.weights = options.tenantWeights ?? {};
    this.onEvent = options.onEvent;
    for (const [key, spec] of Object.entries(options.limits))
      this.keys.set(key, new KeyLimiter(key, spec, this));
  }

  acquire(request: AcquireRequest): AcquireResult | Promise<AcquireResult> {
    const k = this.keys.get(request.key);
    if (k === undefined || this.closed) return FREE_RESULT;
    return k.acquire(tokensOf(request), request.tenant, request.signal);
  }

  pause(key: string, retryAfterMs: number): void {
    if (!(retryAfterMs > 0) || !Number.isFinite(retryAfterMs)) return;
    this.keys.get(key)?.pause(retryAfterMs);
  }

  limits(key: string): boolean {
    return this.keys.has(key);
  }

  stats(key: string): LimiterStats {
    return this.keys.get(key)?.stats(this.clock.now()) ?? IDLE_STATS;
  }

  close(): void {
    this.closed = true;
    for (const k of this.keys.values()) k.close();
  }

  weight(tenant: string | undefined): number {
    return tenant === undefined ? 1 : (this.weights[tenant] ?? 1);
  }

  emit(event: LimiterEvent): void {
    this.onEvent?.(event);
  }
}

const SPEC_FIELDS = new Set(['rpm', 'tpm', 'concurrency', 'maxQueue', 'maxQueueMs']);

/**
 * Checks a `limits` config; throws a {@link ConfigError} naming the field and the fix.
 *
 * @param field - where the config sits, for messages (default `limits`).
 */
export function validateLimits(
  limits: unknown,
  field = 'limits',
): asserts limits is Record<string, LimitSpec> {
  if (typeof limits !== 'object' || limits === null || Array.isArray(limits)) {
    throw new ConfigError(
      field,
      `expected an object of limits by "provider:model", e.g. { 'openai:gpt-4': { rpm: 600 } }`,
    );
  }
  for (const [key, spec] of Object.entries(limits as Record<string, unknown>)) {
    const at = `${field}.${key}`;
    if (key.length === 0)
      throw new ConfigError(at, 'the key must name a provider and model, e.g. "openai:gpt-4"');
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
      throw new ConfigError(at, 'expected { rpm?, tpm?, concurrency?, maxQueue?, maxQueueMs? }');
    }
    for (const [name, value] of Object.entries(spec as Record<string, unknown>)) {
      if (!SPEC_FIELDS.has(name)) {
        throw new ConfigError(
          `${at}.${name}`,
          `unknown field; use rpm, tpm, concurrency, maxQueue or maxQueueMs`,
        );
      }
      if (value === undefined) continue;
      const positive = name === 'rpm' || name === 'tpm' || name === 'concurrency';
      const integer = name !== 'rpm' && name !== 'tpm';
      if (typeof value !== 'number' || !Number.isFinite(value) || (positive ? !(value > 0) : !(value >= 0))) {
        throw new ConfigError(
          `${at}.${name}`,
          `expected a finite number ${positive ? '> 0' : '>= 0'}, got ${typeof value === 'number' ? value : typeof value}`,
        );
      }
      if (integer && !Number.isInteger(value)) {
        throw new ConfigError(`${at}.${name}`, `expected a whole number, got ${value}`);
      }
    }
  }
}

/**
 * Creates the limiter of a runtime. Keys without limits are not limited (one shared permit, no
 * allocation). A bad config throws a {@link ConfigError}.
 *
 * @example
 * const limiter = createLimiter({ clock, limits: { 'openai:gpt-4': { rpm: 600, tpm: 90_000 } } });
 * const r = await limiter.acquire({ key: 'openai:gpt-4', tokens: 1_200, tenant: 'acme' });
 * if (!r.ok) throw r.error; // shed: never reached the provider
 * try { usage = await callModel(); } finally { r.permit.release(usage?.totalTokens); }
 */
export function createLimiter(options: LimiterOptions): Limiter {
  validateLimits(options.limits);
  for (const [tenant, w] of Object.entries(options.tenantWeights ?? {})) {
    if (typeof w !== 'number' || !Number.isFinite(w) || !(w > 0)) {
      throw new ConfigError(`tenantWeights.${tenant}`, `expected a finite number > 0, got ${String(w)}`);
    }
  }
  return new LimiterImpl(options);
}
