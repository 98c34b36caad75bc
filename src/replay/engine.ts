/**
 * The replay engine: re-runs a recorded workflow with every model output taken from the log (zero
 * model calls) and lists each decision that differs from the record — like Temporal's replay,
 * without a server. The runtime supplies how a workflow runs (`ReplayHost.execute`); the engine
 * supplies the recorded input, a virtual clock and the recorded outcomes, and compares.
 */
import { simulatedClock, type Clock } from '../core/clock.js';
import { canonicalJson } from '../core/json.js';
import type { KeelEvent, NewEvent } from '../eventlog/events.js';
import type { EventStore } from '../eventlog/store.js';
import type { ReplaySource, Services } from '../supervisor/scope.js';
import { describe, type AnyTopology, type Topology } from '../supervisor/topology.js';
import { compareDecisions, decisionsOf, recordedSource, type Divergence } from './recorded.js';

/** Options of {@link Runtime.replay}. */
export interface ReplayOptions {
  /** Topologies by workflow name (default: those this runtime has run or registered). */
  topologies?: Record<string, Topology<never, unknown>>;
  /** Called after each workflow is replayed, with how many are done out of how many (progress). */
  onReport?: (report: ReplayReport, done: number, total: number) => void;
}

/** Outcome of replaying one workflow. */
export interface ReplayReport {
  workflowId: string;
  name: string;
  /** True when every decision matched. */
  ok: boolean;
  divergences: Divergence[];
  /** Model calls made by the replay: always 0. */
  modelCalls: 0;
  /**
   * Set when the workflow was cut off by a crash and marked `workflow.interrupted`: it was not
   * replayed (its run never finished, so there is nothing to compare with) and `divergences` holds
   * one `not_replayable` entry saying so.
   */
  interrupted?: {
    /** Seq of the `workflow.interrupted` mark. */
    seq: number;
    /** Seq of the workflow's last event before the crash. */
    lastSeq: number;
    reason: string;
    markedBy: string;
  };
}

/** Where a replayed workflow runs: the services it reaches, where its events go, its recorded outcomes. */
export interface ReplayEnv {
  services: Services;
  append: (event: NewEvent) => Promise<unknown>;
  replay: ReplaySource;
}

/** What the engine needs of a runtime. */
export interface ReplayHost {
  readonly store: EventStore;
  /**
   * What a replayed workflow reaches on `clock`: no inspector, budgets or cache, and prices that
   * never throw (a model no longer priced costs 0).
   */
  services(clock: Clock): Services;
  /** Topologies the runtime has run or registered, by workflow name. */
  topology(name: string): AnyTopology | undefined;
  /** Runs a workflow under its recorded id, name and tenant in `env`; `onDone` runs once, when it ended. */
  execute(
    topology: AnyTopology,
    input: unknown,
    options: { workflowId: string; name: string; tenant?: string },
    env: ReplayEnv,
    onDone: () => void,
  ): void;
}

/**
 * Replays `target` (a workflow id, or `'all'`: every workflow of the log, in the order they
 * started), one after the other.
 *
 * @example
 * const [report] = await replayWorkflows(host, 'wf_123', {});
 * if (!report?.ok) console.log(report?.divergences);
 */
export async function replayWorkflows(
  host: ReplayHost,
  target: string,
  options: ReplayOptions,
): Promise<ReplayReport[]> {
  const ids = target === 'all' ? await startedWorkflowIds(host.store) : [target];
  const reports: ReplayReport[] = [];
  for (const id of ids) {
    const r = await replayOne(host, id, options);
    reports.push(r);
    options.onReport?.(r, reports.length, ids.length);
  }
  return reports;
}

/** Ids of every recorded workflow, in the order they started. */
export async function startedWorkflowIds(store: EventStore): Promise<string[]> {
  const ids = new Set<string>();
  for await (const e of store.iterate({ type: 'workflow.started' })) ids.add(e.workflowId);
  return [...ids];
}

/** Replays one recorded workflow and compares its decisions with the record. */
export async function replayOne(
  host: ReplayHost,
  workflowId: string,
  options: ReplayOptions,
): Promise<ReplayReport> {
  const recorded = await host.store.query({ workflowId });
  const started = recorded.find((e) => e.type === 'workflow.started');
  const report = (name: string, divergences: Divergence[]): ReplayReport => ({
    workflowId,
    name,
    ok: divergences.length === 0,
    divergences,
    modelCalls: 0,
  });
  if (!started || started.type !== 'workflow.started') {
    return report('?', [
      {
        kind: 'not_replayable',
        path: '',
        message: `workflow ${workflowId} has no workflow.started event in this log (wrong id, or pruned by retention)`,
        recorded: undefined,
        replayed: undefined,
      },
    ]);
  }
  const name = started.payload.name;
  const interrupted = interruptionOf(recorded);
  if (interrupted) {
    const p = interrupted.payload;
    return {
      ...report(name, [
        {
          kind: 'not_replayable',
          path: '',
          message: `workflow ${workflowId} was interrupted at seq ${p.lastSeq} (marked at seq ${interrupted.seq} by ${p.markedBy}: ${p.reason}): its run never finished, so there is no recorded outcome to replay against`,
          recorded: p,
          replayed: undefined,
        },
      ]),
      interrupted: { seq: interrupted.seq, lastSeq: p.lastSeq, reason: p.reason, markedBy: p.markedBy },
    };
  }
  const topology = options.topologies?.[name] ?? host.topology(name);
  if (!topology) {
    return report(name, [
      {
        kind: 'not_replayable',
        path: '',
        message: `no topology registered for workflow "${name}": pass rt.replay(id, { topologies: { '${name}': topology } }) or rt.register('${name}', topology)`,
        recorded: undefined,
        replayed: undefined,
      },
    ]);
  }
  const divergences: Divergence[] = [];
  const now = canonicalJson(describe(topology));
  const then = canonicalJson(started.payload.topology);
  if (now !== then) {
    divergences.push({
      kind: 'topology_changed',
      path: name,
      message: `the topology of "${name}" differs from the one recorded`,
      recorded: started.payload.topology,
      replayed: describe(topology),
    });
  }
  const source = recordedSource(recorded);
  let missing = 0;
  const counting: ReplaySource = {
    next: (path) => {
      const o = source.next(path);
      if (!o) missing++;
      return o;
    },
    rejection: (path) => source.rejection(path),
    settledBy: (path) => source.settledBy(path),
    cached: (path) => source.cached(path),
    signal: (path) => source.signal(path),
  };
  const clock = simulatedClock(started.ts);
  const replayed: KeelEvent[] = [];
  const env: ReplayEnv = {
    services: host.services(clock),
    append: (e) => {
      replayed.push({
        ...e,
        seq: replayed.length + 1,
        v: e.v ?? 1,
        class: e.class ?? 'audit',
      });
      return Promise.resolve();
    },
    replay: counting,
  };
  let done = false;
  const tenant = started.payload.tenant;
  const recordedAs = { workflowId, name, ...(tenant !== undefined ? { tenant } : {}) };
  host.execute(topology, started.payload.input, recordedAs, env, () => {
    done = true;
  });
  // Every recorded answer is delivered by the record's last timestamp; a day past it, whatever is
  // still waiting (an attempt the record never saw end) will not end.
  const horizon = (recorded.at(-1)?.ts ?? started.ts) + 86_400_000;
  while (!done && clock.now() < horizon) await clock.advanceAsync(60_000);
  divergences.push(...compareDecisions(decisionsOf(recorded), decisionsOf(replayed)));
  if (missing > 0) {
    divergences.push({
      kind: 'missing_output',
      path: name,
      message: `${missing} model call(s) in the replay have no recorded output in the log`,
      recorded: undefined,
      replayed: missing,
    });
  }
  for (const u of source.unused()) {
    divergences.push({
      kind: 'extra_output',
      path: u.path,
      message: `${u.count} recorded outcome(s) at ${u.path} were not used by the replay`,
      recorded: u.count,
      replayed: 0,
    });
  }
  return report(name, divergences);
}

/**
 * The `workflow.interrupted` mark of a recorded workflow, unless a real end event shows it finished
 * after all (a process that was still running when it was marked).
 */
function interruptionOf(recorded: readonly KeelEvent[]): KeelEvent<'workflow.interrupted'> | undefined {
  let mark: KeelEvent<'workflow.interrupted'> | undefined;
  for (const e of recorded) {
    if (e.type === 'workflow.interrupted') mark ??= e;
    else if (
      e.type === 'workflow.completed' ||
      e.type === 'workflow.failed' ||
      e.type === 'workflow.cancelled'
    )
      return undefined;
  }
  return mark;
}
