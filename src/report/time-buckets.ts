/**
 * Outcome counts per key (task type) over time, each key bucketed by the span ITS data covers, not
 * the log's: a task type that ran for two minutes inside a three-hour log gets seconds-wide
 * buckets, and the idle stretches between its bursts of activity (a demo's variants run one after
 * another, a service's quiet night) are left out of its series instead of squeezing the bursts
 * into one point each.
 *
 * Each key keeps its non-empty cells only, at a storage width that widens along a ladder where each
 * width is a multiple of the one before (1 s, 5 s, 10 s, 30 s, 1 min, 5 min, … 1 day, 1 week, then
 * doubling) once it holds more than {@link MAX_CELLS} cells, so widening merges whole cells and loses
 * nothing, and memory is bounded per key whatever the log's length. Cells are aligned to multiples of
 * their width since the Unix epoch (UTC). The series is cut from the cells at the end: the narrowest
 * "nice" width (1, 2, 5, 10, 15, 20, 30 s, 1, 2, 5, 10, 15, 30 min, 1, 2, 3, 6, 12 h, 1 day, …)
 * whose points over the active spans fit `maxBuckets`.
 * Internal: not part of the public surface.
 */
import type { ErrorBucket, SeriesVariant } from './report.js';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Storage widths: each a multiple of the one before, so widening merges whole cells. */
const LADDER: readonly number[] = [
  SECOND,
  5 * SECOND,
  10 * SECOND,
  30 * SECOND,
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
/** Widths a series may be drawn at (each used only when a multiple of the storage width). */
const NICE: readonly number[] = [
  ...[1, 2, 5, 10, 15, 20, 30].map((s) => s * SECOND),
  ...[1, 2, 5, 10, 15, 30].map((m) => m * MINUTE),
  ...[1, 2, 3, 6, 12].map((h) => h * HOUR),
  DAY,
  7 * DAY,
];
/** Non-empty cells a key holds before its storage widens. */
export const MAX_CELLS = 2_048;
/** An idle stretch of at least this many empty buckets between two active ones is cut out. */
const GAP_BUCKETS = 5;
/** At most this many active spans per series: more means the data is sparse, not bursty; widen. */
const MAX_SPANS = 6;
/** Workflow names (variants) remembered per key; later ones are counted under `(other)`. */
const MAX_VARIANTS = 20;
const OTHER_VARIANT = '(other)';

interface Cell {
  outcomes: number;
  failures: number;
}

/** The series of one key, cut for drawing. */
export interface CutSeries {
  /** Width of every bucket, ms. */
  bucketMs: number;
  /**
   * Buckets, ascending: dense within each active span (empty buckets included), idle stretches
   * between spans left out (two consecutive buckets more than `bucketMs` apart mark a cut).
   */
  series: ErrorBucket[];
  /** The workflows whose outcomes these are, by first outcome. */
  variants: SeriesVariant[];
}

class KeySeries {
  widthMs = LADDER[0] ?? SECOND;
  step = 0;
  cells = new Map<number, Cell>();
  readonly variants = new Map<string, SeriesVariant>();

  record(ts: number, failed: boolean, variant: string | undefined): void {
    let index = Math.floor(ts / this.widthMs);
    let cell = this.cells.get(index);
    if (cell === undefined) {
      if (this.cells.size >= MAX_CELLS) {
        this.widen();
        index = Math.floor(ts / this.widthMs);
        cell = this.cells.get(index);
      }
      if (cell === undefined) {
        cell = { outcomes: 0, failures: 0 };
        this.cells.set(index, cell);
      }
    }
    cell.outcomes++;
    if (failed) cell.failures++;
    if (variant !== undefined) {
      let v = this.variants.get(variant);
      if (v === undefined && this.variants.size >= MAX_VARIANTS) v = this.variants.get(OTHER_VARIANT);
      if (v === undefined) {
        const name = this.variants.size >= MAX_VARIANTS ? OTHER_VARIANT : variant;
        v = { name, firstTs: ts, lastTs: ts, outcomes: 0 };
        this.variants.set(name, v);
      }
      v.outcomes++;
      if (ts < v.firstTs) v.firstTs = ts;
      if (ts > v.lastTs) v.lastTs = ts;
    }
  }

  /** Merges cells into the next storage width until they fit under MAX_CELLS again. */
  private widen(): void {
    do {
      const next = LADDER[this.step + 1] ?? this.widthMs * 2;
      const factor = next / this.widthMs;
      const merged = new Map<number, Cell>();
      for (const [i, c] of this.cells) {
        const j = Math.floor(i / factor);
        const m = merged.get(j);
        if (m === undefined) merged.set(j, { outcomes: c.outcomes, failures: c.failures });
        else {
          m.outcomes += c.outcomes;
          m.failures += c.failures;
        }
      }
      this.cells = merged;
      this.widthMs = next;
      this.step++;
    } while (this.cells.size >= MAX_CELLS);
  }

  cut(maxBuckets: number): CutSeries {
    const variants = [...this.variants.values()].map((v) => ({ ...v })).sort((a, b) => a.firstTs - b.firstTs);
    if (this.cells.size === 0) return { bucketMs: this.widthMs, series: [], variants };
    const base = this.widthMs;
    const sorted = [...this.cells].sort((a, b) => a[0] - b[0]);
    for (const width of widths(base)) {
      const factor = width / base;
      // Active buckets at this width, ascending, with their counts.
      const active: [number, Cell][] = [];
      for (const [i, c] of sorted) {
        const j = Math.floor(i / factor);
        const last = active[active.length - 1];
        if (last !== undefined && last[0] === j) {
          last[1].outcomes += c.outcomes;
          last[1].failures += c.failures;
        } else active.push([j, { outcomes: c.outcomes, failures: c.failures }]);
      }
      // Spans: runs of buckets with idle stretches shorter than GAP_BUCKETS inside.
      let points = 0;
      let spans = 1;
      for (let k = 1; k < active.length; k++) {
        const gap = (active[k]?.[0] ?? 0) - (active[k - 1]?.[0] ?? 0) - 1;
        if (gap >= GAP_BUCKETS) spans++;
        else points += gap;
      }
      points += active.length;
      // A cut costs about a point of room on the chart.
      if (spans > MAX_SPANS || points + spans - 1 > maxBuckets) continue;
      const series: ErrorBucket[] = [];
      for (let k = 0; k < active.length; k++) {
        const [j, c] = active[k] as [number, Cell];
        const prev = active[k - 1]?.[0];
        if (prev !== undefined && j - prev - 1 < GAP_BUCKETS)
          for (let e = prev + 1; e < j; e++) series.push({ startMs: e * width, outcomes: 0, failures: 0 });
        series.push({ startMs: j * width, outcomes: c.outcomes, failures: c.failures });
      }
      return { bucketMs: width, series, variants };
    }
    /* c8 ignore next -- widths() never ends before one fits */
    return { bucketMs: base, series: [], variants };
  }
}

/** Candidate drawing widths for cells of `base` ms: nice multiples of it, then doubling forever. */
function* widths(base: number): Generator<number> {
  let last = base;
  yield base;
  for (const w of NICE)
    if (w > base && w % base === 0) {
      last = w;
      yield w;
    }
  for (;;) {
    last *= 2;
    yield last;
  }
}

/** Outcome counts per key, each bucketed by the span its own data covers. */
export class TimeBuckets {
  private readonly keys = new Map<string, KeySeries>();

  constructor(private readonly maxBuckets: number) {}

  /**
   * Counts one outcome of `key` at `ts`, from a workflow named `variant` when known.
   * O(1) amortised; widening is O(cells) and happens at most once per ladder step.
   */
  record(key: string, ts: number, failed: boolean, variant?: string): void {
    let s = this.keys.get(key);
    if (s === undefined) {
      s = new KeySeries();
      this.keys.set(key, s);
    }
    s.record(ts, failed, variant);
  }

  /** The series of `key`, cut for drawing in at most `maxBuckets` points (empty for an unknown key). */
  seriesOf(key: string): CutSeries {
    return (
      this.keys.get(key)?.cut(this.maxBuckets) ?? { bucketMs: LADDER[0] ?? SECOND, series: [], variants: [] }
    );
  }
}
