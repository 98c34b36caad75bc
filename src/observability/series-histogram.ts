/**
 * A prom-client histogram whose series count their observations here — one comparison per bucket
 * and an addition — and are turned into prom-client's exposition values only when the registry is
 * read. prom-client's own `observe` validates and hashes the label set on every call (~3 µs on the
 * benchmark VM; the runtime observes three times per one-agent workflow). The exposition (text and
 * JSON) is the same as prom-client's for the same observations: test/observability/series-histogram.test.ts
 * compares them.
 */
import { Histogram, type MetricObjectWithValues, type MetricValueWithName, type Registry } from 'prom-client';

/** One label set's counts: `counts[i]` observations in (bounds[i-1], bounds[i]], plus sum and count. */
export class HistogramSeries {
  private readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length);
  }

  /** Counts one observation; throws on a value prom-client would refuse (not a finite number). */
  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${String(value)}`);
    this.sum += value;
    this.count += 1;
    const { bounds, counts } = this;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= (bounds[i] as number)) {
        counts[i] = (counts[i] as number) + 1;
        return;
      }
    }
  }

  /** Back to no observations (the series stays registered: its holders keep counting into it). */
  zero(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }

  /**
   * prom-client's values for this series: cumulative buckets, `+Inf`, `_sum`, `_count` (buckets
   * with `exemplar: null`, as prom-client's JSON has them without exemplars).
   */
  values(name: string, out: SeriesValue[]): void {
    const bucket = `${name}_bucket`;
    let acc = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      acc += this.counts[i] as number;
      out.push({
        labels: { le: this.bounds[i], ...this.labels },
        value: acc,
        metricName: bucket,
        exemplar: null,
      });
    }
    out.push(
      { labels: { le: '+Inf', ...this.labels }, value: this.count, metricName: bucket, exemplar: null },
      { labels: { ...this.labels }, value: this.sum, metricName: `${name}_sum` },
      { labels: { ...this.labels }, value: this.count, metricName: `${name}_count` },
    );
  }
}

/** One exposed value, as prom-client's histogram lists them. */
type SeriesValue = MetricValueWithName<string> & { exemplar?: null };

/**
 * A {@link Histogram} fed through {@link HistogramSeries} (one per label set, from {@link series});
 * the registry reads them through `get()`. Its own `observe`/`labels` are not used (they would
 * keep a second, separate set of counts).
 */
export class SeriesHistogram<T extends string> extends Histogram<T> {
  private readonly all: HistogramSeries[] = [];
  private readonly bounds: readonly number[];

  constructor(
    private readonly config: {
      name: string;
      help: string;
      labelNames: readonly T[];
      buckets: readonly number[];
      registers: Registry[];
    },
  ) {
    const buckets = [...config.buckets]; // ascending, as prom-client expects (it does not sort either)
    super({ ...config, labelNames: [...config.labelNames], buckets });
    this.bounds = buckets;
  }

  /**
   * A new series for the label values (in `labelNames` order); callers cache it. Series are exposed
   * in the order they were created (prom-client: first observed), so create one at its first use.
   */
  series(...values: string[]): HistogramSeries {
    const labels: Record<string, string> = {};
    this.config.labelNames.forEach((n, i) => (labels[n] = values[i] as string));
    const s = new HistogramSeries(labels, this.bounds);
    this.all.push(s);
    return s;
  }

  override get(): Promise<MetricObjectWithValues<MetricValueWithName<T>>> {
    return this.getForPromString();
  }

  /** What the registry's text exposition reads (prom-client calls it when present). */
  getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<T>>> {
    const values: SeriesValue[] = [];
    for (const s of this.all) s.values(this.config.name, values);
    // The shape prom-client's own Histogram returns (its typings also name a `collect` member
    // and an enum for `type` that its objects do not carry).
    const metric = {
      name: this.config.name,
      help: this.config.help,
      type: 'histogram',
      values,
      aggregator: 'sum',
    };
    return Promise.resolve(metric as unknown as MetricObjectWithValues<MetricValueWithName<T>>);
  }

  /** Zeroes every series (prom-client's drops them; these stay, since callers hold them). */
  override reset(): void {
    // prom-client's constructor calls reset() too, before this class's fields exist.
    const all = this.all as HistogramSeries[] | undefined;
    if (all !== undefined) for (const s of all) s.zero();
  }
}
