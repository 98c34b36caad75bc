/**
 * Memory of the runtime (issue 10): heap per in-flight workflow (goal <= 10 KB), and flatness across
 * many sequential workflows (heap and live handles after 10k vs after 100k).
 *
 *   node --expose-gc --import tsx bench/memory.bench.ts [--quick] [--json]
 *
 * In flight: N workflows start whose agent waits on a promise the bench holds; once every agent is
 * inside its `run`, a full GC, then `heapUsed` minus the heap before they started, divided by N. The
 * figure holds everything a workflow keeps while it waits: its actor, timers, closures, abort
 * controllers and the caller's promise. Flatness: workflows run through a lazy pool; after a full GC
 * at each checkpoint the heap and `process.getActiveResourcesInfo()` are read. (Runs without
 * `--expose-gc` too: the bench turns the flag on at run time.)
 */
import { agent, type Agent } from '../src/supervisor/agent.js';
import { par } from '../src/supervisor/parallel.js';
import { seq } from '../src/supervisor/sequential.js';
import type { Topology } from '../src/supervisor/topology.js';
import type { Runtime } from '../src/runtime.js';
import { benchRuntime, cleanup } from './agent.bench.js';
import {
  drain,
  getGc,
  goal,
  isMain,
  parseFlags,
  pool,
  printReport,
  type BenchFlags,
  type BenchReport,
} from './harness.js';
import type { BenchRow } from './lib.js';

const OUTPUT = Object.freeze({
  value: 'ok',
  confidence: 0.9,
  usage: Object.freeze({ inputTokens: 10, outputTokens: 5 }),
});

/** Agents whose calls wait for the bench to open their gate, counting how many are waiting. */
export interface HeldAgents {
  /** The first agent (`held`). */
  agent: Agent<unknown, string>;
  /** An agent of another name on the same gate. */
  named(name: string): Agent<unknown, string>;
  hold(): void;
  release(): void;
  waiting(): number;
}

/** An agent whose calls wait for the bench to open its gate, counting how many are waiting. */
export function heldAgent(): HeldAgents {
  let gate: Promise<void> = Promise.resolve();
  let open: (() => void) | undefined;
  let waiting = 0;
  const named = (name: string): Agent<unknown, string> =>
    agent({
      name,
      model: 'bench-model',
      breaker: { name: 'bench', failureThreshold: 5 },
      run: async () => {
        waiting++;
        await gate;
        waiting--;
        return OUTPUT;
      },
    });
  return {
    agent: named('held'),
    named,
    hold: () => {
      gate = new Promise<void>((resolve) => (open = resolve));
    },
    release: () => open?.(),
    waiting: () => waiting,
  };
}

/** Counts of live libuv handles and requests by kind (`Timeout`, `Immediate`, `FSReqCallback`, …). */
export function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

/** Heap used after a full collection, bytes. */
function settledHeap(gc: () => void): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** What {@link heapPerInFlight} measures. */
export interface InFlightMemory {
  workflows: number;
  bytesPerWorkflow: number;
  heapBeforeBytes: number;
  heapInFlightBytes: number;
  heapAfterBytes: number;
  /** Live handles while the workflows wait, and after they finished. */
  resourcesInFlight: Record<string, number>;
  resourcesAfter: Record<string, number>;
}

/** What {@link heapPerInFlight} runs: one agent, or issue 26's 5-agent invoice workflow. */
export type InFlightShape = 'one-agent' | 'invoice';

/**
 * The workflow of a shape and how many of its calls wait at once: the invoice workflow
 * `seq(par(vendor, amount, date), validate, route)` waits in its three extractions.
 */
export function shapeOf(
  shape: InFlightShape,
  h: HeldAgents,
): { topology: Topology<unknown, unknown>; parked: number } {
  if (shape === 'one-agent') return { topology: h.agent, parked: 1 };
  return {
    topology: seq(
      par(h.named('vendor'), h.named('amount'), h.named('date')),
      h.named('validate'),
      h.named('route'),
    ),
    parked: 3,
  };
}

/** Starts `n` workflows of `shape` that wait inside their agents; measures the heap they hold. */
export async function heapPerInFlight(
  n: number,
  shape: InFlightShape = 'one-agent',
): Promise<InFlightMemory> {
  const gc = getGc();
  const rt: Runtime = benchRuntime('default');
  const h = heldAgent();
  const { topology, parked } = shapeOf(shape, h);
  try {
    for (let i = 0; i < 200; i++) await rt.run(topology, i); // warm-up: JIT, prepared statements, breaker
    await drain();
    const heapBeforeBytes = settledHeap(gc);
    h.hold();
    const runs: Promise<unknown>[] = new Array<Promise<unknown>>(n);
    for (let i = 0; i < n; i++) runs[i] = rt.run(topology, i);
    while (h.waiting() < n * parked) await drain(1);
    await drain(); // the started/invoked events commit
    const heapInFlightBytes = settledHeap(gc);
    const resourcesInFlight = activeResources();
    h.release();
    await Promise.all(runs);
    await drain();
    const heapAfterBytes = settledHeap(gc);
    return {
      workflows: n,
      bytesPerWorkflow: (heapInFlightBytes - heapBeforeBytes) / n,
      heapBeforeBytes,
      heapInFlightBytes,
      heapAfterBytes,
      resourcesInFlight,
      resourcesAfter: activeResources(),
    };
  } finally {
    await rt.close();
  }
}

/** One checkpoint of {@link flatness}. */
export interface Checkpoint {
  workflows: number;
  heapBytes: number;
  rssBytes: number;
  resources: Record<string, number>;
}

/** Runs workflows `inFlight` at a time and reads the heap after each checkpoint count. */
export async function flatness(checkpoints: readonly number[], inFlight: number): Promise<Checkpoint[]> {
  const gc = getGc();
  const rt: Runtime = benchRuntime('default');
  const h = heldAgent();
  const out: Checkpoint[] = [];
  let done = 0;
  try {
    for (const target of checkpoints) {
      await pool(target - done, inFlight, (i) => rt.run(h.agent, done + i));
      done = target;
      await drain();
      out.push({
        workflows: done,
        heapBytes: settledHeap(gc),
        rssBytes: process.memoryUsage().rss,
        resources: activeResources(),
      });
    }
    return out;
  } finally {
    await rt.close();
  }
}

const kb = (bytes: number): string => `${(bytes / 1024).toFixed(2)} KB`;
const mb = (bytes: number): number => bytes / 1024 / 1024;
const resources = (r: Record<string, number>): string =>
  Object.entries(r)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || 'none';

/** Sizes of a run. */
export function sizes(quick: boolean): {
  inFlight: number;
  invoicesInFlight: number;
  checkpoints: number[];
  poolSize: number;
} {
  return quick
    ? { inFlight: 200, invoicesInFlight: 100, checkpoints: [500, 1_500], poolSize: 20 }
    : { inFlight: 10_000, invoicesInFlight: 5_000, checkpoints: [10_000, 50_000, 100_000], poolSize: 100 };
}

/** Runs the benchmark and returns its report. */
export async function runBench(flags: BenchFlags): Promise<BenchReport> {
  const s = sizes(flags.quick);
  try {
    const m = await heapPerInFlight(s.inFlight);
    const inv = await heapPerInFlight(s.invoicesInFlight, 'invoice');
    const cps = await flatness(s.checkpoints, s.poolSize);
    const first = cps[0];
    const last = cps[cps.length - 1];
    const growthPerWorkflow =
      first && last && last.workflows > first.workflows
        ? (last.heapBytes - first.heapBytes) / (last.workflows - first.workflows)
        : NaN;
    const inFlightRows: BenchRow[] = [
      {
        name: 'heap per in-flight invoice workflow',
        value: inv.bytesPerWorkflow / 1024,
        unit: 'KB',
        note: `seq(par(vendor, amount, date), validate, route), 3 agents waiting; ${inv.workflows.toLocaleString('en-US')} at once`,
      },
      {
        name: 'heap per in-flight one-agent workflow',
        value: m.bytesPerWorkflow / 1024,
        unit: 'KB',
        note: `${m.workflows.toLocaleString('en-US')} waiting at once`,
      },
      { name: 'heap before', value: mb(m.heapBeforeBytes), unit: 'MB' },
      {
        name: 'heap with all in flight',
        value: mb(m.heapInFlightBytes),
        unit: 'MB',
        note: resources(m.resourcesInFlight),
      },
      {
        name: 'heap after they finished',
        value: mb(m.heapAfterBytes),
        unit: 'MB',
        note: resources(m.resourcesAfter),
      },
    ];
    const flatRows: BenchRow[] = cps.map((c) => ({
      name: `after ${c.workflows.toLocaleString('en-US')} workflows`,
      value: mb(c.heapBytes),
      unit: 'MB heap',
      note: `rss ${mb(c.rssBytes).toFixed(1)} MB; ${resources(c.resources)}`,
    }));
    flatRows.push({
      name: `growth per workflow, ${first?.workflows ?? 0} -> ${last?.workflows ?? 0}`,
      value: growthPerWorkflow,
      unit: 'bytes',
      note: 'retained heap per finished workflow (0 = flat)',
    });
    const timersFirst = first?.resources.Timeout ?? 0;
    const timersLast = last?.resources.Timeout ?? 0;
    return {
      bench: 'memory',
      method: [
        `default runtime on a file DB; agents wait on a promise the bench holds (in flight) or resolve at once (flatness)`,
        `heap = process.memoryUsage().heapUsed after two full GCs; ${s.poolSize} in flight while running ${last?.workflows.toLocaleString('en-US')} workflows`,
        'resources = process.getActiveResourcesInfo() counted by kind',
      ],
      tables: [
        { title: `in flight (${m.workflows.toLocaleString('en-US')} workflows waiting)`, rows: inFlightRows },
        { title: 'flatness across sequential workflows', rows: flatRows },
      ],
      goals: [
        goal('heap per in-flight invoice workflow <= 10 KB', inv.bytesPerWorkflow, '<=', 10 * 1024, kb),
        goal('(context) heap per in-flight one-agent workflow', m.bytesPerWorkflow, '<=', Infinity, kb),
        goal(
          'no heap growth per finished workflow (< 16 bytes)',
          growthPerWorkflow,
          '<=',
          16,
          (v) => `${v.toFixed(1)} bytes`,
        ),
        goal(
          'no live timers left behind (Timeout count stays flat)',
          timersLast - timersFirst,
          '<=',
          0,
          (v) => `${v} more`,
        ),
      ],
    };
  } finally {
    cleanup();
  }
}

if (isMain(import.meta.url)) {
  const flags = parseFlags();
  printReport(await runBench(flags), flags);
}
