/**
 * A real Prometheus scraping `keel serve` of a FINISHED demo log, and `keel demo invoice
 * --serve-metrics`: every query of the Grafana dashboard returns data, except the panels whose
 * description says when they are empty. A finished log's counters never change, and Prometheus
 * computes rate() and increase() from changes it scraped: `keel serve` answers its first scrape with
 * every counter and histogram at 0, so the log arrives as one increase.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_NAMES, demoRegistry, runDemo } from '../../demos/index.js';
import { beforeTheLog } from '../../src/cli/serve.js';
import { runCli } from '../../src/cli/main.js';
import { captureIo } from '../cli/io.js';
import { loadDashboard } from './dashboard.js';
import { startPrometheus, type PrometheusServer } from './prom-server.js';
import { assertInstalled, toolsAvailable } from './tools.js';

const tools = toolsAvailable('prometheus');

/** Starts a `keel` command that ends by serving metrics; resolves with the URL once it listens. */
async function serving(argv: string[]): Promise<{ url: string; stop: () => Promise<number> }> {
  const controller = new AbortController();
  let listening: (url: string) => void = () => undefined;
  const url = new Promise<string>((resolve) => (listening = resolve));
  const c = captureIo({
    signal: controller.signal,
    onOut: (text) => {
      const m = /serving (http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(text);
      if (m) listening(m[1] as string);
    },
  });
  const exit = runCli(argv, c.io, { demos: demoRegistry });
  const first = await Promise.race([url, exit.then((code) => `exited ${code}: ${c.stderr()}`)]);
  expect(first).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  return {
    url: first,
    stop: () => {
      controller.abort();
      return exit;
    },
  };
}

/** Every dashboard query, with the prefix, and whether Prometheus answered it with finite data. */
async function answers(
  p: PrometheusServer,
  prefix: string,
): Promise<{ panel: string; description: string; expr: string; data: boolean }[]> {
  const out = [];
  for (const panel of loadDashboard().panels) {
    for (const t of panel.targets ?? []) {
      const expr = t.expr.replaceAll('${prefix}', prefix);
      const r = await p.query(expr);
      expect(r.status, `${panel.title}: ${expr}: ${r.error ?? ''}`).toBe('success');
      const samples = r.data?.result ?? [];
      const data = samples.length > 0 && samples.every((s) => Number.isFinite(Number(s.value[1])));
      const description = (panel as { description?: string }).description ?? '';
      out.push({ panel: panel.title, description, expr, data });
    }
  }
  return out;
}

/** Waits until Prometheus has scraped the log as an increase (the first scrape is all zeros). */
async function untilLogScraped(p: PrometheusServer, prefix: string): Promise<void> {
  await p.until(`sum(increase(${prefix}llm_calls_total[5m]))`, (v) => v > 0);
  await p.until(`count(rate(${prefix}workflow_duration_seconds_count[5m]) > 0)`, (v) => v > 0);
}

describe('keel serve answers its first scrape with the state before the log', () => {
  it('zeroes counters and histograms, keeps gauges and the exposition format', () => {
    const text = [
      '# HELP calls_total Calls.',
      '# TYPE calls_total counter',
      'calls_total{model="a b",task_type="x"} 12',
      '# TYPE lat_seconds histogram',
      'lat_seconds_bucket{le="0.5",model="m"} 3',
      'lat_seconds_bucket{le="+Inf",model="m"} 4',
      'lat_seconds_sum{model="m"} 1.25',
      'lat_seconds_count{model="m"} 4',
      '# TYPE breaker_state gauge',
      'breaker_state{breaker="openai"} 1',
      '# TYPE cost_usd_total counter',
      'cost_usd_total 0.5',
      '',
    ].join('\n');
    expect(beforeTheLog(text)).toBe(
      [
        '# HELP calls_total Calls.',
        '# TYPE calls_total counter',
        'calls_total{model="a b",task_type="x"} 0',
        '# TYPE lat_seconds histogram',
        'lat_seconds_bucket{le="0.5",model="m"} 0',
        'lat_seconds_bucket{le="+Inf",model="m"} 0',
        'lat_seconds_sum{model="m"} 0',
        'lat_seconds_count{model="m"} 0',
        '# TYPE breaker_state gauge',
        'breaker_state{breaker="openai"} 1',
        '# TYPE cost_usd_total counter',
        'cost_usd_total 0',
        '',
      ].join('\n'),
    );
  });
});

describe.runIf(tools.run)('a real Prometheus scraping keel serve of a finished demo log', () => {
  let dir = '';
  let prometheus: PrometheusServer | undefined;
  let stop: (() => Promise<number>) | undefined;

  beforeAll(() => {
    assertInstalled(tools.missing);
    dir = mkdtempSync(join(tmpdir(), 'keel-prom-serve-'));
  });

  afterAll(async () => {
    await prometheus?.stop();
    prometheus = undefined;
    await stop?.();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('fills every panel of keel demo all with --budget-usd and --weekly-volume, but commit latency', async () => {
    const db = join(dir, 'all.db');
    for (const name of DEMO_NAMES) await runDemo(name, { db, count: 150, seed: 42 });
    const s = await serving([
      'serve',
      '--db',
      db,
      '--port',
      '0',
      '--prefix',
      'keel_',
      '--budget-usd',
      '100',
      '--weekly-volume',
      'vendor=10000,fraud=10000',
    ]);
    stop = s.stop;
    prometheus = await startPrometheus(s.url.replace('http://', ''));
    await untilLogScraped(prometheus, 'keel_');
    const all = await answers(prometheus, 'keel_');
    const empty = all.filter((a) => !a.data);
    // Commit timings are not in a log.
    expect([...new Set(empty.map((a) => a.panel))]).toEqual(['Event-log commit latency P99']);
    for (const a of empty) expect(a.description, a.panel).toMatch(/Empty for keel serve/);
    expect(all.filter((a) => a.data).length).toBeGreaterThanOrEqual(19);
    await prometheus.stop();
    prometheus = undefined;
    expect(await s.stop()).toBe(0);
    stop = undefined;
  }, 240_000);

  it('fills every panel keel demo invoice --serve-metrics can have; the empty ones say why', async () => {
    const db = join(dir, 'invoice.db');
    const s = await serving([
      'demo',
      'invoice',
      '--count',
      '150',
      '--db',
      db,
      '--quiet',
      '--serve-metrics',
      '0',
    ]);
    stop = s.stop;
    prometheus = await startPrometheus(s.url.replace('http://', ''));
    await untilLogScraped(prometheus, '');
    const all = await answers(prometheus, '');
    const empty = all.filter((a) => !a.data);
    // The invoice demo has no budget, votes, cascades or breaker transitions.
    expect([...new Set(empty.map((a) => a.panel))].sort()).toEqual(
      [
        'Budget used',
        'Cascade escalation rate',
        'Circuit breakers',
        'Error budget remaining',
        'Event-log commit latency P99',
        'Spend vs budget (USD, today)',
        'Vote agents used',
      ].sort(),
    );
    for (const a of empty) expect(a.description, a.panel).toMatch(/Empty (for|without|while)/);
    for (const panel of [
      'Workflow latency P50 / P95 / P99 vs SLA',
      'Cache hit ratio',
      'Error rate vs target, per task type',
    ])
      expect(
        all.filter((a) => a.panel === panel).every((a) => a.data),
        panel,
      ).toBe(true);
  }, 240_000);
});
