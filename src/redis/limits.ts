/**
 * Rate limits shared by every process of a fleet, kept on Redis: the same {@link Limiter} as the
 * in-process one (`createLimiter`: `rpm` and `tpm` buckets, a concurrency cap, a bounded wait queue
 * with weighted fair queueing by tenant, `pause` on a 429), with the buckets in Redis so the fleet
 * together stays within the provider's limits.
 *
 * - **One script per acquire.** Refilling the buckets, checking the pause, counting the fleet's
 *   calls in flight and taking a request, the call's tokens and a concurrency slot happen in one
 *   Lua script (`EVALSHA`, loaded on `NOSCRIPT`), so two processes can never both take the last
 *   token. The reply says how long until the next token, and the process looks again then. A
 *   call cancelled, shed or closed while its script runs never starts: when the reply says it
 *   took a request, tokens and a slot, one release script gives all three back.
 * - **Time from Redis.** The scripts read Redis's `TIME`, never the caller's clock: every process
 *   refills the same bucket, and a host whose clock runs ahead (or behind, or jumps after an NTP
 *   step) would otherwise mint tokens early or freeze the bucket for everyone. One clock decides.
 *   The caller's injected clock only times the waits (when to look again, `maxQueueMs`, timeouts).
 * - **Concurrency with leases.** Each process (holder) keeps a count of its calls in flight in a
 *   hash, and a lease per holder in a sorted set, renewed every `leaseMs / 3` while it holds any.
 *   A process that dies without releasing stops renewing: its slots come back to the fleet when
 *   its lease ends (`leaseMs`, default 15 s). A live process whose event loop stalls past its
 *   lease loses its slots the same way and puts them back at its next renewal, so the cap may be
 *   exceeded until its calls end.
 * - **Pause.** `pause(key, ms)` (a 429 with `retry-after`) writes the pause end in Redis time: every
 *   process's next acquire of that key waits it out.
 * - **Waiting.** Calls that cannot start wait in a queue per key in each process (the in-process
 *   limiter's {@link FairQueue}: weighted fair queueing by tenant, `maxQueue`, `maxQueueMs`). The
 *   head is tried against Redis one script at a time; when refused, the key's one timer fires at
 *   the bucket's next-token time (or after `pollMs` when only other processes' calls in flight
 *   hold it back, since their releases are not announced).
 * - **Redis unavailable.** `ready()` fails with {@link RateLimitsUnavailableError} naming the server.
 *   Mid-run, `onUnavailable` decides: `allow` (default) starts calls unguarded (counted locally,
 *   reported once per outage to `onError`), since a rate-limit store going down should not stop
 *   every model call: the provider's own 429s, `retry-after` and the breakers still guard it;
 *   `shed` refuses them with a `RateLimitedError` (reason `unavailable`).
 *
 * Keys (after the connection's `keyPrefix`), per limits key `k`: `limits:state:<k>` (hash: request
 * and token levels and their times, the pause end), `limits:slots:<k>` (hash: calls in flight per
 * holder), `limits:leases:<k>` (sorted set: holder by lease end). They expire once the buckets
 * would be full again and the leases ended, so idle keys cost nothing.
 *
 * Every process must use the same limits for a key: the bucket sizes travel with each script call.
 */
import { randomUUID } from 'node:crypto';
import type { Clock, TimerHandle } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import { withoutPassword } from '../core/url.js';
import { RateLimitsUnavailableError, type LimitsBackendDeps, type SharedLimiter } from '../limits/backend.js';
import {
  type AcquireRequest,
  type AcquireResult,
  type CancelSignal,
  type LimitPermit,
  type LimitSpec,
  type LimiterEvent,
  type LimiterStats,
} from '../limits/limiter.js';
import { bucketShape, FREE_RESULT, type Waiter } from '../limits/queue.js';
import { IDLE_STATS, QueuedKey, tokensOf } from '../limits/queued-key.js';
import { luaScript, type LuaScript, type RedisConnection } from './connection.js';

/** How rate limits shared on Redis behave. */
export interface RedisLimitsOptions {
  /**
   * How long a process's concurrency slots outlive it if it dies without releasing them, ms
   * (default 15_000). Renewed every `leaseMs / 3` while the process holds any.
   */
  leaseMs?: number;
  /** How long a script waits for Redis before the call counts as "Redis unavailable", ms (default 2_000). */
  timeoutMs?: number;
  /**
   * What a call gets while Redis cannot be reached (default `allow`): `allow` starts it without the
   * shared buckets (reported to `onError` once per outage); `shed` refuses it with a
   * `RateLimitedError` of reason `unavailable`, so it never reaches the provider.
   */
  onUnavailable?: 'allow' | 'shed';
  /**
   * How often a call kept waiting only by other processes' calls in flight (the concurrency cap)
   * looks again, ms (default 50): their releases are not announced.
   */
  pollMs?: number;
  /**
   * The length of the limits' "minute", ms (default 60_000). For tests only: shortens every
   * bucket's window so a test can watch a window end. Leave it unset in production.
   */
  minuteMs?: number;
}

/** Reads Redis's clock, in integer ms; allows writes after TIME on Redis < 5 (effects replication). */
const PRELUDE = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function refill(level, at, burst, rate, now)
  if level == nil then return burst end
  if at ~= nil and now > at then level = level + (now - at) * rate end
  return math.min(burst, level)
end
local function keep(key, ms)
  local cur = redis.call('PTTL', key)
  if cur < ms then redis.call('PEXPIRE', key, math.ceil(ms)) end
end
`;

/**
 * KEYS: state hash, slots hash, leases set. ARGV: holder, leaseMs, request burst, request rate/ms,
 * token burst, token rate/ms (bursts 0: no such bucket), concurrency (0: none), tokens.
 * Reply: [started 1/0, ms until it may start (-1: calls in flight hold it back), ms paused, now].
 */
const ACQUIRE_LUA = `${PRELUDE}
local h, s, z = KEYS[1], KEYS[2], KEYS[3]
local holder, lease = ARGV[1], tonumber(ARGV[2])
local rb, rr, tb, tr = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local conc, need = tonumber(ARGV[7]), tonumber(ARGV[8])
local now = now_ms()
local v = redis.call('HMGET', h, 'r', 'ra', 't', 'ta', 'p')
local p = tonumber(v[5]) or 0
local paused = 0
if p > now then paused = p - now end
local wait = paused
local r, t = 0, 0
if rb > 0 then
  r = refill(tonumber(v[1]), tonumber(v[2]), rb, rr, now)
  if r < 1 then wait = math.max(wait, math.ceil((1 - r) / rr)) end
end
if tb > 0 then
  t = refill(tonumber(v[3]), tonumber(v[4]), tb, tr, now)
  if need > 0 then
    local want = math.min(need, tb)
    if t < want then wait = math.max(wait, math.ceil((want - t) / tr)) end
  end
end
if conc > 0 and wait == 0 then
  local expired = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, id in ipairs(expired) do redis.call('HDEL', s, id) end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', z, '-inf', now) end
  local inuse = 0
  for _, c in ipairs(redis.call('HVALS', s)) do inuse = inuse + tonumber(c) end
  if inuse >= conc then wait = -1 end
end
local started = 0
if wait == 0 then
  started = 1
  r = r - 1
  t = t - need
  if conc > 0 then
    redis.call('HINCRBY', s, holder, 1)
    redis.call('ZADD', z, now + lease, holder)
    keep(s, lease * 2)
    keep(z, lease * 2)
  end
end
if rb > 0 or tb > 0 then
  local full = paused
  if rb > 0 then
    redis.call('HSET', h, 'r', r, 'ra', now)
    full = math.max(full, (rb - r) / rr)
  end
  if tb > 0 then
    redis.call('HSET', h, 't', t, 'ta', now)
    full = math.max(full, (tb - t) / tr)
  end
  keep(h, full + 1000)
end
return {started, wait, paused, now}
`;

/**
 * KEYS: state hash, slots hash, leases set. ARGV: holder, slot 1/0, token burst, token rate/ms,
 * tokens to give back (negative: to charge; '' for none), request burst, request rate/ms, request
 * to give back 1/0 (a call that took one and never ran: cancelled or closed while its acquire ran).
 */
const RELEASE_LUA = `${PRELUDE}
local h, s, z = KEYS[1], KEYS[2], KEYS[3]
local holder = ARGV[1]
if ARGV[2] == '1' then
  if redis.call('HINCRBY', s, holder, -1) <= 0 then
    redis.call('HDEL', s, holder)
    redis.call('ZREM', z, holder)
  end
end
local tb, tr = tonumber(ARGV[3]), tonumber(ARGV[4])
local rb, rr = tonumber(ARGV[6]), tonumber(ARGV[7])
local now = nil
if ARGV[5] ~= '' and tb > 0 then
  now = now_ms()
  local v = redis.call('HMGET', h, 't', 'ta')
  local t = math.min(tb, refill(tonumber(v[1]), tonumber(v[2]), tb, tr, now) + tonumber(ARGV[5]))
  redis.call('HSET', h, 't', t, 'ta', now)
  keep(h, (tb - t) / tr + 1000)
end
if ARGV[8] == '1' and rb > 0 then
  now = now or now_ms()
  local v = redis.call('HMGET', h, 'r', 'ra')
  local r = math.min(rb, refill(tonumber(v[1]), tonumber(v[2]), rb, rr, now) + 1)
  redis.call('HSET', h, 'r', r, 'ra', now)
  keep(h, (rb - r) / rr + 1000)
end
return 1
`;

/** KEYS: state hash. ARGV: ms. Pauses the key until Redis time now + ms. Reply: ms paused from now. */
const PAUSE_LUA = `${PRELUDE}
local h = KEYS[1]
local now = now_ms()
local untilMs = now + math.ceil(tonumber(ARGV[1]))
local p = tonumber(redis.call('HGET', h, 'p') or 0)
if untilMs > p then
  redis.call('HSET', h, 'p', untilMs)
  keep(h, untilMs - now + 1000)
  p = untilMs
end
return p - now
`;

/**
 * KEYS: per key, its slots hash and leases set. ARGV: holder, leaseMs, then per key the holder's
 * calls in flight (-1: unknown, only extend a lease it has). Renews the holder's leases.
 */
const RENEW_LUA = `${PRELUDE}
local holder, lease = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
for i = 1, #KEYS / 2 do
  local s, z = KEYS[2 * i - 1], KEYS[2 * i]
  local n = tonumber(ARGV[2 + i])
  if n == 0 then
    redis.call('HDEL', s, holder)
    redis.call('ZREM', z, holder)
  elseif n > 0 or redis.call('HEXISTS', s, holder) == 1 then
    if n > 0 then redis.call('HSET', s, holder, n) end
    redis.call('ZADD', z, now + lease, holder)
    keep(s, lease * 2)
    keep(z, lease * 2)
  end
end
return 1
`;

const ACQUIRE = luaScript(ACQUIRE_LUA);
const RELEASE = luaScript(RELEASE_LUA);
const PAUSE = luaScript(PAUSE_LUA);
const RENEW = luaScript(RENEW_LUA);
const SCRIPTS = [ACQUIRE, RELEASE, PAUSE, RENEW];

/** Raised inside when no reply came in time. */
class NoReply extends Error {}

/** Resolved options. */
interface Settings {
  leaseMs: number;
  timeoutMs: number;
  onUnavailable: 'allow' | 'shed';
  pollMs: number;
  minuteMs: number;
}

/** One key's shared buckets, seen from this process. */
class RedisKey extends QueuedKey {
  readonly state: string;
  readonly slots: string;
  readonly leases: string;
  /** Script args of the buckets: request burst, rate, token burst, rate, concurrency (0 = none). */
  readonly shape: [number, number, number, number, number];
  readonly concurrency: number;
  /** This process's calls holding a slot in Redis. */
  held = 0;
  // pausedUntil (QueuedKey): this process's view of the pause end (its clock), from its own pauses
  // and script replies.
  /** A script for the head is in flight. */
  private busy = false;
  /** Counts refusals, so a start knows whether its call was held back (then it "waited"). */
  private refusals = 0;
  private readonly marks = new WeakMap<Waiter, number>();

  constructor(
    key: string,
    spec: LimitSpec,
    private readonly owner: RedisLimiter,
  ) {
    super(key, spec, owner);
    this.state = owner.connection.key('limits', 'state', key);
    this.slots = owner.connection.key('limits', 'slots', key);
    this.leases = owner.connection.key('limits', 'leases', key);
    const minute = owner.settings.minuteMs;
    const r = spec.rpm !== undefined ? bucketShape(spec.rpm, minute) : { burst: 0, rate: 0 };
    const t = spec.tpm !== undefined ? bucketShape(spec.tpm, minute) : { burst: 0, rate: 0 };
    this.concurrency = spec.concurrency ?? 0;
    this.shape = [r.burst, r.rate, t.burst, t.rate, this.concurrency];
  }

  protected onTimer(): void {
    this.pump(true);
  }

  get hasTokens(): boolean {
    return this.shape[2] > 0;
  }

  acquire(
    tokens: number,
    tenant: string | undefined,
    signal: CancelSignal | undefined,
  ): AcquireResult | Promise<AcquireResult> {
    if (signal?.aborted === true) return this.cancelledResult(tenant, 0);
    if (this.queue.size >= this.maxQueue) {
      return this.shedResult(
        tenant,
        0,
        'queue_full',
        `${this.queue.size} calls already waiting (maxQueue ${this.maxQueue})`,
      );
    }
    const now = this.owner.clock.now();
    return new Promise<AcquireResult>((resolve) => {
      const cost = this.hasTokens ? Math.max(1, tokens) : 1;
      const w = this.enqueue(tenant, tokens, cost, this.owner.weight(tenant), now, resolve, signal);
      this.marks.set(w, this.refusals);
      this.pump();
    });
  }

  protected onCancelled(): void {
    // A script in flight for the cancelled head gives its permit straight back (`head.done`); the
    // key's timer looks at the next head. Nobody waits: no timer.
    if (this.queue.size === 0 && !this.busy) this.timer.clear();
  }

  /**
   * Tries the head against Redis (one script at a time), then sets the key's one timer. Waiters past
   * `maxQueueMs` are shed when the timer fires (`expire`) or Redis refuses, never before their first
   * try, so `maxQueueMs: 0` means "start now or not at all".
   */
  pump(expire = false): void {
    if (this.busy || this.owner.closed) return;
    const now = this.owner.clock.now();
    if (expire) this.expire(now);
    const head = this.queue.peek();
    if (head === undefined) {
      this.timer.clear();
      return;
    }
    const deadline = this.queue.deadlineIn(now, this.maxQueueMs);
    if (this.pausedUntil > now) {
      this.timer.arm(Math.min(this.pausedUntil - now, deadline), now);
      return;
    }
    if (this.concurrency > 0 && this.held >= this.concurrency) {
      // This process alone fills the cap: only its own releases (which pump) can free a slot.
      this.timer.arm(deadline, now);
      return;
    }
    const down = this.owner.down();
    if (down !== undefined) {
      this.unavailable(down);
      return;
    }
    this.busy = true;
    this.timer.clear();
    const [rb, rr, tb, tr, conc] = this.shape;
    const s = this.owner.settings;
    /** Set when the script got no answer in time and `head` did not start unguarded. */
    let unstarted = false;
    this.owner.track(
      this.owner
        .run(
          ACQUIRE,
          [this.state, this.slots, this.leases],
          [this.owner.holder, s.leaseMs, rb, rr, tb, tr, conc, head.tokens],
          ([started = 0]) => {
            // The answer came after the timeout: a call that was shed (or cancelled) meanwhile gives
            // back the request and tokens the script took (its slot was reconciled already).
            if (started === 1 && unstarted && !this.owner.closed)
              this.sendRelease(false, head.tokens, 0, true);
          },
        )
        .then(
          ([started = 0, waitMs = 0, pausedMs = 0]) => {
            this.busy = false;
            this.owner.available();
            const at = this.owner.clock.now();
            if (pausedMs > 0) this.pausedUntil = Math.max(this.pausedUntil, at + pausedMs);
            if (started === 1) {
              if (this.owner.closed || head.done) {
                // Closed, cancelled or shed while the script ran: the call never starts, so the
                // request, slot and tokens the script took go straight back to the fleet.
                this.sendRelease(this.concurrency > 0, head.tokens, 0, true);
              } else {
                this.queue.takeHead();
                this.begin(head, true, at);
              }
              this.pump();
              return;
            }
            this.refusals++;
            this.expire(at);
            if (this.queue.size === 0) return;
            const retry = waitMs < 0 ? s.pollMs : Math.max(1, waitMs);
            this.timer.arm(Math.min(retry, this.queue.deadlineIn(at, this.maxQueueMs)), at);
          },
          (e: unknown) => {
            this.busy = false;
            if (this.owner.closed) return; // the waiters were shed by close()
            // The script may still run: make the fleet's count of our calls in flight exact again.
            if (this.concurrency > 0) this.owner.reconcile(this);
            unstarted = head.done || s.onUnavailable === 'shed';
            this.unavailable(this.owner.describe(e));
          },
        ),
    );
  }

  /** Redis could not be asked: every waiting call starts unguarded, or is shed (`onUnavailable`). */
  private unavailable(reason: string): void {
    const allow = this.owner.settings.onUnavailable === 'allow';
    this.owner.outage(reason, allow);
    const now = this.owner.clock.now();
    while (this.queue.size > 0) {
      if (allow) this.begin(this.queue.takeHead(), false, now);
      else {
        const w = this.queue.removeOldest()!;
        w.resolve(
          this.shedResult(w.tenant, now - w.enqueuedAt, 'unavailable', `Redis unavailable: ${reason}`),
        );
      }
    }
    this.timer.clear();
  }

  /** Starts a waiter's call; `guarded`: it holds a slot (if the key caps concurrency) and tokens in Redis. */
  private begin(w: Waiter, guarded: boolean, now: number): void {
    this.inFlight++;
    this.started++;
    const slot = guarded && this.concurrency > 0;
    if (slot) this.held++;
    if (slot && this.held === 1) this.owner.holding();
    if ((this.marks.get(w) ?? this.refusals) < this.refusals) {
      this.waitedCount++;
      this.owner.emit({ type: 'waited', key: this.key, tenant: w.tenant, waitedMs: now - w.enqueuedAt });
    }
    let released = false;
    const permit: LimitPermit = {
      release: (actualTokens?: number) => {
        if (released) return;
        released = true;
        this.inFlight--;
        if (slot) this.held--;
        const settle =
          guarded &&
          this.hasTokens &&
          actualTokens !== undefined &&
          Number.isFinite(actualTokens) &&
          actualTokens >= 0 &&
          actualTokens !== w.tokens;
        if (slot || settle) this.sendRelease(slot, w.tokens, settle ? actualTokens : undefined);
        if (this.queue.size > 0) this.pump();
      },
    };
    w.resolve({ ok: true, permit });
  }

  /**
   * Frees a slot and/or settles tokens in Redis (`actual` undefined: keep the reservation);
   * `unused`: the call never ran, so its request goes back to the `rpm` bucket too.
   */
  private sendRelease(slot: boolean, reserved: number, actual: number | undefined, unused = false): void {
    const [rb, rr, tb, tr] = this.shape;
    const settle = actual !== undefined && tb > 0;
    const request = unused && rb > 0;
    if (!slot && !settle && !request) return;
    this.owner.write(
      RELEASE,
      [this.state, this.slots, this.leases],
      [
        this.owner.holder,
        slot ? '1' : '0',
        tb,
        tr,
        settle ? reserved - actual : '',
        rb,
        rr,
        request ? '1' : '0',
      ],
      `release of a "${this.key}" call (its slot comes back when this process's lease is renewed or ends)`,
    );
  }

  pause(ms: number): void {
    const now = this.owner.clock.now();
    this.pausedUntil = Math.max(this.pausedUntil, now + ms);
    this.owner.write(PAUSE, [this.state], [Math.ceil(ms)], `pause of "${this.key}"`);
    if (this.queue.size > 0 && !this.busy) this.pump();
  }

  /** The holder's exact count of slots here, or -1 while an acquire script is in flight. */
  renewCount(): number {
    return this.busy ? -1 : this.held;
  }
}

/** The {@link SharedLimiter} on Redis. */
class RedisLimiter implements SharedLimiter {
  readonly clock: Clock;
  readonly holder = randomUUID(); // must be unique across the fleet, not reproducible
  closed = false;
  private readonly keys = new Map<string, RedisKey>();
  private readonly weights: Readonly<Record<string, number>>;
  private readonly onEvent: ((event: LimiterEvent) => void) | undefined;
  private readonly onError: (error: Error) => void;
  private readonly store: string;
  private readonly pending = new Set<Promise<unknown>>();
  private renewTimer: TimerHandle = undefined;
  /** Set while Redis is known to be unreachable, so an outage is reported once. */
  private inOutage = false;

  constructor(
    readonly connection: RedisConnection,
    readonly settings: Settings,
    deps: LimitsBackendDeps,
  ) {
    this.clock = deps.clock;
    this.weights = deps.tenantWeights ?? {};
    this.onEvent = deps.onEvent;
    this.onError = (e) => deps.onError(e);
    this.store = withoutPassword(connection.url);
    for (const [key, spec] of Object.entries(deps.limits)) this.keys.set(key, new RedisKey(key, spec, this));
  }

  acquire(request: AcquireRequest): AcquireResult | Promise<AcquireResult> {
    const k = this.keys.get(request.key);
    if (k === undefined || this.closed) return FREE_RESULT;
    return k.acquire(tokensOf(request), request.tenant, request.signal);
  }

  pause(key: string, retryAfterMs: number): void {
    if (this.closed || !(retryAfterMs > 0) || !Number.isFinite(retryAfterMs)) return;
    this.keys.get(key)?.pause(retryAfterMs);
  }

  limits(key: string): boolean {
    return this.keys.has(key);
  }

  stats(key: string): LimiterStats {
    return this.keys.get(key)?.stats(this.clock.now()) ?? IDLE_STATS;
  }

  async ready(): Promise<void> {
    const down = this.down();
    if (down !== undefined) throw new RateLimitsUnavailableError(this.store, down);
    try {
      const redis = this.connection.client();
      await this.withTimeout(Promise.all(SCRIPTS.map((s) => redis.script('LOAD', s.source))));
    } catch (e) {
      throw new RateLimitsUnavailableError(this.store, this.describe(e), { cause: e });
    }
  }

  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all(this.pending);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.renewTimer !== undefined) this.clock.clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    for (const k of this.keys.values()) k.close();
  }

  weight(tenant: string | undefined): number {
    return tenant === undefined ? 1 : (this.weights[tenant] ?? 1);
  }

  emit(event: LimiterEvent): void {
    this.onEvent?.(event);
  }

  /** Why the client is known to be disconnected (so calls need not wait for a timeout), or undefined. */
  down(): string | undefined {
    try {
      const status = this.connection.client().status;
      return status === 'reconnecting' || status === 'end' ? `connection ${status}` : undefined;
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    }
  }

  describe(e: unknown): string {
    if (e instanceof NoReply) return `no reply within ${this.settings.timeoutMs} ms`;
    return e instanceof Error ? e.message : String(e);
  }

  /** Reports an outage once (until a script succeeds again). */
  outage(reason: string, allowed: boolean): void {
    if (this.inOutage) return;
    this.inOutage = true;
    const error = new RateLimitsUnavailableError(this.store, reason);
    this.onError(
      allowed
        ? error
        : new RateLimitsUnavailableError(this.store, `${reason}; calls are shed until it answers`),
    );
  }

  available(): void {
    this.inOutage = false;
  }

  /**
   * Runs a script (loading it if Redis lacks it), failing with NoReply after `timeoutMs`; `late`
   * receives the reply if it comes after that (not awaited by `flush()`: it may never come).
   */
  run(
    s: LuaScript,
    keys: string[],
    args: (string | number)[],
    late?: (reply: number[]) => void,
  ): Promise<number[]> {
    const reply = this.connection.evalScript(s, keys, args).then(integers);
    const timed = this.withTimeout(reply);
    if (late !== undefined) {
      void timed.catch((e: unknown) => {
        if (e instanceof NoReply) void reply.then(late, () => undefined);
      });
    }
    return timed;
  }

  private withTimeout<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => reject(new NoReply()), this.settings.timeoutMs);
      p.then(
        (v) => {
          this.clock.clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          this.clock.clearTimeout(timer);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }

  /** A write nobody waits for (release, pause, renewal): tracked for `flush()`, failures to `onError`. */
  write(s: LuaScript, keys: string[], args: (string | number)[], what: string): void {
    const p = this.run(s, keys, args).then(
      () => undefined,
      (e: unknown) =>
        this.onError(new RateLimitsUnavailableError(this.store, `${what} not written: ${this.describe(e)}`)),
    );
    this.track(p);
  }

  /** Tracks work for `flush()` (acquire scripts too: a start after close gives its slot back). */
  track(p: Promise<unknown>): void {
    const q = p.catch((e: unknown) => this.onError(e instanceof Error ? e : new Error(String(e))));
    this.pending.add(q);
    void q.then(() => this.pending.delete(q));
  }

  /** A key started holding slots: keep this holder's leases renewed. */
  holding(): void {
    if (this.renewTimer !== undefined || this.closed) return;
    this.renewTimer = this.clock.setTimeout(() => this.renew(), Math.max(1, this.settings.leaseMs / 3));
  }

  /** Renews the leases of every key this process holds slots of (exact counts, so drift heals). */
  private renew(): void {
    this.renewTimer = undefined;
    const keys: string[] = [];
    const counts: number[] = [];
    for (const k of this.keys.values()) {
      if (k.concurrency === 0 || k.held === 0) continue;
      keys.push(k.slots, k.leases);
      counts.push(k.renewCount());
    }
    if (keys.length === 0) return;
    this.write(RENEW, keys, [this.holder, this.settings.leaseMs, ...counts], 'lease renewal');
    this.holding();
  }

  /** After an acquire got no answer: sets this holder's count of `k` to what it really holds. */
  reconcile(k: RedisKey): void {
    this.write(RENEW, [k.slots, k.leases], [this.holder, this.settings.leaseMs, k.held], 'lease renewal');
  }
}

/**
 * Opens rate limits on Redis for `limits` (validated by the caller, e.g. `openLimits`). Nothing is
 * awaited: the connection opens on the first command; `await limiter.ready()` to fail fast.
 *
 * @example
 * const connection = new RedisConnection('redis://127.0.0.1:6379', { keyPrefix: 'invoices:' });
 * const limiter = createRedisLimiter(connection, {
 *   clock: realClock,
 *   limits: { 'openai:gpt-4': { rpm: 600, tpm: 90_000, concurrency: 20 } },
 *   onError: (e) => console.error(e.message),
 * });
 * await limiter.ready();
 * const r = await limiter.acquire({ key: 'openai:gpt-4', tokens: 1_200, tenant: 'acme' });
 * if (!r.ok) throw r.error;
 * r.permit.release(1_100);
 */
export function createRedisLimiter(
  connection: RedisConnection,
  deps: LimitsBackendDeps,
  options: RedisLimitsOptions = {},
): SharedLimiter {
  return new RedisLimiter(connection, resolveOptions(options), deps);
}

/** Validates {@link RedisLimitsOptions}; a bad one throws a ConfigError naming `limits.shared.<field>`. */
export function resolveOptions(options: RedisLimitsOptions): Settings {
  const onUnavailable = options.onUnavailable ?? 'allow';
  if (onUnavailable !== 'allow' && onUnavailable !== 'shed')
    throw new ConfigError('limits.shared.onUnavailable', "must be 'allow' or 'shed'");
  return {
    leaseMs: positiveMs(options.leaseMs, 15_000, 'limits.shared.leaseMs'),
    timeoutMs: positiveMs(options.timeoutMs, 2_000, 'limits.shared.timeoutMs'),
    pollMs: positiveMs(options.pollMs, 50, 'limits.shared.pollMs'),
    minuteMs: positiveMs(options.minuteMs, 60_000, 'limits.shared.minuteMs'),
    onUnavailable,
  };
}

/** A reply of integers, as the scripts return. */
function integers(reply: unknown): number[] {
  if (typeof reply === 'number') return [reply];
  if (!Array.isArray(reply) || !reply.every((v): v is number => typeof v === 'number'))
    throw new Error(`unexpected reply from a rate-limit script: ${JSON.stringify(reply)}`);
  return reply;
}

function positiveMs(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!(Number.isFinite(value) && value > 0))
    throw new ConfigError(field, `must be a number of milliseconds > 0, got ${String(value)}`);
  return value;
}
