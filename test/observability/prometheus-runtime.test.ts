/**
 * A real Prometheus scraping a running Keel runtime (`rt.serveMetrics`) while it runs the demo
 * topologies — invoices with the cache, fraud votes, a cascade, a breaker that opens, a budget —
 * and every PromQL expression of the Grafana dashboard returns data from it, with the dashboard's
 * `prefix` variable set to the runtime's `metrics.prefix`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expensiveVendorExtraction, vendorCascade } from '../../agents/cascade.js';
import { fraudScreeners } from '../../agents/fraud.js';
import { vendorExtraction } from '../../agents/invoice.js';
import { simulatedInvoiceModel } from '../../agents/invoice-model.js';
import { invoiceWorkflow } from '../../agents/invoice-workflow.js';
import { invoiceStream } from '../../demos/invoices.js';
import { transactionStream } from '../../demos/transactions.js';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import type { MetricsServer } from '../../src/observability/serve.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { named } from '../../src/supervisor/topology.js';
import { vote } from '../../src/supervisor/vote.js';
import { dashboardQueries } from './dashboard.js';
import { startPrometheus, type PrometheusServer } from './prom-server.js';
import { assertInstalled, toolsAvailable } from './tools.js';

const tools = toolsAvailable('prometheus');

describe.runIf(tools.run)('a real Prometheus scraping a running runtime', () => {
  let dir = '';
  let rt: Runtime | undefined;
  let server: MetricsServer | undefined;
  let prometheus: PrometheusServer | undefined;
  let clock: SimulatedClock;

  /** Runs `n` workflows of each demo topology, driving virtual time until all settle. */
  const round = async (n: number, seed: number): Promise<void> => {
    const runtime = rt as Runtime;
    const model = simulatedInvoiceModel({ seed });
    const invoice = invoiceWorkflow({ seed });
    const fraud = named('fraud_adaptive', vote(fraudScreeners({ seed }), { stop: 'decided' }));
    const triage = named('cascade', vendorCascade({ provider: model, threshold: 0.9 }));
    const flaky = vendorExtraction({
      provider: simulatedInvoiceModel({
        seed,
        faults: [{ fromMs: 0, toMs: Number.MAX_SAFE_INTEGER, kind: 'provider_error' }],
      }),
      cache: false,
      breaker: { name: 'backup-provider', failureThreshold: 3, resetTimeoutMs: 60_000 },
    });
    const runs: Promise<unknown>[] = [];
    for (const inv of invoiceStream({ seed, count: n, nowMs: clock.now() })) {
      runs.push(runtime.run(invoice, inv).catch(() => undefined));
      runs.push(runtime.run(triage, inv).catch(() => undefined));
      runs.push(
        runtime
          .run(expensiveVendorExtraction({ provider: model }), inv, { name: 'gpt4_only' })
          .catch(() => undefined),
      );
      runs.push(runtime.run(flaky, inv, { name: 'outage' }).catch(() => undefined));
    }
    for (const t of transactionStream({ seed, count: n }))
      runs.push(runtime.run(fraud, t).catch(() => undefined));
    let settled = false;
    void Promise.all(runs).then(() => {
      settled = true;
    });
    for (let i = 0; i < 10_000 && !settled; i++) await clock.advanceAsync(1_000);
    expect(settled).toBe(true);
  };

  beforeAll(async () => {
    assertInstalled(tools.missing);
    dir = mkdtempSync(join(tmpdir(), 'keel-prom-rt-'));
    clock = simulatedClock(Date.UTC(2026, 0, 1, 8));
    rt = createRuntime({
      db: join(dir, 'keel.db'),
      clock,
      seed: 42,
      budget: { dailyUsd: 5 },
      monitor: { windowSize: 20, weeklyVolume: { vendor: 10_000, fraud: 10_000 } },
      metrics: { prefix: 'keel_' },
    });
    server = await rt.serveMetrics({ port: 0 });
    prometheus = await startPrometheus(server.url.replace('http://', ''));
  }, 60_000);

  afterAll(async () => {
    await prometheus?.stop();
    await rt?.close();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('returns data for every dashboard expression, the prefix given as the dashboard variable', async () => {
    const p = prometheus as PrometheusServer;
    await round(30, 1);
    await p.until('sum(keel_llm_calls_total)', (v) => v > 0);
    const first = Number((await p.query('sum(keel_llm_calls_total)')).data?.result[0]?.value[1]);
    // the $5 budget was spent (and alerted) on day one: run the second round the next day
    await clock.advanceAsync(86_400_000);
    await round(30, 2);
    // Wait for a scrape taken after the whole round (one taken mid-round can miss a series'
    // increase, e.g. the cascade's, and rate() reads 0/0), not just one that saw some new calls.
    const calls = await (rt as Runtime).metrics!.registry.getSingleMetricAsString('keel_llm_calls_total');
    const total = [...calls.matchAll(/^keel_llm_calls_total\{[^}]*\} (\S+)$/gm)].reduce(
      (sum, m) => sum + Number(m[1]),
      0,
    );
    expect(total).toBeGreaterThan(first);
    await p.until('sum(keel_llm_calls_total)', (v) => v === total);
    const empty: string[] = [];
    for (const { panel, expr } of dashboardQueries(undefined, 'keel_')) {
      const r = await p.query(expr);
      expect(r.status, `${panel}: ${expr}: ${r.error ?? ''}`).toBe('success');
      const samples = r.data?.result ?? [];
      if (samples.length === 0 || samples.some((s) => !Number.isFinite(Number(s.value[1]))))
        empty.push(`${panel}: ${expr} -> ${JSON.stringify(samples)}`);
    }
    expect(empty).toEqual([]);
  }, 120_000);
});
