/**
 * Demo: the tutorial's model cascade. Vendor extraction on GPT-3.5 first, escalated to GPT-4 when
 * GPT-3.5's confidence is under the threshold — recorded at 0.95, the strictest of the tutorial's
 * table, so every looser threshold can be re-evaluated exactly — then the same invoices on GPT-4
 * alone. Every workflow's answer is checked against the invoice's true vendor and the verdict
 * recorded (`rt.feedback`), so the log holds ground truth: the demo then reads the tutorial's
 * threshold table (share, weekly cost, accuracy at 0.95 / 0.90 / 0.85) back from it, as
 * `keel whatif --cascade-threshold 0.95,0.9,0.85` does.
 */
import type { Invoice, VendorField } from '../agents/invoice.js';
import { expensiveVendorExtraction, vendorCascade } from '../agents/cascade.js';
import { simulatedInvoiceModel } from '../agents/invoice-model.js';
import { whatIfCascade } from '../src/analysis.js';
import {
  hashSeed,
  named,
  seededRandom,
  type KeelEvent,
  type ModelProvider,
  type Runtime,
  type SimulatedModelProfile,
  type Topology,
} from '../src/index.js';
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
  vsTutorial,
  besideTutorial,
  workflowLatencies,
  type DemoOptions,
  type LatencySummary,
  type TutorialFigure,
} from './harness.js';
import { CLEAN_INVOICE_MIX, invoiceStream } from './invoices.js';
import type { SqliteEventStore } from '../src/eventlog/sqlite.js';

/** Workflow name of the cascade runs. */
export const CASCADE_WORKFLOW = 'cascade';
/** Workflow name of the GPT-4-only baseline runs. */
export const GPT4_ONLY_WORKFLOW = 'gpt4_only';
/** The tutorial's threshold table. */
export const TUTORIAL_THRESHOLDS: readonly number[] = [0.95, 0.9, 0.85];

/** The tutorial's "Confidence Threshold Tuning" table: GPT-3.5 share, accuracy, cost a week. */
export const TUTORIAL_THRESHOLD_TABLE: readonly {
  threshold: number;
  cheapShare: number;
  accuracy: number;
  costPerWeekUsd: number;
}[] = [
  { threshold: 0.95, cheapShare: 0.5, accuracy: 0.98, costPerWeekUsd: 167 },
  { threshold: 0.9, cheapShare: 0.7, accuracy: 0.96, costPerWeekUsd: 110 },
  { threshold: 0.85, cheapShare: 0.8, accuracy: 0.92, costPerWeekUsd: 80 },
];

/**
 * The demo's model of the world, GPT-3.5's side: 71 % of invoices are easy (clean OCR, a
 * standard vendor; a few of them still escalate when a call fails) and GPT-3.5 is at least 0.90
 * sure of them, 0.96 on average (σ 0.015); on the hard 29 % it is about 0.845 sure (σ 0.02). So
 * about half its answers clear 0.95, 70 % clear 0.90 and 80 % clear 0.85 — the tutorial's
 * splits, which the demo then measures from the log.
 */
export const CASCADE_GPT35_PROFILE: SimulatedModelProfile = {
  confidence: { easyShare: 0.71, easy: { mean: 0.96, stddev: 0.015 }, hard: { mean: 0.845, stddev: 0.02 } },
};

/**
 * How often each model misreads the vendor (answers a part of the name, which is on the invoice,
 * so nothing downstream can tell): GPT-4 2 % whatever it says; GPT-3.5 by its confidence —
 * 2 % at 0.95 or more, 12 % at 0.90–0.95, 42 % at 0.85–0.90, 60 % below. A calibrated cheap
 * model: the less sure, the more often wrong. The demo checks every answer against the invoice's
 * true vendor and records the verdict with `rt.feedback`.
 */
export function misreadRate(model: string, confidence: number): number {
  if (model !== 'gpt-3.5-turbo') return 0.02;
  if (confidence >= 0.95) return 0.02;
  if (confidence >= 0.9) return 0.12;
  if (confidence >= 0.85) return 0.42;
  return 0.6;
}

/** `inner`, misreading vendor names at {@link misreadRate} (seeded by invoice and model). */
function misreading(inner: ModelProvider, seed: number): ModelProvider {
  return {
    name: inner.name,
    async call(request, context) {
      const response = await inner.call(request, context);
      const input = request.input as { task?: unknown; invoiceId?: unknown } | null | undefined;
      const output = response.output as { value?: unknown } | null;
      if (input?.task !== 'vendor' || typeof output?.value !== 'string') return response;
      const vendor = output.value;
      const u = seededRandom(
        hashSeed(`${seed}\u0000misread\u0000${request.model}\u0000${String(input.invoiceId)}`),
      ).next();
      if (u >= misreadRate(request.model, response.confidence ?? 0) || !vendor.includes(' ')) return response;
      return { ...response, output: { ...output, value: vendor.slice(0, vendor.indexOf(' ')) } };
    },
  };
}

/** The cascade demo's model: the invoice model with {@link CASCADE_GPT35_PROFILE}, misreading at {@link misreadRate}. */
export function cascadeDemoModel(seed: number): ModelProvider {
  return misreading(
    simulatedInvoiceModel({ seed, models: { 'gpt-3.5-turbo': CASCADE_GPT35_PROFILE } }),
    seed,
  );
}

/** The vendor printed on a clean invoice: the ground truth the demo checks answers against. */
function trueVendor(invoice: Invoice): string {
  const m = /\nVendor: (.*)/.exec(invoice.text);
  return m?.[1]?.trim() ?? '';
}

/** One row of the threshold table read from the log, beside the tutorial's. */
export interface ThresholdFigures {
  threshold: number;
  /** Share of invoices GPT-3.5 answers. */
  cheapShare: TutorialFigure;
  /** Cost of 10,000 invoices a week, USD. */
  costPerWeekUsd: TutorialFigure;
  /** Share answered correctly (ground truth from `feedback.recorded`). */
  accuracy: TutorialFigure;
}

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
  /**
   * Confidence GPT-3.5 needs for its answer to stand (default 0.95: the strictest of the
   * tutorial's table, so the log can answer for every looser threshold exactly).
   */
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
  /** Answers checked against the true vendor: recorded as `feedback.recorded` events. */
  feedback: { cascade: { labeled: number; correct: number }; gpt4Only: { labeled: number; correct: number } };
  /**
   * The tutorial's threshold table read back from the log (`whatIfCascade` over the events this
   * run wrote, the same fold as `keel whatif --cascade-threshold`), at 10,000 invoices a week.
   */
  thresholdTable: ThresholdFigures[];
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
  const threshold = options.threshold ?? 0.95;
  const clock = await demoClock(options);
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const total = options.count * 2;
  const nowMs = clock.now();
  const topologyAt = (t: number): Topology<Invoice, VendorField> =>
    named(CASCADE_WORKFLOW, vendorCascade({ provider: cascadeDemoModel(options.seed), threshold: t }));
  const baseline = expensiveVendorExtraction({ provider: cascadeDemoModel(options.seed) });
  const feedback = { cascade: { labeled: 0, correct: 0 }, gpt4Only: { labeled: 0, correct: 0 } };
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
      const tally = name === CASCADE_WORKFLOW ? feedback.cascade : feedback.gpt4Only;
      // Ground truth: every answer checked against the vendor printed on the (clean) invoice.
      const judge = async (
        workflowId: string,
        answer: string | undefined,
        invoice: Invoice,
      ): Promise<void> => {
        const expected = trueVendor(invoice);
        const correct = answer === expected;
        await rt.feedback(workflowId, { correct, expected: { vendor: expected } });
        tally.labeled++;
        if (correct) tally.correct++;
      };
      let n = 0;
      await drive(
        clock,
        runPool(
          invoices,
          options.count,
          concurrency,
          (invoice: Invoice) => {
            // The log position this run started from makes the id unique in an appended log.
            const workflowId = `${name}_${startSeq}_${++n}`;
            record?.push(workflowId);
            return rt.run(topology, invoice, { name, workflowId }).then(
              (r) => judge(workflowId, r.value.vendor, invoice),
              (e: unknown) =>
                judge(workflowId, undefined, invoice).then(() => {
                  throw e;
                }),
            );
          },
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
    const site = whatIfCascade(events, {
      thresholds: TUTORIAL_THRESHOLD_TABLE.map((t) => t.threshold),
      volumePerWeek: WEEKLY_VOLUME,
      path: CASCADE_WORKFLOW,
    }).sites[0];
    const thresholdTable = TUTORIAL_THRESHOLD_TABLE.map((t, i): ThresholdFigures => {
      const row = site?.rows[i];
      return {
        threshold: t.threshold,
        cheapShare: vsTutorial(round(row?.cheapShare ?? 0), t.cheapShare),
        costPerWeekUsd: vsTutorial(round(row?.volume?.costPerWeekUsd ?? Number.NaN, 2), t.costPerWeekUsd),
        accuracy: vsTutorial(round(row?.accuracy.ratio ?? Number.NaN), t.accuracy),
      };
    });
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
      feedback,
      thresholdTable,
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
  const f = r.feedback.cascade;
  lines.push(
    `  ground truth: ${f.correct.toLocaleString('en-US')} of ${f.labeled.toLocaleString('en-US')} cascade answers correct (${pct(f.labeled ? f.correct / f.labeled : 0)}), recorded with rt.feedback`,
    '',
    `Confidence threshold tuning, read back from the log (keel whatif --cascade-threshold 0.95,0.9,0.85), ${WEEKLY_VOLUME.toLocaleString('en-US')} invoices/week`,
    `  ${'threshold'.padEnd(9)}  ${'GPT-3.5 / GPT-4'.padEnd(33)}  ${'cost/week'.padEnd(30)}  accuracy`,
    ...r.thresholdTable.map(
      (t) =>
        `  ${t.threshold.toFixed(2).padEnd(9)}  ${besideTutorial(t.cheapShare, (x) => `${Math.round(x * 100)}/${Math.round((1 - x) * 100)}`).padEnd(33)}  ${besideTutorial(t.costPerWeekUsd, (x) => usd(x, 0)).padEnd(30)}  ${besideTutorial(t.accuracy, (x) => pct(x, 1))}`,
    ),
    `  (recorded at ${r.threshold}: looser thresholds drop escalations the log holds, so every row is exact)`,
  );
  if (r.whatIf?.length) {
    lines.push('', '  threshold   GPT-3.5 share   per week   accuracy');
    for (const w of r.whatIf)
      lines.push(
        `  ${w.threshold.toFixed(2).padStart(9)}   ${pct(w.cheapShare).padStart(13)}   ${usd(w.costPerWeekUsd).padStart(8)}   ${w.accuracy === undefined ? '—' : pct(w.accuracy)}`,
      );
  }
  return lines.join('\n');
}
