/**
 * Outcome counts per key (task type) in time buckets that widen as the log grows, so a series over
 * an hour and one over a year both fit in at most `maxBuckets` points with bounded memory. Widths
 * step through a ladder where each width is a multiple of the one before (10 s, 30 s, 1 min, 5 min,
 * … 1 day, 1 week, then doubling), so widening merges whole buckets and loses nothing. Buckets are
 * aligned to multiples of their width since the Unix epoch (UTC).
 * Internal: not part of the public surface.
 */
import type { ErrorBucket } from './report.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const LADDER: readonly number[] = [
  10_000,
  30_000,
  MINUTE,
  5 * MINUTE,
  15 * MINUTE,
  30 * MINUTE,
  HOUR,
  3 * HOUR,
  6 * HOUR,
  12 * HOUR,
  DAY,
  7 * DAY,
];

interface Cell {
  outcomes: number;
  failures: number;
}

/** Outcome counts per key and time bucket. */
export class TimeBuckets {
  private widthMs = LADDER[0] ?? 10_000;
  private step = 0;
  private minIndex = Infinity;
  private maxIndex = -Infinity;
  private readonly series = new Map<string, Map<number, Cell>>();

  constructor(private readonly maxBuckets: number) {}

  /** Width of a bucket now, ms. */
  get bucketMs(): number {
    return this.widthMs;
  }

  /** Counts one outcome of `key` at `ts`. O(1) amortised; widening is O(buckets). */
  record(key: string, ts: number, failed: boolean): void {
    let index = Math.floor(ts / this.widthMs);
    const lo = Math.min(this.minIndex, index);
    const hi = Math.max(this.maxIndex, index);
    if (hi - lo + 1 > this.maxBuckets) {
      this.widen(ts);
      index = Math.floor(ts / this.widthMs);
    }
    if (index < this.minIndex) this.minIndex = index;
    if (index > this.maxIndex) this.maxIndex = index;
    let cells = this.series.get(key);
    if (cells === undefined) {
      cells = new Map();
      this.series.set(key, cells);
    }
    let cell = cells.get(index);
    if (cell === undefined) {
      cell = { outcomes: 0, failures: 0 };
      cells.set(index, cell);
    }
    cell.outcomes++;
    if (failed) cell.failures++;
  }

  /** The dense series of `key`: every bucket from the first to the last of any key, zeros included. */
  seriesOf(key: string): ErrorBucket[] {
    const cells = this.series.get(key);
    const out: ErrorBucket[] = [];
    if (!Number.isFinite(this.minIndex)) return out;
    for (let i = this.minIndex; i <= this.maxIndex; i++) {
      const c = cells?.get(i);
      out.push({ startMs: i * this.widthMs, outcomes: c?.outcomes ?? 0, failures: c?.failures ?? 0 });
    }
    return out;
  }

  /** Widens until the span including `ts` fits, merging buckets. */
  private widen(ts: number): void {
    const first = this.minIndex * this.widthMs;
    const last = this.maxIndex * this.widthMs;
    const lo = Math.min(first, ts);
    const hi = Math.max(last, ts);
    let width = this.widthMs;
    let step = this.step;
    while (Math.floor(hi / width) - Math.floor(lo / width) + 1 > this.maxBuckets) {
      step++;
      width = LADDER[step] ?? width * 2;
    }
    const factor = width / this.widthMs;
    for (const [key, cells] of this.series) {
      const merged = new Map<number, Cell>();
      for (const [i, c] of cells) {
        const j = Math.floor(i / factor);
        const m = merged.get(j);
        if (m === undefined) merged.set(j, { outcomes: c.outcomes, failures: c.failures });
        else {
          m.outcomes += c.outcomes;
          m.failures += c.failures;
        }
      }
      this.series.set(key, merged);
    }
    this.minIndex = Math.floor(this.minIndex / factor);
    this.maxIndex = Math.floor(this.maxIndex / factor);
    this.widthMs = width;
    this.step = step;
  }
}
