/**
 * What-if for cascade thresholds: for each recorded cascade run, which stage would have answered
 * under another confidence threshold, at what cost and with what accuracy — computed from the
 * recorded stage outputs alone, with no model call. A stricter threshold that needs a stage the
 * record never ran makes that run (and the cost and accuracy cells it feeds) `unknown`.
 *
 * To tune a threshold from one log, record with the strictest threshold you consider: every
 * looser one is then exact.
 */
import { ConfigError } from '../core/errors.js';
import { canonicalJson } from '../core/json.js';
import type { KeelEvent } from '../eventlog/events.js';
import { foldSync, type EventFold } from '../eventlog/fold.js';
import {
  AccuracyTally,
  AS_RECORDED,
  sameAnswer,
  UNTOLD,
  WRONG,
  type Accuracy,
  type Verdict,
} from './accuracy.js';
import {
  childOf,
  perRun,
  siteChildren,
  trackSites,
  WorkflowRouter,
  type Label,
  type Site,
  type WorkflowEnd,
  type WorkflowFold,
} from './internal/recorded-runs.js';
import { projectVolume, type VolumeProjection } from './volume.js';

/** Options of {@link whatIfCascade}. */
export interface CascadeWhatIfOptions {
  /** Confidence thresholds to evaluate, each in [0, 1], e.g. `[0.95, 0.9, 0.85]`. */
  thresholds: readonly number[];
  /** Runs per week to project costs to (e.g. 20_000 invoices); default: no projection. */
  volumePerWeek?: number;
  /** Only the cascade at this node path (e.g. `invoice/cascade[2]`); default: every cascade. */
  path?: string;
}

/** One stage of a cascade, as recorded. */
export interface CascadeStageInfo {
  index: number;
  /** The stage's agent name (or composite name / kind). */
  name: string;
  /** The agent's configured model, for agent stages. */
  model?: string;
}

/** A cascade's outcome distribution under one threshold. */
export interface CascadeThresholdRow {
  threshold: number;
  /** Runs answered by each stage (runs that are `unknown` are in no stage). */
  answeredByStage: number[];
  /** Runs whose last stage failed: the cascade (and its workflow step) fails. */
  failed: number;
  /** Runs that would need a stage the record never ran: their stage, cost and accuracy are unknown. */
  unknown: number;
  /** Share of runs answered by the first (cheap) stage, in [0, 1]. Always known. */
  cheapShare: number;
  /** Share of runs escalated past the first stage, in [0, 1]. Always known. */
  escalatedShare: number;
  /** Mean cost of a run, USD; `null` when any run is unknown. */
  costPerRunUsd: number | null;
  accuracy: Accuracy;
  /** Weekly and yearly cost at `volumePerWeek`, against the last-stage-only baseline when known; `null` when the cost is unknown. */
  volume?: VolumeProjection | null;
}

/** What-if of one cascade node (one path in one workflow's topology). */
export interface CascadeSiteWhatIf {
  /** Node path, e.g. `extract` or `invoice/cascade[1]`. */
  path: string;
  /** Workflow name. */
  workflow: string;
  stages: CascadeStageInfo[];
  /** The rule the runs were recorded under: the threshold, or `fn:<name>` for a custom `accept`. */
  recordedRule: number | string;
  /** Recorded runs of this cascade (cancelled runs are left out). */
  runs: number;
  /** What actually happened. */
  recorded: Omit<CascadeThresholdRow, 'threshold' | 'unknown'>;
  /**
   * The tutorial's baseline, every run sent straight to the last stage (e.g. GPT-4 only): the mean
   * recorded cost of that stage. An estimate (`samples` runs reached it); `null` when none did.
   */
  lastStageOnly: { costPerRunUsd: number | null; samples: number; volume?: VolumeProjection | null };
  rows: CascadeThresholdRow[];
}

/** Result of {@link whatIfCascade}. */
export interface CascadeWhatIf {
  volumePerWeek?: number;
  /** One entry per cascade node found in the log, by path. */
  sites: CascadeSiteWhatIf[];
}

interface StageRec {
  ran: boolean;
  failed: boolean;
  confidence?: number;
  costUsd: number;
  answer?: { value: unknown };
}

/** One recorded run of a cascade, while it is read (its workflow is running). */
interface Run {
  stages: StageRec[];
  decided: boolean[];
  accepted: number | undefined;
  closed: boolean;
  /** Recorded outcome once finalized: the answering stage, or -1 for a failed cascade. */
  outcome: number;
}

/** A threshold's figures, summed run by run. */
interface RowAcc {
  answered: number[];
  failed: number;
  unknown: number;
  costUsd: number;
}

/** What a finished run leaves behind: how to judge it under each threshold once its ground truth is in. */
interface Judged {
  label: Label;
  /** One per threshold. */
  verdicts: Verdict[];
}

interface SiteAcc {
  path: string;
  workflow: string;
  isRoot: boolean;
  stages: CascadeStageInfo[];
  recordedRule: number | string;
  /** Finished runs kept (answered, or failed at the last stage). */
  runs: number;
  recAnswered: number[];
  recFailed: number;
  recCostUsd: number;
  lastStageCostUsd: number;
  lastStageSamples: number;
  /** One per threshold. */
  rows: RowAcc[];
  judged: Judged[];
}

interface Tracked {
  site: Site;
  acc: SiteAcc;
  label: Label;
  current: Run | undefined;
}

function newRun(n: number): Run {
  const stages: StageRec[] = [];
  for (let i = 0; i < n; i++) stages.push({ ran: false, failed: false, costUsd: 0 });
  return {
    stages,
    decided: new Array<boolean>(n).fill(false),
    accepted: undefined,
    closed: false,
    outcome: -2,
  };
}

type Eval =
  | { kind: 'answer'; stage: number; costUsd: number }
  | { kind: 'failed'; costUsd: number }
  | { kind: 'unknown' };

/** The stage that answers `run` under `threshold`, from the recorded stages only. */
function evaluate(run: Run, threshold: number): Eval {
  let costUsd = 0;
  const last = run.stages.length - 1;
  for (let i = 0; i <= last; i++) {
    const s = run.stages[i] as StageRec;
    if (!s.ran) return { kind: 'unknown' };
    costUsd += s.costUsd;
    if (s.failed) {
      if (i === last) return { kind: 'failed', costUsd };
      continue;
    }
    if (i === last || (s.confidence ?? 0) >= threshold) return { kind: 'answer', stage: i, costUsd };
  }
  return { kind: 'failed', costUsd };
}

function checkThresholds(thresholds: readonly number[]): void {
  if (!Array.isArray(thresholds) || thresholds.length === 0)
    throw new ConfigError(
      'thresholds',
      'give at least one confidence threshold in [0, 1], e.g. [0.95, 0.9, 0.85]',
    );
  for (const t of thresholds) {
    if (typeof t !== 'number' || !(t >= 0 && t <= 1))
      throw new ConfigError('thresholds', `each threshold must be a number in [0, 1], got ${String(t)}`);
  }
}

/** The cascade what-if as a fold: apply the log's events in order, then take the {@link CascadeWhatIf}. */
export interface CascadeWhatIfFold extends EventFold<CascadeWhatIf> {
  /** Workflows running now, whose cascade runs are being read: what the fold's memory is bounded by. */
  readonly openWorkflows: number;
}

/**
 * The cascade what-if as a push-based fold, for streams {@link whatIfCascade} cannot take: drive
 * it with `foldEvents` over any store's `iterate()` (Postgres's is asynchronous). Holds the
 * workflows running at once, plus a few bytes per finished cascade run (how to judge it once its
 * ground truth arrives), never the events.
 *
 * @throws ConfigError for a threshold outside [0, 1] or a bad volume.
 * @example
 * const fold = createCascadeWhatIf({ thresholds: [0.95, 0.9, 0.85], volumePerWeek: 20_000 });
 * const table = await foldEvents(fold, postgresStore.iterate());
 * console.log(table.sites[0]?.rows.map((r) => [r.threshold, r.cheapShare]));
 */
export function createCascadeWhatIf(options: CascadeWhatIfOptions): CascadeWhatIfFold {
  return new CascadeReader(options);
}

/**
 * Re-evaluates every recorded cascade under other confidence thresholds, without calling a model.
 * One pass over `events` (e.g. `store.iterate()`); for an asynchronous stream (a Postgres store),
 * use {@link createCascadeWhatIf} with `foldEvents`.
 *
 * Exact wherever the answer depends only on recorded outputs: a looser threshold than the
 * recorded one drops escalations whose cost and answer the record holds; a stricter one that
 * needs an unrecorded stage marks the run `unknown`. Accuracy comes from `feedback.recorded`.
 *
 * @throws ConfigError for a threshold outside [0, 1] or a bad volume.
 * @example
 * const table = whatIfCascade(store.iterate(), { thresholds: [0.95, 0.9, 0.85], volumePerWeek: 20_000 });
 * for (const row of table.sites[0]?.rows ?? []) console.log(row.threshold, row.cheapShare, row.volume?.costPerWeekUsd);
 */
export function whatIfCascade(events: Iterable<KeelEvent>, options: CascadeWhatIfOptions): CascadeWhatIf {
  return foldSync(createCascadeWhatIf(options), events);
}

/** The fold behind {@link createCascadeWhatIf}. */
class CascadeReader implements CascadeWhatIfFold, WorkflowFold<Tracked[]> {
  private readonly thresholds: readonly number[];
  private readonly volume: number | undefined;
  private readonly path: string | undefined;
  private readonly sites = new Map<string, SiteAcc>();
  private readonly router = new WorkflowRouter<Tracked[]>(this);

  constructor(options: CascadeWhatIfOptions) {
    checkThresholds(options.thresholds);
    this.volume = options.volumePerWeek;
    if (this.volume !== undefined) projectVolume(0, this.volume); // validates the volume up front
    this.thresholds = [...options.thresholds];
    this.path = options.path;
  }

  get openWorkflows(): number {
    return this.router.openWorkflows;
  }

  apply(e: KeelEvent): void {
    this.router.apply(e);
  }

  start(e: KeelEvent<'workflow.started'>, label: Label): Tracked[] | undefined {
    const n = this.thresholds.length;
    return trackSites(e, 'cascade', this.path, this.sites, (site, workflow): SiteAcc => {
      const o = site.node.options ?? {};
      const stages = siteChildren(site);
      const rows: RowAcc[] = [];
      for (let i = 0; i < n; i++)
        rows.push({ answered: new Array<number>(stages.length).fill(0), failed: 0, unknown: 0, costUsd: 0 });
      return {
        path: site.path,
        workflow,
        isRoot: site.path === workflow,
        stages,
        recordedRule:
          typeof o.accept === 'string' ? o.accept : typeof o.threshold === 'number' ? o.threshold : 0.9,
        runs: 0,
        recAnswered: new Array<number>(stages.length).fill(0),
        recFailed: 0,
        recCostUsd: 0,
        lastStageCostUsd: 0,
        lastStageSamples: 0,
        rows,
        judged: [],
      };
    })?.map((t) => ({ ...t, label, current: undefined }));
  }

  event(tracked: Tracked[], e: KeelEvent): void {
    const p = e.payload as { path?: unknown };
    if (typeof p.path !== 'string') return;
    for (const t of tracked) {
      if (p.path === t.site.path) {
        if (e.type === 'cascade.escalated') {
          const r = this.runOf(t, e.payload.fromStage);
          const s = r.stages[e.payload.fromStage];
          if (!s) continue;
          s.ran = true;
          s.failed = e.payload.reason.startsWith('failed:');
          if (e.payload.confidence !== undefined) s.confidence = e.payload.confidence;
          r.decided[e.payload.fromStage] = true;
        } else if (e.type === 'cascade.accepted') {
          const r = this.runOf(t, e.payload.stage);
          const s = r.stages[e.payload.stage];
          if (!s) continue;
          s.ran = true;
          if (e.payload.confidence !== undefined) s.confidence = e.payload.confidence;
          r.decided[e.payload.stage] = true;
          r.accepted = e.payload.stage;
          r.closed = true;
          this.finalize(t, r, 'completed');
        }
        continue;
      }
      const c = childOf(t.site, p.path);
      if (!c) continue;
      switch (e.type) {
        case 'cost.incurred': {
          const s = this.runOf(t, c.index).stages[c.index] as StageRec;
          s.ran = true;
          s.costUsd += e.payload.costUsd;
          break;
        }
        case 'agent.succeeded':
          if (c.exact) {
            const s = this.runOf(t, c.index).stages[c.index] as StageRec;
            s.ran = true;
            s.answer = { value: e.payload.output };
          }
          break;
        case 'vote.decided':
          if (c.exact) {
            const s = this.runOf(t, c.index).stages[c.index] as StageRec;
            s.ran = true;
            s.answer = { value: e.payload.value };
          }
          break;
        case 'agent.failed':
        case 'agent.rejected':
          if (c.exact) {
            // A failed stage answers under no threshold: the last one fails the cascade.
            const s = this.runOf(t, c.index).stages[c.index] as StageRec;
            s.ran = true;
            s.failed = true;
          }
          break;
        default:
          break;
      }
    }
  }

  end(tracked: Tracked[], how: WorkflowEnd): void {
    for (const t of tracked) if (t.current && !t.current.closed) this.finalize(t, t.current, how);
  }

  /** The run an event for stage `index` belongs to: the current one, or a new one when that stage is already decided. */
  private runOf(t: Tracked, index: number): Run {
    let r = t.current;
    if (!r || r.closed || r.decided[index]) {
      if (r && !r.closed) this.finalize(t, r, 'replaced');
      r = newRun(t.site.node.children.length);
      t.current = r;
    }
    return r;
  }

  /** Keeps a finished run when its outcome is known (answered, or its last stage failed). */
  private finalize(t: Tracked, run: Run, how: WorkflowEnd | 'replaced'): void {
    if (run.accepted !== undefined) run.outcome = run.accepted;
    else if (how !== 'cancelled' && how !== 'unfinished' && run.stages[run.stages.length - 1]?.ran)
      run.outcome = -1;
    else return;
    if (run.stages[0]?.ran) this.record(t, run);
  }

  /** Adds a finished run to its site's figures under every threshold; keeps only how to judge it. */
  private record(t: Tracked, run: Run): void {
    const acc = t.acc;
    const n = acc.stages.length;
    acc.runs++;
    for (const s of run.stages) acc.recCostUsd += s.costUsd;
    const last = run.stages[n - 1] as StageRec;
    if (last.ran) {
      acc.lastStageCostUsd += last.costUsd;
      acc.lastStageSamples++;
    }
    if (run.outcome >= 0) acc.recAnswered[run.outcome] = (acc.recAnswered[run.outcome] ?? 0) + 1;
    else acc.recFailed++;
    const recordedAnswer = run.outcome >= 0 ? run.stages[run.outcome]?.answer : undefined;
    // A changed answer is compared with `feedback.expected` at the end: its JSON, once per stage.
    const json: (string | undefined)[] = [];
    const verdicts = this.thresholds.map((threshold, i): Verdict => {
      const row = acc.rows[i] as RowAcc;
      const ev = evaluate(run, threshold);
      if (ev.kind === 'unknown') {
        row.unknown++;
        return UNTOLD;
      }
      row.costUsd += ev.costUsd;
      if (ev.kind === 'failed') {
        row.failed++;
        return run.outcome === -1 ? AS_RECORDED : WRONG;
      }
      row.answered[ev.stage] = (row.answered[ev.stage] ?? 0) + 1;
      const answer = run.stages[ev.stage]?.answer;
      if (ev.stage === run.outcome || sameAnswer(answer, recordedAnswer)) return AS_RECORDED;
      if (!acc.isRoot || answer === undefined) return UNTOLD;
      return (json[ev.stage] ??= canonicalJson(answer.value ?? null));
    });
    acc.judged.push({ label: t.label, verdicts });
    t.label.kept = true;
  }

  result(): CascadeWhatIf {
    this.router.finish();
    const volume = this.volume;
    const out: CascadeSiteWhatIf[] = [];
    for (const acc of this.sites.values()) {
      const runs = acc.runs;
      if (runs === 0) continue;
      const recTally = new AccuracyTally();
      const tallies = this.thresholds.map(() => new AccuracyTally());
      for (const j of acc.judged) {
        const feedback = j.label.feedback;
        if (feedback === undefined) continue;
        recTally.add(feedback, AS_RECORDED);
        for (let i = 0; i < tallies.length; i++)
          (tallies[i] as AccuracyTally).add(feedback, j.verdicts[i] ?? UNTOLD);
      }
      const baseline = perRun(acc.lastStageCostUsd, acc.lastStageSamples);
      const project = (cost: number | null): VolumeProjection | null | undefined =>
        volume === undefined
          ? undefined
          : cost === null
            ? null
            : projectVolume(cost, volume, baseline ?? undefined);
      const recCheap = (acc.recAnswered[0] ?? 0) / runs;
      const recPerRun = acc.recCostUsd / runs;

      const rows = this.thresholds.map((threshold, i): CascadeThresholdRow => {
        const r = acc.rows[i] as RowAcc;
        const cheapShare = (r.answered[0] ?? 0) / runs;
        const costPerRunUsd = r.unknown > 0 ? null : r.costUsd / runs;
        const row: CascadeThresholdRow = {
          threshold,
          answeredByStage: [...r.answered],
          failed: r.failed,
          unknown: r.unknown,
          cheapShare,
          escalatedShare: 1 - cheapShare,
          costPerRunUsd,
          accuracy: (tallies[i] as AccuracyTally).result(),
        };
        const v = project(costPerRunUsd);
        if (v !== undefined) row.volume = v;
        return row;
      });

      const recorded: CascadeSiteWhatIf['recorded'] = {
        answeredByStage: [...acc.recAnswered],
        failed: acc.recFailed,
        cheapShare: recCheap,
        escalatedShare: 1 - recCheap,
        costPerRunUsd: recPerRun,
        accuracy: recTally.result(),
      };
      const rv = project(recPerRun);
      if (rv !== undefined) recorded.volume = rv;
      const lastStageOnly: CascadeSiteWhatIf['lastStageOnly'] = {
        costPerRunUsd: baseline,
        samples: acc.lastStageSamples,
      };
      const bv = project(baseline);
      if (bv !== undefined) lastStageOnly.volume = bv;
      out.push({
        path: acc.path,
        workflow: acc.workflow,
        stages: acc.stages,
        recordedRule: acc.recordedRule,
        runs,
        recorded,
        lastStageOnly,
        rows,
      });
    }
    out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return { ...(volume !== undefined ? { volumePerWeek: volume } : {}), sites: out };
  }
}
