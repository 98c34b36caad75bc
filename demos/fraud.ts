/**
 * Demo: the tutorial's early-terminating vote. Five fraud screeners judge the same transactions
 * twice — every screener in parallel (`stop: 'all'`, $0.15 a transaction), then adaptively
 * (`stop: 'decided'`: stop once the majority cannot change, ≈ $0.10) — and the log shows the
 * screeners used, the cost and that every decision came out the same.
 */
import { fraudScreeners, type Transaction } from '../agents/fraud.js';
import { named, vote, type KeelEvent } from '../src/index.js';
import {
  DEFAULT_CONCURRENCY,
  WEEKLY_VOLUME,
  checkDemoOptions,
  demoClock,
  drive,
  latencySummary,
  ms,
  openDemoRuntime,
  openResults,
  pct,
  readRange,
  round,
  runPool,
  usd,
  workflowLatencies,
  type DemoOptions,
  type LatencySummary,
} from './harness.js';
import { transactionStream } from './transactions.js';

/** What the log shows of one way of voting. */
export interface VoteStats {
  /** Workflow name: `fraud_full` or `fraud_adaptive`. */
  workflow: string;
  transactions: number;
  /** Mean screeners called per transaction. */
  agentsPerTransaction: number;
  /** Transactions by screeners called, e.g. `{ "3": 712, "4": 180, "5": 108 }`. */
  agentsUsed: Record<string, number>;
  costPerTransactionUsd: number;
  /** Cost of the tutorial's 10,000 transactions a week, USD. */
  costPerWeekUsd: number;
  latency: LatencySummary;
  /** Share of transactions decided `fraud`. */
  fraudShare: number;
}

/** What {@link runFraudDemo} found in the log. */
export interface FraudDemoResult {
  demo: 'fraud';
  seed: number;
  count: number;
  db: string;
  full: VoteStats;
  adaptive: VoteStats;
  /** Transactions decided by both, and how many got the same decision. */
  decisions: { compared: number; same: number };
  /** (full − adaptive) / full cost, in [0, 1]. */
  savingRatio: number;
}

interface Decided {
  inputHash: string;
  value: unknown;
  agentsUsed: number;
  costUsd: number;
}

/** Per workflow of `name`: its input hash, decision, screeners used and cost. */
function decisions(events: readonly KeelEvent[], name: string): Map<string, Decided> {
  const byId = new Map<string, Decided>();
  for (const e of events) {
    if (e.type === 'workflow.started' && e.payload.name === name) {
      byId.set(e.workflowId, { inputHash: e.payload.inputHash, value: undefined, agentsUsed: 0, costUsd: 0 });
      continue;
    }
    const d = byId.get(e.workflowId);
    if (!d) continue;
    if (e.type === 'vote.decided') {
      d.value = e.payload.value;
      d.agentsUsed = e.payload.agentsUsed;
    } else if (e.type === 'workflow.completed' || e.type === 'workflow.failed') d.costUsd = e.payload.costUsd;
  }
  return byId;
}

function voteStats(events: readonly KeelEvent[], name: string, decided: Map<string, Decided>): VoteStats {
  const agentsUsed: Record<string, number> = {};
  let agents = 0;
  let cost = 0;
  let fraud = 0;
  for (const d of decided.values()) {
    agents += d.agentsUsed;
    cost += d.costUsd;
    if (d.value === 'fraud') fraud++;
    const k = String(d.agentsUsed);
    agentsUsed[k] = (agentsUsed[k] ?? 0) + 1;
  }
  const n = decided.size;
  return {
    workflow: name,
    transactions: n,
    agentsPerTransaction: n ? round(agents / n, 3) : 0,
    agentsUsed,
    costPerTransactionUsd: n ? round(cost / n) : 0,
    costPerWeekUsd: n ? round((cost / n) * WEEKLY_VOLUME, 2) : 0,
    latency: latencySummary(workflowLatencies(events, name)),
    fraudShare: n ? round(fraud / n) : 0,
  };
}

/**
 * Runs the fraud demo: `count` transactions of the tutorial's mix (40 % clear non-fraud, 30 %
 * clear fraud, 30 % borderline) through five screeners voting in full, then adaptively.
 *
 * @example
 * const result = await runFraudDemo({ db: 'keel.db', count: 1_000, seed: 42 });
 * result.decisions; // { compared: 1000, same: 1000 }
 */
export async function runFraudDemo(options: DemoOptions): Promise<FraudDemoResult> {
  checkDemoOptions(options);
  const clock = await demoClock(options);
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const total = options.count * 2;
  const { rt, startSeq } = await openDemoRuntime(options, clock);
  try {
    // Fresh screeners with the same seeds for each variant: each screener judges a transaction the same way.
    const full = named(
      'fraud_full',
      vote(fraudScreeners({ seed: options.seed }), { stop: 'all', launch: 'parallel' }),
    );
    const adaptive = named(
      'fraud_adaptive',
      vote(fraudScreeners({ seed: options.seed }), { stop: 'decided' }),
    );
    let base = 0;
    for (const topology of [full, adaptive]) {
      const progress = options.onProgress
        ? (done: number): void => options.onProgress?.(base + done, total)
        : undefined;
      const transactions = transactionStream({ seed: options.seed, count: options.count });
      await drive(
        clock,
        runPool(transactions, options.count, concurrency, (t: Transaction) => rt.run(topology, t), progress),
      );
      base += options.count;
    }
  } finally {
    await rt.close();
  }
  const results = openResults(options);
  try {
    const events = readRange(results, startSeq, results.lastSeq());
    const fullDecided = decisions(events, 'fraud_full');
    const adaptiveDecided = decisions(events, 'fraud_adaptive');
    const fullByInput = new Map<string, unknown>();
    for (const d of fullDecided.values()) fullByInput.set(d.inputHash, d.value);
    let compared = 0;
    let same = 0;
    for (const d of adaptiveDecided.values()) {
      if (!fullByInput.has(d.inputHash)) continue;
      compared++;
      if (fullByInput.get(d.inputHash) === d.value && d.value !== undefined) same++;
    }
    const fullStats = voteStats(events, 'fraud_full', fullDecided);
    const adaptiveStats = voteStats(events, 'fraud_adaptive', adaptiveDecided);
    return {
      demo: 'fraud',
      seed: options.seed,
      count: options.count,
      db: options.db,
      full: fullStats,
      adaptive: adaptiveStats,
      decisions: { compared, same },
      savingRatio: fullStats.costPerTransactionUsd
        ? round(1 - adaptiveStats.costPerTransactionUsd / fullStats.costPerTransactionUsd)
        : 0,
    };
  } finally {
    await results.close();
  }
}

/**
 * The fraud demo's summary, as printed by `keel demo fraud`.
 *
 * @example
 * console.log(formatFraudDemo(await runFraudDemo({ db: 'keel.db', count: 500, seed: 1 })));
 */
export function formatFraudDemo(r: FraudDemoResult): string {
  const row = (label: string, s: VoteStats): string =>
    `  ${label.padEnd(25)} ${s.agentsPerTransaction.toFixed(2).padStart(6)} ${usd(s.costPerTransactionUsd, 3).padStart(8)} ${usd(s.costPerWeekUsd).padStart(11)} ${ms(s.latency.p50Ms).padStart(8)} ${ms(s.latency.p95Ms).padStart(8)}`;
  const spread = Object.entries(r.adaptive.agentsUsed)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([k, n]) => `${k} screeners: ${pct(n / (r.adaptive.transactions || 1))}`)
    .join(' · ');
  return [
    `Fraud screening — ${r.full.transactions.toLocaleString('en-US')} transactions, 5 screeners voting (seed ${r.seed}), log ${r.db}`,
    '',
    `  ${''.padEnd(25)} ${'agents'.padStart(6)} ${'per txn'.padStart(8)} ${'per week'.padStart(11)} ${'P50'.padStart(8)} ${'P95'.padStart(8)}`,
    row('full (stop: all)', r.full),
    row('adaptive (stop: decided)', r.adaptive),
    '',
    `  adaptive: ${spread}`,
    `  saving: ${pct(r.savingRatio)} · same decisions: ${r.decisions.same.toLocaleString('en-US')}/${r.decisions.compared.toLocaleString('en-US')} · decided fraud: ${pct(r.adaptive.fraudShare)}`,
  ].join('\n');
}
