/**
 * A realistic event log for the report tests: real topologies on a real runtime, under a simulated
 * clock and the seeded `simulated` provider, written to a temp SQLite file.
 *
 * Over one virtual hour it runs an invoice flow `seq(par(vendor, amount, date), validate, route)`
 * every 30 s, a five-screener fraud `vote` every 60 s and a two-stage `cascade` every 45 s. A
 * gpt-3.5 outage (minutes 20–23) opens the screeners' `openai` breaker, which probes and closes
 * again; a latency spike (minutes 40–45) pushes the votes' P95 past the SLA; some invoices fail OCR
 * or miss a field, and the daily budget passes its 80 % alert.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { llmAgent } from '../../agents/llm.js';
import { simulatedClock } from '../../src/core/clock.js';
import { simulated } from '../../src/providers/simulated.js';
import { createRuntime } from '../../src/runtime.js';
import { cascade } from '../../src/supervisor/cascade.js';
import { par } from '../../src/supervisor/parallel.js';
import { seq } from '../../src/supervisor/sequential.js';
import { named } from '../../src/supervisor/topology.js';
import { vote } from '../../src/supervisor/vote.js';

/** The clock's start: 2026-03-02 09:00 UTC. */
export const START_MS = Date.UTC(2026, 2, 2, 9);
const MIN = 60_000;

/** The runtime's settings that the report must be told to match. */
export const FIXTURE_SETTINGS = {
  windowSize: 20,
  slaP95Ms: 10_000,
  budgetUsd: 10,
  errorTargets: { vendor: 0.05, payment: 0.001, date: 0.1, routing: 0.1, fraud: 0.15, screening: 0.1 },
} as const;

export interface Fixture {
  dir: string;
  db: string;
  settled: { ok: number; failed: number };
}

interface Invoice {
  id: number;
  text: string;
}

const breaker = { name: 'openai', failureThreshold: 3, resetTimeoutMs: 30_000 };

/** Builds the log; resolves once every workflow has settled and the runtime is closed. */
export async function buildFixture(): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'keel-report-'));
  const db = join(dir, 'keel.db');
  const clock = simulatedClock(START_MS);
  const provider = simulated({
    seed: 11,
    latencyMs: { p50: 900, p95: 2_500 },
    models: {
      'gpt-4': { latencyMs: { p50: 3_000, p95: 6_000 } },
      'gpt-3.5-turbo': {
        latencyMs: { p50: 500, p95: 1_200 },
        confidence: { easyShare: 0.7, easy: { mean: 0.95, stddev: 0.02 }, hard: { mean: 0.6, stddev: 0.15 } },
      },
    },
    faults: [
      {
        fromMs: START_MS + 20 * MIN,
        toMs: START_MS + 23 * MIN,
        kind: 'provider_error',
        model: 'gpt-3.5-turbo',
      },
      {
        fromMs: START_MS + 40 * MIN,
        toMs: START_MS + 45 * MIN,
        kind: 'latency_spike',
        extraLatencyMs: 9_000,
      },
    ],
    respond: (request, rng) => {
      const text = JSON.stringify(request.input ?? null);
      if (text.includes('"fraud"')) return { value: rng.chance(0.85) ? 'legit' : 'fraud' };
      return { value: { text: text.slice(0, 24), ok: true } };
    },
  });
  const rt = createRuntime({
    db,
    clock,
    seed: 5,
    pricing: {
      'gpt-4': { inputPer1K: 0.03, outputPer1K: 0.03 },
      'gpt-3.5-turbo': { inputPer1K: 0.002, outputPer1K: 0.002 },
    },
    budget: {
      dailyUsd: FIXTURE_SETTINGS.budgetUsd,
      alertAt: 0.8,
      onExhausted: 'downgrade',
      downgradeTo: { 'gpt-4': 'gpt-3.5-turbo' },
    },
    errorTargets: FIXTURE_SETTINGS.errorTargets,
    monitor: { windowSize: FIXTURE_SETTINGS.windowSize },
    sla: { p95Ms: FIXTURE_SETTINGS.slaP95Ms },
  });

  const Extracted = z.object({ text: z.string(), ok: z.boolean() });
  const extractor = (
    name: string,
    taskType: string,
    model: string,
    check?: (id: number) => true | { category: 'ocr_error' | 'missing_field'; message: string },
  ) =>
    llmAgent({
      name,
      taskType,
      model,
      timeoutMs: 20_000,
      retry: { attempts: 2, baseDelayMs: 500 },
      provider,
      prompt: (invoice: Invoice) => `${name}: ${invoice.text}`,
      schema: Extracted,
      ...(check
        ? { validate: (v: z.infer<typeof Extracted>) => check(Number(/"id":(\d+)/.exec(v.text)?.[1] ?? -1)) }
        : {}),
    });
  const vendor = extractor('vendor_extraction', 'vendor', 'gpt-4', (id) =>
    id % 9 === 4
      ? { category: 'ocr_error', message: 'vendor name unreadable (scanner noise)' }
      : id % 23 === 5
        ? { category: 'missing_field', message: 'no vendor on the page' }
        : true,
  );
  const amount = extractor('amount_extraction', 'payment', 'gpt-4');
  const date = extractor('date_extraction', 'date', 'gpt-3.5-turbo');
  const validate = llmAgent({
    name: 'validate',
    taskType: 'validation',
    model: 'gpt-3.5-turbo',
    provider,
    prompt: (x: unknown) => `validate ${JSON.stringify(x)}`,
    schema: z.unknown(),
  });
  const route = llmAgent({
    name: 'route',
    taskType: 'routing',
    model: 'gpt-3.5-turbo',
    provider,
    prompt: (x: unknown) => `route ${JSON.stringify(x)}`,
    schema: z.unknown(),
  });
  const invoice = named('invoice', seq(par(vendor, amount, date), validate, route));

  const screener = (i: number) =>
    llmAgent({
      name: `fraud_screener_${i}`,
      taskType: 'fraud',
      model: 'gpt-3.5-turbo',
      breaker,
      provider,
      prompt: (x: { fraud: number }) => `screen ${x.fraud}`,
      schema: z.enum(['legit', 'fraud']),
    });
  const fraud = named('fraud', vote([1, 2, 3, 4, 5].map(screener), { stop: 'decided' }));

  const stage = (name: string, model: string) =>
    llmAgent({
      name,
      taskType: 'screening',
      model,
      provider,
      prompt: (x: { doc: number }) => `screen doc ${x.doc}`,
      schema: Extracted,
    });
  const screening = named(
    'screening',
    cascade([stage('screen_cheap', 'gpt-3.5-turbo'), stage('screen_expensive', 'gpt-4')], { threshold: 0.9 }),
  );

  const settled = { ok: 0, failed: 0 };
  const runs: Promise<void>[] = [];
  const track = (p: Promise<unknown>): void => {
    runs.push(
      p.then(
        () => void settled.ok++,
        () => void settled.failed++,
      ),
    );
  };
  for (let s = 0; s < 3_600; s += 15) {
    if (s % 30 === 0) track(rt.run(invoice, { id: s / 30, text: `ACME invoice #${s / 30} total 12.50` }));
    if (s % 60 === 15) track(rt.run(fraud, { fraud: s / 60 }));
    if (s % 45 === 0) track(rt.run(screening, { doc: s / 45 }));
    await clock.advanceAsync(15_000);
  }
  let pending = true;
  void Promise.all(runs).then(() => {
    pending = false;
  });
  for (let i = 0; i < 200 && pending; i++) await clock.advanceAsync(5_000);
  await Promise.all(runs);
  await rt.close();
  return { dir, db, settled };
}
