/**
 * A growable FIFO of `(ts, value)` samples in two typed arrays: O(1) amortised push and shift, no
 * per-sample object. Rolling windows (by count or by time) are built on it.
 * Internal: not part of the public surface.
 */
export class SampleRing {
  private ts: Float64Array;
  private values: Float64Array;
  private head = 0;
  private length = 0;

  constructor(initialCapacity = 64) {
    const cap = Math.max(4, initialCapacity);
    this.ts = new Float64Array(cap);
    this.values = new Float64Array(cap);
  }

  /** Number of samples held. */
  get size(): number {
    return this.length;
  }

  /** Appends a sample at the back. */
  push(ts: number, value: number): void {
    if (this.length === this.ts.length) this.grow();
    const i = (this.head + this.length) % this.ts.length;
    this.ts[i] = ts;
    this.values[i] = value;
    this.length++;
  }

  /** Timestamp of the oldest sample (`Infinity` when empty). */
  oldestTs(): number {
    return this.length === 0 ? Infinity : (this.ts[this.head] ?? Infinity);
  }

  /** Value of the oldest sample (`NaN` when empty). */
  oldestValue(): number {
    return this.length === 0 ? NaN : (this.values[this.head] ?? NaN);
  }

  /** Drops the oldest sample. */
  shift(): void {
    if (this.length === 0) return;
    this.head = (this.head + 1) % this.ts.length;
    this.length--;
  }

  /** Copies the values, oldest first (for rare, on-demand statistics). */
  valuesCopy(): Float64Array {
    const out = new Float64Array(this.length);
    for (let k = 0; k < this.length; k++) out[k] = this.values[(this.head + k) % this.values.length] ?? 0;
    return out;
  }

  private grow(): void {
    const cap = this.ts.length * 2;
    const ts = new Float64Array(cap);
    const values = new Float64Array(cap);
    for (let k = 0; k < this.length; k++) {
      const i = (this.head + k) % this.ts.length;
      ts[k] = this.ts[i] ?? 0;
      values[k] = this.values[i] ?? 0;
    }
    this.ts = ts;
    this.values = values;
    this.head = 0;
  }
}

/** Nearest-rank index (0-based) of percentile `p` (0–100) among `n` sorted samples. */
export function nearestRankIndex(p: number, n: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * n - 1e-9));
  return Math.min(n, rank) - 1;
}

/** Exact nearest-rank percentile of the values (sorts a copy; for rare, on-demand use). */
export function exactPercentile(values: Float64Array, p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = values.slice().sort();
  return sorted[nearestRankIndex(p, sorted.length)];
}
