/**
 * What-if for cache TTLs: replays the recorded cache lookups (`cache.hit` / `cache.miss`, their
 * keys, times and ages) against another TTL — with TTL t, would this lookup have hit? — and
 * totals the model cost of the cached agents, with no model call.
 *
 * Exact for every lookup the record answered with a model call (its cost is recorded). A lookup
 * that hit in the record but would miss under a shorter TTL needs a call the record never made:
 * its cost is estimated from the same key's recorded call (else the runtime's estimate) and
 * counted in `estimatedLookups`. Entries written before the log began are known only through the
 * hits that read them; LRU evictions and manual invalidations are not in the log.
 */
import { ConfigError } from '../core/errors.js';
import type { KeelEvent } from '../eventlog/events.js';
import { foldSync, type EventFold } from '../eventlog/fold.js';
import { perRun } from './internal/recorded-runs.js';
import { projectVolume, type VolumeProjection } from './volume.js';

/** Options of {@link whatIfCache}. */
export interface CacheWhatIfOptions {
  /** TTLs to evaluate, in ms (> 0), applied to every cached agent, e.g. `[3_600_000, 86_400_000]`. */
  ttlsMs: readonly number[];
  /** Workflows per week to project costs to (e.g. 10_000 invoices); default: no projection. */
  volumePerWeek?: number;
  /** Only lookups of this agent; default: every cached agent. */
  agent?: string;
  /**
   * Which lookups share a cache: `log` (default) one cache for every workflow of the log, as a
   * cache file or Redis shared by every runtime would be; `workflow` one cache per workflow name,
   * as runtimes that each ran one workflow (variant) with their own memory cache — how `keel demo`
   * runs its variants. The log does not record which runtime ran what: say which you had.
   */
  scope?: CacheScope;
}

/** Which recorded lookups share a cache in {@link CacheWhatIfOptions.scope}. */
export type CacheScope = 'log' | 'workflow';

/** Lookups and cost of the cached agents under one TTL (or as recorded). */
export interface CacheFigures {
  lookups: number;
  hits: number;
  misses: number;
  /** hits / lookups, in [0, 1]. */
  hitRate: number;
  /** Model cost of the cached agents' calls, USD. */
  costUsd: number;
  /** `costUsd` per workflow that looked up the cache, USD. */
  costPerRunUsd: number;
  /** Calls the record never made whose cost is estimated (0: the figures are exact). */
  estimatedLookups: number;
  /** Weekly and yearly cost at `volumePerWeek`, against the no-cache baseline. */
  volume?: VolumeProjection;
}

/** One TTL's figures. */
export interface CacheTtlRow extends CacheFigures {
  ttlMs: number;
}

/** Result of {@link whatIfCache}. */
export interface CacheWhatIf {
  volumePerWeek?: number;
  /** The cache scope the TTL rows assume. */
  scope: CacheScope;
  /** Cached agents whose lookups were replayed. */
  agents: string[];
  /** Workflows that looked up the cache at least once. */
  runs: number;
  /** What actually happened. */
  recorded: CacheFigures;
  /** The tutorial's "before caching" baseline: every lookup a model call (hits' calls estimated). */
  noCache: CacheFigures;
  rows: CacheTtlRow[];
}

/** One recorded lookup and how the record resolved it. */
interface Lookup {
  key: string;
  ts: number;
  /** `hit`: served from the cache; `miss`: a model call; `joined`: shared an identical in-flight call. */
  kind: 'hit' | 'miss' | 'joined';
  /** Age of the entry a hit read, ms. */
  ageMs: number;
  /** The runtime's estimate of the call a hit saved, USD. */
  savedUsd: number;
  /** For misses: `written` (stored at `writeTs`), `failed`, `stale` (stale value served), `pending`. */
  resolution: 'written' | 'failed' | 'stale' | 'pending';
  writeTs: number;
  costUsd: number;
  /** A miss still waiting for its call's outcome (or for a hit that joins it): not replayed yet. */
  open: boolean;
  /** Where a miss waits in `pending` (its workflow and path). */
  at: string;
}

/**
 * How long, in log time, a miss waits for its call's outcome before it is replayed as never
 * resolved (a crashed process): far beyond any model call's timeout, so the figures are those of
 * the whole log, while a lost call holds back only this much of it.
 */
const PENDING_LIMIT_MS = 3_600_000;

/** What the replay keeps per cache key, for every TTL at once. */
interface KeyState {
  /** Cost of the key's latest recorded call (a miss whose result was written), USD. */
  lastCostUsd: number | undefined;
  /** Per TTL: when the simulated entry was written, ms since epoch (NaN: never). */
  created: Float64Array;
}

function checkScope(scope: unknown): CacheScope {
  if (scope === undefined) return 'log';
  if (scope === 'log' || scope === 'workflow') return scope;
  throw new ConfigError(
    'scope',
    `must be "log" (one cache for the whole log) or "workflow" (one per workflow name), got ${JSON.stringify(scope)}`,
  );
}

function checkTtls(ttls: readonly number[]): void {
  if (!Array.isArray(ttls) || ttls.length === 0)
    throw new ConfigError('ttlsMs', 'give at least one TTL in ms, e.g. [3_600_000, 86_400_000]');
  for (const t of ttls) {
    if (typeof t !== 'number' || !(t > 0) || !Number.isFinite(t))
      throw new ConfigError('ttlsMs', `each TTL must be a positive, finite number of ms, got ${String(t)}`);
  }
}

/** Hits and cost of one policy (a TTL, the record, no cache), summed lookup by lookup. */
class Tally {
  hits = 0;
  costUsd = 0;
  /** Calls the record never made, priced by estimate. */
  estimated = 0;
  /** Estimates of keys with no recorded call yet: priced at the end from the key's latest call. */
  private readonly deferred = new Map<string, { lookups: number; savedUsd: number }>();

  /**
   * Adds the estimated cost of a call the record never made for `l`: the key's latest recorded
   * call so far; else, once the log is read, its latest call anywhere; else the runtime's estimate.
   */
  estimate(l: Lookup, key: KeyState | undefined): void {
    const last = key?.lastCostUsd;
    if (last !== undefined) {
      this.costUsd += last;
      return;
    }
    const d = this.deferred.get(l.key);
    if (d === undefined) this.deferred.set(l.key, { lookups: 1, savedUsd: l.savedUsd });
    else {
      d.lookups++;
      d.savedUsd += l.savedUsd;
    }
  }

  /** The cost with every deferred estimate priced. */
  totalUsd(keys: ReadonlyMap<string, KeyState>): number {
    let total = this.costUsd;
    for (const [key, d] of this.deferred) {
      const last = keys.get(key)?.lastCostUsd;
      total += last !== undefined ? last * d.lookups : d.savedUsd;
    }
    return total;
  }
}

function figures(
  lookups: number,
  hits: number,
  costUsd: number,
  runs: number,
  estimatedLookups: number,
): CacheFigures {
  return {
    lookups,
    hits,
    misses: lookups - hits,
    hitRate: lookups > 0 ? hits / lookups : 0,
    costUsd,
    costPerRunUsd: perRun(costUsd, runs) ?? 0,
    estimatedLookups,
  };
}

/** The cache what-if as a fold: apply the log's events in order, then take the {@link CacheWhatIf}. */
export interface CacheWhatIfFold extends EventFold<CacheWhatIf> {
  /** Workflows running now that looked up the cache: what the fold's memory is bounded by, with the keys. */
  readonly openWorkflows: number;
}

/**
 * The cache what-if as a push-based fold, for streams {@link whatIfCache} cannot take: drive it
 * with `foldEvents` over any store's `iterate()` (Postgres's is asynchronous). Replays each lookup
 * against every TTL as soon as its outcome is known, so it holds the lookups of running workflows
 * and one entry per cache key, never the log.
 *
 * @throws ConfigError for a TTL that is not a positive number of ms, or a bad volume.
 * @example
 * const fold = createCacheWhatIf({ ttlsMs: [3_600_000, 86_400_000], volumePerWeek: 10_000 });
 * const r = await foldEvents(fold, postgresStore.iterate());
 * console.log(r.rows.map((row) => [row.ttlMs, row.hitRate]));
 */
export function createCacheWhatIf(options: CacheWhatIfOptions): CacheWhatIfFold {
  return new CacheReplay(options);
}

/**
 * Replays every recorded cache lookup under other TTLs, without calling a model. One pass over
 * `events` (e.g. `store.iterate()`); for an asynchronous stream (a Postgres store), use
 * {@link createCacheWhatIf} with `foldEvents`.
 *
 * @throws ConfigError for a TTL that is not a positive number of ms, or a bad volume.
 * @example
 * const r = whatIfCache(store.iterate(), { ttlsMs: [3_600_000, 86_400_000], volumePerWeek: 10_000 });
 * for (const row of r.rows) console.log(row.ttlMs, row.hitRate, row.volume?.savingPerYearUsd);
 */
export function whatIfCache(events: Iterable<KeelEvent>, options: CacheWhatIfOptions): CacheWhatIf {
  return foldSync(createCacheWhatIf(options), events);
}

/** The fold behind {@link createCacheWhatIf}. */
class CacheReplay implements CacheWhatIfFold {
  private readonly ttlsMs: readonly number[];
  private readonly volume: number | undefined;
  private readonly agent: string | undefined;
  private readonly scope: CacheScope;
  /** Names of running workflows, when the cache is scoped per workflow name. */
  private readonly names = new Map<string, string>();
  /** Lookups in log order from the oldest one still open: each is replayed once all before it are. */
  private queue: Lookup[] = [];
  private head = 0;
  /** Open misses by workflow and path. */
  private readonly pending = new Map<string, Lookup>();
  /** Running workflows that looked up the cache: each is counted once. */
  private readonly workflows = new Set<string>();
  /** Latest event time seen, ms since epoch. */
  private nowTs = -Infinity;
  private readonly keys = new Map<string, KeyState>();
  private readonly agents = new Set<string>();
  private runs = 0;
  private lookups = 0;
  private readonly recorded = new Tally();
  private readonly noCache = new Tally();
  private readonly rows: Tally[];

  constructor(options: CacheWhatIfOptions) {
    checkTtls(options.ttlsMs);
    this.volume = options.volumePerWeek;
    if (this.volume !== undefined) projectVolume(0, this.volume);
    this.ttlsMs = [...options.ttlsMs];
    this.agent = options.agent;
    this.scope = checkScope(options.scope);
    this.rows = this.ttlsMs.map(() => new Tally());
  }

  get openWorkflows(): number {
    return this.workflows.size;
  }

  apply(e: KeelEvent): void {
    if (e.ts > this.nowTs) this.nowTs = e.ts;
    switch (e.type) {
      case 'workflow.started':
        if (this.scope === 'workflow') this.names.set(e.workflowId, e.payload.name);
        return;
      case 'cache.miss':
      case 'cache.hit': {
        if (this.agent !== undefined && e.payload.agent !== this.agent) return;
        const at = `${e.workflowId}\u0000${e.payload.path}`;
        if (e.type === 'cache.hit') {
          const waiting = this.pending.get(at);
          if (waiting) {
            waiting.kind = 'joined';
            waiting.savedUsd = e.payload.savedUsd;
            this.close(waiting);
            this.drain();
            return;
          }
        }
        const miss = e.type === 'cache.miss';
        const l: Lookup = {
          key:
            this.scope === 'workflow'
              ? `${this.names.get(e.workflowId) ?? ''}\u0000${e.payload.key}`
              : e.payload.key,
          ts: e.ts,
          kind: miss ? 'miss' : 'hit',
          ageMs: e.type === 'cache.hit' ? e.payload.ageMs : 0,
          savedUsd: e.type === 'cache.hit' ? e.payload.savedUsd : 0,
          resolution: 'pending',
          writeTs: 0,
          costUsd: 0,
          open: miss,
          at,
        };
        this.queue.push(l);
        if (!this.workflows.has(e.workflowId)) {
          this.runs++;
          this.workflows.add(e.workflowId);
        }
        this.agents.add(e.payload.agent);
        if (miss) {
          // A second miss at the same place leaves the first unresolved for good.
          const earlier = this.pending.get(at);
          if (earlier) earlier.open = false;
          this.pending.set(at, l);
        }
        this.drain();
        return;
      }
      case 'agent.succeeded':
      case 'agent.failed':
      case 'agent.rejected': {
        if (this.pending.size === 0) return;
        const at = `${e.workflowId}\u0000${e.payload.path}`;
        const l = this.pending.get(at);
        if (!l) return;
        if (e.type === 'agent.succeeded') {
          l.resolution = e.payload.cached ? 'stale' : 'written';
          l.writeTs = e.ts;
          l.costUsd = e.payload.costUsd;
        } else {
          l.resolution = 'failed';
          l.costUsd = e.type === 'agent.failed' ? e.payload.costUsd : 0;
        }
        this.close(l);
        this.drain();
        return;
      }
      case 'workflow.completed':
      case 'workflow.failed':
      case 'workflow.cancelled':
      case 'workflow.interrupted':
        // Its lookups are counted; calls it cancelled may still log their outcome after this.
        this.workflows.delete(e.workflowId);
        this.names.delete(e.workflowId);
        return;
      default:
        return;
    }
  }

  private close(l: Lookup): void {
    if (this.pending.get(l.at) === l) this.pending.delete(l.at);
    l.open = false;
  }

  /** Replays the lookups at the head of the queue whose outcome is known, in log order. */
  private drain(): void {
    const q = this.queue;
    while (this.head < q.length) {
      const l = q[this.head] as Lookup;
      if (l.open) {
        if (this.nowTs - l.ts <= PENDING_LIMIT_MS) break;
        this.close(l); // its call's outcome never came
      }
      this.head++;
      this.replay(l);
    }
    if (this.head === q.length) {
      q.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= q.length) {
      this.queue = q.slice(this.head);
      this.head = 0;
    }
  }

  /** One lookup, as recorded, without a cache, and under each TTL: would it have hit? */
  private replay(l: Lookup): void {
    this.lookups++;
    let key = this.keys.get(l.key);
    if (l.kind === 'miss') {
      this.recorded.costUsd += l.costUsd;
      this.noCache.costUsd += l.costUsd;
    } else {
      this.recorded.hits++;
      this.noCache.estimated++;
      this.noCache.estimate(l, key);
    }
    if (l.kind === 'joined') {
      // An identical call was in flight: it is shared under any TTL.
      for (const row of this.rows) row.hits++;
      return;
    }
    if (key === undefined) {
      key = { lastCostUsd: undefined, created: new Float64Array(this.rows.length).fill(Number.NaN) };
      // An entry written before the log began, known from the hit that read it.
      if (l.kind === 'hit') key.created.fill(l.ts - l.ageMs);
      this.keys.set(l.key, key);
    }
    for (let i = 0; i < this.rows.length; i++) {
      const row = this.rows[i] as Tally;
      const at = key.created[i] as number;
      if (!Number.isNaN(at) && l.ts - at < (this.ttlsMs[i] as number)) {
        row.hits++;
        continue;
      }
      if (l.kind === 'miss') {
        row.costUsd += l.costUsd;
        if (l.resolution === 'written') key.created[i] = l.writeTs;
      } else {
        row.estimated++;
        row.estimate(l, key);
        key.created[i] = l.ts;
      }
    }
    if (l.kind === 'miss' && l.resolution === 'written') key.lastCostUsd = l.costUsd;
  }

  result(): CacheWhatIf {
    // The log ended: misses still open never resolved.
    for (const l of this.pending.values()) l.open = false;
    this.pending.clear();
    this.drain();
    const { volume, runs, lookups, keys } = this;
    const noCache = figures(lookups, 0, this.noCache.totalUsd(keys), runs, this.noCache.estimated);
    const baseline = noCache.costPerRunUsd;
    const project = (f: CacheFigures): void => {
      if (volume !== undefined && runs > 0) f.volume = projectVolume(f.costPerRunUsd, volume, baseline);
    };
    const recorded = figures(lookups, this.recorded.hits, this.recorded.costUsd, runs, 0);
    project(recorded);
    project(noCache);
    const rows = this.ttlsMs.map((ttlMs, i): CacheTtlRow => {
      const t = this.rows[i] as Tally;
      const f = figures(lookups, t.hits, t.totalUsd(keys), runs, t.estimated);
      project(f);
      return { ttlMs, ...f };
    });
    return {
      ...(volume !== undefined ? { volumePerWeek: volume } : {}),
      scope: this.scope,
      agents: [...this.agents].sort(),
      runs,
      recorded,
      noCache,
      rows,
    };
  }
}
