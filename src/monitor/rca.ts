/**
 * Root-cause analysis: failures grouped by category, overall and per agent and task type, with the
 * primary cause marked — the tutorial's `ErrorAnalyzer`, as a fold over the event log.
 */
import { ERROR_CATEGORIES, type ErrorCategory, type KeelEvent } from '../eventlog/events.js';
import { CATEGORY_LABELS } from '../eventlog/outcome.js';
import { formatDuration, grouped, percent0, percent1 } from '../core/format.js';
import { categoryIndex, topCategory } from './internal/outcome.js';
import { failureCategory, isOutcomeEvent } from '../eventlog/outcome.js';

/** Which outcomes {@link rca} reads. Every field narrows; all are optional. */
export interface RcaOptions {
  /** Inclusive lower bound on event `ts`, ms since epoch. */
  fromTs?: number;
  /** Exclusive upper bound on event `ts`, ms since epoch. */
  toTs?: number;
  /** Only this agent's outcomes. */
  agent?: string;
  /** Only this task type's outcomes. */
  taskType?: string;
}

/** One category's share of the failures. */
export interface CauseShare {
  category: ErrorCategory;
  count: number;
  /** Share of the failures, 0–100 (unrounded). */
  percentage: number;
}

/** Failures of one group (everything, one agent, or one task type). */
export interface FailureBreakdown {
  /** Outcomes (successes + failures). */
  outcomes: number;
  failures: number;
  /** failures / outcomes (0 when there were none). */
  errorRate: number;
  /** Count per category, every category present (zeros included), like the tutorial's dict. */
  counts: Record<ErrorCategory, number>;
  /** Categories with failures, most frequent first (ties in {@link ERROR_CATEGORIES} order). */
  causes: CauseShare[];
  /** The most frequent category: the primary root cause (`undefined` without failures). */
  primary: ErrorCategory | undefined;
}

/** The result of {@link rca}. */
export interface RcaReport {
  /** The options the report was made with. */
  options: RcaOptions;
  /** Timestamp of the first and last outcome read (`undefined` when none). */
  firstTs: number | undefined;
  lastTs: number | undefined;
  overall: FailureBreakdown;
  byAgent: Record<string, FailureBreakdown>;
  byTaskType: Record<string, FailureBreakdown>;
  /**
   * The tutorial's printout:
   * ```
   * vendor_extraction failures (72 failures in 2 hours)
   * - OCR errors: 45 (62%) ← PRIMARY ROOT CAUSE
   * - Missing field: 12 (17%)
   * ```
   * followed by one line per agent and per task type. Percentages round half to even.
   */
  format(): string;
}

/** What to look at first, per primary cause (the tutorial's runbook, step 3). */
const ACTIONS: Partial<Record<ErrorCategory, string>> = {
  ocr_error: 'Investigate OCR quality (recent scanner firmware or image pipeline change)',
  missing_field: 'Check the input documents and the extraction prompt for the missing fields',
  validation_error: 'Review the validation rules and thresholds against recent outputs',
  hallucination: 'Tighten the prompt and validate outputs against source data',
  timeout: 'Check provider latency; enable the circuit breaker or raise the timeout',
  rate_limited: 'Lower concurrency or raise the provider quota',
  provider_error: 'Check the provider status; the circuit breaker should shed load',
  malformed_output: 'Use structured output (JSON mode) or a stricter output schema',
  circuit_open: 'Find why the breaker opened (provider errors or timeouts before it)',
  budget_exceeded: 'Raise the budget or enable downgrade to a cheaper model',
};

interface Counter {
  outcomes: number;
  counts: Uint32Array;
}

const newCounter = (): Counter => ({ outcomes: 0, counts: new Uint32Array(ERROR_CATEGORIES.length) });

/**
 * Groups the failures among `events` by root-cause category. Reads `agent.succeeded`,
 * `agent.failed` and `agent.rejected` (cancellations are not failures); one pass, memory per
 * agent and task type only, so it can stream a whole log (`store.iterate()`).
 *
 * @example
 * const report = rca(store.iterate({ fromTs: clock.now() - 2 * 3_600_000 }), { agent: 'vendor_extraction' });
 * console.log(report.format()); // - OCR errors: 45 (62%) ← PRIMARY ROOT CAUSE
 */
export function rca(events: Iterable<KeelEvent>, options: RcaOptions = {}): RcaReport {
  const fold = createRcaFold(options);
  for (const event of events) fold.apply(event);
  return fold.result();
}

/** {@link rca} as a push fold: `apply` each event in log order, `result()` at the end. */
export interface RcaFold {
  apply(event: KeelEvent): void;
  result(): RcaReport;
}

/**
 * Root-cause analysis one event at a time, for streams that cannot be iterated synchronously
 * (a Postgres log) or that feed several analyses in one pass. Memory is bounded by agent and task
 * type names, not by events.
 *
 * @example
 * const causes = createRcaFold({ taskType: 'vendor' });
 * for await (const e of store.iterate()) causes.apply(e);
 * console.log(causes.result().format());
 */
export function createRcaFold(options: RcaOptions = {}): RcaFold {
  const { fromTs = -Infinity, toTs = Infinity, agent, taskType } = options;
  const overall = newCounter();
  const byAgent = new Map<string, Counter>();
  const byTaskType = new Map<string, Counter>();
  let firstTs: number | undefined;
  let lastTs: number | undefined;
  return {
    apply(event) {
      if (!isOutcomeEvent(event) || event.ts < fromTs || event.ts >= toTs) return;
      const p = event.payload;
      if ((agent !== undefined && p.agent !== agent) || (taskType !== undefined && p.taskType !== taskType)) {
        return;
      }
      if (firstTs === undefined || event.ts < firstTs) firstTs = event.ts;
      if (lastTs === undefined || event.ts > lastTs) lastTs = event.ts;
      let a = byAgent.get(p.agent);
      if (a === undefined) byAgent.set(p.agent, (a = newCounter()));
      let t = byTaskType.get(p.taskType);
      if (t === undefined) byTaskType.set(p.taskType, (t = newCounter()));
      overall.outcomes++;
      a.outcomes++;
      t.outcomes++;
      const category = failureCategory(event);
      if (category !== undefined) {
        const i = categoryIndex(category);
        overall.counts[i] = (overall.counts[i] ?? 0) + 1;
        a.counts[i] = (a.counts[i] ?? 0) + 1;
        t.counts[i] = (t.counts[i] ?? 0) + 1;
      }
    },
    result() {
      const report: RcaReport = {
        options: { ...options },
        firstTs,
        lastTs,
        overall: breakdown(overall),
        byAgent: Object.fromEntries([...byAgent].map(([k, c]) => [k, breakdown(c)])),
        byTaskType: Object.fromEntries([...byTaskType].map(([k, c]) => [k, breakdown(c)])),
        format: () => formatReport(report),
      };
      return report;
    },
  };
}

function breakdown(c: Counter): FailureBreakdown {
  let failures = 0;
  for (const n of c.counts) failures += n;
  const counts = {} as Record<ErrorCategory, number>;
  const causes: CauseShare[] = [];
  ERROR_CATEGORIES.forEach((category, i) => {
    const count = c.counts[i] ?? 0;
    counts[category] = count;
    if (count > 0) causes.push({ category, count, percentage: (count / failures) * 100 });
  });
  // Array.prototype.sort is stable: equal counts keep ERROR_CATEGORIES order.
  causes.sort((x, y) => y.count - x.count);
  return {
    outcomes: c.outcomes,
    failures,
    errorRate: c.outcomes === 0 ? 0 : failures / c.outcomes,
    counts,
    causes,
    primary: topCategory(c.counts),
  };
}

function formatReport(r: RcaReport): string {
  const { agent, taskType, fromTs, toTs } = r.options;
  const subject = agent ?? taskType ?? 'All';
  const spanMs =
    fromTs !== undefined && toTs !== undefined
      ? toTs - fromTs
      : r.firstTs !== undefined && r.lastTs !== undefined
        ? r.lastTs - r.firstTs
        : 0;
  const o = r.overall;
  const span = spanMs > 0 ? ` in ${formatDuration(spanMs)}` : '';
  const lines = [
    `${subject} failures (${grouped(o.failures)} failure${o.failures === 1 ? '' : 's'}${span}; error rate ${percent1(o.errorRate)} of ${grouped(o.outcomes)} tasks)`,
  ];
  if (o.failures === 0) {
    lines.push('- No failures.');
    return lines.join('\n');
  }
  for (const c of o.causes) {
    const mark = c.category === o.primary ? ' ← PRIMARY ROOT CAUSE' : '';
    lines.push(`- ${CATEGORY_LABELS[c.category]}: ${grouped(c.count)} (${percent0(c.percentage)})${mark}`);
  }
  const action = o.primary === undefined ? undefined : ACTIONS[o.primary];
  if (action !== undefined) lines.push('', `Recommended action: ${action}`);
  const section = (title: string, groups: Record<string, FailureBreakdown>): void => {
    const names = Object.keys(groups).sort();
    if (names.length === 0) return;
    lines.push('', `By ${title}:`);
    for (const name of names) {
      const g = groups[name];
      if (g === undefined) continue;
      const top = g.causes[0];
      const primary =
        top === undefined
          ? 'no failures'
          : `primary: ${CATEGORY_LABELS[top.category]} ${grouped(top.count)} (${percent0(top.percentage)})`;
      lines.push(
        `- ${name}: ${grouped(g.failures)} of ${grouped(g.outcomes)} failed (${percent1(g.errorRate)}), ${primary}`,
      );
    }
  };
  section('agent', r.byAgent);
  section('task type', r.byTaskType);
  return lines.join('\n');
}
