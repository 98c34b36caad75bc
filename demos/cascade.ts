/**
 * Demo: the tutorial's model cascade. Vendor extraction on GPT-3.5 first, escalated to GPT-4 when
 * GPT-3.5's confidence is under 0.9, on a 70 % easy / 30 % hard mix — then the same invoices on
 * GPT-4 alone — and the log shows the share GPT-3.5 answered, the escalations and the cost of each.
 */
import type { Invoice, VendorField } from '../agents/invoice.js';
import { expensiveVendorExtraction, vendorCascade } from '../agents/cascade.js';
import { simulatedInvoiceModel } from '../agents/invoice-model.js';
import { named, type KeelEvent, type Runtime, type Topology } from '../src/index.js';
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
import { CLEAN_INVOICE_MIX, invoiceStream } from './invoices.js';
import type { SqliteEventStore } from '../src/eventlog/sqlite.js';

/** Workflow name of the cascade runs. */
export const CASCADE_WORKFLOW = 'cascade';
/** Workflow name of the GPT-4-only baseline runs. */
export const GPT4_ONLY_WORKFLOW = 'gpt4_only';
/** The tutorial's threshold table. */
export const TUTORIAL_THRESHOLDS: readonly number[] = [0.95, 0.9, 0.85];

/** One row of a what-if threshold table. */
export interface CascadeWhatIfRow {
  threshold: number;
  /** Share of invoices the cheap model would answer, in [0, 1]. */
  cheapShare: number;
  /** Cost of the tutorial's 10,000 invoices a week, USD. */
  costPerWeekUsd: number;
  /** Share answered correctly, when ground truth is known (`feedback.recorded`). */
  accuracy?: number;
}

/**
 * What a what-if evaluator is handed: the runtime that ran the cascade, still open, and how to
 * rebuild the cascade at another threshold (same agents, same names, so recorded outputs replay).
 */
export interface CascadeWhatIfContext {
  runtime: Runtime<SqliteEventStore>;
  /** Ids of the cascade workflows just run. */
  workflowIds: readonly string[];
  /** The cascade topology at `threshold`, named {@link CASCADE_WORKFLOW}. */
  topologyAt(threshold: number): Topology<Invoice, VendorField>;
  /** Thresholds to evaluate. */
  thresholds: readonly number[];
}

/** Options of {@link runCascadeDemo}. */
export interface CascadeDemoOptions extends DemoOptions {
  /** Confidence GPT-3.5 needs for its answer to stand (default 0.9). */
  threshold?: number;
  /**
   * Extension point for the what-if threshold table: called after the runs, before the runtime
   * closes; its rows land in `result.whatIf`. Default: none.
   */
  whatIf?: (context: CascadeWhatIfContext) => CascadeWhatIfRow[] | Promise<CascadeWhatIfRow[]>;
  /** Thresholds handed to `whatIf` (default {@link TUTORIAL_THRESHOLDS}). */
  whatIfThresholds?: readonly number[];
}

/** Cost and latency of one variant, from the log. */
export interface VariantCost {
  workflow: string;
  invoices: number;
  costPerInvoiceUsd: number;
  costPerWeekUsd: number;
  latency: LatencySummary;
}

/** What {@link runCascadeDemo} found in the log. */
export interface CascadeDemoResult {
  demo: 'cascade';
  seed: number;
  count: number;
  db: string;
  threshold: number;
  cascade: VariantCost & {
    /** Invoices whose answer came from the cheap model. */
    cheapAnswered: number;
    /** cheapAnswered / invoices. */
    cheapShare: number;
    /** `cascade.escalated` events: low confidence or a failed cheap call. */
    escalations: number;
  };
  gpt4Only: VariantCost;
  /** (GPT-4-only − cascade) / GPT-4-only cost, in [0, 1]. */
  savingRatio: number;
  /** Rows from the `whatIf` option, when given. */
  whatIf?: CascadeWhatIfRow[];
}

function variantCost(events: readonly KeelEvent[], name: string): VariantCost & { ids: Set<string> } {
  const ids = new Set<string>();
  let cost = 0;
  for (const e of events) {
    if (e.type === 'workflow.started' && e.payload.name === name) ids.add(e.workflowId);
    else if ((e.type === 'workflow.completed' || e.type === 'workflow.failed') && ids.has(e.workflowId))
      cost += e.payload.costUsd;
  }
  const n = ids.size;
  return {
    workflow: name,
    invoices: n,
    costPerInvoiceUsd: n ? round(cost / n, 5) : 0,
    costPerWeekUsd: n ? round((cost / n) * WEEKLY_VOLUME, 2) : 0,
    latency: latencySummary(workflowLatencies(events, name)),
    ids,
  };
}

/**
 * Runs the cascade demo: `count` clean invoices (70 % easy for GPT-3.5, 30 % hard) through the
 * cascade, then through GPT-4 alone.
 *
 * @example
 * const result = await runCascadeDemo({ db: 'keel.db', count: 1_000, seed: 42 });
 * result.cascade.cheapShare; // ≈ 0.7
 */
export async function runCascadeDemo(options: CascadeDemoOptions): Promise<CascadeDemoResult> {
  checkDemoOptions(options);
  const threshold = options.threshold ?? 0.9;
  const clock = await demoClock(options);
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const total = options.count * 2;
  const nowMs = clock.now();
  const topologyAt = (t: number): Topology<Invoice, VendorField> =>
    named(
      CASCADE_WORKFLOW,
      vendorCascade({ provider: simulatedInvoiceModel({ seed: options.seed }), threshold: t }),
    );
  const baseline = expensiveVendorExtraction({ provider: simulatedInvoiceModel({ seed: options.seed }) });
  let whatIf: CascadeWhatIfRow[] | undefined;
  const { rt, startSeq } = await openDemoRuntime(options, clock);
  try {
    const workflowIds: string[] = [];
    let base = 0;
    const variants: [string, Topology<Invoice, VendorField>][] = [
      [CASCADE_WORKFLOW, topologyAt(threshold)],
      [GPT4_ONLY_WORKFLOW, baseline],
    ];
    for (const [name, topology] of variants) {
      const progress = options.onProgress
        ? (done: number): void => options.onProgress?.(base + done, total)
        : undefined;
      const invoices = invoiceStream({
        seed: options.seed,
        count: options.count,
        mix: CLEAN_INVOICE_MIX,
        nowMs,
      });
      const record = name === CASCADE_WORKFLOW ? workflowIds : undefined;
      await drive(
        clock,
        runPool(
          invoices,
          options.count,
          concurrency,
          (invoice: Invoice) => rt.run(topology, invoice, { name }).then((r) => record?.push(r.workflowId)),
          progress,
        ),
      );
      base += options.count;
    }
    if (options.whatIf) {
      whatIf = await options.whatIf({
        runtime: rt,
        workflowIds,
        topologyAt,
        thresholds: options.whatIfThresholds ?? TUTORIAL_THRESHOLDS,
      });
    }
  } finally {
    await rt.close();
  }
  const results = openResults(options);
  try {
    const events = readRange(results, startSeq, results.lastSeq());
    const { ids, ...cascadeCost } = variantCost(events, CASCADE_WORKFLOW);
    const { ids: _baselineIds, ...gpt4Only } = variantCost(events, GPT4_ONLY_WORKFLOW);
    let cheapAnswered = 0;
    let escalations = 0;
    for (const e of events) {
      if (!ids.has(e.workflowId)) continue;
      if (e.type === 'cascade.accepted' && e.payload.stage === 0) cheapAnswered++;
      else if (e.type === 'cascade.escalated') escalations++;
    }
    return {
      demo: 'cascade',
      seed: options.seed,
      count: options.count,
      db: options.db,
      threshold,
      cascade: {
        ...cascadeCost,
        cheapAnswered,
        cheapShare: cascadeCost.invoices ? round(cheapAnswered / cascadeCost.invoices) : 0,
        escalations,
      },
      gpt4Only,
      savingRatio: gpt4Only.costPerInvoiceUsd
        ? round(1 - cascadeCost.costPerInvoiceUsd / gpt4Only.costPerInvoiceUsd)
        : 0,
      ...(whatIf ? { whatIf } : {}),
    };
  } finally {
    await results.close();
  }
}

/**
 * The cascade demo's summary, as printed by `keel demo cascade`.
 *
 * @example
 * console.log(formatCascadeDemo(await runCascadeDemo({ db: 'keel.db', count: 500, seed: 1 })));
 */
export function formatCascadeDemo(r: CascadeDemoResult): string {
  const c = r.cascade;
  const lines = [
    `Model cascade — ${c.invoices.toLocaleString('en-US')} invoices, GPT-3.5 → GPT-4 at confidence ${r.threshold} (seed ${r.seed}), log ${r.db}`,
    '',
    `  answered by GPT-3.5: ${c.cheapAnswered.toLocaleString('en-US')} (${pct(c.cheapShare)}) · escalated to GPT-4: ${c.escalations.toLocaleString('en-US')}`,
    `  ${''.padEnd(12)} ${'per invoice'.padStart(12)} ${'per week'.padStart(10)} ${'P95'.padStart(8)}`,
    `  ${'cascade'.padEnd(12)} ${usd(c.costPerInvoiceUsd, 4).padStart(12)} ${usd(c.costPerWeekUsd).padStart(10)} ${ms(c.latency.p95Ms).padStart(8)}`,
    `  ${'GPT-4 only'.padEnd(12)} ${usd(r.gpt4Only.costPerInvoiceUsd, 4).padStart(12)} ${usd(r.gpt4Only.costPerWeekUsd).padStart(10)} ${ms(r.gpt4Only.latency.p95Ms).padStart(8)}`,
    `  saving: ${pct(r.savingRatio)}`,
  ];
  if (r.whatIf?.length) {
    lines.push('', '  threshold   GPT-3.5 share   per week   accuracy');
    for (const w of r.whatIf)
      lines.push(
        `  ${w.threshold.toFixed(2).padStart(9)}   ${pct(w.cheapShare).padStart(13)}   ${usd(w.costPerWeekUsd).padStart(8)}   ${w.accuracy === undefined ? '—' : pct(w.accuracy)}`,
      );
  }
  return lines.join('\n');
}
