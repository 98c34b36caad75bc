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
import type { Clock, TimerHandle } from '../core/clock.js';
import { ConfigError, KeelError } from '../core/errors.js';

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
  | { type: 'shed'; key: string; tenant: string | undefined; waitedMs: number; reason: ShedReason };

/** Why a call was shed: the queue was full, it waited `maxQueueMs`, or the limiter closed. */
export type ShedReason = 'queue_full' | 'queue_timeout' | 'closed';

/** One call's request to start. */
export interface AcquireRequest {
  /** The limits key, `provider:model`. A key without limits is not limited. */
  key: string;
  /** Tokens the call is expected to use (the budget's estimate); default 0. */
  tokens?: number;
  /** Whose call it is, for fair queueing. */
  tenant?: string;
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
  shed: number;
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

const DEFAULT_MAX_QUEUE = 1_000;
const DEFAULT_MAX_QUEUE_MS = 30_000;
const MINUTE = 60_000;

/** A shared permit for keys without limits: nothing to release. */
const FREE: LimitPermit = Object.freeze({ release() {} });
const FREE_RESULT: AcquireResult = Object.freeze({ ok: true, permit: FREE });

/** A refilling bucket; `level` may go negative (borrowed tokens, settled charges). */
interface Bucket {
  readonly burst: number;
  /** Refill per ms. */
  readonly rate: number;
  level: number;
  at: number;
}

function bucketOf(perMinute: number, now: number): Bucket {
  const burst = Math.max(1, Math.floor(perMinute / 60));
  const rate = (perMinute > burst ? perMinute - burst : perMinute) / MINUTE;
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

interface Waiter {
  readonly seq: number;
  readonly tag: number;
  readonly tenant: string | undefined;
  readonly tokens: number;
  readonly enqueuedAt: number;
  done: boolean;
  resolve: (r: AcquireResult) => void;
}

/** One key's state. */
class KeyLimiter {
  readonly requests: Bucket | undefined;
  readonly tokenBucket: Bucket | undefined;
  readonly concurrency: number;
  readonly maxQueue: number;
  readonly maxQueueMs: number;
  inFlight = 0;
  queued = 0;
  started = 0;
  waitedCount = 0;
  shedCount = 0;
  pausedUntil = 0;
  /** Waiting calls by fair-queueing tag (min-heap). */
  private heap: Waiter[] = [];
  /** Waiting calls in arrival order (their deadlines are in the same order). */
  private fifo: Waiter[] = [];
  private fifoHead = 0;
  private seq = 0;
  /** WFQ virtual time: the tag of the last call started from the queue. */
  private vtime = 0;
  /** Last tag given to each tenant with calls waiting. */
  private lastTag = new Map<string | undefined, number>();
  private waitingOf = new Map<string | undefined, number>();
  private timer: TimerHandle = undefined;
  private timerAt = Infinity;

  constructor(
    readonly key: string,
    spec: LimitSpec,
    private readonly owner: LimiterImpl,
  ) {
    const now = owner.clock.now();
    this.requests = spec.rpm !== undefined ? bucketOf(spec.rpm, now) : undefined;
    this.tokenBucket = spec.tpm !== undefined ? bucketOf(spec.tpm, now) : undefined;
    this.concurrency = spec.concurrency ?? Infinity;
    this.maxQueue = spec.maxQueue ?? DEFAULT_MAX_QUEUE;
    this.maxQueueMs = spec.maxQueueMs ?? DEFAULT_MAX_QUEUE_MS;
  }

  acquire(tokens: number, tenant: string | undefined): AcquireResult | Promise<AcquireResult> {
    const now = this.owner.clock.now();
    if (this.queued === 0 && this.wait(tokens, now) === 0) return { ok: true, permit: this.start(tokens) };
    if (this.queued >= this.maxQueue || this.maxQueueMs === 0) {
      return this.shedResult(
        tenant,
        0,
        'queue_full',
        `${this.queued} calls already waiting (maxQueue ${this.maxQueue})`,
      );
    }
    return new Promise<AcquireResult>((resolve) => {
      const weight = this.owner.weight(tenant);
      const cost = this.tokenBucket ? Math.max(1, tokens) : 1;
      const tag = Math.max(this.vtime, this.lastTag.get(tenant) ?? 0) + cost / weight;
      this.lastTag.set(tenant, tag);
      this.waitingOf.set(tenant, (this.waitingOf.get(tenant) ?? 0) + 1);
      const w: Waiter = { seq: this.seq++, tag, tenant, tokens, enqueuedAt: now, done: false, resolve };
      this.push(w);
      this.fifo.push(w);
      this.queued++;
      this.pump();
    });
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
        if (this.queued > 0) this.pump();
      },
    };
  }

  /** Starts what can start, sheds what waited too long, and sets the one timer for the rest. */
  pump(): void {
    const now = this.owner.clock.now();
    this.expire(now);
    let next = Infinity;
    for (let w = this.peek(); w !== undefined; w = this.peek()) {
      const ms = this.wait(w.tokens, now);
      if (ms !== 0) {
        next = ms;
        break;
      }
      this.pop();
      this.settleWaiter(w);
      this.vtime = w.tag;
      this.waitedCount++;
      const permit = this.start(w.tokens);
      this.owner.emit({ type: 'waited', key: this.key, tenant: w.tenant, waitedMs: now - w.enqueuedAt });
      w.resolve({ ok: true, permit });
    }
    const oldest = this.oldest();
    const deadline = oldest ? oldest.enqueuedAt + this.maxQueueMs - now : Infinity;
    this.arm(Math.min(next, deadline), now);
  }

  private arm(ms: number, now: number): void {
    const at = ms === Infinity ? Infinity : now + Math.max(0, ms);
    if (at === this.timerAt) return;
    if (this.timer !== undefined) this.owner.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = at;
    if (at === Infinity) return;
    this.timer = this.owner.clock.setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.pump();
    }, at - now);
  }

  /** Sheds waiters whose `maxQueueMs` passed. */
  private expire(now: number): void {
    for (let w = this.oldest(); w !== undefined && now - w.enqueuedAt >= this.maxQueueMs; w = this.oldest()) {
      this.settleWaiter(w);
      w.resolve(
        this.shedResult(
          w.tenant,
          now - w.enqueuedAt,
          'queue_timeout',
          `waited ${now - w.enqueuedAt} ms (maxQueueMs ${this.maxQueueMs})`,
        ),
      );
    }
  }

  /** Removes a waiter from the books (lazily from the heap and the fifo). */
  private settleWaiter(w: Waiter): void {
    w.done = true;
    this.queued--;
    const left = (this.waitingOf.get(w.tenant) ?? 1) - 1;
    if (left === 0) {
      this.waitingOf.delete(w.tenant);
      this.lastTag.delete(w.tenant);
    } else this.waitingOf.set(w.tenant, left);
  }

  shedResult(
    tenant: string | undefined,
    waitedMs: number,
    reason: ShedReason,
    detail: string,
  ): AcquireResult {
    this.shedCount++;
    this.owner.emit({ type: 'shed', key: this.key, tenant, waitedMs, reason });
    return { ok: false, error: new RateLimitedError(this.key, reason, tenant, detail) };
  }

  close(): void {
    if (this.timer !== undefined) this.owner.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.owner.clock.now();
    for (let w = this.oldest(); w !== undefined; w = this.oldest()) {
      this.settleWaiter(w);
      w.resolve(this.shedResult(w.tenant, now - w.enqueuedAt, 'closed', 'the runtime closed'));
    }
    this.heap = [];
  }

  pause(ms: number): void {
    const now = this.owner.clock.now();
    this.pausedUntil = Math.max(this.pausedUntil, now + ms);
    if (this.queued > 0) this.pump();
  }

  private oldest(): Waiter | undefined {
    const f = this.fifo;
    while (this.fifoHead < f.length && f[this.fifoHead]!.done) this.fifoHead++;
    if (this.fifoHead > 1024 && this.fifoHead * 2 > f.length) {
      this.fifo = f.slice(this.fifoHead);
      this.fifoHead = 0;
    }
    return this.fifo[this.fifoHead];
  }

  private peek(): Waiter | undefined {
    while (this.heap.length > 0 && this.heap[0]!.done) this.pop();
    return this.heap[0];
  }

  private static before(a: Waiter, b: Waiter): boolean {
    return a.tag < b.tag || (a.tag === b.tag && a.seq < b.seq);
  }

  private push(w: Waiter): void {
    const h = this.heap;
    h.push(w);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!KeyLimiter.before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && KeyLimiter.before(h[l]!, h[m]!)) m = l;
      if (r < h.length && KeyLimiter.before(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
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
    const tokens = request.tokens ?? 0;
    if (!(tokens >= 0) || !Number.isFinite(tokens)) {
      throw new TypeError(`limiter.acquire: tokens must be a finite number >= 0, got ${String(tokens)}`);
    }
    return k.acquire(tokens, request.tenant);
  }

  pause(key: string, retryAfterMs: number): void {
    if (!(retryAfterMs > 0) || !Number.isFinite(retryAfterMs)) return;
    this.keys.get(key)?.pause(retryAfterMs);
  }

  limits(key: string): boolean {
    return this.keys.has(key);
  }

  stats(key: string): LimiterStats {
    const k = this.keys.get(key);
    if (k === undefined)
      return { inFlight: 0, queued: 0, started: 0, waited: 0, shed: 0, pausedUntil: undefined };
    return {
      inFlight: k.inFlight,
      queued: k.queued,
      started: k.started,
      waited: k.waitedCount,
      shed: k.shedCount,
      pausedUntil: k.pausedUntil > this.clock.now() ? k.pausedUntil : undefined,
    };
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
