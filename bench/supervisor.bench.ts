/**
 * Per-child overhead of the `par` and `vote` topologies (issue 4): what the combinator adds per
 * child beyond the agent's own cost. Goal: <= 2 us per child.
 *
 *   npx tsx bench/supervisor.bench.ts [--quick] [--json]
 *
 * Method. The runtime has no switch to drop its event sink, so the combinators are run through the
 * supervisor's executor (`exec` from src/supervisor/execute.ts, what `rt.run()` subscribes to) with
 * a no-op event sink and no breaker or budget: what is timed is the topology code, the agents and
 * the event objects, never SQLite. For each topology and each width N, one workflow at a time is run
 * to completion many times; the least-squares slope of time against the number of agents called is
 * the marginal cost of one more child. The baseline joins the same agents, through the same
 * executor, with `Promise.all`; its slope is the agent's own cost, and per-child overhead =
 * slope(topology) - slope(Promise.all). Measured twice: with children answered by a cache hit (no
 * actor, so the agent's own cost is small and a 2 us difference is measurable: the goals use this)
 * and with full actor invocations (the same difference inside ~100x more work: noisy, for context).
 * The end-to-end figure (`rt.run(par(...))` on a lean runtime, events committed) is context too.
 */
import { lastValueFrom } from 'rxjs';
import { realClock } from '../src/core/clock.js';
import { agent, type Agent } from '../src/supervisor/agent.js';
import { createCanaryFold } from '../src/monitor/canary-fold.js';
import { childContext, exec } from '../src/supervisor/execute.js';
import { par } from '../src/supervisor/parallel.js';
import type { CacheLike, NodeContext, Services, WorkflowScope } from '../src/supervisor/scope.js';
import type { AnyTopology } from '../src/supervisor/topology.js';
import { vote } from '../src/supervisor/vote.js';
import { benchRuntime, cleanup } from './agent.bench.js';
import {
  goal,
  isMain,
  parseFlags,
  per,
  pool,
  printReport,
  us,
  type BenchFlags,
  type BenchReport,
  type Cost,
} from './harness.js';
import type { BenchRow } from './lib.js';
// Executors register themselves on import (src/runtime.ts imports them all; the bench imports
// only what it runs, plus the runtime for the end-to-end figure).
import '../src/supervisor/sequential.js';

const OUTPUT = Object.freeze({
  value: 'yes',
  confidence: 0.9,
  usage: Object.freeze({ inputTokens: 10, outputTokens: 5 }),
});
const run = (): Promise<typeof OUTPUT> => Promise.resolve(OUTPUT);

/**
 * How the children answer: `cached` — a cache hit (no actor: the agent's own cost is three event
 * objects, so the combinator's share stands out of the noise); `actor` — a full invocation (an
 * agent actor per child, ~100x dearer, so the difference of slopes is noisier).
 */
export type ChildKind = 'cached' | 'actor';

/** `n` distinct trivial agents (distinct names, as in a real topology). */
export function trivialAgents(n: number, kind: ChildKind): Agent<unknown, string>[] {
  return Array.from({ length: n }, (_, i) =>
    agent({
      name: `a${i}`,
      model: 'bench-model',
      run,
      ...(kind === 'cached' ? { cache: { ttlMs: 60_000 } } : {}),
    }),
  );
}

const HIT = Object.freeze({ value: 'yes', ageMs: 0, stale: false });

/** A cache that always hits: the children of `cached` runs never start an actor. */
const alwaysHit: CacheLike = {
  key: (agentName) => agentName,
  get: () => HIT,
  set: () => undefined,
  singleFlight: (_key, compute) => compute(),
};

const services: Services = {
  clock: realClock,
  inspect: undefined,
  breaker: () => {
    throw new TypeError('bench: no agent here has a breaker');
  },
  budgets: undefined,
  cache: alwaysHit,
  price: () => 0,
  priceCall: () => 0,
  seed: 'bench',
  canaries: createCanaryFold({ onRollback: () => undefined, onPromote: () => undefined }),
};

/** A fresh workflow context whose events go nowhere. */
function context(): NodeContext {
  const scope: WorkflowScope = {
    workflowId: 'wf-bench',
    services,
    stats: { costUsd: 0, agentsCalled: 0 },
    replay: undefined,
    emit: () => undefined,
  };
  return { scope, path: 'bench', deadlineAt: undefined };
}

/** One way to run N agents as a workflow. */
export type Runner = (agents: readonly Agent<unknown, string>[]) => () => Promise<unknown>;

/** The runners compared: `Promise.all` baseline, `par`, `vote` (all voters), `vote` (adaptive). */
export const RUNNERS = {
  promiseAll: (agents) => {
    const siblings = agents as unknown as AnyTopology[];
    return () => {
      const ctx = context();
      return Promise.all(
        siblings.map((a, i) => lastValueFrom(exec(a, 'in', childContext(ctx, siblings, i)))),
      );
    };
  },
  par: (agents) => {
    const t = par(...agents) as unknown as AnyTopology;
    return () => lastValueFrom(exec(t, 'in', context()));
  },
  voteAll: (agents) => {
    const t = vote(agents, { stop: 'all', launch: 'parallel' }) as unknown as AnyTopology;
    return () => lastValueFrom(exec(t, 'in', context()));
  },
  voteDecided: (agents) => {
    const t = vote(agents) as unknown as AnyTopology;
    return () => lastValueFrom(exec(t, 'in', context()));
  },
} satisfies Record<string, Runner>;

/** Agents a runner calls for `n` voters/children (the adaptive vote stops at a majority). */
export function agentsCalled(runner: keyof typeof RUNNERS, n: number): number {
  return runner === 'voteDecided' ? Math.floor(n / 2) + 1 : n;
}

/** Cost per workflow of `runner` over `n` agents of `kind`, `reps` workflows one at a time. */
export async function measureWorkflow(
  runner: keyof typeof RUNNERS,
  n: number,
  reps: number,
  kind: ChildKind = 'actor',
): Promise<Cost> {
  const go = RUNNERS[runner](trivialAgents(n, kind));
  await go();
  return per(await pool(reps, 1, go), reps);
}

/** Least-squares slope and intercept of `y` against `x`. */
export function fitLine(points: readonly (readonly [number, number])[]): {
  slope: number;
  intercept: number;
} {
  const n = points.length;
  let sx = 0;
  let sy = 0;
  for (const [px, py] of points) {
    sx += px;
    sy += py;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (const [px, py] of points) {
    num += (px - mx) * (py - my);
    den += (px - mx) ** 2;
  }
  const slope = den === 0 ? 0 : num / den;
  return { slope, intercept: my - slope * mx };
}

/** Cost per `rt.run(par(N agents))` on a lean runtime (events committed), one at a time. */
export async function measureRuntimePar(n: number, reps: number): Promise<Cost> {
  const rt = benchRuntime('lean');
  try {
    const t = par(...trivialAgents(n, 'actor'));
    await rt.run(t, 'in');
    return per(await pool(reps, 1, () => rt.run(t, 'in')), reps);
  } finally {
    await rt.close();
  }
}

/** Sizes of a run: widths, workflows per point (cached and actor children) and rounds. */
export function sizes(quick: boolean): {
  widths: number[];
  reps: Record<ChildKind, number>;
  rounds: number;
  runtimeReps: number;
} {
  return quick
    ? { widths: [1, 3, 5], reps: { cached: 50, actor: 20 }, rounds: 1, runtimeReps: 10 }
    : { widths: [1, 2, 4, 8, 16], reps: { cached: 3_000, actor: 300 }, rounds: 5, runtimeReps: 200 };
}

type RunnerName = keyof typeof RUNNERS;
type Fit = { slope: number; intercept: number };
const RUNNER_NAMES = Object.keys(RUNNERS) as RunnerName[];

/** Per-child slopes (wall and cpu) of every runner over the widths, children of `kind`. */
async function slopes(
  kind: ChildKind,
  widths: readonly number[],
  reps: number,
  rounds: number,
): Promise<{ wall: Record<RunnerName, Fit>; cpu: Record<RunnerName, Fit>; points: BenchRow[] }> {
  // best[`runner:width`] = lowest wall and cpu µs per workflow over the rounds (rounds alternate)
  const best = new Map<string, Cost>();
  for (const r of RUNNER_NAMES) await measureWorkflow(r, 5, reps, kind); // warm-up
  for (let round = 0; round < rounds; round++) {
    for (const n of widths) {
      for (const r of RUNNER_NAMES) {
        const key = `${r}:${n}`;
        const c = await measureWorkflow(r, n, reps, kind);
        const b = best.get(key) ?? { wallUs: Infinity, cpuUs: Infinity };
        best.set(key, { wallUs: Math.min(b.wallUs, c.wallUs), cpuUs: Math.min(b.cpuUs, c.cpuUs) });
      }
    }
  }
  const fit = (r: RunnerName, k: keyof Cost): Fit =>
    fitLine(widths.map((n) => [agentsCalled(r, n), best.get(`${r}:${n}`)?.[k] ?? NaN] as const));
  const points: BenchRow[] = [];
  for (const n of widths) {
    for (const r of RUNNER_NAMES) {
      const c = best.get(`${r}:${n}`);
      points.push({
        name: `${kind}: ${r} x${n} (${agentsCalled(r, n)} called)`,
        value: c?.wallUs ?? NaN,
        unit: 'us/workflow',
        note: `cpu ${c?.cpuUs.toFixed(1)} us`,
      });
    }
  }
  return {
    wall: Object.fromEntries(RUNNER_NAMES.map((r) => [r, fit(r, 'wallUs')])) as Record<RunnerName, Fit>,
    cpu: Object.fromEntries(RUNNER_NAMES.map((r) => [r, fit(r, 'cpuUs')])) as Record<RunnerName, Fit>,
    points,
  };
}

/** Rows of one child kind: the agent's own cost and each topology's per-child overhead. */
function overheadRows(kind: ChildKind, f: Awaited<ReturnType<typeof slopes>>): BenchRow[] {
  const over = (r: RunnerName, k: 'wall' | 'cpu'): number => f[k][r].slope - f[k].promiseAll.slope;
  const row = (r: RunnerName, label: string): BenchRow => ({
    name: `${kind}: ${label}`,
    value: over(r, 'wall'),
    unit: 'us/child',
    note: `cpu ${over(r, 'cpu').toFixed(2)} us`,
  });
  return [
    {
      name: `${kind}: agent's own cost (Promise.all slope)`,
      value: f.wall.promiseAll.slope,
      unit: 'us/child',
      note: `cpu ${f.cpu.promiseAll.slope.toFixed(2)} us`,
    },
    row('par', 'par overhead per child'),
    row('voteAll', 'vote (all, parallel) overhead per voter'),
    row('voteDecided', 'vote (adaptive) overhead per voter called'),
  ];
}

/** Runs the benchmark and returns its report. */
export async function runBench(flags: BenchFlags): Promise<BenchReport> {
  const s = sizes(flags.quick);
  const cached = await slopes('cached', s.widths, s.reps.cached, s.rounds);
  const actor = await slopes('actor', s.widths, s.reps.actor, Math.max(1, Math.ceil(s.rounds / 2)));

  const runtimeWall: [number, number][] = [];
  const runtimeCpu: [number, number][] = [];
  for (const n of [1, 4, 16]) {
    let b: Cost = { wallUs: Infinity, cpuUs: Infinity };
    for (let round = 0; round < Math.max(1, Math.ceil(s.rounds / 2)); round++) {
      const c = await measureRuntimePar(n, s.runtimeReps);
      b = { wallUs: Math.min(b.wallUs, c.wallUs), cpuUs: Math.min(b.cpuUs, c.cpuUs) };
    }
    runtimeWall.push([n, b.wallUs]);
    runtimeCpu.push([n, b.cpuUs]);
  }
  const rtWall = fitLine(runtimeWall);
  const rtCpu = fitLine(runtimeCpu);
  cleanup();

  const summary: BenchRow[] = [
    ...overheadRows('cached', cached),
    ...overheadRows('actor', actor),
    {
      name: 'rt.run(par(N)), lean runtime, per child (end to end)',
      value: rtWall.slope,
      unit: 'us/child',
      note: `cpu ${rtCpu.slope.toFixed(1)} us; context: a full child with 3 committed events`,
    },
  ];
  const over = (r: RunnerName, k: 'wall' | 'cpu'): number => cached[k][r].slope - cached[k].promiseAll.slope;
  return {
    bench: 'supervisor',
    method: [
      'topologies run through the supervisor executor (exec) with a no-op event sink: no SQLite',
      `widths ${s.widths.join(', ')}; workflows one at a time: ${s.reps.cached.toLocaleString('en-US')} per point`,
      `  with cached children, ${s.reps.actor} with actor children; best of alternating rounds`,
      'per-child cost = least-squares slope of us/workflow against agents called',
      'overhead = slope(topology) - slope(Promise.all of the same agents through the same executor)',
      'cached = children answered by a cache hit (no actor): the low-noise measurement the goals use;',
      '  actor = full invocations (~100x dearer): the same difference, much noisier; negative = noise',
    ],
    tables: [
      { title: 'per-child cost (slopes), wall us', rows: summary },
      { title: 'wall us per workflow by width', rows: [...cached.points, ...actor.points] },
    ],
    goals: [
      goal('par: <= 2 us per child beyond the agent', over('par', 'wall'), '<=', 2, us, over('par', 'cpu')),
      goal(
        'vote: <= 2 us per voter beyond the agent',
        over('voteAll', 'wall'),
        '<=',
        2,
        us,
        over('voteAll', 'cpu'),
      ),
    ],
  };
}

if (isMain(import.meta.url)) {
  const flags = parseFlags();
  printReport(await runBench(flags), flags);
}
