/**
 * Cost as a fold over the event stream. The same tracker runs live (fed committed events) and in
 * `keel report` (fed the log), so both always agree. It attributes the actual cost of every attempt
 * (`cost.incurred`: retries cost money) to model, task type, agent, workflow name, tenant and day; keeps
 * estimates (`cost.reserved`) apart from actuals; and credits savings to their source — cache hits,
 * early-stopped votes, accepted cheap cascade stages — so a report can say what the same workload
 * would have cost without them.
 */
import type { EventPayloads, KeelEvent } from '../eventlog/events.js';
import { dayCalendar } from './day.js';

/** Options of {@link createCostTracker}. */
export interface CostTrackerOptions {
  /** IANA time zone whose calendar days cost is attributed to (default `UTC`). */
  timeZone?: string;
  /**
   * Most running workflows whose name is remembered at once (default 100_000). A workflow's name is
   * forgotten when it completes, fails or is cancelled; beyond the cap the oldest is forgotten first
   * and its later costs count under {@link UNKNOWN_WORKFLOW}.
   */
  maxOpenWorkflows?: number;
  /** Most budget alerts kept for {@link CostTracker.alerts} (default 1_000, newest kept). */
  maxAlerts?: number;
}

/** Workflow name used for cost whose workflow start was not seen (or the runtime's own events). */
export const UNKNOWN_WORKFLOW = '(unknown)';

/** Where a saving came from. */
export type SavingsSource = 'cache' | 'vote' | 'cascade';

/** Cost of one model. */
export interface ModelCost {
  model: string;
  /** Attempts that incurred cost (retries included). */
  calls: number;
  usd: number;
  /** Average actual cost per call, USD. */
  avgUsd: number;
  /** Share of the period's actual cost, 0–100. */
  sharePct: number;
  inputTokens: number;
  outputTokens: number;
}

/** Cost of one task type or agent. */
export interface NamedCost {
  name: string;
  calls: number;
  usd: number;
  /** Share of the period's actual cost, 0–100. */
  sharePct: number;
}

/** Cost of one workflow (by topology name). */
export interface WorkflowCost {
  name: string;
  /** Workflows of this name started in the period. */
  runs: number;
  calls: number;
  usd: number;
  /** Average actual cost per run, USD (0 with no runs). */
  avgUsdPerRun: number;
  /** Savings credited to these workflows, USD. */
  savedUsd: number;
  /** What they would have cost without caching, early stops and cascades: `usd + savedUsd`. */
  withoutSavingsUsd: number;
}

/** Cost of one tenant (`RunOptions.tenant`). */
export interface TenantCost {
  tenant: string;
  /** Workflows of this tenant started in the period. */
  runs: number;
  calls: number;
  usd: number;
  /** Share of the period's actual cost, 0–100. */
  sharePct: number;
}

/** Cost of one day. */
export interface DayCost {
  day: string;
  calls: number;
  usd: number;
  savedUsd: number;
}

/** Savings from one source. */
export interface SourceSavings {
  usd: number;
  /** Events that carried a saving (cache hits, decided votes, accepted cascades). */
  events: number;
}

/** Savings over the period. */
export interface SavingsSummary {
  totalUsd: number;
  bySource: Record<SavingsSource, SourceSavings>;
  /** Actual cost plus savings: what the same workload would have cost without them. */
  withoutSavingsUsd: number;
  /** Savings as a share of `withoutSavingsUsd`, 0–100. */
  reductionPct: number;
}

/** A budget alert as recorded in the log. */
export type BudgetAlertRecord = EventPayloads['budget.alert'] & { ts: number };

/** The report of {@link CostTracker.summary}: totals, breakdowns sorted by cost (descending), savings. */
export interface CostSummary {
  /** The day summarised, or undefined when the summary covers everything folded. */
  day: string | undefined;
  timeZone: string;
  /** Actual cost of every attempt, USD. */
  actualUsd: number;
  /** Model calls that incurred cost: attempts, and each model turn of a tool loop. */
  calls: number;
  /** Sum of the estimates of those same attempts, USD (compare with `actualUsd`). */
  estimatedUsd: number;
  /** Sum of every reservation made before a call (`cost.reserved`), USD. */
  reservedUsd: number;
  reservations: number;
  /**
   * Of `actualUsd`, what was charged from the estimate because no usage was reported (a `run()`
   * without `usage`, a timeout, a cancelled call: `cost.incurred` marked `estimated`), USD.
   */
  unreportedUsd: number;
  /** Attempts charged that way. */
  unreportedCalls: number;
  inputTokens: number;
  outputTokens: number;
  byModel: ModelCost[];
  byTaskType: NamedCost[];
  byAgent: NamedCost[];
  /** Ascending by day. */
  byDay: DayCost[];
  /** The most expensive workflows by name (at most `top`). */
  topWorkflows: WorkflowCost[];
  /**
   * Cost by tenant, most expensive first: every tenant with a workflow or a cost in the period.
   * Workflows run without a tenant are not listed (their cost is `actualUsd` minus these).
   */
  byTenant: TenantCost[];
  savings: SavingsSummary;
  /** Budget alerts in the period, oldest first. */
  alerts: BudgetAlertRecord[];
}

/** The cost fold. */
export interface CostTracker {
  /** Folds one committed event. O(1); ignores event types it does not read. */
  apply(event: KeelEvent): void;
  /** Folds many events (e.g. `store.iterate()`), in order. */
  applyAll(events: Iterable<KeelEvent>): void;
  /** Actual cost so far, USD (of one day when `day` is given). */
  totalUsd(day?: string): number;
  /** Days with any activity, ascending. */
  days(): string[];
  /** Budget alerts seen (newest `maxAlerts`), oldest first. */
  alerts(): readonly BudgetAlertRecord[];
  /** The report, for one day (`YYYY-MM-DD` in the tracker's time zone) or for everything. */
  summary(options?: { day?: string; top?: number }): CostSummary;
}

interface Line {
  calls: number;
  usd: number;
  inputTokens: number;
  outputTokens: number;
}

interface WorkflowLine {
  runs: number;
  calls: number;
  usd: number;
  savedUsd: number;
}

/** Everything summed over one period (a day, or all time). */
interface Bucket {
  actualUsd: number;
  calls: number;
  estimatedUsd: number;
  reservedUsd: number;
  reservations: number;
  unreportedUsd: number;
  unreportedCalls: number;
  inputTokens: number;
  outputTokens: number;
  byModel: Map<string, Line>;
  byTaskType: Map<string, Line>;
  byAgent: Map<string, Line>;
  byWorkflow: Map<string, WorkflowLine>;
  /** Tenant → its runs (in `runs`), calls and cost. */
  byTenant: Map<string, WorkflowLine>;
  savings: Record<SavingsSource, SourceSavings>;
}

const newBucket = (): Bucket => ({
  actualUsd: 0,
  calls: 0,
  estimatedUsd: 0,
  reservedUsd: 0,
  reservations: 0,
  unreportedUsd: 0,
  unreportedCalls: 0,
  inputTokens: 0,
  outputTokens: 0,
  byModel: new Map(),
  byTaskType: new Map(),
  byAgent: new Map(),
  byWorkflow: new Map(),
  byTenant: new Map(),
  savings: { cache: { usd: 0, events: 0 }, vote: { usd: 0, events: 0 }, cascade: { usd: 0, events: 0 } },
});

function line(map: Map<string, Line>, key: string): Line {
  let l = map.get(key);
  if (l === undefined) {
    l = { calls: 0, usd: 0, inputTokens: 0, outputTokens: 0 };
    map.set(key, l);
  }
  return l;
}

function workflowLine(map: Map<string, WorkflowLine>, name: string): WorkflowLine {
  let l = map.get(name);
  if (l === undefined) {
    l = { runs: 0, calls: 0, usd: 0, savedUsd: 0 };
    map.set(name, l);
  }
  return l;
}

const share = (usd: number, total: number): number => (total > 0 ? (usd / total) * 100 : 0);
const byUsdDesc = <T extends { usd: number }>(a: T, b: T): number => b.usd - a.usd;

/**
 * Creates the cost fold. Memory is bounded by the number of distinct days, models, task types,
 * agents, workflow names and tenants — not by the number of workflows.
 *
 * @example
 * const tracker = createCostTracker({ timeZone: 'Europe/Paris' });
 * tracker.applyAll(store.iterate());
 * const today = tracker.summary({ day: '2026-01-15' });
 * console.log(formatCostDashboard(today, { budgetUsd: 100 }).join('\n'));
 */
export function createCostTracker(options: CostTrackerOptions = {}): CostTracker {
  const calendar = dayCalendar(options.timeZone ?? 'UTC', 'timeZone');
  const maxOpen = options.maxOpenWorkflows ?? 100_000;
  const maxAlerts = options.maxAlerts ?? 1_000;
  const all = newBucket();
  const days = new Map<string, Bucket>();
  const open = new Map<string, string>(); // workflowId → name, while running
  const alertLog: BudgetAlertRecord[] = [];

  const dayBucket = (ts: number): Bucket => {
    const day = calendar.dayOf(ts);
    let b = days.get(day);
    if (b === undefined) {
      b = newBucket();
      days.set(day, b);
    }
    return b;
  };
  const nameOf = (workflowId: string): string => open.get(workflowId) ?? UNKNOWN_WORKFLOW;

  const incur = (b: Bucket, p: EventPayloads['cost.incurred'], workflow: string): void => {
    const { costUsd, usage } = p;
    b.actualUsd += costUsd;
    b.calls += 1;
    b.estimatedUsd += p.estimateUsd;
    if (p.estimated === true) {
      b.unreportedUsd += costUsd;
      b.unreportedCalls += 1;
    }
    b.inputTokens += usage.inputTokens;
    b.outputTokens += usage.outputTokens;
    const m = line(b.byModel, p.model);
    m.calls += 1;
    m.usd += costUsd;
    m.inputTokens += usage.inputTokens;
    m.outputTokens += usage.outputTokens;
    const t = line(b.byTaskType, p.taskType);
    t.calls += 1;
    t.usd += costUsd;
    const a = line(b.byAgent, p.agent);
    a.calls += 1;
    a.usd += costUsd;
    const w = workflowLine(b.byWorkflow, workflow);
    w.calls += 1;
    w.usd += costUsd;
    if (p.tenant !== undefined) {
      const tl = workflowLine(b.byTenant, p.tenant);
      tl.calls += 1;
      tl.usd += costUsd;
    }
  };

  const credit = (b: Bucket, workflow: string, source: SavingsSource, usd: number): void => {
    const s = b.savings[source];
    s.usd += usd;
    s.events += 1;
    workflowLine(b.byWorkflow, workflow).savedUsd += usd;
  };
  const save = (ts: number, workflowId: string, source: SavingsSource, usd: number): void => {
    const workflow = nameOf(workflowId);
    credit(all, workflow, source, usd);
    credit(dayBucket(ts), workflow, source, usd);
  };

  const apply = (e: KeelEvent): void => {
    switch (e.type) {
      case 'workflow.started': {
        if (open.size >= maxOpen) {
          const oldest = open.keys().next();
          if (!oldest.done) open.delete(oldest.value);
        }
        open.set(e.workflowId, e.payload.name);
        workflowLine(all.byWorkflow, e.payload.name).runs += 1;
        workflowLine(dayBucket(e.ts).byWorkflow, e.payload.name).runs += 1;
        if (e.payload.tenant !== undefined) {
          workflowLine(all.byTenant, e.payload.tenant).runs += 1;
          workflowLine(dayBucket(e.ts).byTenant, e.payload.tenant).runs += 1;
        }
        return;
      }
      case 'workflow.completed':
      case 'workflow.failed':
      case 'workflow.cancelled':
      case 'workflow.interrupted':
        open.delete(e.workflowId);
        return;
      case 'cost.reserved': {
        const d = dayBucket(e.ts);
        all.reservedUsd += e.payload.estimateUsd;
        all.reservations += 1;
        d.reservedUsd += e.payload.estimateUsd;
        d.reservations += 1;
        return;
      }
      case 'cost.incurred': {
        const workflow = nameOf(e.workflowId);
        incur(all, e.payload, workflow);
        incur(dayBucket(e.ts), e.payload, workflow);
        return;
      }
      case 'cache.hit':
        save(e.ts, e.workflowId, 'cache', e.payload.savedUsd);
        return;
      case 'vote.decided':
        if (e.payload.savedUsd !== 0) save(e.ts, e.workflowId, 'vote', e.payload.savedUsd);
        return;
      case 'cascade.accepted':
        if (e.payload.savedUsd !== 0) save(e.ts, e.workflowId, 'cascade', e.payload.savedUsd);
        return;
      case 'budget.alert':
        alertLog.push({ ...e.payload, ts: e.ts });
        if (alertLog.length > maxAlerts) alertLog.shift();
        return;
      default:
        return;
    }
  };

  const summarise = (b: Bucket, day: string | undefined, top: number): CostSummary => {
    const total = b.actualUsd;
    const byModel: ModelCost[] = [...b.byModel].map(([model, l]) => ({
      model,
      calls: l.calls,
      usd: l.usd,
      avgUsd: l.calls > 0 ? l.usd / l.calls : 0,
      sharePct: share(l.usd, total),
      inputTokens: l.inputTokens,
      outputTokens: l.outputTokens,
    }));
    const named = (map: Map<string, Line>): NamedCost[] =>
      [...map]
        .map(([name, l]) => ({ name, calls: l.calls, usd: l.usd, sharePct: share(l.usd, total) }))
        .sort(byUsdDesc);
    const workflows: WorkflowCost[] = [...b.byWorkflow]
      .map(([name, w]) => ({
        name,
        runs: w.runs,
        calls: w.calls,
        usd: w.usd,
        avgUsdPerRun: w.runs > 0 ? w.usd / w.runs : 0,
        savedUsd: w.savedUsd,
        withoutSavingsUsd: w.usd + w.savedUsd,
      }))
      .filter((w) => w.usd > 0 || w.savedUsd > 0)
      .sort(byUsdDesc)
      .slice(0, top);
    const byTenant: TenantCost[] = [...b.byTenant]
      .map(([tenant, t]) => ({
        tenant,
        runs: t.runs,
        calls: t.calls,
        usd: t.usd,
        sharePct: share(t.usd, total),
      }))
      .sort((x, y) => y.usd - x.usd || (x.tenant < y.tenant ? -1 : 1));
    const daysList = day !== undefined ? [day] : [...days.keys()].sort();
    const byDay: DayCost[] = daysList.map((d) => {
      const db = days.get(d) ?? newBucket();
      return { day: d, calls: db.calls, usd: db.actualUsd, savedUsd: savedTotal(db) };
    });
    const saved = savedTotal(b);
    const without = total + saved;
    return {
      day,
      timeZone: calendar.timeZone,
      actualUsd: total,
      calls: b.calls,
      estimatedUsd: b.estimatedUsd,
      reservedUsd: b.reservedUsd,
      reservations: b.reservations,
      unreportedUsd: b.unreportedUsd,
      unreportedCalls: b.unreportedCalls,
      inputTokens: b.inputTokens,
      outputTokens: b.outputTokens,
      byModel: byModel.sort(byUsdDesc),
      byTaskType: named(b.byTaskType),
      byAgent: named(b.byAgent),
      byDay,
      topWorkflows: workflows,
      byTenant,
      savings: {
        totalUsd: saved,
        bySource: {
          cache: { ...b.savings.cache },
          vote: { ...b.savings.vote },
          cascade: { ...b.savings.cascade },
        },
        withoutSavingsUsd: without,
        reductionPct: share(saved, without),
      },
      alerts: day === undefined ? [...alertLog] : alertLog.filter((a) => a.day === day),
    };
  };

  return {
    apply,
    applyAll(events) {
      for (const e of events) apply(e);
    },
    totalUsd: (day) => (day === undefined ? all.actualUsd : (days.get(day)?.actualUsd ?? 0)),
    days: () => [...days.keys()].sort(),
    alerts: () => alertLog,
    summary(opts = {}) {
      const top = opts.top ?? 5;
      if (opts.day === undefined) return summarise(all, undefined, top);
      return summarise(days.get(opts.day) ?? newBucket(), opts.day, top);
    },
  };
}

function savedTotal(b: Bucket): number {
  return b.savings.cache.usd + b.savings.vote.usd + b.savings.cascade.usd;
}
