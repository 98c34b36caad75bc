/**
 * Canary judgement as a fold of the log, keyed by the canary node's path (`invoice/canary[1]`),
 * one per runtime — not state on the topology value, which two runtimes may share.
 *
 * The canary node emits a `canary.observed` event per workflow (arm, success, latency, cost); the
 * runtime folds each committed one into the judge of that path. The first breach rolls the
 * candidate back at once (share 0) and asks the runtime to record `canary.rolled_back`; an explicit
 * promotion is recorded as `canary.promoted`. On open the runtime folds the log's canary events
 * back in, so a rolled-back candidate stays rolled back after a restart. Outcomes read before the
 * node first runs (its targets are not known yet) wait, and are judged when it does.
 */
import type { KeelEvent } from '../eventlog/events.js';
import {
  createCanaryJudge,
  type CanaryArm,
  type CanaryArmStats,
  type CanaryJudge,
  type CanaryTargets,
  type CanaryVerdict,
} from './canary-judge.js';

/** What a canary node is: its name, traffic share and limits. */
export interface CanarySpec {
  /** Name in events and alerts. */
  name: string;
  /** Share of workflows routed to the candidate while it runs, in [0, 1]. */
  share: number;
  /** Limits the candidate must hold. */
  targets: CanaryTargets;
  /** Candidate outcomes needed before it is judged (default 20). */
  minSamples?: number;
}

/** Where a canary stands. */
export type CanaryStatus = 'running' | 'rolled_back' | 'promoted';

/** Live control of one canary of one runtime (`rt.canary(path)`). */
export interface CanaryControl {
  readonly name: string;
  /** The canary node's path, e.g. `invoice/canary[1]`. */
  readonly path: string;
  /** Current candidate share (0 after a rollback, 1 after promotion). */
  share(): number;
  status(): CanaryStatus;
  /** Why it was rolled back, if it was. */
  reason(): string | undefined;
  /** Sends all traffic to the candidate from now on (recorded as `canary.promoted`). No-op after a rollback. */
  promote(): void;
  /** Outcomes seen per arm (since the log began, as far as it was restored). */
  stats(arm: CanaryArm): CanaryArmStats;
}

/** A rollback the fold decided, for the runtime to record. */
export interface CanaryRollback {
  name: string;
  path: string;
  reason: string;
  verdict: CanaryVerdict;
  /** Time of the outcome that breached, ms since epoch. */
  ts: number;
}

/** How the fold reaches the log. */
export interface CanaryFoldDeps {
  /** Records `canary.rolled_back` for a rollback the fold decided (not for one it read). */
  onRollback(rollback: CanaryRollback): void;
  /** Records `canary.promoted` for `rt.canary(path).promote()`. */
  onPromote(canary: { name: string; path: string }): void;
}

/** The runtime's canaries. */
export interface CanaryFold {
  /**
   * The canary at `path`, created on its first run with `spec` (outcomes already folded from the
   * log are judged now). Later calls return the same canary.
   */
  at(path: string, spec: CanarySpec): CanaryControl;
  /** Folds one committed event (reads `canary.observed`, `canary.rolled_back`, `canary.promoted`). */
  apply(event: KeelEvent): void;
  /** The canary at `path` (or the only one named so), if it ran or the log knows it. */
  control(pathOrName: string): CanaryControl | undefined;
}

interface Outcome {
  arm: CanaryArm;
  success: boolean;
  latencyMs: number;
  costUsd: number;
  ts: number;
}

interface Entry {
  path: string;
  name: string;
  status: CanaryStatus;
  reason: string | undefined;
  /** Set once the node ran: its spec and judge. */
  spec: CanarySpec | undefined;
  judge: CanaryJudge | undefined;
  /** Outcomes read before the node ran (dropped once the status is final). */
  waiting: Outcome[];
  control: CanaryControl;
}

const EMPTY_STATS: CanaryArmStats = Object.freeze({
  samples: 0,
  failures: 0,
  errorRate: 0,
  latencySamples: 0,
  p95Ms: undefined,
  costSamples: 0,
  costUsdPerWorkflow: undefined,
});

/**
 * Creates the canary fold of one runtime.
 *
 * @example
 * const canaries = createCanaryFold({ onRollback: (r) => log(r), onPromote: (c) => log(c) });
 * store.onCommit((batch) => batch.forEach((e) => canaries.apply(e)));
 * const control = canaries.at('invoice/canary', { name: 'v2', share: 0.1, targets: { errorRate: 0.05 } });
 */
export function createCanaryFold(deps: CanaryFoldDeps): CanaryFold {
  const entries = new Map<string, Entry>();
  /** Rollbacks and promotions of older logs, which did not record the path: by canary name. */
  const byName = new Map<string, { status: CanaryStatus; reason: string | undefined }>();

  const entryOf = (path: string, name: string): Entry => {
    let e = entries.get(path);
    if (e === undefined) {
      const entry: Entry = {
        path,
        name,
        status: 'running',
        reason: undefined,
        spec: undefined,
        judge: undefined,
        waiting: [],
        control: {
          name,
          path,
          share: () =>
            entry.status === 'rolled_back' ? 0 : entry.status === 'promoted' ? 1 : (entry.spec?.share ?? 0),
          status: () => entry.status,
          reason: () => entry.reason,
          promote: () => {
            if (entry.status !== 'running') return;
            entry.status = 'promoted';
            entry.waiting = [];
            deps.onPromote({ name: entry.name, path: entry.path });
          },
          stats: (arm) => entry.judge?.stats(arm) ?? EMPTY_STATS,
        },
      };
      e = entry;
      entries.set(path, e);
    }
    return e;
  };

  const judge = (entry: Entry, o: Outcome): void => {
    if (entry.status !== 'running' || entry.judge === undefined) return;
    const verdict = entry.judge.record(o.arm, o);
    if (verdict.decision === 'rollback') {
      entry.status = 'rolled_back';
      entry.reason = verdict.reason;
      deps.onRollback({ name: entry.name, path: entry.path, reason: verdict.reason, verdict, ts: o.ts });
    }
  };

  return {
    at(path, spec) {
      const entry = entryOf(path, spec.name);
      if (entry.spec !== undefined) return entry.control;
      entry.spec = spec;
      entry.judge = createCanaryJudge({
        targets: spec.targets,
        ...(spec.minSamples !== undefined ? { minSamples: spec.minSamples } : {}),
      });
      const legacy = byName.get(spec.name);
      if (entry.status === 'running' && legacy !== undefined) {
        entry.status = legacy.status;
        entry.reason = legacy.reason;
      }
      const waiting = entry.waiting;
      entry.waiting = [];
      for (const o of waiting) judge(entry, o);
      return entry.control;
    },

    apply(event) {
      switch (event.type) {
        case 'canary.observed': {
          const p = event.payload;
          const entry = entryOf(p.path, p.canary);
          if (entry.status !== 'running') return;
          const o: Outcome = {
            arm: p.arm,
            success: p.success,
            latencyMs: p.latencyMs,
            costUsd: p.costUsd,
            ts: event.ts,
          };
          if (entry.judge === undefined) entry.waiting.push(o);
          else judge(entry, o);
          return;
        }
        case 'canary.rolled_back':
        case 'canary.promoted': {
          const p = event.payload;
          const status: CanaryStatus = event.type === 'canary.promoted' ? 'promoted' : 'rolled_back';
          const reason = event.type === 'canary.rolled_back' ? event.payload.reason : undefined;
          if (p.path === undefined) {
            if (byName.get(p.canary)?.status !== 'rolled_back') byName.set(p.canary, { status, reason });
            return;
          }
          const entry = entryOf(p.path, p.canary);
          // A rollback is final; a promotion is final unless a rollback was recorded first.
          if (entry.status === 'rolled_back') return;
          if (entry.status === 'promoted' && status === 'promoted') return;
          entry.status = status;
          entry.reason = reason;
          entry.waiting = [];
          return;
        }
        default:
          return;
      }
    },

    control(pathOrName) {
      const exact = entries.get(pathOrName);
      if (exact !== undefined) return exact.control;
      let found: Entry | undefined;
      for (const e of entries.values()) {
        if (e.name !== pathOrName) continue;
        if (found !== undefined) return undefined;
        found = e;
      }
      return found?.control;
    },
  };
}
