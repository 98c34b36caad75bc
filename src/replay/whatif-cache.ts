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
}

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
}

function checkTtls(ttls: readonly number[]): void {
  if (!Array.isArray(ttls) || ttls.length === 0)
    throw new ConfigError('ttlsMs', 'give at least one TTL in ms, e.g. [3_600_000, 86_400_000]');
  for (const t of ttls) {
    if (typeof t !== 'number' || !(t > 0) || !Number.isFinite(t))
      throw new ConfigError('ttlsMs', `each TTL must be a positive, finite number of ms, got ${String(t)}`);
  }
}

/** Reads every lookup of the log, in order, with its resolution. */
function readLookups(
  events: Iterable<KeelEvent>,
  agent: string | undefined,
): { lookups: Lookup[]; runs: number; agents: string[] } {
  const lookups: Lookup[] = [];
  const pending = new Map<string, Lookup>();
  const workflows = new Set<string>();
  const agents = new Set<string>();
  for (const e of events) {
    switch (e.type) {
      case 'cache.miss':
      case 'cache.hit': {
        if (agent !== undefined && e.payload.agent !== agent) break;
        const at = `${e.workflowId}\u0000${e.payload.path}`;
        if (e.type === 'cache.hit') {
          const waiting = pending.get(at);
          if (waiting) {
            waiting.kind = 'joined';
            waiting.savedUsd = e.payload.savedUsd;
            pending.delete(at);
            break;
          }
        }
        const l: Lookup = {
          key: e.payload.key,
          ts: e.ts,
          kind: e.type === 'cache.hit' ? 'hit' : 'miss',
          ageMs: e.type === 'cache.hit' ? e.payload.ageMs : 0,
          savedUsd: e.type === 'cache.hit' ? e.payload.savedUsd : 0,
          resolution: 'pending',
          writeTs: 0,
          costUsd: 0,
        };
        lookups.push(l);
        workflows.add(e.workflowId);
        agents.add(e.payload.agent);
        if (e.type === 'cache.miss') pending.set(at, l);
        break;
      }
      case 'agent.succeeded':
      case 'agent.failed':
      case 'agent.rejected': {
        if (pending.size === 0) break;
        const at = `${e.workflowId}\u0000${e.payload.path}`;
        const l = pending.get(at);
        if (!l) break;
        pending.delete(at);
        if (e.type === 'agent.succeeded') {
          l.resolution = e.payload.cached ? 'stale' : 'written';
          l.writeTs = e.ts;
          l.costUsd = e.payload.costUsd;
        } else {
          l.resolution = 'failed';
          l.costUsd = e.type === 'agent.failed' ? e.payload.costUsd : 0;
        }
        break;
      }
      default:
        break;
    }
  }
  return { lookups, runs: workflows.size, agents: [...agents].sort() };
}

/** Cost of a call the record never made for `key`: its latest recorded call, else the runtime's estimate. */
function estimate(
  l: Lookup,
  lastCost: ReadonlyMap<string, number>,
  anyCost: ReadonlyMap<string, number>,
): number {
  return lastCost.get(l.key) ?? anyCost.get(l.key) ?? l.savedUsd;
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

/** Replays the lookups against one TTL. */
function simulate(
  lookups: readonly Lookup[],
  ttlMs: number,
  anyCost: ReadonlyMap<string, number>,
  runs: number,
): CacheFigures {
  const created = new Map<string, number>();
  const seen = new Set<string>();
  const lastCost = new Map<string, number>();
  let hits = 0;
  let cost = 0;
  let estimated = 0;
  for (const l of lookups) {
    if (l.kind === 'joined') {
      hits++; // an identical call was in flight: it is shared under any TTL
      continue;
    }
    if (!seen.has(l.key)) {
      seen.add(l.key);
      // An entry written before the log began, known from the hit that read it.
      if (l.kind === 'hit') created.set(l.key, l.ts - l.ageMs);
    }
    const at = created.get(l.key);
    const hit = at !== undefined && l.ts - at < ttlMs;
    if (l.kind === 'miss' && l.resolution === 'written') lastCost.set(l.key, l.costUsd);
    if (hit) {
      hits++;
      continue;
    }
    if (l.kind === 'miss') {
      cost += l.costUsd;
      if (l.resolution === 'written') created.set(l.key, l.writeTs);
    } else {
      estimated++;
      cost += estimate(l, lastCost, anyCost);
      created.set(l.key, l.ts);
    }
  }
  return figures(lookups.length, hits, cost, runs, estimated);
}

/**
 * Replays every recorded cache lookup under other TTLs, without calling a model. One pass over
 * `events` (e.g. `store.iterate()`), then one pass over the lookups per TTL.
 *
 * @throws ConfigError for a TTL that is not a positive number of ms, or a bad volume.
 * @example
 * const r = whatIfCache(store.iterate(), { ttlsMs: [3_600_000, 86_400_000], volumePerWeek: 10_000 });
 * for (const row of r.rows) console.log(row.ttlMs, row.hitRate, row.volume?.savingPerYearUsd);
 */
export function whatIfCache(events: Iterable<KeelEvent>, options: CacheWhatIfOptions): CacheWhatIf {
  checkTtls(options.ttlsMs);
  const volume = options.volumePerWeek;
  if (volume !== undefined) projectVolume(0, volume);
  const { lookups, runs, agents } = readLookups(events, options.agent);

  const anyCost = new Map<string, number>();
  let recHits = 0;
  let recCost = 0;
  let noCacheCost = 0;
  let noCacheEstimated = 0;
  for (const l of lookups) if (l.kind === 'miss' && l.resolution === 'written') anyCost.set(l.key, l.costUsd);
  const lastCost = new Map<string, number>();
  for (const l of lookups) {
    if (l.kind === 'miss') {
      recCost += l.costUsd;
      noCacheCost += l.costUsd;
      if (l.resolution === 'written') lastCost.set(l.key, l.costUsd);
    } else {
      recHits++;
      noCacheEstimated++;
      noCacheCost += estimate(l, lastCost, anyCost);
    }
  }
  const noCache = figures(lookups.length, 0, noCacheCost, runs, noCacheEstimated);
  const baseline = noCache.costPerRunUsd;
  const project = (f: CacheFigures): void => {
    if (volume !== undefined && runs > 0) f.volume = projectVolume(f.costPerRunUsd, volume, baseline);
  };
  const recorded = figures(lookups.length, recHits, recCost, runs, 0);
  project(recorded);
  project(noCache);
  const rows = options.ttlsMs.map((ttlMs): CacheTtlRow => {
    const f = simulate(lookups, ttlMs, anyCost, runs);
    project(f);
    return { ttlMs, ...f };
  });
  return {
    ...(volume !== undefined ? { volumePerWeek: volume } : {}),
    agents,
    runs,
    recorded,
    noCache,
    rows,
  };
}
