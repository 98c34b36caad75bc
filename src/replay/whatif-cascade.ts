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
import type { KeelEvent } from '../eventlog/events.js';
import { AccuracyTally, sameAnswer, type Accuracy, type Outcome } from './accuracy.js';
import {
  childOf,
  foldWorkflows,
  perRun,
  siteChildren,
  trackSites,
  type Site,
  type WorkflowEnd,
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

interface Run {
  workflowId: string;
  stages: StageRec[];
  decided: boolean[];
  accepted: number | undefined;
  closed: boolean;
  /** Recorded outcome once finalized: the answering stage, or -1 for a failed cascade. */
  outcome: number;
}

interface SiteAcc {
  path: string;
  workflow: string;
  isRoot: boolean;
  stages: CascadeStageInfo[];
  recordedRule: number | string;
  runs: Run[];
}

interface Tracked {
  site: Site;
  acc: SiteAcc;
  current: Run | undefined;
}

function newRun(workflowId: string, n: number): Run {
  const stages: StageRec[] = [];
  for (let i = 0; i < n; i++) stages.push({ ran: false, failed: false, costUsd: 0 });
  return {
    workflowId,
    stages,
    decided: new Array<boolean>(n).fill(false),
    accepted: undefined,
    closed: false,
    outcome: -2,
  };
}

/** Keeps a finished run when its outcome is known (answered, or its last stage failed). */
function finalize(acc: SiteAcc, run: Run, how: WorkflowEnd | 'replaced'): void {
  if (run.accepted !== undefined) run.outcome = run.accepted;
  else if (how !== 'cancelled' && how !== 'unfinished' && run.stages[run.stages.length - 1]?.ran)
    run.outcome = -1;
  else return;
  if (run.stages[0]?.ran) acc.runs.push(run);
}

/** The run an event for stage `index` belongs to: the current one, or a new one when that stage is already decided. */
function runOf(t: Tracked, index: number, workflowId: string): Run {
  let r = t.current;
  if (!r || r.closed || r.decided[index]) {
    if (r && !r.closed) finalize(t.acc, r, 'replaced');
    r = newRun(workflowId, t.site.node.children.length);
    t.current = r;
  }
  return r;
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

/**
 * Re-evaluates every recorded cascade under other confidence thresholds, without calling a model.
 * One pass over `events` (e.g. `store.iterate()`); memory grows with the number of cascade runs.
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
  checkThresholds(options.thresholds);
  const volume = options.volumePerWeek;
  if (volume !== undefined) projectVolume(0, volume); // validates the volume up front
  const sites = new Map<string, SiteAcc>();

  const feedback = foldWorkflows<Tracked[]>(events, {
    start(e) {
      return trackSites(e, 'cascade', options.path, sites, (site, workflow): SiteAcc => {
        const o = site.node.options ?? {};
        return {
          path: site.path,
          workflow,
          isRoot: site.path === workflow,
          stages: siteChildren(site),
          recordedRule:
            typeof o.accept === 'string' ? o.accept : typeof o.threshold === 'number' ? o.threshold : 0.9,
          runs: [],
        };
      })?.map((t) => ({ ...t, current: undefined }));
    },
    event(tracked, e) {
      const p = e.payload as { path?: unknown };
      if (typeof p.path !== 'string') return;
      for (const t of tracked) {
        if (p.path === t.site.path) {
          if (e.type === 'cascade.escalated') {
            const r = runOf(t, e.payload.fromStage, e.workflowId);
            const s = r.stages[e.payload.fromStage];
            if (!s) continue;
            s.ran = true;
            s.failed = e.payload.reason.startsWith('failed:');
            if (e.payload.confidence !== undefined) s.confidence = e.payload.confidence;
            r.decided[e.payload.fromStage] = true;
          } else if (e.type === 'cascade.accepted') {
            const r = runOf(t, e.payload.stage, e.workflowId);
            const s = r.stages[e.payload.stage];
            if (!s) continue;
            s.ran = true;
            if (e.payload.confidence !== undefined) s.confidence = e.payload.confidence;
            r.decided[e.payload.stage] = true;
            r.accepted = e.payload.stage;
            r.closed = true;
            finalize(t.acc, r, 'completed');
          }
          continue;
        }
        const c = childOf(t.site, p.path);
        if (!c) continue;
        switch (e.type) {
          case 'cost.incurred': {
            const s = runOf(t, c.index, e.workflowId).stages[c.index] as StageRec;
            s.ran = true;
            s.costUsd += e.payload.costUsd;
            break;
          }
          case 'agent.succeeded':
            if (c.exact) {
              const s = runOf(t, c.index, e.workflowId).stages[c.index] as StageRec;
              s.ran = true;
              s.answer = { value: e.payload.output };
            }
            break;
          case 'vote.decided':
            if (c.exact) {
              const s = runOf(t, c.index, e.workflowId).stages[c.index] as StageRec;
              s.ran = true;
              s.answer = { value: e.payload.value };
            }
            break;
          case 'agent.failed':
          case 'agent.rejected':
            if (c.exact) (runOf(t, c.index, e.workflowId).stages[c.index] as StageRec).ran = true;
            break;
          default:
            break;
        }
      }
    },
    end(tracked, how) {
      for (const t of tracked) if (t.current && !t.current.closed) finalize(t.acc, t.current, how);
    },
  });

  const out: CascadeSiteWhatIf[] = [];
  for (const acc of sites.values()) {
    const n = acc.stages.length;
    const runs = acc.runs.length;
    if (runs === 0) continue;
    // What happened.
    const recAnswered = new Array<number>(n).fill(0);
    let recFailed = 0;
    let recCost = 0;
    let lastCost = 0;
    let lastSamples = 0;
    const recTally = new AccuracyTally();
    for (const r of acc.runs) {
      for (const s of r.stages) recCost += s.costUsd;
      const last = r.stages[n - 1] as StageRec;
      if (last.ran) {
        lastCost += last.costUsd;
        lastSamples++;
      }
      if (r.outcome >= 0) recAnswered[r.outcome] = (recAnswered[r.outcome] ?? 0) + 1;
      else recFailed++;
      recTally.add(
        feedback.get(r.workflowId),
        { kind: 'answer', value: undefined, known: false },
        true,
        acc.isRoot,
      );
    }
    const baseline = perRun(lastCost, lastSamples);
    const project = (cost: number | null): VolumeProjection | null | undefined =>
      volume === undefined
        ? undefined
        : cost === null
          ? null
          : projectVolume(cost, volume, baseline ?? undefined);
    const recCheap = (recAnswered[0] ?? 0) / runs;
    const recPerRun = recCost / runs;

    const rows = options.thresholds.map((threshold): CascadeThresholdRow => {
      const answered = new Array<number>(n).fill(0);
      let failed = 0;
      let unknown = 0;
      let cost = 0;
      const tally = new AccuracyTally();
      for (const r of acc.runs) {
        const ev = evaluate(r, threshold);
        const recordedAnswer = r.outcome >= 0 ? r.stages[r.outcome]?.answer : undefined;
        let outcome: Outcome;
        let same: boolean;
        if (ev.kind === 'unknown') {
          unknown++;
          outcome = { kind: 'unknown' };
          same = false;
        } else if (ev.kind === 'failed') {
          failed++;
          cost += ev.costUsd;
          outcome = { kind: 'failed' };
          same = r.outcome === -1;
        } else {
          answered[ev.stage] = (answered[ev.stage] ?? 0) + 1;
          cost += ev.costUsd;
          const answer = r.stages[ev.stage]?.answer;
          outcome = { kind: 'answer', value: answer?.value, known: answer !== undefined };
          same = ev.stage === r.outcome || sameAnswer(answer, recordedAnswer);
        }
        tally.add(feedback.get(r.workflowId), outcome, same, acc.isRoot);
      }
      const cheapShare = (answered[0] ?? 0) / runs;
      const costPerRunUsd = unknown > 0 ? null : cost / runs;
      const row: CascadeThresholdRow = {
        threshold,
        answeredByStage: answered,
        failed,
        unknown,
        cheapShare,
        escalatedShare: 1 - cheapShare,
        costPerRunUsd,
        accuracy: tally.result(),
      };
      const v = project(costPerRunUsd);
      if (v !== undefined) row.volume = v;
      return row;
    });

    const recorded: CascadeSiteWhatIf['recorded'] = {
      answeredByStage: recAnswered,
      failed: recFailed,
      cheapShare: recCheap,
      escalatedShare: 1 - recCheap,
      costPerRunUsd: recPerRun,
      accuracy: recTally.result(),
    };
    const rv = project(recPerRun);
    if (rv !== undefined) recorded.volume = rv;
    const lastStageOnly: CascadeSiteWhatIf['lastStageOnly'] = {
      costPerRunUsd: baseline,
      samples: lastSamples,
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
