/**
 * What-if for vote stop rules: how many voters each recorded vote would have called, at what
 * cost, and what it would have decided, under `'decided'` (stop once the leader cannot be
 * overtaken), `'all'`, or a fixed number of votes — from the recorded votes alone, with no model
 * call. When a rule needs a vote the record never cast (it stopped earlier), that run is
 * `unknown`, never guessed: record with `stop: 'all'` to evaluate every rule exactly.
 */
import { canonicalJson } from '../core/json.js';
import { ConfigError } from '../core/errors.js';
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

/**
 * A stop rule: `'decided'` stops once no remaining vote can change the leader; `'all'` hears
 * every voter; a number `N` stops once `N` votes are cast (`stop: (t) => t.votes.length >= N`).
 */
export type VoteStop = 'decided' | 'all' | number;

/** Options of {@link whatIfVote}. */
export interface VoteWhatIfOptions {
  /** Stop rules to evaluate, e.g. `['decided', 'all', 3]`. */
  stops: readonly VoteStop[];
  /** Runs per week to project costs to (e.g. 10_000 transactions); default: no projection. */
  volumePerWeek?: number;
  /** Only the vote at this node path; default: every vote. */
  path?: string;
}

/** A vote's outcome under one stop rule. */
export interface VoteStopRow {
  stop: VoteStop;
  /** Runs by number of voters called (`{ "3": 70, "4": 20, "5": 10 }`); unknown runs are in none. */
  agentsUsed: Record<string, number>;
  /** Mean voters called per run; `null` when any run is unknown. */
  meanAgentsUsed: number | null;
  /** Runs where no voter returned a value: the vote fails. */
  failed: number;
  /** Runs that would need a vote the record never cast. */
  unknown: number;
  /** Known runs whose decision differs from the recorded one. */
  changed: number;
  /** Mean cost of a run, USD; `null` when any run is unknown. */
  costPerRunUsd: number | null;
  accuracy: Accuracy;
  /** Weekly and yearly cost at `volumePerWeek`, against the all-voters baseline when known; `null` when the cost is unknown. */
  volume?: VolumeProjection | null;
}

/** What-if of one vote node. */
export interface VoteSiteWhatIf {
  path: string;
  workflow: string;
  voters: { index: number; name: string; model?: string }[];
  /** The stop rule recorded: `decided`, `all` or `fn:<name>`. */
  recordedRule: string;
  /** How voters were started: `sequential`, `quorum-first` or `parallel`. */
  launch: string;
  /** Recorded runs of this vote (cancelled runs are left out). */
  runs: number;
  /** Why some rules cannot be evaluated for this vote at all (custom key, concurrent launch). */
  limitation?: string;
  /** What actually happened. */
  recorded: Omit<VoteStopRow, 'stop' | 'unknown' | 'changed'>;
  /**
   * The tutorial's baseline, every voter called: the sum over voters of each one's mean recorded
   * cost. `estimated` when some runs stopped early; `null` when some voter never ran.
   */
  allVoters: { costPerRunUsd: number | null; estimated: boolean; volume?: VolumeProjection | null };
  rows: VoteStopRow[];
}

/** Result of {@link whatIfVote}. */
export interface VoteWhatIf {
  volumePerWeek?: number;
  sites: VoteSiteWhatIf[];
}

interface Ballot {
  value: unknown;
  weight: number;
}

/** One recorded run of a vote, while it is read (its workflow is running). */
interface Run {
  casts: (Ballot | undefined)[];
  castOrder: number[];
  called: boolean[];
  voterCost: number[];
  closed: boolean;
  /** Recorded decision; `undefined` for a failed vote. */
  decided: { value: unknown } | undefined;
  agentsUsed: number;
}

/** A stop rule's figures, summed run by run. */
interface RowAcc {
  used: Record<string, number>;
  usedSum: number;
  failed: number;
  unknown: number;
  changed: number;
  costUsd: number;
}

/** What a finished run leaves behind: how to judge it under each rule once its ground truth is in. */
interface Judged {
  label: Label;
  /** One per stop rule. */
  verdicts: Verdict[];
}

interface SiteAcc {
  path: string;
  workflow: string;
  isRoot: boolean;
  voters: VoteSiteWhatIf['voters'];
  weights: number[];
  recordedRule: string;
  launch: string;
  /** `key`: nothing can be re-evaluated; `launch`: only `'all'` can. */
  limitation: { kind: 'key' | 'launch'; message: string } | undefined;
  /** Finished runs kept. */
  runs: number;
  recUsed: Record<string, number>;
  recUsedSum: number;
  recFailed: number;
  recCostUsd: number;
  /** Recorded cost and runs of each voter, for the all-voters baseline. */
  voterCostUsd: number[];
  voterSamples: number[];
  allCalled: boolean;
  /** One per stop rule. */
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
  return {
    casts: new Array<Ballot | undefined>(n).fill(undefined),
    castOrder: [],
    called: new Array<boolean>(n).fill(false),
    voterCost: new Array<number>(n).fill(0),
    closed: false,
    decided: undefined,
    agentsUsed: 0,
  };
}

type Sim =
  | { kind: 'answer'; value: unknown; key: string; agentsUsed: number; costUsd: number }
  | { kind: 'failed'; agentsUsed: number; costUsd: number }
  | { kind: 'unknown' };

interface Group {
  key: string;
  value: unknown;
  weight: number;
  first: number;
}

/** The leader (ties go to the value voted first) and the best other weight, as the vote executor computes them. */
function leaderOf(groups: readonly Group[]): { leader: Group | undefined; runnerUp: number } {
  let leader: Group | undefined;
  let runnerUp = 0;
  for (const g of groups) {
    if (!leader || g.weight > leader.weight || (g.weight === leader.weight && g.first < leader.first)) {
      if (leader) runnerUp = Math.max(runnerUp, leader.weight);
      leader = g;
    } else runnerUp = Math.max(runnerUp, g.weight);
  }
  return { leader, runnerUp };
}

function addBallot(groups: Group[], ballot: Ballot, order: number): void {
  const key = canonicalJson(ballot.value ?? null);
  const g = groups.find((x) => x.key === key);
  if (g) g.weight += ballot.weight;
  else groups.push({ key, value: ballot.value, weight: ballot.weight, first: order });
}

/** Replays the vote's stop rule over the recorded outcomes, voter by voter (sequential launch). */
function simulateSequential(run: Run, stop: VoteStop, weights: readonly number[]): Sim {
  const n = weights.length;
  let remaining = weights.reduce((a, b) => a + b, 0);
  const groups: Group[] = [];
  let votes = 0;
  let costUsd = 0;
  for (let k = 0; k < n; k++) {
    if (k >= run.agentsUsed) return { kind: 'unknown' };
    costUsd += run.voterCost[k] ?? 0;
    remaining -= weights[k] ?? 1;
    const ballot = run.casts[k];
    if (ballot) addBallot(groups, ballot, ++votes);
    const { leader, runnerUp } = leaderOf(groups);
    const done =
      stop === 'all'
        ? false
        : stop === 'decided'
          ? leader !== undefined && leader.weight > runnerUp + remaining
          : votes >= stop;
    if (done || k === n - 1) {
      return leader
        ? { kind: 'answer', value: leader.value, key: leader.key, agentsUsed: k + 1, costUsd }
        : { kind: 'failed', agentsUsed: k + 1, costUsd };
    }
  }
  return { kind: 'unknown' };
}

/** `'all'` under a concurrent launch: known when every voter was called. */
function simulateAll(run: Run, n: number): Sim {
  if (run.agentsUsed < n) return { kind: 'unknown' };
  const groups: Group[] = [];
  let votes = 0;
  for (const i of run.castOrder) {
    const b = run.casts[i];
    if (b) addBallot(groups, b, ++votes);
  }
  const costUsd = run.voterCost.reduce((a, b) => a + b, 0);
  const { leader } = leaderOf(groups);
  return leader
    ? { kind: 'answer', value: leader.value, key: leader.key, agentsUsed: n, costUsd }
    : { kind: 'failed', agentsUsed: n, costUsd };
}

function checkStops(stops: readonly VoteStop[]): void {
  if (!Array.isArray(stops) || stops.length === 0)
    throw new ConfigError(
      'stops',
      "give at least one stop rule: 'decided', 'all' or a number of votes, e.g. ['decided', 'all']",
    );
  for (const s of stops) {
    if (s === 'decided' || s === 'all') continue;
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 1)
      throw new ConfigError(
        'stops',
        `each stop rule must be 'decided', 'all' or a whole number of votes >= 1, got ${String(s)}`,
      );
  }
}

/** The vote what-if as a fold: apply the log's events in order, then take the {@link VoteWhatIf}. */
export interface VoteWhatIfFold extends EventFold<VoteWhatIf> {
  /** Workflows running now, whose vote runs are being read: what the fold's memory is bounded by. */
  readonly openWorkflows: number;
}

/**
 * The vote what-if as a push-based fold, for streams {@link whatIfVote} cannot take: drive it
 * with `foldEvents` over any store's `iterate()` (Postgres's is asynchronous). Holds the workflows
 * running at once, plus a few bytes per finished vote run (how to judge it once its ground truth
 * arrives), never the events.
 *
 * @throws ConfigError for a bad stop rule or volume.
 * @example
 * const fold = createVoteWhatIf({ stops: ['decided', 'all'], volumePerWeek: 10_000 });
 * const r = await foldEvents(fold, postgresStore.iterate());
 * console.log(r.sites[0]?.rows.map((row) => [row.stop, row.meanAgentsUsed]));
 */
export function createVoteWhatIf(options: VoteWhatIfOptions): VoteWhatIfFold {
  return new VoteReader(options);
}

/**
 * Re-evaluates every recorded vote under other stop rules, without calling a model. One pass over
 * `events` (e.g. `store.iterate()`); for an asynchronous stream (a Postgres store), use
 * {@link createVoteWhatIf} with `foldEvents`.
 *
 * Exact for sequentially launched votes whenever the rule stops no later than the record did;
 * `'all'` is exact for any launch when every voter was called. Votes with a custom `key` cannot be
 * regrouped and are reported with a `limitation`.
 *
 * @throws ConfigError for a bad stop rule or volume.
 * @example
 * const r = whatIfVote(store.iterate(), { stops: ['decided', 'all'], volumePerWeek: 10_000 });
 * const [decided, all] = r.sites[0]?.rows ?? [];
 * console.log(decided?.meanAgentsUsed, decided?.volume?.savingPerYearUsd);
 */
export function whatIfVote(events: Iterable<KeelEvent>, options: VoteWhatIfOptions): VoteWhatIf {
  return foldSync(createVoteWhatIf(options), events);
}

/** The fold behind {@link createVoteWhatIf}. */
class VoteReader implements VoteWhatIfFold, WorkflowFold<Tracked[]> {
  private readonly stops: readonly VoteStop[];
  private readonly volume: number | undefined;
  private readonly path: string | undefined;
  private readonly sites = new Map<string, SiteAcc>();
  private readonly router = new WorkflowRouter<Tracked[]>(this);

  constructor(options: VoteWhatIfOptions) {
    checkStops(options.stops);
    this.volume = options.volumePerWeek;
    if (this.volume !== undefined) projectVolume(0, this.volume);
    this.stops = [...options.stops];
    this.path = options.path;
  }

  get openWorkflows(): number {
    return this.router.openWorkflows;
  }

  apply(e: KeelEvent): void {
    this.router.apply(e);
  }

  start(e: KeelEvent<'workflow.started'>, label: Label): Tracked[] | undefined {
    const stops = this.stops.length;
    return trackSites(e, 'vote', this.path, this.sites, (site, workflow): SiteAcc => {
      const o = site.node.options ?? {};
      const n = site.node.children.length;
      const weights =
        Array.isArray(o.weights) && o.weights.length === n && o.weights.every((w) => typeof w === 'number')
          ? o.weights
          : new Array<number>(n).fill(1);
      const launch = typeof o.launch === 'string' ? o.launch : 'sequential';
      const rows: RowAcc[] = [];
      for (let i = 0; i < stops; i++)
        rows.push({ used: {}, usedSum: 0, failed: 0, unknown: 0, changed: 0, costUsd: 0 });
      return {
        path: site.path,
        workflow,
        isRoot: site.path === workflow,
        voters: siteChildren(site),
        weights,
        recordedRule: typeof o.stop === 'string' ? o.stop : 'decided',
        launch,
        limitation:
          o.key !== undefined
            ? {
                kind: 'key',
                message:
                  'votes are grouped by a custom key function the log does not hold: no rule can be re-evaluated',
              }
            : launch !== 'sequential'
              ? {
                  kind: 'launch',
                  message: `voters were launched "${launch}", so the record cannot tell which ones a rule would have called: only 'all' can be evaluated`,
                }
              : undefined,
        runs: 0,
        recUsed: {},
        recUsedSum: 0,
        recFailed: 0,
        recCostUsd: 0,
        voterCostUsd: new Array<number>(n).fill(0),
        voterSamples: new Array<number>(n).fill(0),
        allCalled: true,
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
        if (e.type === 'vote.cast') {
          const i = e.payload.index;
          if (!(i >= 0 && i < t.acc.weights.length)) continue;
          const r = this.runOf(t, i);
          r.casts[i] = { value: e.payload.value, weight: e.payload.weight };
          r.castOrder.push(i);
          r.called[i] = true;
        } else if (e.type === 'vote.decided') {
          const r = t.current && !t.current.closed ? t.current : this.runOf(t, 0);
          r.decided = { value: e.payload.value };
          r.agentsUsed = e.payload.agentsUsed;
          r.closed = true;
          this.finalize(t, r, 'completed');
        }
        continue;
      }
      const c = childOf(t.site, p.path);
      if (!c) continue;
      if (e.type === 'cost.incurred') {
        const r = t.current && !t.current.closed ? t.current : this.runOf(t, c.index);
        r.voterCost[c.index] = (r.voterCost[c.index] ?? 0) + e.payload.costUsd;
        r.called[c.index] = true;
      } else if (
        c.exact &&
        (e.type === 'agent.succeeded' || e.type === 'agent.failed' || e.type === 'agent.rejected')
      ) {
        const r = t.current && !t.current.closed ? t.current : this.runOf(t, c.index);
        r.called[c.index] = true;
      }
    }
  }

  end(tracked: Tracked[], how: WorkflowEnd): void {
    for (const t of tracked) if (t.current && !t.current.closed) this.finalize(t, t.current, how);
  }

  private runOf(t: Tracked, index: number): Run {
    let r = t.current;
    if (!r || r.closed || r.casts[index] !== undefined) {
      if (r && !r.closed) this.finalize(t, r, 'replaced');
      r = newRun(t.acc.weights.length);
      t.current = r;
    }
    return r;
  }

  private finalize(t: Tracked, run: Run, how: WorkflowEnd | 'replaced'): void {
    if (!run.closed) {
      // No vote.decided: every voter called failed (the vote failed), unless the run was cut short.
      if (how === 'cancelled' || how === 'unfinished') return;
      run.agentsUsed = run.called.filter(Boolean).length;
      if (run.agentsUsed === 0) return;
      run.closed = true;
    }
    this.record(t, run);
  }

  /** Adds a finished run to its site's figures under every rule; keeps only how to judge it. */
  private record(t: Tracked, run: Run): void {
    const acc = t.acc;
    const n = acc.weights.length;
    acc.runs++;
    acc.recUsed[run.agentsUsed] = (acc.recUsed[run.agentsUsed] ?? 0) + 1;
    acc.recUsedSum += run.agentsUsed;
    if (!run.decided) acc.recFailed++;
    for (let i = 0; i < n; i++) {
      acc.recCostUsd += run.voterCost[i] ?? 0;
      if (run.called[i]) {
        acc.voterCostUsd[i] = (acc.voterCostUsd[i] ?? 0) + (run.voterCost[i] ?? 0);
        acc.voterSamples[i] = (acc.voterSamples[i] ?? 0) + 1;
      } else acc.allCalled = false;
    }
    const verdicts = this.stops.map((stop, i): Verdict => {
      const row = acc.rows[i] as RowAcc;
      const evaluable = acc.limitation === undefined || (acc.limitation.kind === 'launch' && stop === 'all');
      const sim: Sim = !evaluable
        ? { kind: 'unknown' }
        : acc.launch === 'sequential'
          ? simulateSequential(run, stop, acc.weights)
          : simulateAll(run, n);
      if (sim.kind === 'unknown') {
        row.unknown++;
        return UNTOLD;
      }
      row.used[sim.agentsUsed] = (row.used[sim.agentsUsed] ?? 0) + 1;
      row.usedSum += sim.agentsUsed;
      row.costUsd += sim.costUsd;
      let verdict: Verdict;
      if (sim.kind === 'failed') {
        row.failed++;
        verdict = run.decided === undefined ? AS_RECORDED : WRONG;
      } else if (sameAnswer({ value: sim.value }, run.decided)) verdict = AS_RECORDED;
      // A changed answer is compared with `feedback.expected` at the end, by its canonical JSON.
      else verdict = acc.isRoot ? sim.key : UNTOLD;
      if (verdict !== AS_RECORDED) row.changed++;
      return verdict;
    });
    acc.judged.push({ label: t.label, verdicts });
    t.label.kept = true;
  }

  result(): VoteWhatIf {
    this.router.finish();
    const volume = this.volume;
    const out: VoteSiteWhatIf[] = [];
    for (const acc of this.sites.values()) {
      const runs = acc.runs;
      if (runs === 0) continue;
      const n = acc.weights.length;
      const recTally = new AccuracyTally();
      const tallies = this.stops.map(() => new AccuracyTally());
      for (const j of acc.judged) {
        const feedback = j.label.feedback;
        if (feedback === undefined) continue;
        recTally.add(feedback, AS_RECORDED);
        for (let i = 0; i < tallies.length; i++)
          (tallies[i] as AccuracyTally).add(feedback, j.verdicts[i] ?? UNTOLD);
      }
      let allCost: number | null = 0;
      for (let i = 0; i < n && allCost !== null; i++) {
        const s = acc.voterSamples[i] ?? 0;
        allCost = s > 0 ? allCost + (acc.voterCostUsd[i] ?? 0) / s : null;
      }
      const project = (cost: number | null): VolumeProjection | null | undefined =>
        volume === undefined
          ? undefined
          : cost === null
            ? null
            : projectVolume(cost, volume, allCost ?? undefined);

      const rows = this.stops.map((stop, i): VoteStopRow => {
        const r = acc.rows[i] as RowAcc;
        const costPerRunUsd = r.unknown > 0 ? null : r.costUsd / runs;
        const row: VoteStopRow = {
          stop,
          agentsUsed: { ...r.used },
          meanAgentsUsed: r.unknown > 0 ? null : r.usedSum / runs,
          failed: r.failed,
          unknown: r.unknown,
          changed: r.changed,
          costPerRunUsd,
          accuracy: (tallies[i] as AccuracyTally).result(),
        };
        const v = project(costPerRunUsd);
        if (v !== undefined) row.volume = v;
        return row;
      });

      const recorded: VoteSiteWhatIf['recorded'] = {
        agentsUsed: { ...acc.recUsed },
        meanAgentsUsed: acc.recUsedSum / runs,
        failed: acc.recFailed,
        costPerRunUsd: acc.recCostUsd / runs,
        accuracy: recTally.result(),
      };
      const rv = project(perRun(acc.recCostUsd, runs));
      if (rv !== undefined) recorded.volume = rv;
      const allVoters: VoteSiteWhatIf['allVoters'] = { costPerRunUsd: allCost, estimated: !acc.allCalled };
      const av = project(allCost);
      if (av !== undefined) allVoters.volume = av;
      out.push({
        path: acc.path,
        workflow: acc.workflow,
        voters: acc.voters,
        recordedRule: acc.recordedRule,
        launch: acc.launch,
        runs,
        ...(acc.limitation !== undefined ? { limitation: acc.limitation.message } : {}),
        recorded,
        allVoters,
        rows,
      });
    }
    out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return { ...(volume !== undefined ? { volumePerWeek: volume } : {}), sites: out };
  }
}
