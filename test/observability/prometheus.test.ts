/**
 * End to end against a real Prometheus: it scrapes `serveMetrics` every second, and every PromQL
 * expression of the Grafana dashboard must return data through its HTTP API.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/observability/metrics.js';
import { serveMetrics, type MetricsServer } from '../../src/observability/serve.js';
import { dashboardQueries } from './dashboard.js';
import { StreamBuilder, syntheticRound } from './stream.js';
import { assertInstalled, sampleValue, toolsAvailable } from './tools.js';

const tools = toolsAvailable('prometheus');

interface QueryResponse {
  status: 'success' | 'error';
  error?: string;
  data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

describe.runIf(tools.run)('a real Prometheus scraping serveMetrics', () => {
  const metrics = createMetrics({
    budgetLimitUsd: 100,
    errorTargets: { payment: 0.001, vendor: 0.05, routing: 0.1, fraud: 0.15 },
    slaP95Ms: 10_000,
  });
  const stream = new StreamBuilder();
  let server: MetricsServer | undefined;
  let prometheus: ChildProcess | undefined;
  let promUrl = '';
  let dir = '';
  let log = '';

  const query = async (expr: string): Promise<QueryResponse> => {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await res.json()) as QueryResponse;
  };

  /** Polls (bounded) until Prometheus has scraped `expected` as the sum of llm_calls_total. */
  const scraped = async (expected: number): Promise<void> => {
    for (let attempt = 0; attempt < 150; attempt++) {
      const r = await query('sum(llm_calls_total)').catch(() => undefined);
      const value = r?.data?.result[0]?.value[1];
      if (value !== undefined && Number(value) === expected) return;
      await pause(200);
    }
    throw new Error(`Prometheus never scraped sum(llm_calls_total) == ${expected}. Its log:\n${log}`);
  };

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
    dir = mkdtempSync(join(tmpdir(), 'keel-prometheus-'));
    const port = await freePort();
    const config = join(dir, 'prometheus.yml');
    writeFileSync(
      config,
      [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        '  evaluation_interval: 1s',
        'scrape_configs:',
        '  - job_name: keel',
        '    static_configs:',
        `      - targets: ['${server.url.replace('http://', '')}']`,
        '',
      ].join('\n'),
    );
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    prometheus.stderr?.on('data', (chunk: Buffer) => {
      log += chunk.toString();
    });
    promUrl = `http://127.0.0.1:${port}`;
    for (let attempt = 0; ; attempt++) {
      const ready = await fetch(`${promUrl}/-/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) break;
      if (attempt >= 150 || prometheus.exitCode !== null)
        throw new Error(`Prometheus did not become ready. Its log:\n${log}`);
      await pause(200);
    }
  }, 60_000);

  afterAll(async () => {
    const child = prometheus;
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await Promise.race([exited, pause(10_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await server?.close();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
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
