/**
 * The TTL result cache: an in-memory LRU in front of an optional SQLite file, so repeated
 * invoices skip the model call (the tutorial's 60% hit rate) and entries survive a restart.
 * The runtime logs `cache.hit` / `cache.miss` / `cache.stale_served` from what {@link Cache.get}
 * returns; the cache itself writes no events.
 */
import type { Clock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import type { Awaitable } from '../eventlog/store.js';
import type { CacheTier, StoredEntry } from './entry.js';
import { CacheClosedError } from './errors.js';
import { LruMap } from './lru.js';
import { sealedTier } from './seal.js';
import { openSqliteTier } from './sqlite-tier.js';
import { checkTtlMs, nonNegativeInteger, serialiseValue } from './validate.js';

/** Where and how long the cache keeps entries. */
export interface CacheConfig {
  /**
   * SQLite file that keeps entries across restarts. Keep it apart from the event log: the cache
   * holds raw, unredacted outputs. `':memory:'` or undefined: memory only (default).
   */
  path?: string;
  /** Permission bits of the cache file when it is created (default `0o600`: it holds raw outputs). */
  fileMode?: number;
  /** Entries kept in the in-memory LRU (default 10_000). With a `path`, 0 reads SQLite every time. */
  maxEntries?: number;
  /**
   * How long past its expiry an entry is kept for stale-if-error (`get(key, { allowStale: true })`),
   * in ms (default 86_400_000 = one day). 0 forgets entries as soon as they expire.
   */
  maxStaleMs?: number;
  /** Minimum time between purges of entries past `maxStaleMs`, in ms of clock time (default 60_000). */
  purgeIntervalMs?: number;
  /** Most entries removed by one purge, bounding the work any single call does (default 500). */
  purgeBatch?: number;
  /** Source of time for ages and expiry. */
  clock: Clock;
  /**
   * Encrypts the values kept in the `path` file (AES-256-GCM, key derived from this one), so the file
   * shows no raw output without the key; entries written under another key read as misses. The
   * runtime passes its redaction key. Default: values stored as plain JSON.
   */
  sealKey?: string | Uint8Array;
}

/** A cached value as `get` returns it. */
export interface CacheHit {
  /** A fresh copy of the cached value (parsed from JSON on every read). */
  value: unknown;
  /** Time since the value was stored, in ms. */
  ageMs: number;
  /** True when the entry has expired and was returned only because `allowStale` was set. */
  stale: boolean;
}

/** Options of {@link Cache.get}. */
export interface CacheGetOptions {
  /** Also return an expired entry (marked `stale`), e.g. when the provider just failed (default false). */
  allowStale?: boolean;
}

/** What {@link Cache.invalidate} removes: one key, every entry of an agent, or everything. */
export type CacheInvalidation = { key: string } | { agent: string } | { all: true };

/**
 * A TTL cache of agent outputs: the contract shared by the local cache ({@link LocalCache}, answers at
 * once) and the Redis cache (`RedisCache`, answers with promises). Callers that accept either await
 * what `get`, `invalidate`, `purgeExpired` and `close` return.
 */
export interface Cache {
  /** The entry under `key`; expired entries are misses unless `allowStale`. */
  get(key: string, options?: CacheGetOptions): Awaitable<CacheHit | undefined>;
  /**
   * Stores `value` (JSON-serialisable) for `ttlMs` ms, replacing any entry under `key`.
   *
   * @throws ConfigError for a bad `ttlMs`; CacheValueError when JSON cannot represent `value`.
   */
  set(key: string, agent: string, value: unknown, ttlMs: number): void;
  /** Removes entries; returns how many. */
  invalidate(target: CacheInvalidation): Awaitable<number>;
  /**
   * Runs `compute` once for concurrent callers of the same key: callers arriving while it runs get
   * the same promise (one provider call). A failure reaches every waiting caller and is not
   * remembered: the next call computes again. Caching the result is the caller's `set`.
   */
  singleFlight<T>(key: string, compute: () => Promise<T>): Promise<T>;
  /** Removes entries past `maxStaleMs` now; returns how many. Also runs by itself. */
  purgeExpired(): Awaitable<number>;
  /** Releases the cache's resources. Idempotent; later reads and writes throw {@link CacheClosedError}. */
  close(): Awaitable<void>;
}

/** The in-process cache {@link createCache} returns: memory LRU and optional SQLite file, all synchronous. */
export interface LocalCache extends Cache {
  get(key: string, options?: CacheGetOptions): CacheHit | undefined;
  /** Removes entries; returns how many. */
  invalidate(target: CacheInvalidation): number;
  /** Removes up to `purgeBatch` entries past `maxStaleMs` now; returns how many. Also runs by itself. */
  purgeExpired(): number;
  /** Closes the SQLite file. Idempotent; later reads and writes throw {@link CacheClosedError}. */
  close(): void;
}

/**
 * Creates a TTL cache: memory only, or backed by a SQLite file that survives restarts.
 *
 * @throws ConfigError for a bad option; CacheNotADatabaseError, CacheForeignDatabaseError,
 * CacheSchemaVersionError or CacheOpenError when `path` cannot serve as a cache.
 * @example
 * const cache = createCache({ path: 'keel-cache.db', clock: realClock });
 * const key = cacheKey('vendor_extraction', '1', input, process.env.KEEL_REDACT_KEY ?? '');
 * const hit = cache.get(key);
 * const value = hit ? hit.value : await cache.singleFlight(key, async () => {
 *   const out = await callModel(input);
 *   cache.set(key, 'vendor_extraction', out, 86_400_000);
 *   return out;
 * });
 */
export function createCache(config: CacheConfig): LocalCache {
  const clock = config.clock;
  if (typeof clock?.now !== 'function') {
    throw new ConfigError('cache.clock', 'is required; pass realClock, or simulatedClock() in tests');
  }
  const memoryOnly = config.path === undefined || config.path === ':memory:';
  const maxEntries = nonNegativeInteger(config.maxEntries, 10_000, 'cache.maxEntries');
  if (memoryOnly && maxEntries === 0) {
    throw new ConfigError(
      'cache.maxEntries',
      'must be at least 1 for a memory-only cache (or set cache.path)',
    );
  }
  const maxStaleMs = nonNegativeInteger(config.maxStaleMs, 86_400_000, 'cache.maxStaleMs');
  const purgeIntervalMs = nonNegativeInteger(config.purgeIntervalMs, 60_000, 'cache.purgeIntervalMs');
  const purgeBatch = nonNegativeInteger(config.purgeBatch, 500, 'cache.purgeBatch');

  const memory = new LruMap<StoredEntry>(maxEntries);
  const file = memoryOnly ? undefined : openSqliteTier(config.path as string, { fileMode: config.fileMode });
  const tier: CacheTier | undefined =
    file !== undefined && config.sealKey !== undefined ? sealedTier(file, config.sealKey) : file;
  const inFlight = new Map<string, Promise<unknown>>();
  let closed = false;
  let lastPurgeAt = Number.NEGATIVE_INFINITY;

  const ensureOpen = (): void => {
    if (closed) throw new CacheClosedError();
  };

  const purge = (now: number): number => {
    lastPurgeAt = now;
    const cutoff = now - maxStaleMs;
    const gone = (e: StoredEntry): boolean => e.expiresAt <= cutoff;
    let removed = memory.deleteOldestWhere(purgeBatch, gone);
    if (tier !== undefined) {
      const keys = tier.purge(cutoff, purgeBatch);
      for (const key of keys) memory.delete(key);
      removed = keys.length;
    }
    return removed;
  };

  const maybePurge = (now: number): void => {
    if (now - lastPurgeAt >= purgeIntervalMs) purge(now);
  };

  return {
    get(key, options) {
      ensureOpen();
      const now = clock.now();
      maybePurge(now);
      let entry = memory.get(key);
      if (entry === undefined && tier !== undefined) {
        entry = tier.get(key);
        if (entry !== undefined) memory.set(key, entry);
      }
      if (entry === undefined) return undefined;
      if (now >= entry.expiresAt + maxStaleMs) {
        // Past the stale window too: forget it now rather than waiting for a purge.
        memory.delete(key);
        tier?.deleteKey(key);
        return undefined;
      }
      const stale = now >= entry.expiresAt;
      if (stale && options?.allowStale !== true) return undefined;
      return { value: JSON.parse(entry.json) as unknown, ageMs: Math.max(0, now - entry.createdAt), stale };
    },

    set(key, agent, value, ttlMs) {
      ensureOpen();
      checkTtlMs(ttlMs);
      const now = clock.now();
      const entry: StoredEntry = {
        agent,
        createdAt: now,
        expiresAt: now + ttlMs,
        json: serialiseValue(key, value),
      };
      tier?.put(key, entry);
      memory.set(key, entry);
      maybePurge(now);
    },

    invalidate(target) {
      ensureOpen();
      if ('key' in target) {
        const fromMemory = memory.delete(target.key) ? 1 : 0;
        return tier === undefined ? fromMemory : tier.deleteKey(target.key);
      }
      if ('agent' in target) {
        const fromMemory = memory.deleteWhere((e) => e.agent === target.agent);
        return tier === undefined ? fromMemory : tier.deleteAgent(target.agent);
      }
      if ('all' in target && target.all) {
        const fromMemory = memory.clear();
        return tier === undefined ? fromMemory : tier.deleteAll();
      }
      throw new ConfigError('invalidate', 'pass { key }, { agent } or { all: true }');
    },

    singleFlight<T>(key: string, compute: () => Promise<T>): Promise<T> {
      const running = inFlight.get(key);
      if (running !== undefined) return running as Promise<T>;
      const shared: Promise<T> = Promise.resolve()
        .then(compute)
        .finally(() => {
          if (inFlight.get(key) === shared) inFlight.delete(key);
        });
      inFlight.set(key, shared);
      return shared;
    },

    purgeExpired() {
      ensureOpen();
      return purge(clock.now());
    },

    close() {
      if (closed) return;
      closed = true;
      tier?.close();
    },
  };
}
