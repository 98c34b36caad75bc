import { afterEach, describe, expect, it } from 'vitest';
import { APPROVERS } from '../../agents/approvers.js';
import { fraudScreeners, transactionRisk, type Transaction } from '../../agents/fraud.js';
import { amountExtraction, dateExtraction, vendorExtraction, type Invoice } from '../../agents/invoice.js';
import { simulatedInvoiceModel } from '../../agents/invoice-model.js';
import { invoiceWorkflow } from '../../agents/invoice-workflow.js';
import { approvalRouting } from '../../agents/routing.js';
import {
  SEED_PRICING,
  createRuntime,
  named,
  simulatedClock,
  vote,
  type Runtime,
  type Topology,
} from '../../src/index.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';

let rt: Runtime<SqliteEventStore> | undefined;
afterEach(async () => {
  await rt?.close();
  rt = undefined;
});

/** A runtime in virtual time; models answer at once and never fail on their own. */
function setup(hallucinationRate = 0): {
  rt: Runtime<SqliteEventStore>;
  provider: ReturnType<typeof simulatedInvoiceModel>;
} {
  const clock = simulatedClock(Date.UTC(2026, 0, 15));
  rt = createRuntime({ db: ':memory:', clock, seed: 1, pricing: { ...SEED_PRICING } });
  const instant = { latencyMs: { p50: 0, p95: 0 } };
  const provider = simulatedInvoiceModel({
    seed: 1,
    rates: {},
    hallucinationRate,
    models: { 'gpt-4': instant, 'gpt-3.5-turbo': instant },
  });
  return { rt, provider };
}

const invoice = (lines: string[]): Invoice => ({ id: 'INV-1', text: ['INVOICE INV-1', ...lines].join('\n') });
const CLEAN = invoice(['Vendor: Acme Corp', 'Date: 2026-01-03', 'Total: USD 1,234.50']);

/** The category a run failed with (fails the test if it succeeds). */
async function failure<I>(
  runtime: Runtime<SqliteEventStore>,
  topology: Topology<I, unknown>,
  input: I,
): Promise<string> {
  try {
    await runtime.run(topology, input);
  } catch (e) {
    return String((e as { category?: unknown }).category);
  }
  throw new Error('expected the run to fail');
}

describe('invoice extraction agents classify their own failures', () => {
  it('read vendor, amount and date from a clean invoice', async () => {
    const { rt, provider } = setup();
    expect((await rt.run(vendorExtraction({ provider }), CLEAN)).value).toEqual({ vendor: 'Acme Corp' });
    expect((await rt.run(amountExtraction({ provider }), CLEAN)).value).toEqual({
      amount: 1234.5,
      currency: 'USD',
    });
    expect((await rt.run(dateExtraction({ provider }), CLEAN)).value).toEqual({ date: '2026-01-03' });
  });

  it.each([
    [
      'a garbled vendor',
      'vendor',
      ['Vendor: Acm3 C0rp', 'Date: 2026-01-03', 'Total: USD 10.00'],
      'ocr_error',
    ],
    ['no vendor line', 'vendor', ['Date: 2026-01-03', 'Total: USD 10.00'], 'missing_field'],
    [
      'a garbled total',
      'amount',
      ['Vendor: Acme Corp', 'Date: 2026-01-03', 'Total: USD 1,2O4.50'],
      'ocr_error',
    ],
    ['no total line', 'amount', ['Vendor: Acme Corp', 'Date: 2026-01-03'], 'missing_field'],
    [
      'a negative total',
      'amount',
      ['Vendor: Acme Corp', 'Date: 2026-01-03', 'Total: USD -120.00'],
      'validation_error',
    ],
    ['a garbled date', 'date', ['Vendor: Acme Corp', 'Date: 2O26-01-03', 'Total: USD 10.00'], 'ocr_error'],
    ['no date line', 'date', ['Vendor: Acme Corp', 'Total: USD 10.00'], 'missing_field'],
    [
      'a date in the future',
      'date',
      ['Vendor: Acme Corp', 'Date: 2026-02-20', 'Total: USD 10.00'],
      'validation_error',
    ],
  ])('%s → %s agent fails with %s', async (_what, field, lines, category) => {
    const { rt, provider } = setup();
    const agentFor = { vendor: vendorExtraction, amount: amountExtraction, date: dateExtraction }[field];
    expect(await failure(rt, agentFor!({ provider }), invoice(lines))).toBe(category);
    const failed = rt.store.query({ type: 'agent.failed' })[0];
    expect(failed?.type === 'agent.failed' && failed.payload.category).toBe(category);
    // The model was called: the failed call is still charged.
    expect(rt.store.query({ type: 'cost.incurred' })).toHaveLength(1);
  });

  it('calls an answer that is not on the invoice a hallucination', async () => {
    const { rt, provider } = setup(1);
    expect(await failure(rt, vendorExtraction({ provider }), CLEAN)).toBe('hallucination');
    expect(await failure(rt, approvalRouting({ provider }), { vendor: 'Acme Corp', tier: 'manager' })).toBe(
      'hallucination',
    );
  });
});

describe('invoiceWorkflow', () => {
  it('extracts, validates and routes a clean invoice, logging each agent under its path', async () => {
    const { rt, provider } = setup();
    const { value } = await rt.run(invoiceWorkflow({ provider }), CLEAN);
    expect(value).toMatchObject({ vendor: 'Acme Corp', amount: 1234.5, currency: 'USD', date: '2026-01-03' });
    expect(value.vendorId).toMatch(/^V-\d{5}$/);
    expect(value.tier).toBe('manager');
    expect(APPROVERS.manager).toContain(value.approver);
    const paths = rt.store
      .query({ type: 'agent.succeeded' })
      .map((e) => (e.type === 'agent.succeeded' ? e.payload.path : ''))
      .sort();
    expect(paths).toEqual([
      'invoice/extract[0]/amount_extraction',
      'invoice/extract[0]/date_extraction',
      'invoice/extract[0]/vendor_extraction',
      'invoice/route[2]/seq[1]/approval_routing',
      'invoice/validate[1]/seq[1]/vendor_validation',
    ]);
  });

  it('answers a resubmitted invoice from the 24 h cache without calling a model', async () => {
    const { rt, provider } = setup();
    const workflow = invoiceWorkflow({ provider });
    const first = await rt.run(workflow, CLEAN);
    const calls = provider.calls();
    const again = await rt.run(workflow, CLEAN);
    expect(again.value).toEqual(first.value);
    expect(again.costUsd).toBe(0);
    expect(provider.calls()).toBe(calls);
    expect(rt.store.query({ type: 'cache.hit', workflowId: again.workflowId })).toHaveLength(5);
  });

  it('caches vendor validation by vendor: another invoice of the same vendor reuses it', async () => {
    const { rt, provider } = setup();
    const workflow = invoiceWorkflow({ provider });
    await rt.run(workflow, CLEAN);
    const other = await rt.run(workflow, {
      id: 'INV-2',
      text: 'INVOICE INV-2\nVendor: Acme Corp\nDate: 2026-01-04\nTotal: USD 2,000.00',
    });
    const hits = rt.store
      .query({ type: 'cache.hit', workflowId: other.workflowId })
      .map((e) => (e.type === 'cache.hit' ? e.payload.agent : ''));
    expect(hits.sort()).toEqual(['approval_routing', 'vendor_validation']);
  });
});

describe('fraud screeners', () => {
  const clearFraud: Transaction = {
    id: 'TXN-1',
    amountUsd: 4_000,
    country: 'NG',
    cardCountry: 'US',
    velocity1h: 12,
    newDevice: true,
  };
  const clearLegit: Transaction = {
    id: 'TXN-2',
    amountUsd: 35,
    country: 'US',
    cardCountry: 'US',
    velocity1h: 0,
    newDevice: false,
  };

  it('agree on clear cases, so the adaptive vote stops after three', async () => {
    const clock = simulatedClock();
    rt = createRuntime({ db: ':memory:', clock, seed: 1, pricing: { ...SEED_PRICING } });
    const fraud = named('fraud', vote(fraudScreeners({ seed: 3 }), { stop: 'decided' }));
    expect(transactionRisk(clearFraud)).toBeGreaterThan(0.8);
    expect(transactionRisk(clearLegit)).toBeLessThan(0.2);
    for (const [t, verdict] of [
      [clearFraud, 'fraud'],
      [clearLegit, 'legit'],
    ] as const) {
      const run = rt.run(fraud, t);
      await clock.advanceAsync(30_000);
      const { value } = await run;
      expect(value.value).toBe(verdict);
      expect(value.agentsUsed).toBe(3);
    }
  });
});
