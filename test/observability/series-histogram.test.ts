/**
 * SeriesHistogram counts in place and must expose exactly what prom-client's own Histogram exposes
 * for the same observations: the text exposition, the JSON, and what promtool's parser sees.
 */
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { SeriesHistogram } from '../../src/observability/series-histogram.js';

const BUCKETS = [0.1, 0.5, 1, 2.5, 10];
/** Below the first bound, on bounds, between, above the last, zero, negative, fractional. */
const VALUES = [0.05, 0.1, 0.3, 0.5, 1, 1.7, 2.5, 9.99, 10, 10.01, 500, 0, -3, 0.1 + 0.2];

function pair(labelNames: string[]): {
  ours: SeriesHistogram<string>;
  theirs: Histogram<string>;
  a: Registry;
  b: Registry;
} {
  const a = new Registry();
  const b = new Registry();
  const config = { name: 'x_seconds', help: 'Some duration.', labelNames, buckets: BUCKETS };
  return {
    ours: new SeriesHistogram({ ...config, registers: [a] }),
    theirs: new Histogram({ ...config, registers: [b] }),
    a,
    b,
  };
}

describe('SeriesHistogram', () => {
  it('exposes the same text and JSON as prom-client for the same labelled observations', async () => {
    const { ours, theirs, a, b } = pair(['model', 'task']);
    // Series are listed in the order they were created, prom-client's in the order first observed:
    // the runtime creates a series at its first observation (as here: the first value goes to m2).
    const m2 = ours.series('claude "3"\n', 'amount');
    const m1 = ours.series('gpt-4o', 'vendor');
    VALUES.forEach((v, i) => {
      if (i % 3 === 0) {
        m2.observe(v);
        theirs.observe({ model: 'claude "3"\n', task: 'amount' }, v);
      } else {
        m1.observe(v);
        theirs.observe({ model: 'gpt-4o', task: 'vendor' }, v);
      }
    });
    expect(await a.metrics()).toBe(await b.metrics());
    expect(await a.getMetricsAsJSON()).toEqual(await b.getMetricsAsJSON());
    expect(await a.metrics()).toContain('x_seconds_bucket{le="+Inf",model="gpt-4o",task="vendor"} 9');
  });

  it('shows an unlabelled histogram as one zero series before any observation, like prom-client', async () => {
    const { ours, theirs, a, b } = pair([]);
    const only = ours.series();
    expect(await a.metrics()).toBe(await b.metrics());
    for (const v of VALUES) {
      only.observe(v);
      theirs.observe(v);
    }
    expect(await a.metrics()).toBe(await b.metrics());
    expect(await a.metrics()).toContain(`x_seconds_count ${VALUES.length}`);
  });

  it('refuses a value that is not a finite number, as prom-client does, and counts nothing', () => {
    const { ours, theirs } = pair(['model']);
    const s = ours.series('m');
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => s.observe(bad)).toThrow(TypeError);
      expect(() => theirs.observe({ model: 'm' }, bad)).toThrow(TypeError);
    }
    expect(s.count).toBe(0);
  });

  it('zeroes its series on reset, and the holders of a series keep counting into it', async () => {
    const { ours, a } = pair(['model']);
    const s = ours.series('m');
    s.observe(0.2);
    a.resetMetrics();
    expect(await a.metrics()).toContain('x_seconds_count{model="m"} 0');
    s.observe(3);
    const text = await a.metrics();
    expect(text).toContain('x_seconds_count{model="m"} 1');
    expect(text).toContain('x_seconds_bucket{le="10",model="m"} 1');
    expect(text).toContain('x_seconds_bucket{le="2.5",model="m"} 0');
  });
});
