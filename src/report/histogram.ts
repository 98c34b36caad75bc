/**
 * Counts of latencies in log-spaced buckets, for the report's charts only: percentiles come from the
 * latency projection, never from here. Fixed memory per series (one typed array), O(1) per sample.
 * Internal: not part of the public surface.
 */
import type { LatencyHistogram } from './report.js';

/** Buckets per decade: edges 12 % apart, fine enough for a readable chart. */
const PER_DECADE = 20;
/** Decades above 1 ms: buckets reach 10^7 ms (about 2.8 hours); the last one also takes everything above. */
const DECADES = 7;
const BUCKETS = PER_DECADE * DECADES;

/** Lower edge of bucket `i` in ms: bucket `i` is `[10^(i/20), 10^((i+1)/20))`. */
const edge = (i: number): number => Math.pow(10, i / PER_DECADE);

/**
 * A log-bucket counter from 1 ms up. Samples under 1 ms (a cache hit, a breaker's fast-fail, a step
 * that calls no model) are counted apart: on a log scale they have no place, and as a bar of their
 * own they would dwarf the model latencies.
 */
export class LogHistogram {
  private readonly counts = new Uint32Array(BUCKETS);
  private total = 0;
  private instant = 0;
  private cached = 0;

  /**
   * Counts one sample in ms (negative and non-finite values are ignored, like the projection does);
   * `cached` marks an answer served from the cache, which is counted apart whatever its latency.
   */
  record(ms: number, cached = false): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    this.total++;
    if (cached) this.cached++;
    if (ms < 1 || cached) {
      this.instant++;
      return;
    }
    const i = Math.min(BUCKETS - 1, Math.floor(Math.log10(ms) * PER_DECADE + 1e-9));
    this.counts[i] = (this.counts[i] ?? 0) + 1;
  }

  /** Samples counted. */
  get count(): number {
    return this.total;
  }

  /** The buckets from the first to the last non-empty one (empty arrays without samples). */
  toJSON(): LatencyHistogram {
    let lo = -1;
    let hi = -1;
    for (let i = 0; i < BUCKETS; i++) {
      if ((this.counts[i] ?? 0) > 0) {
        if (lo < 0) lo = i;
        hi = i;
      }
    }
    const apart = { instantCount: this.instant, cachedCount: this.cached };
    if (lo < 0) return { edgesMs: [], counts: [], ...apart };
    const edgesMs: number[] = [];
    const counts: number[] = [];
    for (let i = lo; i <= hi; i++) {
      edgesMs.push(round3(edge(i)));
      counts.push(this.counts[i] ?? 0);
    }
    edgesMs.push(round3(edge(hi + 1)));
    return { edgesMs, counts, ...apart };
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
