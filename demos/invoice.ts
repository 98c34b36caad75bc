/**
 * Demo: the tutorial's invoice pipeline on its production mix. Runs
 * `named('invoice', seq(par(vendor, amount, date), validate, route))` with 24 h caches on the
 * extractions, vendor validation and routing, then the same invoices through the sequential
 * variant, and reads back from the log: cost per week naive vs optimized, P50/P95/P99 against the
 * 10 s SLA (parallel vs sequential), error rate per task against its target, and the root causes.
 */
import type { Invoice } from '../agents/invoice.js';
import { invoiceWorkflow } from '../agents/invoice-workflow.js';
import {
  DEFAULT_ERROR_TARGETS,
  SEED_PRICING,
  createPricing,
  type ErrorCategory,
  type KeelEvent,
} from '../src/index.js';
import { rca } from '../src/analysis.js';
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
import { invoiceStream, TUTORIAL_INVOICE_MIX } from './invoices.js';

/** Latency of one variant against the SLA. */
export interface SlaLatency extends LatencySummary {
  /** Share of workflows at or under the SLA, in [0, 1]. */
  withinSla: number;
  /** True when P95 is at or under the SLA. */
  meetsSla: boolean;
}

/** Error rate of one task type against the tutorial's target. */
export interface TaskErrorRate {
  taskType: string;
  /** Agent outcomes (successes and failures; cancelled siblings excluded). */
  outcomes: number;
  failures: number;
  errorRate: number;
  /** The tutorial's target ratio, or null when it sets none for this task type. */
  target: number | null;
  /** errorRate <= target, or null without a target. */
  withinTarget: boolean | null;
}

/** What {@link runInvoiceDemo} found in the log. */
export interface InvoiceDemoResult {
  demo: 'invoice';
  seed: number;
  count: number;
  db: string;
  invoices: {
    /** Invoices run through the parallel pipeline. */
    processed: number;
    completed: number;
    failed: number;
    /** Invoices whose input repeats an earlier one (same hash): the duplicates. */
    duplicates: number;
  };
  cost: {
    /** Invoices a week the weekly figures are scaled to (the tutorial's 10,000). */
    weeklyVolume: number;
    /** One GPT-4 call of 1,000 tokens at the tutorial's rate, USD ($0.03). */
    naiveCallUsd: number;
    /** Every agent invocation as a GPT-4 call, no cache, USD a week. */
    naivePerWeekUsd: number;
    /** What the logged calls actually cost, USD a week. */
    optimizedPerWeekUsd: number;
    savingPerWeekUsd: number;
    /** saving / naive, in [0, 1]. */
    savingRatio: number;
    cache: { hits: number; misses: number; hitRate: number; savedPerWeekUsd: number };
  };
  latency: { slaP95Ms: number; parallel: SlaLatency; sequential: SlaLatency };
  /** Per task type, in pipeline order. */
  errorRates: TaskErrorRate[];
  rca: {
    failures: number;
    primary: ErrorCategory | null;
    causes: { category: ErrorCategory; count: number; share: number }[];
  };
  /** Alerts the runtime raised during the parallel run (error rates past target, SLA). */
  /** Every alert of the log, both runs (the list `keel report` shows), with the run that raised it. */
  alerts: { kind: string; severity: string; title: string; run: 'parallel' | 'sequential' }[];
}

/** The tutorial's latency SLA: P95 under 10 s. */
const SLA_P95_MS = 10_000;
const TASK_ORDER = ['vendor', 'payment', 'date', 'vendor_validation', 'routing'];

function slaLatency(sorted: number[]): SlaLatency {
  const summary = latencySummary(sorted);
  let within = 0;
  for (const v of sorted) if (v <= SLA_P95_MS) within++;
  return {
    ...summary,
    withinSla: sorted.length ? round(within / sorted.length) : 0,
    meetsSla: summary.p95Ms <= SLA_P95_MS,
  };
}

/** Reads the parallel run's events into the result's figures. */
function analyse(
  options: DemoOptions,
  parallel: readonly KeelEvent[],
  sequential: readonly KeelEvent[],
): InvoiceDemoResult {
  const naiveCallUsd = createPricing({ ...SEED_PRICING }).price('gpt-4', {
    inputTokens: 800,
    outputTokens: 200,
  });
  let processed = 0;
  let completed = 0;
  let failed = 0;
  let duplicates = 0;
  let invoked = 0;
  let spentUsd = 0;
  let hits = 0;
  let misses = 0;
  let savedUsd = 0;
  const seen = new Set<string>();
  const alerts: InvoiceDemoResult['alerts'] = [];
  for (const e of parallel) {
    switch (e.type) {
      case 'workflow.started':
        processed++;
        if (seen.has(e.payload.inputHash)) duplicates++;
        else seen.add(e.payload.inputHash);
        break;
      case 'workflow.completed':
        completed++;
        break;
      case 'workflow.failed':
        failed++;
        break;
      case 'agent.invoked':
        invoked++;
        break;
      case 'cost.incurred':
        spentUsd += e.payload.costUsd;
        break;
      case 'cache.hit':
        hits++;
        savedUsd += e.payload.savedUsd;
        break;
      case 'cache.miss':
        misses++;
        break;
      default:
        break;
    }
  }
  for (const [run, events] of [
    ['parallel', parallel],
    ['sequential', sequential],
  ] as const)
    for (const e of events)
      if (e.type === 'alert.raised')
        alerts.push({ kind: e.payload.kind, severity: e.payload.severity, title: e.payload.title, run });
  const perWeek = processed ? WEEKLY_VOLUME / processed : 0;
  const naivePerWeekUsd = invoked * naiveCallUsd * perWeek;
  const optimizedPerWeekUsd = spentUsd * perWeek;
  const report = rca(parallel);
  const targets = DEFAULT_ERROR_TARGETS as Readonly<Record<string, number>>;
  const taskTypes = Object.keys(report.byTaskType).sort(
    (a, b) => (TASK_ORDER.indexOf(a) + 1 || 99) - (TASK_ORDER.indexOf(b) + 1 || 99) || a.localeCompare(b),
  );
  return {
    demo: 'invoice',
    seed: options.seed,
    count: options.count,
    db: options.db,
    invoices: { processed, completed, failed, duplicates },
    cost: {
      weeklyVolume: WEEKLY_VOLUME,
      naiveCallUsd: round(naiveCallUsd),
      naivePerWeekUsd: round(naivePerWeekUsd, 2),
      optimizedPerWeekUsd: round(optimizedPerWeekUsd, 2),
      savingPerWeekUsd: round(naivePerWeekUsd - optimizedPerWeekUsd, 2),
      savingRatio: naivePerWeekUsd ? round((naivePerWeekUsd - optimizedPerWeekUsd) / naivePerWeekUsd) : 0,
      cache: {
        hits,
        misses,
        hitRate: hits + misses ? round(hits / (hits + misses)) : 0,
        savedPerWeekUsd: round(savedUsd * perWeek, 2),
      },
    },
    latency: {
      slaP95Ms: SLA_P95_MS,
      parallel: slaLatency(workflowLatencies(parallel, 'invoice')),
      sequential: slaLatency(workflowLatencies(sequential, 'invoice_sequential')),
    },
    errorRates: taskTypes.map((taskType) => {
      const g = report.byTaskType[taskType];
      const target = targets[taskType] ?? null;
      const errorRate = g ? round(g.errorRate) : 0;
      return {
        taskType,
        outcomes: g?.outcomes ?? 0,
        failures: g?.failures ?? 0,
        errorRate,
        target,
        withinTarget: target === null ? null : errorRate <= target,
      };
    }),
    rca: {
      failures: report.overall.failures,
      primary: report.overall.primary ?? null,
      causes: report.overall.causes.map((c) => ({
        category: c.category,
        count: c.count,
        share: round(c.percentage / 100),
      })),
    },
    alerts,
  };
}

/**
 * Runs the invoice demo: `count` invoices of the tutorial's production mix through the parallel
 * pipeline (64 in flight), then through the sequential variant, and returns what the log shows.
 *
 * @example
 * const result = await runInvoiceDemo({ db: 'keel.db', count: 1_000, seed: 42 });
 * console.log(formatInvoiceDemo(result)); // naive $1,500/week → optimized …, P95 … vs 10 s, RCA …
 */
export async function runInvoiceDemo(options: DemoOptions): Promise<InvoiceDemoResult> {
  checkDemoOptions(options);
  const clock = await demoClock(options);
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const total = options.count * 2;
  let base = 0;
  const progress = options.onProgress
    ? (done: number): void => options.onProgress?.(base + done, total)
    : undefined;
  const nowMs = clock.now();
  const stream = (): Iterator<Invoice> =>
    invoiceStream({ seed: options.seed, count: options.count, mix: TUTORIAL_INVOICE_MIX, nowMs });

  const variants: { sequential: boolean; startSeq: number; endSeq: number }[] = [];
  for (const sequential of [false, true]) {
    const { rt, startSeq } = await openDemoRuntime(options, clock);
    try {
      const workflow = invoiceWorkflow({ seed: options.seed, sequential });
      await drive(
        clock,
        runPool(stream(), options.count, concurrency, (inv) => rt.run(workflow, inv), progress),
      );
    } finally {
      await rt.close();
    }
    base += options.count;
    variants.push({ sequential, startSeq, endSeq: Number.MAX_SAFE_INTEGER });
  }
  const results = openResults(options);
  try {
    const [par, seqRun] = variants as [(typeof variants)[0], (typeof variants)[0]];
    par.endSeq = seqRun.startSeq;
    seqRun.endSeq = results.lastSeq();
    return analyse(
      options,
      readRange(results, par.startSeq, par.endSeq),
      readRange(results, seqRun.startSeq, seqRun.endSeq),
    );
  } finally {
    await results.close();
  }
}

/**
 * The invoice demo's summary, as printed by `keel demo invoice`.
 *
 * @example
 * console.log(formatInvoiceDemo(await runInvoiceDemo({ db: 'keel.db', count: 500, seed: 1 })));
 */
export function formatInvoiceDemo(r: InvoiceDemoResult): string {
  const c = r.cost;
  const i = r.invoices;
  const row = (label: string, l: SlaLatency): string =>
    `  ${label.padEnd(11)} ${ms(l.p50Ms).padStart(8)} ${ms(l.p95Ms).padStart(8)} ${ms(l.p99Ms).padStart(8)}   ${pct(l.withinSla).padStart(6)}   ${l.meetsSla ? 'meets the SLA' : 'MISSES the SLA'}`;
  const lines = [
    `Invoice processing — ${i.processed.toLocaleString('en-US')} invoices (seed ${r.seed}), log ${r.db}`,
    `  ${i.completed.toLocaleString('en-US')} completed · ${i.failed.toLocaleString('en-US')} failed · ${i.duplicates.toLocaleString('en-US')} duplicates`,
    '',
    `Cost per week at ${c.weeklyVolume.toLocaleString('en-US')} invoices`,
    `  ${`naive: every call on GPT-4 (${usd(c.naiveCallUsd, 3)}), no cache`.padEnd(46)} ${usd(c.naivePerWeekUsd).padStart(11)}`,
    `  ${'optimized: 24 h cache, GPT-3.5 for dates'.padEnd(46)} ${usd(c.optimizedPerWeekUsd).padStart(11)}`,
    `  ${'saving'.padEnd(46)} ${usd(c.savingPerWeekUsd).padStart(11)} (${pct(c.savingRatio)})`,
    `  cache: ${c.cache.hits.toLocaleString('en-US')} hits of ${(c.cache.hits + c.cache.misses).toLocaleString('en-US')} lookups (${pct(c.cache.hitRate)}), ${usd(c.cache.savedPerWeekUsd)} a week saved`,
    '',
    `Latency against the ${ms(r.latency.slaP95Ms)} P95 SLA`,
    `  ${''.padEnd(11)} ${'P50'.padStart(8)} ${'P95'.padStart(8)} ${'P99'.padStart(8)}   within SLA`,
    row('parallel', r.latency.parallel),
    row('sequential', r.latency.sequential),
    '',
    'Error rate per task (target), parallel run (keel report merges both runs)',
    ...r.errorRates.map(
      (t) =>
        `  ${t.taskType.padEnd(18)} ${pct(t.errorRate).padStart(6)} of ${t.outcomes.toLocaleString('en-US').padStart(6)}` +
        (t.target === null ? '' : `   target < ${pct(t.target)}  ${t.withinTarget ? 'ok' : 'OVER TARGET'}`),
    ),
    '',
    `Root causes (${r.rca.failures.toLocaleString('en-US')} failed agent calls, parallel run)`,
    ...r.rca.causes.map(
      (cause) =>
        `  - ${cause.category}: ${cause.count.toLocaleString('en-US')} (${pct(cause.share, 0)})${cause.category === r.rca.primary ? '  ← primary root cause' : ''}`,
    ),
  ];
  if (r.alerts.length > 0) {
    lines.push('', `Alerts raised (${r.alerts.length}, both runs: the list keel report shows)`);
    for (const a of r.alerts.slice(0, 8)) lines.push(`  [${a.severity}] ${a.title} (${a.run} run)`);
    if (r.alerts.length > 8) lines.push(`  … and ${r.alerts.length - 8} more`);
  }
  return lines.join('\n');
}
