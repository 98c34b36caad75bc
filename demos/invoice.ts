/**
 * Demo: the tutorial's invoice story, told with its numbers and read back from the log the demo
 * writes. Three runs, each on its own runtime over the same file:
 *
 * 1. **production**: `named('invoice', seq(par(vendor, amount, date), validate, route))` on the
 *    tutorial's production mix (OCR errors, missing fields, edge cases, duplicates): error rate
 *    per task against its target, root causes, and the vendor error budget — the run stands for
 *    a week at `count / 10,000` scale, so its budget is 5 % of `count` and alerts at 80 %;
 * 2. **latency**: the tutorial's three agents (about 5 s, 6 s, 7 s; retries with backoff, no
 *    breaker, a cold start) in parallel, then one after another: P50/P90/P95/P99 against the 10 s
 *    SLA, beside the tutorial's 18.5 s and 8.2 s;
 * 3. **caching**: the tutorial's workload, three GPT-4 calls an invoice with 24 h caches, 8 %
 *    duplicates and vendors that repeat: hit rate and weekly cost naive vs cached, beside the
 *    tutorial's 60 % and $900 → $360.
 *
 * Every figure is counted from the events of the log; weekly figures scale the run's per-invoice
 * figures to the tutorial's 10,000 invoices a week (and say so).
 */
import type { Invoice } from '../agents/invoice.js';
import { invoiceWorkflow } from '../agents/invoice-workflow.js';
import {
  DEFAULT_ERROR_TARGETS,
  type ErrorCategory,
  type KeelEvent,
  type SqliteEventStore,
} from '../src/index.js';
import { rca } from '../src/analysis.js';
import {
  DEFAULT_CONCURRENCY,
  WEEKLY_VOLUME,
  besideTutorial,
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
  runPaced,
  runPool,
  usd,
  vsTutorial,
  workflowLatencies,
  type DemoOptions,
  type LatencySummary,
  type TutorialFigure,
} from './harness.js';
import {
  CACHING_VENDORS,
  COLD_START_EXTRA_MS,
  COLD_START_MS,
  LATENCY_ARRIVAL_MS,
  LATENCY_SEQUENTIAL_WORKFLOW,
  LATENCY_WORKFLOW,
  cachingWorkflow,
  latencyWorkflow,
} from './invoice-scenarios.js';
import { CLEAN_INVOICE_MIX, invoiceStream, TUTORIAL_INVOICE_MIX } from './invoices.js';

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
  /**
   * The same task type over every workflow this demo wrote (production, latency and caching runs
   * merged): the figure `keel report` shows for this log, derived the same way.
   */
  wholeLog: { outcomes: number; failures: number; errorRate: number };
}

/** The runs of the invoice demo, as alerts are labelled. */
export type InvoiceRun = 'production' | 'latency parallel' | 'latency sequential' | 'caching';

/** What {@link runInvoiceDemo} found in the log. */
export interface InvoiceDemoResult {
  demo: 'invoice';
  seed: number;
  count: number;
  db: string;
  /** The production run (workflow `invoice`, the tutorial's production mix). */
  invoices: {
    processed: number;
    completed: number;
    failed: number;
    /** Invoices whose input repeats an earlier one (same hash): the duplicates. */
    duplicates: number;
  };
  /** Production run, per task type in pipeline order. */
  errorRates: TaskErrorRate[];
  rca: {
    failures: number;
    primary: ErrorCategory | null;
    causes: { category: ErrorCategory; count: number; share: number }[];
  };
  /**
   * The vendor error budget, from the runtime's `error_budget` alerts in the log (their data holds
   * the budget), scaled from the run (a week at `count / 10,000` scale) to 10,000 invoices a week.
   */
  errorBudget: {
    taskType: 'vendor';
    targetRate: number;
    /** Invoices the run's budget is for (its `monitor.weeklyVolume`): `count`. */
    runVolume: number;
    /** Acceptable failures a week at 10,000 invoices (tutorial: 500). */
    acceptableFailures: TutorialFigure;
    /** Failures at which it alerts, a week (tutorial: 400). */
    alertThreshold: TutorialFigure;
    /** Vendor extraction failures in the run. */
    failures: number;
    /** failures / the run's acceptable failures (1 = the whole budget). */
    consumed: number;
    /** Failures a week at the run's rate and 10,000 invoices. */
    failuresPerWeek: number;
    /** Invoice (1-based, in log order) at which the 80 % alert fired, or null. */
    alertedAtInvoice: number | null;
    /** Invoice at which the budget ran out, or null. */
    exhaustedAtInvoice: number | null;
  };
  /** The latency scenario: the tutorial's three agents, parallel and sequential. */
  latency: {
    slaP95Ms: number;
    /** Requests in each variant. */
    requests: number;
    parallel: SlaLatency;
    sequential: SlaLatency;
    /** The tutorial's figures (ms) beside the measured ones. */
    tutorial: {
      sequentialP50Ms: TutorialFigure;
      sequentialP90Ms: TutorialFigure;
      sequentialP95Ms: TutorialFigure;
      sequentialP99Ms: TutorialFigure;
      parallelP95Ms: TutorialFigure;
      /** 1 − parallel P95 / sequential P95 (tutorial: 56 %). */
      reduction: TutorialFigure;
    };
  };
  /** The caching scenario: three GPT-4 calls an invoice, 24 h caches. */
  caching: {
    invoices: number;
    duplicates: number;
    /** Lookups and hits by cached agent, in pipeline order. */
    agents: { agent: string; lookups: number; hits: number; hitRate: number }[];
    lookups: number;
    hits: number;
    /** hits / lookups (tutorial: ~60 %). */
    hitRate: TutorialFigure;
    /** Model calls per invoice without a cache: lookups / invoices (tutorial: 3). */
    callsPerInvoice: number;
    /** Mean cost of a model call, USD (tutorial: $0.03). */
    callUsd: number;
    /** Every lookup a model call at the mean recorded call cost, a week (tutorial: $900). */
    naivePerWeekUsd: TutorialFigure;
    /** What the calls cost, a week (tutorial: $360). */
    cachedPerWeekUsd: TutorialFigure;
  };
  /** Every alert of the log this demo wrote (the list `keel report` shows), with the run that raised it. */
  alerts: { kind: string; severity: string; title: string; run: InvoiceRun }[];
}

/** The tutorial's latency SLA: P95 under 10 s. */
const SLA_P95_MS = 10_000;
const TASK_ORDER = ['vendor', 'payment', 'date', 'vendor_validation', 'routing'];
const CACHED_AGENTS = ['vendor_extraction', 'vendor_validation', 'approval_routing'];

/** The tutorial's figures. */
export const TUTORIAL_INVOICE_FIGURES = Object.freeze({
  sequentialP50Ms: 5_200,
  sequentialP90Ms: 8_700,
  sequentialP95Ms: 18_500,
  sequentialP99Ms: 42_300,
  parallelP95Ms: 8_200,
  latencyReduction: 0.56,
  cacheHitRate: 0.6,
  naivePerWeekUsd: 900,
  cachedPerWeekUsd: 360,
  vendorAcceptableFailures: 500,
  vendorAlertThreshold: 400,
});

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

type Runs = Record<InvoiceRun, readonly KeelEvent[]>;

function productionFigures(
  events: readonly KeelEvent[],
  all: readonly KeelEvent[],
): Pick<InvoiceDemoResult, 'invoices' | 'errorRates' | 'rca'> {
  let processed = 0;
  let completed = 0;
  let failed = 0;
  let duplicates = 0;
  const seen = new Set<string>();
  for (const e of events) {
    if (e.type === 'workflow.started') {
      processed++;
      if (seen.has(e.payload.inputHash)) duplicates++;
      else seen.add(e.payload.inputHash);
    } else if (e.type === 'workflow.completed') completed++;
    else if (e.type === 'workflow.failed') failed++;
  }
  const report = rca(events);
  const merged = rca(all);
  const targets = DEFAULT_ERROR_TARGETS as Readonly<Record<string, number>>;
  const taskTypes = Object.keys(report.byTaskType).sort(
    (a, b) => (TASK_ORDER.indexOf(a) + 1 || 99) - (TASK_ORDER.indexOf(b) + 1 || 99) || a.localeCompare(b),
  );
  return {
    invoices: { processed, completed, failed, duplicates },
    errorRates: taskTypes.map((taskType) => {
      const g = report.byTaskType[taskType];
      const w = merged.byTaskType[taskType];
      const target = targets[taskType] ?? null;
      const errorRate = g ? round(g.errorRate) : 0;
      return {
        taskType,
        outcomes: g?.outcomes ?? 0,
        failures: g?.failures ?? 0,
        errorRate,
        target,
        withinTarget: target === null ? null : errorRate <= target,
        wholeLog: {
          outcomes: w?.outcomes ?? 0,
          failures: w?.failures ?? 0,
          errorRate: round(w?.errorRate ?? 0),
        },
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
  };
}

interface BudgetData {
  volume: number;
  targetRate: number;
  acceptableFailures: number;
  alertThreshold: number;
}

function isBudgetData(data: unknown): data is BudgetData {
  const d = data as Partial<BudgetData> | null;
  return (
    typeof d?.volume === 'number' &&
    typeof d.targetRate === 'number' &&
    typeof d.acceptableFailures === 'number' &&
    typeof d.alertThreshold === 'number'
  );
}

function errorBudgetFigures(
  events: readonly KeelEvent[],
  count: number,
  failures: number,
): InvoiceDemoResult['errorBudget'] {
  let budget: BudgetData | undefined;
  let invoice = 0;
  let alertedAtInvoice: number | null = null;
  let exhaustedAtInvoice: number | null = null;
  for (const e of events) {
    if (e.type === 'workflow.started') invoice++;
    else if (e.type === 'alert.raised' && e.payload.kind === 'error_budget' && isBudgetData(e.payload.data)) {
      const d = e.payload.data;
      if (!e.payload.id.startsWith('error_budget:vendor:')) continue;
      budget = d;
      if (e.payload.id.endsWith(':100')) exhaustedAtInvoice ??= invoice;
      else alertedAtInvoice ??= invoice;
    }
  }
  // Without an alert the log holds no budget (the run stayed under 80 % of it): the runtime's own.
  const b = budget ?? {
    volume: count,
    targetRate: DEFAULT_ERROR_TARGETS.vendor,
    acceptableFailures: Math.floor(count * DEFAULT_ERROR_TARGETS.vendor + 1e-9),
    alertThreshold: Math.floor(Math.floor(count * DEFAULT_ERROR_TARGETS.vendor + 1e-9) * 0.8 + 1e-9),
  };
  const scale = WEEKLY_VOLUME / b.volume;
  return {
    taskType: 'vendor',
    targetRate: b.targetRate,
    runVolume: b.volume,
    acceptableFailures: vsTutorial(
      b.acceptableFailures * scale,
      TUTORIAL_INVOICE_FIGURES.vendorAcceptableFailures,
    ),
    alertThreshold: vsTutorial(b.alertThreshold * scale, TUTORIAL_INVOICE_FIGURES.vendorAlertThreshold),
    failures,
    consumed: b.acceptableFailures ? round(failures / b.acceptableFailures) : 0,
    failuresPerWeek: Math.round(failures * scale),
    alertedAtInvoice,
    exhaustedAtInvoice,
  };
}

function latencyFigures(runs: Runs): InvoiceDemoResult['latency'] {
  const parallel = slaLatency(workflowLatencies(runs['latency parallel'], LATENCY_WORKFLOW));
  const sequential = slaLatency(workflowLatencies(runs['latency sequential'], LATENCY_SEQUENTIAL_WORKFLOW));
  const t = TUTORIAL_INVOICE_FIGURES;
  return {
    slaP95Ms: SLA_P95_MS,
    requests: workflowLatencies(runs['latency parallel'], LATENCY_WORKFLOW).length,
    parallel,
    sequential,
    tutorial: {
      sequentialP50Ms: vsTutorial(sequential.p50Ms, t.sequentialP50Ms),
      sequentialP90Ms: vsTutorial(sequential.p90Ms, t.sequentialP90Ms),
      sequentialP95Ms: vsTutorial(sequential.p95Ms, t.sequentialP95Ms),
      sequentialP99Ms: vsTutorial(sequential.p99Ms, t.sequentialP99Ms),
      parallelP95Ms: vsTutorial(parallel.p95Ms, t.parallelP95Ms),
      reduction: vsTutorial(
        sequential.p95Ms ? round(1 - parallel.p95Ms / sequential.p95Ms) : 0,
        t.latencyReduction,
      ),
    },
  };
}

function cachingFigures(events: readonly KeelEvent[]): InvoiceDemoResult['caching'] {
  let invoices = 0;
  let duplicates = 0;
  let spentUsd = 0;
  let calls = 0;
  let callsUsd = 0;
  const seen = new Set<string>();
  const byAgent = new Map<string, { lookups: number; hits: number }>();
  const tally = (agent: string): { lookups: number; hits: number } => {
    let t = byAgent.get(agent);
    if (!t) byAgent.set(agent, (t = { lookups: 0, hits: 0 }));
    return t;
  };
  for (const e of events) {
    switch (e.type) {
      case 'workflow.started':
        invoices++;
        if (seen.has(e.payload.inputHash)) duplicates++;
        else seen.add(e.payload.inputHash);
        break;
      // Every invocation of a cached agent looks its answer up; a hit is an answer the cache
      // served (a stored one, or an identical call already in flight: `cached: true`).
      case 'agent.invoked':
        tally(e.payload.agent).lookups++;
        break;
      case 'agent.succeeded':
        if (e.payload.cached) tally(e.payload.agent).hits++;
        else {
          calls++;
          callsUsd += e.payload.costUsd;
        }
        break;
      case 'cost.incurred':
        spentUsd += e.payload.costUsd;
        break;
      default:
        break;
    }
  }
  const agents = [...byAgent]
    .map(([agent, t]) => ({ agent, ...t, hitRate: t.lookups ? round(t.hits / t.lookups) : 0 }))
    .sort(
      (a, b) =>
        (CACHED_AGENTS.indexOf(a.agent) + 1 || 99) - (CACHED_AGENTS.indexOf(b.agent) + 1 || 99) ||
        a.agent.localeCompare(b.agent),
    );
  const lookups = agents.reduce((k, a) => k + a.lookups, 0);
  const hits = agents.reduce((k, a) => k + a.hits, 0);
  const perWeek = invoices ? WEEKLY_VOLUME / invoices : 0;
  const callUsd = calls ? callsUsd / calls : 0;
  const t = TUTORIAL_INVOICE_FIGURES;
  return {
    invoices,
    duplicates,
    agents,
    lookups,
    hits,
    hitRate: vsTutorial(lookups ? round(hits / lookups) : 0, t.cacheHitRate),
    callsPerInvoice: invoices ? round(lookups / invoices, 2) : 0,
    callUsd: round(callUsd, 5),
    naivePerWeekUsd: vsTutorial(round(lookups * callUsd * perWeek, 2), t.naivePerWeekUsd),
    cachedPerWeekUsd: vsTutorial(round(spentUsd * perWeek, 2), t.cachedPerWeekUsd),
  };
}

/**
 * Runs the invoice demo: `count` invoices of the tutorial's production mix through the pipeline
 * (64 in flight), then the latency scenario (`count` requests arriving 4 a second, parallel, then
 * sequential), then the caching scenario (`count` invoices), and returns what the log shows.
 *
 * @example
 * const result = await runInvoiceDemo({ db: 'keel.db', count: 1_000, seed: 42 });
 * console.log(formatInvoiceDemo(result)); // cache 60 % and $900 → $360 a week, P95 18.5 s vs 8.2 s, …
 */
export async function runInvoiceDemo(options: DemoOptions): Promise<InvoiceDemoResult> {
  checkDemoOptions(options);
  const clock = await demoClock(options);
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const { count, seed } = options;
  const total = count * 4;
  let base = 0;
  const progress = options.onProgress
    ? (done: number): void => options.onProgress?.(base + done, total)
    : undefined;
  const nowMs = clock.now();
  const invoices = (mix = TUTORIAL_INVOICE_MIX, vendors?: number): Iterator<Invoice> =>
    invoiceStream({ seed, count, mix, nowMs, ...(vendors ? { vendors } : {}) });

  const ranges: { run: InvoiceRun; startSeq: number }[] = [];
  const phase = async (
    run: InvoiceRun,
    work: (rt: Awaited<ReturnType<typeof openDemoRuntime>>['rt']) => Promise<void>,
    config: Parameters<typeof openDemoRuntime>[2] = {},
  ): Promise<void> => {
    const { rt, startSeq } = await openDemoRuntime(options, clock, config);
    ranges.push({ run, startSeq });
    try {
      await drive(clock, work(rt));
    } finally {
      await rt.close();
    }
    base += count;
  };

  // 1. Production: the run stands for a week at count / 10,000 scale, so its error budget is for
  //    `count` invoices (5 % of them for vendor extraction, alerting at 80 %).
  await phase(
    'production',
    (rt) => {
      const workflow = invoiceWorkflow({ seed });
      return runPool(invoices(), count, concurrency, (inv) => rt.run(workflow, inv), progress);
    },
    { monitor: { weeklyVolume: { vendor: count } } },
  );
  // 2. Latency: requests arrive at a steady pace on a freshly deployed (cold) service, twice.
  for (const sequential of [false, true]) {
    await phase(sequential ? 'latency sequential' : 'latency parallel', (rt) => {
      const workflow = latencyWorkflow(seed, sequential, rt.clock.now());
      return runPaced(
        invoices(CLEAN_INVOICE_MIX),
        count,
        LATENCY_ARRIVAL_MS,
        rt.clock,
        (inv) => rt.run(workflow, inv),
        progress,
      );
    });
  }
  // 3. Caching: the tutorial's three calls an invoice, 8 % duplicates, vendors that repeat.
  await phase('caching', (rt) => {
    const workflow = cachingWorkflow(seed);
    const mix = { ...CLEAN_INVOICE_MIX, duplicates: TUTORIAL_INVOICE_MIX.duplicates };
    return runPool(
      invoices(mix, CACHING_VENDORS),
      count,
      concurrency,
      (inv) => rt.run(workflow, inv),
      progress,
    );
  });

  const results = openResults(options);
  try {
    return analyse(options, results, ranges);
  } finally {
    await results.close();
  }
}

function analyse(
  options: DemoOptions,
  results: SqliteEventStore,
  ranges: readonly { run: InvoiceRun; startSeq: number }[],
): InvoiceDemoResult {
  const runs = {} as Record<InvoiceRun, KeelEvent[]>;
  const all: KeelEvent[] = [];
  const alerts: InvoiceDemoResult['alerts'] = [];
  ranges.forEach((r, i) => {
    const end = ranges[i + 1]?.startSeq ?? results.lastSeq();
    const events = readRange(results, r.startSeq, end);
    runs[r.run] = events;
    all.push(...events);
    for (const e of events)
      if (e.type === 'alert.raised')
        alerts.push({
          kind: e.payload.kind,
          severity: e.payload.severity,
          title: e.payload.title,
          run: r.run,
        });
  });
  const production = productionFigures(runs.production, all);
  return {
    demo: 'invoice',
    seed: options.seed,
    count: options.count,
    db: options.db,
    ...production,
    errorBudget: errorBudgetFigures(
      runs.production,
      options.count,
      production.errorRates.find((t) => t.taskType === 'vendor')?.failures ?? 0,
    ),
    latency: latencyFigures(runs),
    caching: cachingFigures(runs.caching),
    alerts,
  };
}

const n = (x: number): string => x.toLocaleString('en-US');
const secs = (x: number): string => `${(x / 1_000).toFixed(1)} s`;

/**
 * The invoice demo's summary, as printed by `keel demo invoice`.
 *
 * @example
 * console.log(formatInvoiceDemo(await runInvoiceDemo({ db: 'keel.db', count: 500, seed: 1 })));
 */
export function formatInvoiceDemo(r: InvoiceDemoResult): string {
  const i = r.invoices;
  const c = r.caching;
  const l = r.latency;
  const b = r.errorBudget;
  const scale = `scaled from ${n(c.invoices)} invoices to ${n(WEEKLY_VOLUME)} a week`;
  const row = (label: string, s: SlaLatency): string =>
    `  ${label.padEnd(11)} ${secs(s.p50Ms).padStart(7)} ${secs(s.p90Ms).padStart(7)} ${secs(s.p95Ms).padStart(7)} ${secs(s.p99Ms).padStart(7)}   ${pct(s.withinSla).padStart(6)}   ${s.meetsSla ? 'meets the SLA' : 'MISSES the SLA'}`;
  const lines = [
    `Invoice processing — the tutorial's figures from the log ${r.db} (seed ${r.seed})`,
    '',
    `Caching: 3 GPT-4 calls an invoice (extract vendor, validate, route), 24 h cache each; ${n(c.invoices)} invoices, ${n(c.duplicates)} duplicates (${pct(c.invoices ? c.duplicates / c.invoices : 0)}), ${CACHING_VENDORS} vendors that repeat`,
    ...c.agents.map(
      (a) =>
        `  ${a.agent.padEnd(18)} ${pct(a.hitRate).padStart(6)} of ${n(a.lookups).padStart(6)} lookups hit`,
    ),
    `  hit rate            ${besideTutorial(c.hitRate, (x) => pct(x))}   (${n(c.hits)} of ${n(c.lookups)} lookups; the tutorial's sources: duplicates 8 %, vendor re-validation 20 %, routing reuse 30 %)`,
    `  naive, no cache     ${besideTutorial(c.naivePerWeekUsd, (x) => usd(x))} a week: every lookup a call, ${c.callsPerInvoice} an invoice at ${usd(c.callUsd, 4)} (the mean recorded call)`,
    `  with the cache      ${besideTutorial(c.cachedPerWeekUsd, (x) => usd(x))} a week: what the calls cost (${scale})`,
    '',
    `Latency: the tutorial's three agents (~5 s, ~6 s, ~7 s), 3 attempts with exponential backoff, no breaker; cold start (${ms(COLD_START_MS)} after deployment, calls take ${ms(COLD_START_EXTRA_MS)} more); ${n(l.requests)} requests at ${n(1_000 / LATENCY_ARRIVAL_MS)} a second`,
    `  ${''.padEnd(11)} ${'P50'.padStart(7)} ${'P90'.padStart(7)} ${'P95'.padStart(7)} ${'P99'.padStart(7)}   within ${ms(l.slaP95Ms)}`,
    row('sequential', l.sequential),
    row('parallel', l.parallel),
    `  sequential P95  ${besideTutorial(l.tutorial.sequentialP95Ms, secs)}`,
    `  parallel P95    ${besideTutorial(l.tutorial.parallelP95Ms, secs)}, a ${besideTutorial(l.tutorial.reduction, (x) => pct(x, 0))} cut`,
    `  sequential P50 ${besideTutorial(l.tutorial.sequentialP50Ms, secs)}, P90 ${besideTutorial(l.tutorial.sequentialP90Ms, secs)}, P99 ${besideTutorial(l.tutorial.sequentialP99Ms, secs)}`,
    "  (the tutorial's P50/P90 describe its production mix, not 5 s + 6 s + 7 s in a row: not reproduced)",
    '',
    `Production mix (workflow invoice): ${n(i.processed)} invoices, ${n(i.completed)} completed · ${n(i.failed)} failed · ${n(i.duplicates)} duplicates`,
    `Vendor error budget (target < ${pct(b.targetRate)}; from the runtime's error_budget alerts, this run's budget of ${n(b.runVolume)} invoices ×${n(WEEKLY_VOLUME / b.runVolume)} to a week)`,
    `  acceptable failures ${besideTutorial(b.acceptableFailures, (x) => n(Math.round(x)))} a week at ${n(WEEKLY_VOLUME)} invoices, alert at ${besideTutorial(b.alertThreshold, (x) => n(Math.round(x)))}`,
    `  consumed: ${n(b.failures)} vendor failures in ${n(b.runVolume)} invoices, ${pct(b.consumed, 0)} of the budget (${n(b.failuresPerWeek)} a week)` +
      (b.alertedAtInvoice === null ? '' : `; 80 % alert at invoice ${n(b.alertedAtInvoice)}`) +
      (b.exhaustedAtInvoice === null ? '' : `, exhausted at invoice ${n(b.exhaustedAtInvoice)}`),
    '',
    'Error rate per task (target), production run; in brackets the whole log (every run merged), as keel report shows it',
    ...r.errorRates.map(
      (t) =>
        `  ${t.taskType.padEnd(18)} ${pct(t.errorRate).padStart(6)} of ${n(t.outcomes).padStart(6)}` +
        (t.target === null
          ? ''.padEnd(30)
          : `   target < ${pct(t.target)}  ${t.withinTarget ? 'ok         ' : 'OVER TARGET'}`) +
        `   [${pct(t.wholeLog.errorRate)} of ${n(t.wholeLog.outcomes)}]`,
    ),
    '',
    `Root causes (${n(r.rca.failures)} failed agent calls, production run)`,
    ...r.rca.causes.map(
      (cause) =>
        `  - ${cause.category}: ${n(cause.count)} (${pct(cause.share, 0)})${cause.category === r.rca.primary ? '  ← primary root cause' : ''}`,
    ),
  ];
  if (r.alerts.length > 0) {
    lines.push('', `Alerts raised (${r.alerts.length}, every run: the list keel report shows)`);
    for (const a of r.alerts.slice(0, 10)) lines.push(`  [${a.severity}] ${a.title} (${a.run})`);
    if (r.alerts.length > 10) lines.push(`  … and ${r.alerts.length - 10} more`);
  }
  return lines.join('\n');
}
