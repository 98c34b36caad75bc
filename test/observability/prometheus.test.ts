/**
 * End to end against a real Prometheus: it scrapes `serveMetrics` every second, and every PromQL
 * expression of the Grafana dashboard must return data through its HTTP API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/observability/metrics.js';
import { serveMetrics, type MetricsServer } from '../../src/observability/serve.js';
import { dashboardQueries } from './dashboard.js';
import { startPrometheus, type PrometheusServer, type QueryResponse } from './prom-server.js';
import { StreamBuilder, syntheticRound } from './stream.js';
import { assertInstalled, sampleValue, toolsAvailable } from './tools.js';

const tools = toolsAvailable('prometheus');

describe.runIf(tools.run)('a real Prometheus scraping serveMetrics', () => {
  const metrics = createMetrics({
    budgetLimitUsd: 100,
    errorTargets: { payment: 0.001, vendor: 0.05, routing: 0.1, fraud: 0.15 },
    slaP95Ms: 10_000,
  });
  const stream = new StreamBuilder();
  let server: MetricsServer | undefined;
  let prometheus: PrometheusServer | undefined;

  const query = (expr: string): Promise<QueryResponse> => (prometheus as PrometheusServer).query(expr);
  /** Waits (bounded) until Prometheus has scraped `expected` as the sum of llm_calls_total. */
  const scraped = (expected: number): Promise<void> =>
    (prometheus as PrometheusServer).until('sum(llm_calls_total)', (v) => v === expected);

  const traffic = async (round: number): Promise<number> => {
    const from = stream.events.length;
    syntheticRound(stream, round);
    for (const event of stream.events.slice(from)) metrics.apply(event);
    metrics.setErrorRate('payment', 0.02 + round * 0.01);
    metrics.setErrorRate('vendor', 0.03);
    metrics.setErrorBudgetRemaining('payment', 0.4 - round * 0.1);
    metrics.setErrorBudgetRemaining('vendor', 0.9);
    metrics.observeCommit(0.002);
    metrics.observeCommit(0.004);
    const registry = metrics.registry;
    const all = (await registry.getMetricsAsJSON()).find((m) => m.name === 'llm_calls_total');
    expect(await sampleValue(registry, 'cascade_escalations_total')).toBe(round + 1);
    return (all?.values ?? []).reduce((sum, v) => sum + v.value, 0);
  };

  beforeAll(async () => {
    assertInstalled(tools.missing);
    server = await serveMetrics({ registry: metrics.registry, port: 0 });
    prometheus = await startPrometheus(server.url.replace('http://', ''));
  }, 60_000);

  afterAll(async () => {
    await prometheus?.stop();
    await server?.close();
  }, 30_000);

  it('returns data for every PromQL expression of dashboards/keel.json', async () => {
    // Two rounds of traffic, each scraped, so rates and quantiles have an increase to work on.
    await scraped(await traffic(0));
    await scraped(await traffic(1));

    const queries = dashboardQueries();
    expect(queries.length).toBeGreaterThanOrEqual(15);
    const empty: string[] = [];
    for (const { panel, expr } of queries) {
      const r = await query(expr);
      expect(r.status, `${panel}: ${expr}: ${r.error ?? ''}`).toBe('success');
      const samples = r.data?.result ?? [];
      if (samples.length === 0 || samples.some((s) => !Number.isFinite(Number(s.value[1]))))
        empty.push(`${panel}: ${expr} -> ${JSON.stringify(samples)}`);
    }
    expect(empty).toEqual([]);
  }, 90_000);

  it('sees the values the event stream produced', async () => {
    const breaker = await query('circuit_breaker_state{breaker="openai"}');
    expect(breaker.data?.result[0]?.value[1]).toBe('1');
    const hitRatio = await query('sum(cache_requests_total{result="hit"}) / sum(cache_requests_total)');
    expect(Number(hitRatio.data?.result[0]?.value[1])).toBeCloseTo(1 / 3);
    const sla = await query('latency_sla_p95_seconds');
    expect(sla.data?.result[0]?.value[1]).toBe('10');
  });
});
