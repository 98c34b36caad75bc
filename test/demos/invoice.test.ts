import { beforeAll, describe, expect, it } from 'vitest';
import { demoTopologies } from '../../demos/index.js';
import { runInvoiceDemo, type InvoiceDemoResult } from '../../demos/invoice.js';
import { createRuntime, openSqliteStore, simulatedClock, type ReplayReport } from '../../src/index.js';
import { tmpDb } from './helpers.js';

describe('invoice demo (virtual time)', () => {
  let r: InvoiceDemoResult;
  let replays: ReplayReport[];
  beforeAll(async () => {
    const db = tmpDb();
    r = await runInvoiceDemo({ db, count: 150, seed: 7, clock: simulatedClock() });
    const rt = createRuntime({ db });
    try {
      replays = await rt.replay('all', { topologies: demoTopologies() });
    } finally {
      await rt.close();
    }
  }, 120_000);

  it('reads the injected production mix back from the log: OCR errors first, then missing fields, then edge cases', () => {
    expect(r.invoices.processed).toBe(150);
    expect(r.invoices.completed + r.invoices.failed).toBe(150);
    expect(r.invoices.duplicates).toBeGreaterThan(0);
    expect(r.rca.primary).toBe('ocr_error');
    const share = (c: string): number => r.rca.causes.find((x) => x.category === c)?.share ?? 0;
    expect(share('ocr_error')).toBeGreaterThan(share('missing_field'));
    expect(share('missing_field')).toBeGreaterThan(share('validation_error'));
    expect(share('validation_error')).toBeGreaterThan(0);
    // 15 % OCR errors push vendor extraction past its 5 % target, and the runtime said so.
    const vendor = r.errorRates.find((t) => t.taskType === 'vendor');
    expect(vendor?.target).toBe(0.05);
    expect(vendor?.withinTarget).toBe(false);
    expect(r.alerts.some((a) => a.kind === 'error_rate')).toBe(true);
  });

  it('lists every alert the log holds, both runs — the same list keel report derives', async () => {
    const db = tmpDb();
    const demo = await runInvoiceDemo({ db, count: 150, seed: 7, clock: simulatedClock() });
    const store = openSqliteStore({ path: db, readonly: true });
    try {
      const raised = store.query({ type: 'alert.raised' });
      expect(demo.alerts.map((a) => a.title)).toEqual(
        raised.map((e) => (e.type === 'alert.raised' ? e.payload.title : '')),
      );
      expect(new Set(demo.alerts.map((a) => a.run))).toEqual(new Set(['parallel', 'sequential']));
    } finally {
      await store.close();
    }
  });

  it('costs less than calling GPT-4 for everything, and the parallel pipeline is faster than the sequential one', () => {
    expect(r.cost.naiveCallUsd).toBeCloseTo(0.03, 6);
    expect(r.cost.optimizedPerWeekUsd).toBeLessThan(r.cost.naivePerWeekUsd);
    expect(r.cost.cache.hits).toBeGreaterThan(0);
    expect(r.cost.cache.savedPerWeekUsd).toBeGreaterThan(0);
    expect(r.latency.parallel.p50Ms).toBeLessThan(r.latency.sequential.p50Ms);
    expect(r.latency.parallel.p95Ms).toBeLessThan(r.latency.sequential.p95Ms);
    expect(r.latency.slaP95Ms).toBe(10_000);
  });

  it('replays every recorded workflow identically, retries racing a failing sibling included', () => {
    // Seed 7 records a parallel extraction whose retried child succeeds before its sibling fails
    // the par: replay has to deliver each recorded outcome when it happened to get the same end.
    expect(replays).toHaveLength(300);
    expect(replays.filter((x) => !x.ok).map((x) => x.divergences)).toEqual([]);
  });

  it(
    'counts what the log file holds: every processed invoice is a workflow.started event named "invoice"',
    { timeout: 60_000 },
    async () => {
      const db = tmpDb();
      const r = await runInvoiceDemo({ db, count: 40, seed: 3, clock: simulatedClock() });
      const store = openSqliteStore({ path: db, readonly: true });
      try {
        const started = store.query({ type: 'workflow.started' });
        const names = started.map((e) => (e.type === 'workflow.started' ? e.payload.name : ''));
        expect(names.filter((n) => n === 'invoice')).toHaveLength(r.invoices.processed);
        expect(names.filter((n) => n === 'invoice_sequential')).toHaveLength(40);
        expect(store.verify().ok).toBe(true);
      } finally {
        await store.close();
      }
    },
  );
});
