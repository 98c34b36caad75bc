/**
 * The result cache on Redis (`cache: redis(url)`): every runtime process pointed at the same server
 * and key prefix shares its entries, and concurrent identical calls across those processes make one
 * model call. It keeps the local cache's contract ({@link Cache}), answering with promises.
 *
 * Keys, all under the connection's `keyPrefix`:
 * - `cache:v:<key>` the entry: a small header (`[1, storedAt, expiresAt, agent]`) then the value's JSON,
 *   stored with `PX = ttlMs + maxStaleMs` so Redis drops it once even stale-if-error cannot use it;
 * - `cache:a:<agent>` a sorted set of the agent's keys (scored by their Redis expiry) for invalidation;
 * - `cache:l:<key>` the single-flight lock, `cache:r:<key>` the flight's result for a few seconds, and
 *   the channel `cache:f:<key>` on which the leader announces it; `cache:inv` carries invalidations.
 *
 * Time: freshness, `ageMs` and `stale` come from the timestamps stored with the value, read against
 * the injected clock; Redis's own expiry (of entries and locks) runs on the server's real time. With a
 * simulated clock, entries therefore expire logically when the clock says so, and are physically
 * removed `ttlMs + maxStaleMs` of real time after they were written.
 *
 * Lock renewal: while the leader's call runs, it extends its lock every `lockRenewMs` (by default a
 * third of `lockTtlMs`) with a script that resets the expiry only if the lock still holds its token.
 * These timers follow Redis's real time, not the injected clock: they come from `renewTimer` (real
 * timers that never keep the process alive by default, a simulated clock in tests), and none outlives
 * its flight or `close()`.
 *
 * Size (~800 lines, over the ~600 rule): the key layout, the Lua scripts and the single-flight
 * protocol are one contract between processes; split, a change to one side could not be read
 * beside the other.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Cache, CacheGetOptions, CacheHit, CacheInvalidation } from '../cache/cache.js';
import type { StoredEntry } from '../cache/entry.js';
import { CacheClosedError, CacheRedisError, type CacheRedisOperation } from '../cache/errors.js';
import { LruMap } from '../cache/lru.js';
import { createSealer, type Sealer } from '../cache/seal.js';
import { checkTtlMs, nonNegativeInteger, serialiseValue } from '../cache/validate.js';
import { realClock, type Clock, type TimerHandle } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import { withoutPassword } from '../core/url.js';
import type { RedisConnection } from './connection.js';

/** Options of {@link createRedisCache}. */
export interface RedisCacheOptions {
  /** Source of time for ages, freshness and the wait for another process's call. */
  clock: Clock;
  /**
   * Encrypts stored values and single-flight announcements (AES-256-GCM, key derived from this
   * one), so Redis holds no raw output; every process must give the same key. The runtime passes
   * its redaction key. Default: values stored as plain JSON.
   */
  sealKey?: string | Uint8Array;
  /**
   * How long past its expiry an entry is kept for stale-if-error (`get(key, { allowStale: true })`),
   * in ms (default 86_400_000 = one day). Redis keeps each entry `ttlMs + maxStaleMs` ms.
   */
  maxStaleMs?: number;
  /**
   * Expiry of the single-flight lock a process takes on a key while it makes the call, in ms of Redis
   * (real) time (default 60_000). The leader renews it every `lockRenewMs` for as long as its call
   * runs, so calls with retries and backoff may take longer than this; if the leader dies (or its event
   * loop stalls), the lock frees itself at most this long after the last renewal, and another process
   * calls. Shorter: a dead leader holds others up less; but each renewal must reach Redis within it.
   *
   * If a renewal finds the lock gone or held by another process (Redis lost it, someone deleted it,
   * or the event loop stalled past the expiry), renewal stops and `onError` gets a
   * {@link CacheRedisError} (`operation: 'lock'`). The call in progress still completes, its result
   * is stored and announced to processes still waiting, and the other process's lock is left alone;
   * but a process that took the lock in between makes the same call again (billed twice).
   */
  lockTtlMs?: number;
  /**
   * How often the leader extends its lock to `lockTtlMs` while its call runs, in ms of Redis (real)
   * time (default `lockTtlMs / 3`, rounded down). Must be shorter than `lockTtlMs`. 0: no renewal
   * (the lock expires `lockTtlMs` after it was taken, even while the call still runs).
   */
  lockRenewMs?: number;
  /**
   * Timer for lock renewals, on real time like Redis's expiry (default: real timers that do not keep
   * the process alive). Tests pass `simulatedClock()` to fire renewals by hand.
   */
  renewTimer?: Pick<Clock, 'setTimeout' | 'clearTimeout'>;
  /**
   * Longest a caller waits for another process's identical call before making its own, in ms of
   * clock time (default 60_000). It also stops waiting as soon as the other process's lock expires.
   * 0: never wait.
   */
  waitForLeaderMs?: number;
  /**
   * Entries also kept in this process's memory (LRU), so repeated hits skip the round trip to Redis
   * (default 0: off). Invalidations reach every process's copy through Redis pub/sub.
   */
  localMaxEntries?: number;
  /**
   * Called with each Redis failure (a read answered as a miss, a write dropped, a single-flight that
   * fell back to this process). Keel's runtime emits it as `rt.on('error')`; default: ignored.
   * An exception thrown here is ignored.
   */
  onError?: (error: CacheRedisError) => void;
}

/** The cache shared through Redis. Reads and invalidations answer with promises. */
export interface RedisCache extends Cache {
  /**
   * The entry under `key`; expired entries are misses unless `allowStale`. Never rejects because of
   * Redis: a failure answers `undefined` and goes to `onError`. Rejects {@link CacheClosedError} once closed.
   */
  get(key: string, options?: CacheGetOptions): Promise<CacheHit | undefined>;
  /**
   * Stores `value` for `ttlMs` ms (fire-and-forget: a Redis failure goes to `onError`).
   *
   * @throws ConfigError for a bad `ttlMs`; CacheValueError when JSON cannot represent `value`;
   * CacheClosedError once closed.
   */
  set(key: string, agent: string, value: unknown, ttlMs: number): void;
  /**
   * Removes entries of this key prefix only (never the whole Redis database), in every process;
   * resolves how many. Rejects with {@link CacheRedisError} when Redis fails.
   */
  invalidate(target: CacheInvalidation): Promise<number>;
  /**
   * Runs `compute` once for concurrent callers of `key` across every process sharing the cache: one
   * process takes a lock and computes; the others wait (up to `waitForLeaderMs`) and get its result.
   * A failure reaches this process's waiting callers and frees the lock, so another process computes.
   * The result must be JSON to reach other processes (otherwise they compute their own). When Redis
   * is unreachable, single-flight holds within this process only.
   */
  singleFlight<T>(key: string, compute: () => Promise<T>): Promise<T>;
  /** Drops this process's in-memory copies past `maxStaleMs`; resolves how many (Redis expires entries itself). */
  purgeExpired(): Promise<number>;
  /** Stops listening to Redis. Idempotent. The {@link RedisConnection} stays open (its owner closes it). */
  close(): Promise<void>;
}

/** How long a finished flight's result stays readable for callers that just missed its announcement, ms. */
const RESULT_TTL_MS = 5_000;
/** Keys an agent invalidation removes per script call (bounds the time Redis spends in one script). */
const INVALIDATE_BATCH = 500;
/** Keys deleted per SCAN step of `invalidate({ all: true })`. */
const SCAN_COUNT = 1_000;
/** A leader's announcement that it failed (or that its result is not JSON): followers compute again. */
const FAILED = '0';

interface LuaScript {
  readonly source: string;
  readonly sha1: string;
  readonly keys: number;
}

function lua(keys: number, source: string): LuaScript {
  return { source, keys, sha1: createHash('sha1').update(source).digest('hex') };
}

/** KEYS: entry, agent index. ARGV: stored text, PX ms, cache key. */
const SET_SCRIPT = lua(
  2,
  `redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local px = tonumber(ARGV[2])
redis.call('ZADD', KEYS[2], now + px, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('PTTL', KEYS[2]) < px then redis.call('PEXPIRE', KEYS[2], px) end
return 1`,
);

/** KEYS: agent index. ARGV: entry key prefix, result key prefix, batch. Returns [removed, left]. */
const INVALIDATE_AGENT_SCRIPT = lua(
  1,
  `local keys = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
local removed = 0
for _, k in ipairs(keys) do
  removed = removed + redis.call('DEL', ARGV[1] .. k)
  redis.call('DEL', ARGV[2] .. k)
end
if #keys > 0 then redis.call('ZREM', KEYS[1], unpack(keys)) end
return {removed, redis.call('ZCARD', KEYS[1])}`,
);

/** KEYS: lock, result. ARGV: token, lock PX ms. Returns {'done', result} | {'lead'} | {'wait', pttl}. */
const CLAIM_SCRIPT = lua(
  2,
  `local done = redis.call('GET', KEYS[2])
if done then return {'done', done} end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {'lead'} end
return {'wait', redis.call('PTTL', KEYS[1])}`,
);

/**
 * KEYS: lock, result. ARGV: token, announcement, result PX ms, channel. Stores a successful result,
 * frees the lock only if this leader still holds it (compare-and-delete), then announces.
 */
const RELEASE_SCRIPT = lua(
  2,
  `if string.sub(ARGV[2], 1, 1) == '1' then redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('PUBLISH', ARGV[4], ARGV[2])
return 1`,
);

/** KEYS: lock. ARGV: token, lock PX ms. Extends the lock only while it holds `token`: 1, else 0. */
const RENEW_SCRIPT = lua(
  1,
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`,
);

/** Clients that were sent every script (SCRIPT LOAD), so EVALSHA finds them. */
const scriptsSent = new WeakSet<Redis>();
const ALL_SCRIPTS: readonly LuaScript[] = [
  SET_SCRIPT,
  INVALIDATE_AGENT_SCRIPT,
  CLAIM_SCRIPT,
  RELEASE_SCRIPT,
  RENEW_SCRIPT,
];

/**
 * Runs a script by its SHA1. Each client is first sent the scripts (queued ahead on the same
 * connection, so commands keep their order: a write is visible to the next read). A server that lost
 * them (restart) gets the script's source once more.
 */
async function runScript(client: Redis, script: LuaScript, args: (string | number)[]): Promise<unknown> {
  if (!scriptsSent.has(client)) {
    scriptsSent.add(client);
    for (const s of ALL_SCRIPTS) {
      client.script('LOAD', s.source).catch(() => scriptsSent.delete(client));
    }
  }
  try {
    return await client.evalsha(script.sha1, script.keys, ...args);
  } catch (e) {
    if (e instanceof Error && e.message.startsWith('NOSCRIPT')) {
      return client.eval(script.source, script.keys, ...args);
    }
    throw e;
  }
}

type Claim = { kind: 'lead' } | { kind: 'done'; announcement: string } | { kind: 'wait'; pttlMs: number };

function toClaim(reply: unknown): Claim {
  if (Array.isArray(reply)) {
    const [kind, arg] = reply as unknown[];
    if (kind === 'lead') return { kind };
    if (kind === 'done' && typeof arg === 'string') return { kind, announcement: arg };
    if (kind === 'wait' && typeof arg === 'number') return { kind, pttlMs: arg };
  }
  throw new Error(`unexpected reply to the lock script: ${JSON.stringify(reply)}`);
}

/** A leader's result from its announcement; `undefined` when it failed (or does not open under `sealer`). */
function announced(announcement: string, sealer: Sealer | undefined): { value: unknown } | undefined {
  if (!announcement.startsWith('1')) return undefined;
  const json = sealer ? sealer.open(announcement.slice(1)) : announcement.slice(1);
  if (json === undefined) return undefined;
  try {
    return { value: JSON.parse(json) as unknown };
  } catch {
    return undefined;
  }
}

/** The stored text of an entry: `[1,storedAt,expiresAt,agent]\n` then the value's JSON. */
function encodeEntry(entry: StoredEntry): string {
  return `[1,${entry.createdAt},${entry.expiresAt},${JSON.stringify(entry.agent)}]\n${entry.json}`;
}

function decodeEntry(text: string, sealer: Sealer | undefined): StoredEntry | undefined {
  const newline = text.indexOf('\n'); // JSON.stringify escapes newlines: the first one ends the header
  if (newline < 0) return undefined;
  let header: unknown;
  try {
    header = JSON.parse(text.slice(0, newline));
  } catch {
    return undefined;
  }
  if (!Array.isArray(header)) return undefined;
  const [version, createdAt, expiresAt, agent] = header as unknown[];
  if (version !== 1 || typeof createdAt !== 'number' || typeof expiresAt !== 'number') return undefined;
  if (typeof agent !== 'string') return undefined;
  const json = sealer ? sealer.open(text.slice(newline + 1)) : text.slice(newline + 1);
  return json === undefined ? undefined : { agent, createdAt, expiresAt, json };
}

/** `*`, `?`, `[`, `]` and `\` in a key prefix, escaped for a SCAN pattern. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** Real timers that never keep the process alive: lock renewals follow Redis's real-time expiry. */
const unrefTimer: Pick<Clock, 'setTimeout' | 'clearTimeout'> = {
  setTimeout(fn, ms) {
    const handle = realClock.setTimeout(fn, ms);
    (handle as { unref?: () => void }).unref?.();
    return handle;
  },
  clearTimeout: (handle) => realClock.clearTimeout(handle),
};

/** A leader's lock kept alive while its call runs. */
interface Renewal {
  readonly lockKey: string;
  readonly token: string;
  /** The next renewal's timer (cleared once the renewal stops). */
  timer: TimerHandle;
}

/** Where a waiting follower hears its leader's announcement. */
interface Mailbox {
  announcement: string | undefined;
  wake: (() => void) | undefined;
}

/**
 * Creates the result cache on Redis, shared by every process using the same server and key prefix.
 * Redis failures never fail a workflow: reads answer a miss, writes are dropped, single-flight falls
 * back to this process, and each failure goes to `onError`. Bound the client's waits on the connection
 * (`connectTimeout`, `maxRetriesPerRequest`, `commandTimeout`); while it is reconnecting, the cache
 * answers at once without queueing.
 *
 * @throws ConfigError for a bad option.
 * @example
 * const connection = new RedisConnection('redis://cache.internal:6379', { keyPrefix: 'invoices:' });
 * const cache = createRedisCache(connection, { clock: realClock, onError: (e) => log.warn(e.message) });
 * const key = cacheKey('vendor_extraction', '1', input, process.env.KEEL_REDACT_KEY ?? '');
 * const hit = await cache.get(key);
 * const value = hit ? hit.value : await cache.singleFlight(key, async () => {
 *   const out = await callModel(input);
 *   cache.set(key, 'vendor_extraction', out, 86_400_000);
 *   return out;
 * });
 */
export function createRedisCache(connection: RedisConnection, options: RedisCacheOptions): RedisCache {
  if (typeof connection?.client !== 'function' || typeof connection.key !== 'function') {
    throw new ConfigError(
      'cache',
      'needs a RedisConnection, e.g. new RedisConnection("redis://localhost:6379")',
    );
  }
  const clock = options?.clock;
  if (typeof clock?.now !== 'function') {
    throw new ConfigError('cache.clock', 'is required; pass realClock, or simulatedClock() in tests');
  }
  const maxStaleMs = nonNegativeInteger(options.maxStaleMs, 86_400_000, 'cache.maxStaleMs');
  const lockTtlMs = nonNegativeInteger(options.lockTtlMs, 60_000, 'cache.lockTtlMs');
  if (lockTtlMs === 0) throw new ConfigError('cache.lockTtlMs', 'must be at least 1 ms, e.g. 60_000');
  const lockRenewMs = nonNegativeInteger(options.lockRenewMs, Math.floor(lockTtlMs / 3), 'cache.lockRenewMs');
  if (lockRenewMs >= lockTtlMs) {
    throw new ConfigError(
      'cache.lockRenewMs',
      `must be shorter than lockTtlMs (${lockTtlMs} ms), so the lock is extended before it expires, e.g. ${Math.floor(lockTtlMs / 3)}; 0 turns renewal off`,
    );
  }
  const renewTimer = options.renewTimer ?? unrefTimer;
  if (typeof renewTimer?.setTimeout !== 'function' || typeof renewTimer.clearTimeout !== 'function') {
    throw new ConfigError('cache.renewTimer', 'must have setTimeout and clearTimeout, e.g. simulatedClock()');
  }
  const waitForLeaderMs = nonNegativeInteger(options.waitForLeaderMs, 60_000, 'cache.waitForLeaderMs');
  const localMaxEntries = nonNegativeInteger(options.localMaxEntries, 0, 'cache.localMaxEntries');
  const onError = options.onError;
  if (onError !== undefined && typeof onError !== 'function') {
    throw new ConfigError('cache.onError', 'must be a function receiving a CacheRedisError');
  }

  const sealer = options.sealKey !== undefined ? createSealer(options.sealKey) : undefined;
  const url = withoutPassword(connection.url);
  const entryPrefix = connection.key('cache', 'v', '');
  const agentPrefix = connection.key('cache', 'a', '');
  const lockPrefix = connection.key('cache', 'l', '');
  const resultPrefix = connection.key('cache', 'r', '');
  const channelPrefix = connection.key('cache', 'f', '');
  const invalidations = connection.key('cache', 'inv');
  const scanPrefix = globEscape(connection.key('cache', ''));

  const local = localMaxEntries > 0 ? new LruMap<StoredEntry>(localMaxEntries) : undefined;
  /** Local copies are kept only while this process hears invalidations. */
  let localLive = false;
  let feed: 'off' | 'starting' | 'on' = 'off';
  const inFlight = new Map<string, Promise<unknown>>();
  const mailboxes = new Map<string, Mailbox>();
  const renewals = new Set<Renewal>();
  let subscriber: Redis | undefined;
  let closed = false;

  const report = (operation: CacheRedisOperation, cause: unknown): void => {
    if (onError === undefined) return;
    try {
      onError(new CacheRedisError(url, operation, { cause }));
    } catch {
      // A failing error hook must not turn a cache outage into a workflow failure.
    }
  };

  /** The shared client, unless it is known to be down: then fail at once rather than queue. */
  const client = (): Redis => {
    const c = connection.client();
    if (c.status === 'reconnecting' || c.status === 'end' || c.status === 'close') {
      throw new Error(`the connection is ${c.status}`);
    }
    return c;
  };

  const onMessage = (channel: string, message: string): void => {
    if (channel === invalidations) {
      forgetLocally(message);
      return;
    }
    const box = mailboxes.get(channel);
    if (box === undefined) return;
    box.announcement = message;
    box.wake?.();
  };

  /** A second connection for pub/sub (a subscribed ioredis client can issue nothing else). */
  const subscriberClient = (): Redis => {
    if (closed) throw new CacheClosedError();
    if (subscriber === undefined) {
      // No ready check on the subscriber: ioredis (5.8.2+) may send its INFO probe after a queued
      // SUBSCRIBE has put the connection in subscriber mode, which Redis refuses (ioredis#2037).
      const s = connection.client().duplicate({ enableReadyCheck: false });
      s.on('error', () => undefined); // failures surface through the commands that need it
      s.on('message', onMessage);
      s.on('close', () => {
        // Invalidations may be missed while disconnected: stop trusting local copies.
        localLive = false;
        local?.clear();
      });
      s.on('ready', () => {
        if (feed === 'on') localLive = true;
      });
      subscriber = s;
    }
    if (subscriber.status === 'reconnecting' || subscriber.status === 'end') {
      throw new Error(`the pub/sub connection is ${subscriber.status}`);
    }
    return subscriber;
  };

  /** Starts hearing other processes' invalidations (needed before keeping local copies). */
  const startFeed = (): void => {
    if (local === undefined || feed !== 'off' || closed) return;
    let s: Redis;
    try {
      s = subscriberClient();
    } catch (e) {
      report('subscribe', e);
      return;
    }
    feed = 'starting';
    s.subscribe(invalidations).then(
      () => {
        feed = 'on';
        localLive = s.status === 'ready';
      },
      (e: unknown) => {
        feed = 'off';
        report('subscribe', e);
      },
    );
  };

  function forgetLocally(message: string): void {
    if (local === undefined) return;
    let target: unknown;
    try {
      target = JSON.parse(message);
    } catch {
      local.clear();
      return;
    }
    const t = (target ?? {}) as { key?: unknown; agent?: unknown };
    if (typeof t.key === 'string') local.delete(t.key);
    else if (typeof t.agent === 'string') local.deleteWhere((e) => e.agent === t.agent);
    else local.clear();
  }

  const answer = (entry: StoredEntry, now: number, options?: CacheGetOptions): CacheHit | undefined => {
    if (now >= entry.expiresAt + maxStaleMs) return undefined;
    const stale = now >= entry.expiresAt;
    if (stale && options?.allowStale !== true) return undefined;
    return { value: JSON.parse(entry.json) as unknown, ageMs: Math.max(0, now - entry.createdAt), stale };
  };

  const readRemote = async (key: string, options?: CacheGetOptions): Promise<CacheHit | undefined> => {
    let text: string | null;
    try {
      text = await client().get(entryPrefix + key);
    } catch (e) {
      report('get', e);
      return undefined;
    }
    if (text === null) return undefined;
    const entry = decodeEntry(text, sealer);
    let hit: CacheHit | undefined;
    try {
      if (entry === undefined) throw new TypeError('no Keel entry header');
      hit = answer(entry, clock.now(), options);
    } catch (e) {
      const what = `the value under ${entryPrefix}${key} is not a Keel cache entry; treated as a miss`;
      report('get', new Error(what, { cause: e }));
      return undefined;
    }
    if (local !== undefined && hit !== undefined && !hit.stale) {
      if (localLive) local.set(key, entry);
      else startFeed();
    }
    return hit;
  };

  const release = (lockKey: string, key: string, token: string, announcement: string): void => {
    let c: Redis;
    try {
      c = client();
    } catch (e) {
      report('release', e); // the lock frees itself after lockTtlMs
      return;
    }
    runScript(c, RELEASE_SCRIPT, [
      lockKey,
      resultPrefix + key,
      token,
      announcement,
      RESULT_TTL_MS,
      channelPrefix + key,
    ]).catch((e: unknown) => report('release', e));
  };

  const stopRenewing = (renewal: Renewal): void => {
    if (renewals.delete(renewal)) renewTimer.clearTimeout(renewal.timer);
  };

  const lockLost = (renewal: Renewal): Error =>
    new Error(
      `the single-flight lock ${renewal.lockKey} expired or was taken by another process while this process's call was running; the call goes on and its result is stored, but another process may be making the same call. Check for event-loop stalls longer than lockTtlMs (${lockTtlMs} ms) minus lockRenewMs (${lockRenewMs} ms) and that Redis keeps its keys (no eviction of cache keys)`,
    );

  /** Sends one renewal and schedules the next (at a steady pace, whatever Redis's reply time). */
  const renewNow = (renewal: Renewal): void => {
    if (!renewals.has(renewal)) return;
    renewal.timer = renewTimer.setTimeout(() => renewNow(renewal), lockRenewMs);
    let c: Redis;
    try {
      c = client();
    } catch (e) {
      report('renew', e); // the lock may outlive the outage: keep trying
      return;
    }
    runScript(c, RENEW_SCRIPT, [renewal.lockKey, renewal.token, lockTtlMs]).then(
      (held) => {
        if (held === 1 || !renewals.has(renewal)) return;
        stopRenewing(renewal);
        report('renew', lockLost(renewal));
      },
      (e: unknown) => {
        if (renewals.has(renewal)) report('renew', e);
      },
    );
  };

  /** Keeps the lock alive until {@link stopRenewing}; `undefined` when renewal is off. */
  const startRenewing = (lockKey: string, token: string): Renewal | undefined => {
    if (lockRenewMs === 0 || closed) return undefined;
    const renewal: Renewal = { lockKey, token, timer: undefined };
    renewals.add(renewal);
    renewal.timer = renewTimer.setTimeout(() => renewNow(renewal), lockRenewMs);
    return renewal;
  };

  const lead = async <T>(
    key: string,
    lockKey: string,
    token: string,
    compute: () => Promise<T>,
  ): Promise<T> => {
    const renewal = startRenewing(lockKey, token);
    let result: T;
    try {
      result = await compute();
    } catch (e) {
      if (renewal !== undefined) stopRenewing(renewal);
      release(lockKey, key, token, FAILED);
      throw e;
    }
    if (renewal !== undefined) stopRenewing(renewal);
    let announcement = FAILED;
    try {
      const json = JSON.stringify(result);
      if (json !== undefined) announcement = `1${sealer ? sealer.seal(json) : json}`;
    } catch {
      // Not JSON: the other processes make their own call.
    }
    release(lockKey, key, token, announcement);
    return result;
  };

  /** Waits for an announcement in `box`, at most `ms` of clock time; `undefined` on timeout or close. */
  const hear = (box: Mailbox, ms: number): Promise<string | undefined> =>
    new Promise((resolve) => {
      const timer = clock.setTimeout(() => {
        box.wake = undefined;
        resolve(undefined);
      }, ms);
      box.wake = () => {
        box.wake = undefined;
        clock.clearTimeout(timer);
        resolve(box.announcement);
      };
    });

  /** Single-flight across processes for one key (this process's callers already share it). */
  const flight = async <T>(key: string, compute: () => Promise<T>): Promise<T> => {
    const lockKey = lockPrefix + key;
    const channel = channelPrefix + key;
    const token = randomUUID(); // unique across processes (a seeded PRNG would repeat in each)
    let deadline = clock.now() + waitForLeaderMs;
    let box: Mailbox | undefined;
    try {
      for (;;) {
        if (closed) return await compute();
        let claim: Claim;
        try {
          claim = toClaim(
            await runScript(client(), CLAIM_SCRIPT, [lockKey, resultPrefix + key, token, lockTtlMs]),
          );
        } catch (e) {
          report('lock', e);
          return await compute();
        }
        if (claim.kind === 'lead') return await lead(key, lockKey, token, compute);
        if (claim.kind === 'done') {
          const done = announced(claim.announcement, sealer);
          return done ? (done.value as T) : await compute();
        }
        const now = clock.now();
        if (now >= deadline) return await compute(); // waited long enough: make our own call
        if (box === undefined) {
          // Listen first, then claim again: an announcement made in between is then either heard
          // or visible as the stored result.
          box = { announcement: undefined, wake: undefined };
          mailboxes.set(channel, box);
          try {
            await subscriberClient().subscribe(channel);
          } catch (e) {
            report('subscribe', e);
            return await compute();
          }
          continue;
        }
        const waitMs = claim.pttlMs > 0 ? Math.min(deadline - now, claim.pttlMs) : deadline - now;
        const announcement = box.announcement ?? (await hear(box, waitMs));
        box.announcement = undefined;
        if (announcement === undefined) continue; // the wait or the lock ran out: claim again
        const done = announced(announcement, sealer);
        if (done) return done.value as T;
        deadline = clock.now() + waitForLeaderMs; // the leader failed: claim again, wait afresh
      }
    } finally {
      if (box !== undefined) {
        if (mailboxes.get(channel) === box) mailboxes.delete(channel);
        subscriber?.unsubscribe(channel).catch(() => undefined);
      }
    }
  };

  const deleteMatching = async (c: Redis, pattern: string): Promise<number> => {
    let cursor = '0';
    let removed = 0;
    do {
      const [next, keys] = await c.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
      cursor = next;
      if (keys.length > 0) removed += await c.unlink(...keys);
    } while (cursor !== '0');
    return removed;
  };

  const invalidateRemote = async (c: Redis, target: CacheInvalidation): Promise<number> => {
    if ('key' in target) {
      const [removed] = await Promise.all([
        c.del(entryPrefix + target.key),
        c.del(resultPrefix + target.key),
      ]);
      return removed;
    }
    if ('agent' in target) {
      let removed = 0;
      for (;;) {
        const reply = await runScript(c, INVALIDATE_AGENT_SCRIPT, [
          agentPrefix + target.agent,
          entryPrefix,
          resultPrefix,
          INVALIDATE_BATCH,
        ]);
        const [n, left] = reply as [number, number];
        removed += n;
        if (left === 0) return removed;
      }
    }
    const removed = await deleteMatching(c, `${scanPrefix}v:*`);
    await deleteMatching(c, `${scanPrefix}a:*`);
    await deleteMatching(c, `${scanPrefix}r:*`);
    return removed;
  };

  return {
    get(key, options) {
      if (closed) return Promise.reject(new CacheClosedError());
      if (local !== undefined) {
        const entry = local.get(key);
        if (entry !== undefined) {
          if (clock.now() < entry.expiresAt) return Promise.resolve(answer(entry, clock.now(), options));
          local.delete(key); // another process may have stored a fresher value: ask Redis
        }
      }
      return readRemote(key, options);
    },

    set(key, agent, value, ttlMs) {
      if (closed) throw new CacheClosedError();
      checkTtlMs(ttlMs);
      const now = clock.now();
      const entry: StoredEntry = {
        agent,
        createdAt: now,
        expiresAt: now + ttlMs,
        json: serialiseValue(key, value),
      };
      if (local !== undefined) {
        if (localLive) local.set(key, entry);
        else startFeed();
      }
      let c: Redis;
      try {
        c = client();
      } catch (e) {
        report('set', e);
        return;
      }
      const px = Math.ceil(ttlMs + maxStaleMs);
      runScript(c, SET_SCRIPT, [
        entryPrefix + key,
        agentPrefix + agent,
        encodeEntry(sealer ? { ...entry, json: sealer.seal(entry.json) } : entry),
        px,
        key,
      ]).catch((e: unknown) => report('set', e));
    },

    async invalidate(target) {
      if (closed) throw new CacheClosedError();
      const valid =
        ('key' in target && typeof target.key === 'string') ||
        ('agent' in target && typeof target.agent === 'string') ||
        ('all' in target && target.all === true);
      if (!valid) throw new ConfigError('invalidate', 'pass { key }, { agent } or { all: true }');
      forgetLocally(JSON.stringify(target));
      try {
        const c = client();
        const removed = await invalidateRemote(c, target);
        await c.publish(invalidations, JSON.stringify(target));
        return removed;
      } catch (e) {
        throw new CacheRedisError(url, 'invalidate', { cause: e });
      }
    },

    singleFlight<T>(key: string, compute: () => Promise<T>): Promise<T> {
      const running = inFlight.get(key);
      if (running !== undefined) return running as Promise<T>;
      const shared: Promise<T> = flight(key, compute).finally(() => {
        if (inFlight.get(key) === shared) inFlight.delete(key);
      });
      inFlight.set(key, shared);
      return shared;
    },

    purgeExpired() {
      if (closed) return Promise.reject(new CacheClosedError());
      if (local === undefined) return Promise.resolve(0);
      const cutoff = clock.now() - maxStaleMs;
      return Promise.resolve(local.deleteWhere((e) => e.expiresAt <= cutoff));
    },

    async close() {
      if (closed) return;
      closed = true;
      for (const renewal of renewals) stopRenewing(renewal);
      for (const box of mailboxes.values()) box.wake?.();
      local?.clear();
      const s = subscriber;
      subscriber = undefined;
      if (s === undefined) return;
      try {
        await s.quit();
      } catch {
        s.disconnect();
      }
    },
  };
}
