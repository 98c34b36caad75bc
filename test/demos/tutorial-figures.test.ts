/**
 * Done-when for issue 25: the invoice and cascade demos, at their default sizes and seed, reproduce
 * the tutorial's tables within 5 % — each figure counted here from the events of the log the demo
 * wrote (not from the demo's own result), with Keel's own folds where Keel has one.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_DEMO_COUNTS } from '../../demos/index.js';
import { runCascadeDemo, TUTORIAL_THRESHOLD_TABLE, type CascadeDemoResult } from '../../demos/cascade.js';
import { runInvoiceDemo, type InvoiceDemoResult } from '../../demos/invoice.js';
import { rca, whatIfCascade } from '../../src/analysis.js';
import { openSqliteStore, type KeelEvent } from '../../src/index.js';
import { tmpDb } from './helpers.js';

const SEED = 42;

/** |measured − tutorial| / tutorial <= 5 %. */
function within5(measured: number, tutorial: number): void {
  expect(
    Math.abs(measured - tutorial) / tutorial,
    `${measured} vs the tutorial's ${tutorial}`,
  ).toBeLessThanOrEqual(0.05);
}

function readLog(db: string): KeelEvent[] {
  const store = openSqliteStore({ path: db, readonly: true });
  try {
    return [...store.iterate()];
  } finally {
    void store.close();
  }
}

/** Workflow ids by name. */
function workflows(events: readonly KeelEvent[], name: string): Set<string> {
  const ids = new Set<string>();
  for (const e of events) if (e.type === 'workflow.started' && e.payload.name === name) ids.add(e.workflowId);
  return ids;
}

/** Nearest-rank P95 of the latencies of the workflows named `name`, ms. */
function p95(events: readonly KeelEvent[], name: string): number {
  const ids = workflows(events, name);
  const latencies: number[] = [];
  for (const e of events)
    if ((e.type === 'workflow.completed' || e.type === 'workflow.failed') && ids.has(e.workflowId))
      latencies.push(e.payload.latencyMs);
  latencies.sort((a, b) => a - b);
  expect(latencies.length).toBe(DEFAULT_DEMO_COUNTS.invoice);
  return latencies[Math.ceil(0.95 * latencies.length) - 1] as number;
}

describe("the demos reproduce the tutorial's tables from their logs (default sizes, seed 42)", () => {
  let invoiceDb: string;
  let cascadeDb: string;
  let invoice: InvoiceDemoResult;
  let cascade: CascadeDemoResult;
  let invoiceLog: KeelEvent[];
  let cascadeLog: KeelEvent[];
  beforeAll(async () => {
    invoiceDb = tmpDb('invoice.db');
    cascadeDb = tmpDb('cascade.db');
    invoice = await runInvoiceDemo({ db: invoiceDb, count: DEFAULT_DEMO_COUNTS.invoice, seed: SEED });
    cascade = await runCascadeDemo({ db: cascadeDb, count: DEFAULT_DEMO_COUNTS.cascade, seed: SEED });
    invoiceLog = readLog(invoiceDb);
    cascadeLog = readLog(cascadeDb);
  }, 600_000);

  it('caching: ~60 % of lookups hit, $900 a week without the cache and $360 with it', () => {
    const ids = workflows(invoiceLog, 'invoice_caching');
    let lookups = 0;
    let hits = 0;
    let calls = 0;
    let callsUsd = 0;
    let spentUsd = 0;
    for (const e of invoiceLog) {
      if (!ids.has(e.workflowId)) continue;
      if (e.type === 'agent.invoked') lookups++;
      else if (e.type === 'agent.succeeded' && e.payload.cached) hits++;
      else if (e.type === 'agent.succeeded') {
        calls++;
        callsUsd += e.payload.costUsd;
      } else if (e.type === 'cost.incurred') spentUsd += e.payload.costUsd;
    }
    const perWeek = 10_000 / ids.size;
    within5(hits / lookups, 0.6);
    within5(lookups * (callsUsd / calls) * perWeek, 900);
    within5(spentUsd * perWeek, 360);
    // The demo printed the same figures.
    expect(invoice.caching.hitRate.measured).toBeCloseTo(hits / lookups, 4);
    expect(invoice.caching.cachedPerWeekUsd.measured).toBeCloseTo(spentUsd * perWeek, 2);
  });

  it('latency: P95 18.5 s sequential, 8.2 s in parallel', () => {
    within5(p95(invoiceLog, 'invoice_latency_sequential'), 18_500);
    within5(p95(invoiceLog, 'invoice_latency'), 8_200);
    expect(invoice.latency.sequential.p95Ms).toBe(p95(invoiceLog, 'invoice_latency_sequential'));
    expect(invoice.latency.parallel.p95Ms).toBe(p95(invoiceLog, 'invoice_latency'));
  });

  it("error budget: vendor at 5 % of 10,000 a week is 500 failures, alerting at 400 — the runtime's alerts say so", () => {
    const budget = invoiceLog.flatMap((e) =>
      e.type === 'alert.raised' && e.payload.id.startsWith('error_budget:vendor:')
        ? [e.payload.data as { volume: number; acceptableFailures: number; alertThreshold: number }]
        : [],
    );
    expect(budget.length).toBe(2); // 80 % and exhausted: the production mix blows the budget
    const d = budget[0] as { volume: number; acceptableFailures: number; alertThreshold: number };
    expect(d.volume).toBe(DEFAULT_DEMO_COUNTS.invoice);
    within5((d.acceptableFailures * 10_000) / d.volume, 500);
    within5((d.alertThreshold * 10_000) / d.volume, 400);
    const ids = workflows(invoiceLog, 'invoice');
    const production = invoiceLog.filter((e) => ids.has(e.workflowId));
    const failures = rca(production).byTaskType.vendor?.failures ?? 0;
    expect(invoice.errorBudget.failures).toBe(failures);
    expect(invoice.errorBudget.consumed).toBeCloseTo(failures / d.acceptableFailures, 4);
  });

  it('cascade thresholds: 50/50 $167 98 %, 70/30 $110 96 %, 80/20 $80 92 % (what keel whatif reads)', () => {
    const site = whatIfCascade(cascadeLog, {
      thresholds: TUTORIAL_THRESHOLD_TABLE.map((t) => t.threshold),
      volumePerWeek: 10_000,
    }).sites.find((s) => s.path === 'cascade');
    expect(site?.recorded.accuracy.labeled).toBe(DEFAULT_DEMO_COUNTS.cascade);
    TUTORIAL_THRESHOLD_TABLE.forEach((t, i) => {
      const row = site?.rows[i];
      expect(row?.threshold).toBe(t.threshold);
      within5(row?.cheapShare ?? 0, t.cheapShare);
      within5(row?.volume?.costPerWeekUsd ?? 0, t.costPerWeekUsd);
      within5(row?.accuracy.ratio ?? 0, t.accuracy);
      expect(cascade.thresholdTable[i]?.accuracy.measured).toBeCloseTo(row?.accuracy.ratio ?? -1, 4);
    });
  });
});
