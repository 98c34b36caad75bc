/**
 * Builds real event logs for the what-if and CLI tests: deterministic agents priced at the
 * tutorial's flat rates (a 1,000-token GPT-3.5 call costs $0.002, a GPT-4 call $0.03), run by a
 * runtime on virtual time into a temp SQLite file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { SEED_PRICING } from '../../src/cost/pricing.js';
import { afterEach } from 'vitest';
import { createRuntime, type Runtime, type RuntimeConfig, type WorkflowResult } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';
import { cascade } from '../../src/supervisor/cascade.js';
import { named, type Topology } from '../../src/supervisor/topology.js';
import { vote, type VoteOptions, type VoteResult } from '../../src/supervisor/vote.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';

/** 1,000 tokens: $0.002 on gpt-3.5-turbo, $0.03 on gpt-4 at SEED_PRICING. */
export const USAGE = { inputTokens: 500, outputTokens: 500 };
export const CHEAP_USD = 0.002;
export const GPT4_USD = 0.03;

/** A temp directory removed by `cleanup()`. */
export function tempDir(): { dir: string; path: (name: string) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'keel-whatif-'));
  return {
    dir,
    path: (name) => join(dir, name),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** What {@link perTestScratch} gives a test file. */
export interface Scratch {
  /** This test's temporary directory (made on first use). */
  dir(): ReturnType<typeof tempDir>;
  /** Closes `rt` after the test; returns it. */
  keep<R extends Runtime>(rt: R): R;
  /** Runtimes kept so far in this test. */
  readonly kept: number;
}

/**
 * Per-test scratch space for a test file: a temporary directory and the runtimes the test opens,
 * closed and removed after each test (registers an `afterEach`; call it at module level).
 */
export function perTestScratch(): Scratch {
  let tmp: ReturnType<typeof tempDir> | undefined;
  const runtimes: Runtime[] = [];
  afterEach(async () => {
    for (const rt of runtimes.splice(0)) await rt.close();
    tmp?.cleanup();
    tmp = undefined;
  });
  return {
    dir: () => (tmp ??= tempDir()),
    keep: (rt) => {
      runtimes.push(rt);
      return rt;
    },
    get kept() {
      return runtimes.length;
    },
  };
}

/** A runtime on a fresh simulated clock, priced at the tutorial's rates. */
export function openRuntime(
  db: string,
  config: Omit<RuntimeConfig, 'db' | 'clock' | 'store'> = {},
): Runtime<SqliteEventStore> {
  return createRuntime({
    db,
    clock: simulatedClock(),
    seed: 7,
    pricing: { ...SEED_PRICING },
    metrics: false,
    tracing: false,
    ...config,
  });
}

/** Runs each input in turn (agents answer at once, so no clock advance is needed), `gapMs` apart. */
export async function runAll<I, O>(
  rt: Runtime,
  topology: Topology<I, O>,
  inputs: readonly I[],
  gapMs = 0,
): Promise<WorkflowResult<O>[]> {
  const out: WorkflowResult<O>[] = [];
  for (const input of inputs) {
    out.push(await rt.run(topology, input));
    if (gapMs > 0) (rt.clock as SimulatedClock).advance(gapMs);
  }
  return out;
}

// ── cascade ───────────────────────────────────────────────────────────────────────────────────

/** An invoice for the cascade: the cheap model's confidence and answer, and the truth. */
export interface Invoice {
  id: string;
  confidence: number;
  truth: string;
  cheapAnswer: string;
}

/**
 * `n` invoices with cheap-model confidences spread over [0.70, 0.99]; the cheap model is right
 * when its confidence is >= 0.92 and wrong below (GPT-4 is always right).
 */
export function invoices(n: number): Invoice[] {
  const out: Invoice[] = [];
  for (let i = 0; i < n; i++) {
    const confidence = Math.round((0.7 + ((i * 37) % 30) / 100) * 100) / 100;
    const truth = `vendor-${i % 7}`;
    out.push({ id: `INV-${i}`, confidence, truth, cheapAnswer: confidence >= 0.92 ? truth : `${truth}?` });
  }
  return out;
}

/** The tutorial's two-stage cascade: GPT-3.5 screening, GPT-4 escalation. */
export function triage(threshold: number): Topology<Invoice, string> {
  const cheap = agent({
    name: 'screen',
    model: 'gpt-3.5-turbo',
    run: (inv: Invoice) =>
      Promise.resolve({ value: inv.cheapAnswer, confidence: inv.confidence, usage: USAGE }),
  });
  const expensive = agent({
    name: 'escalate',
    model: 'gpt-4',
    run: (inv: Invoice) => Promise.resolve({ value: inv.truth, confidence: 0.99, usage: USAGE }),
  });
  return named('triage', cascade([cheap, expensive], { threshold }));
}

/** Records the cascade over `inputs`; with `feedback`, logs ground truth for every run. */
export async function recordCascade(
  db: string,
  threshold: number,
  inputs: readonly Invoice[],
  feedback: 'expected' | 'verdict' | 'none' = 'expected',
): Promise<WorkflowResult<string>[]> {
  const rt = openRuntime(db);
  try {
    const results = await runAll(rt, triage(threshold), inputs);
    if (feedback !== 'none') {
      for (const [i, r] of results.entries()) {
        const inv = inputs[i] as Invoice;
        await rt.feedback(r.workflowId, {
          correct: r.value === inv.truth,
          ...(feedback === 'expected' ? { expected: inv.truth } : {}),
        });
      }
    }
    return results;
  } finally {
    await rt.close();
  }
}

// ── vote ──────────────────────────────────────────────────────────────────────────────────────

/** A transaction with each screener's verdict, in voter order, and the truth. */
export interface Transaction {
  id: string;
  verdicts: readonly ('fraud' | 'ok')[];
  truth: 'fraud' | 'ok';
}

/** The tutorial's mix: 40% clear ok, 30% clear fraud, 20% 4-1, 10% 3-2 (per 10 transactions). */
export function transactions(n: number): Transaction[] {
  const patterns: { verdicts: Transaction['verdicts']; truth: Transaction['truth'] }[] = [
    { verdicts: ['ok', 'ok', 'ok', 'ok', 'ok'], truth: 'ok' },
    { verdicts: ['ok', 'ok', 'ok', 'ok', 'fraud'], truth: 'ok' },
    { verdicts: ['ok', 'ok', 'ok', 'fraud', 'ok'], truth: 'ok' },
    { verdicts: ['ok', 'ok', 'ok', 'ok', 'ok'], truth: 'ok' },
    { verdicts: ['fraud', 'fraud', 'fraud', 'fraud', 'fraud'], truth: 'fraud' },
    { verdicts: ['fraud', 'fraud', 'fraud', 'ok', 'fraud'], truth: 'fraud' },
    { verdicts: ['fraud', 'fraud', 'fraud', 'fraud', 'ok'], truth: 'fraud' },
    { verdicts: ['ok', 'fraud', 'ok', 'ok', 'fraud'], truth: 'ok' },
    { verdicts: ['fraud', 'ok', 'fraud', 'fraud', 'ok'], truth: 'fraud' },
    { verdicts: ['ok', 'fraud', 'fraud', 'ok', 'ok'], truth: 'fraud' },
  ];
  return Array.from({ length: n }, (_, i) => ({
    id: `TX-${i}`,
    ...(patterns[i % patterns.length] as (typeof patterns)[0]),
  }));
}

/** Five GPT-4 screeners voting on a transaction. */
export function fraud(stop: VoteOptions<string>['stop']): Topology<Transaction, VoteResult<string>> {
  const screeners = [0, 1, 2, 3, 4].map((i) =>
    agent({
      name: `screener_${i + 1}`,
      model: 'gpt-4',
      run: (tx: Transaction) => Promise.resolve({ value: tx.verdicts[i] ?? 'ok', usage: USAGE }),
    }),
  );
  return named('fraud', vote(screeners, { stop: stop ?? 'decided' }));
}

/** Records the vote over `inputs` with ground truth (`expected` is the voted value). */
export async function recordVote(
  db: string,
  stop: VoteOptions<string>['stop'],
  inputs: readonly Transaction[],
): Promise<WorkflowResult<VoteResult<string>>[]> {
  const rt = openRuntime(db);
  try {
    const results = await runAll(rt, fraud(stop), inputs);
    for (const [i, r] of results.entries()) {
      const tx = inputs[i] as Transaction;
      await rt.feedback(r.workflowId, { correct: r.value.value === tx.truth, expected: tx.truth });
    }
    return results;
  } finally {
    await rt.close();
  }
}

// ── cache ─────────────────────────────────────────────────────────────────────────────────────

/** A vendor lookup cached for `ttlMs`; its cost depends on the key only. */
export function vendorLookup(ttlMs: number): Topology<{ vendor: string }, string> {
  return agent({
    name: 'vendor_validation',
    model: 'gpt-4',
    cache: { ttlMs },
    run: (input: { vendor: string }) =>
      Promise.resolve({
        value: input.vendor.toUpperCase(),
        usage: { inputTokens: 400 + input.vendor.length * 100, outputTokens: 100 },
      }),
  });
}

/** Vendors looked up in turn, 20 minutes apart: a few repeat often, some rarely. */
export const VENDOR_SEQUENCE = [
  'acme',
  'wonka',
  'acme',
  'stark',
  'acme',
  'wonka',
  'tyrell',
  'acme',
  'stark',
  'acme',
  'wonka',
  'acme',
  'acme',
  'stark',
  'wonka',
  'tyrell',
  'acme',
  'wonka',
  'acme',
  'stark',
].map((vendor) => ({ vendor }));
export const VENDOR_GAP_MS = 20 * 60_000;

/** Records the cached lookups (fresh cache file next to `db`). */
export async function recordLookups(db: string, ttlMs: number): Promise<void> {
  const rt = openRuntime(db);
  try {
    await runAll(rt, vendorLookup(ttlMs), VENDOR_SEQUENCE, VENDOR_GAP_MS);
  } finally {
    await rt.close();
  }
}
