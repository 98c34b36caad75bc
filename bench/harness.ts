/**
 * What every Keel benchmark script shares beyond `lib.ts`'s printer: command-line flags, the
 * "am I the script being run?" check, best-of-rounds timing, a lazy pool, goals and the report a
 * script prints (as a table, or as one JSON line for `bench/index.ts`).
 *
 * Benchmarks print figures and ratios against baselines measured in the same run; they are
 * scripts, never timed tests.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createHash } from 'node:crypto';
import { createActor, setup } from 'xstate';
import { printTable, type BenchRow } from './lib.js';

/** Prefix of the one line a bench prints under `--json`, which `bench/index.ts` reads back. */
export const JSON_MARKER = 'KEEL_BENCH_JSON ';

/** Flags every bench accepts. */
export interface BenchFlags {
  /** `--quick`: tiny iteration counts (the smoke test and CI); figures are not meaningful. */
  quick: boolean;
  /** `--json`: print the report as one JSON line (for `bench/index.ts`) after the table. */
  json: boolean;
}

/** Reads `--quick` and `--json` from `argv` (default `process.argv`). */
export function parseFlags(argv: readonly string[] = process.argv.slice(2)): BenchFlags {
  return { quick: argv.includes('--quick'), json: argv.includes('--json') };
}

/** True when the module at `importMetaUrl` is the script node was started with. */
export function isMain(importMetaUrl: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && path.resolve(entry) === fileURLToPath(importMetaUrl);
}

/** One goal from the issues and whether this run met it, by wall time and by CPU time. */
export interface GoalResult {
  /** The goal as the issue states it, e.g. `rt.run(agent) <= 50 us/invocation`. */
  goal: string;
  /** What this run measured by wall time, formatted with its unit. */
  measured: string;
  met: boolean;
  /** The same figure computed from the process's CPU time (steadier on a shared machine). */
  cpuMeasured?: string;
  cpuMet?: boolean;
  /** A figure printed for context, with no target: reported as `info`, never as met or missed. */
  context?: true;
}

/** How a goal's verdict prints: `met`, `MISSED`, or `info` for a context row (no target). */
export function verdict(g: GoalResult, cpu = false): 'met' | 'MISSED' | 'info' {
  if (g.context === true) return 'info';
  return (cpu ? g.cpuMet : g.met) === true ? 'met' : 'MISSED';
}

/** What one bench script reports. */
export interface BenchReport {
  /** Short name: `agent`, `supervisor`, `workflows`, `memory`. */
  bench: string;
  /** One line per fact a reader needs to trust the figures (method, iterations, rounds). */
  method: string[];
  /** Tables, in print order. */
  tables: { title: string; rows: BenchRow[] }[];
  goals: GoalResult[];
}

/**
 * Builds a goal result: `measured <= target` (`'<='`) or `measured >= target` (`'>='`), with an
 * optional CPU-time figure judged against the same target.
 */
export function goal(
  text: string,
  measured: number,
  op: '<=' | '>=',
  target: number,
  format: (n: number) => string,
  cpuMeasured?: number,
): GoalResult {
  const ok = (v: number): boolean => (op === '<=' ? v <= target : v >= target);
  return {
    goal: text,
    measured: format(measured),
    met: ok(measured),
    ...(cpuMeasured !== undefined ? { cpuMeasured: format(cpuMeasured), cpuMet: ok(cpuMeasured) } : {}),
    // An infinite target is no goal: the row is context (printed, not judged).
    ...(Number.isFinite(target) ? {} : { context: true as const }),
  };
}

/** Prints a report as tables (and, with `json`, one machine-readable line). */
export function printReport(report: BenchReport, flags: BenchFlags): void {
  console.log(
    `\n== ${report.bench} ==  node ${process.version}, ${os.cpus().length} cpus, load ${loadavg()}`,
  );
  for (const line of report.method) console.log(`  ${line}`);
  for (const t of report.tables) printTable(t.title, t.rows);
  if (report.goals.length > 0) {
    console.log('\ngoals');
    for (const g of report.goals) {
      const cpu =
        g.cpuMeasured === undefined
          ? ''
          : ` by wall time; ${g.cpuMeasured} by cpu time [${verdict(g, true)}]`;
      console.log(`  [${verdict(g).padEnd(6)}] ${g.goal}: ${g.measured}${cpu}`);
    }
  }
  if (flags.json) console.log(JSON_MARKER + JSON.stringify(report));
}

/** The 1-, 5- and 15-minute load averages, e.g. `1.20 0.90 0.70`. */
export function loadavg(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

/** Cost of a measured stretch: wall time and this process's CPU time (user + system), in µs. */
export interface Cost {
  wallUs: number;
  cpuUs: number;
}

/** Runs `fn` and returns its wall and CPU time. */
export async function timed(fn: () => Promise<unknown>): Promise<Cost> {
  const cpu0 = process.cpuUsage();
  const wall0 = process.hrtime.bigint();
  await fn();
  const wallUs = Number(process.hrtime.bigint() - wall0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { wallUs, cpuUs: cpu.user + cpu.system };
}

/** `cost` divided by `n` (per call). */
export function per(cost: Cost, n: number): Cost {
  return { wallUs: cost.wallUs / n, cpuUs: cost.cpuUs / n };
}

/**
 * Runs `n` calls of `call` with at most `inFlight` outstanding (a lazy pool: the next call starts
 * only when one finishes, so nothing is created ahead of time; `inFlight` 1 is a plain awaited
 * loop). Returns the cost of all `n` calls.
 */
export function pool(n: number, inFlight: number, call: (i: number) => Promise<unknown>): Promise<Cost> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) await call(next++);
  };
  return timed(() => {
    const workers: Promise<void>[] = [];
    for (let w = 0; w < Math.min(inFlight, n); w++) workers.push(worker());
    return Promise.all(workers);
  });
}

/**
 * Measures each contender `rounds` times, alternating between contenders so a noisy neighbour
 * hurts every side alike, after one untimed warm-up pass each. Each round starts with the next
 * contender, so no side always runs first, right after the last round's heaviest. (A forced full
 * GC before each measurement was tried and dropped: it resets V8's heap sizing, so the next
 * measurement runs with a shrunk young generation and pays extra scavenges — Keel, which
 * allocates more than the baselines, ~40% more; no service runs in that state.) Keeps, per
 * contender, the lowest wall time and (independently) the lowest CPU time of any round.
 */
export async function bestOf<K extends string>(
  contenders: readonly K[],
  rounds: number,
  measure: (contender: K) => Promise<Cost>,
): Promise<Record<K, Cost>> {
  const best = {} as Record<K, Cost>;
  for (const c of contenders) {
    await measure(c);
    best[c] = { wallUs: Infinity, cpuUs: Infinity };
  }
  const n = contenders.length;
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < n; i++) {
      const c = contenders[(r + i) % n] as K;
      const cost = await measure(c);
      best[c] = { wallUs: Math.min(best[c].wallUs, cost.wallUs), cpuUs: Math.min(best[c].cpuUs, cost.cpuUs) };
    }
  }
  return best;
}

/**
 * Returns a function that runs a full garbage collection: `global.gc` when node runs with
 * `--expose-gc`, else one obtained by enabling the flag at run time.
 */
export function getGc(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return exposed;
  v8.setFlagsFromString('--expose-gc');
  const gc: unknown = runInNewContext('gc');
  if (typeof gc !== 'function') throw new TypeError('bench: cannot obtain gc(); run node with --expose-gc');
  return gc as () => void;
}

/** Settles pending I/O callbacks and promise jobs (one `setImmediate` turn), `times` times. */
export async function drain(times = 3): Promise<void> {
  for (let i = 0; i < times; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Formats microseconds with 2 decimals: `12.34 us`. */
export const us = (n: number): string => `${n.toFixed(2)} us`;

/** Formats a ratio: `1.07x`. */
export const x = (n: number): string => `${n.toFixed(2)}x`;

const calibrationMachine = setup({
  types: { events: {} as { type: 'START' } | { type: 'DONE' } },
}).createMachine({
  initial: 'idle',
  states: { idle: { on: { START: 'calling' } }, calling: { on: { DONE: 'done' } }, done: { type: 'final' } },
});

/** CPU µs per call of `fn`, over `n` calls after `n / 10` warm-up calls. */
function cpuPerCall(n: number, fn: (i: number) => unknown): number {
  for (let i = 0; i < n / 10; i++) fn(i);
  const t = process.cpuUsage();
  for (let i = 0; i < n; i++) fn(i);
  const c = process.cpuUsage(t);
  return (c.user + c.system) / n;
}

/**
 * Reference costs of this machine, so figures from different machines (or a loaded one) can be
 * compared: CPU µs of a small `JSON.stringify`, a SHA-256 of 200 bytes, and a three-state XState
 * actor's create + start + 2 events.
 */
export function calibrate(): { jsonUs: number; sha256Us: number; actorUs: number } {
  const o = { path: 'invoice/par[0]/vendor', agent: 'vendor', model: 'gpt-4', n: 0 };
  const text = 'x'.repeat(200);
  let sink = 0;
  const jsonUs = cpuPerCall(200_000, (i) => {
    o.n = i;
    sink += JSON.stringify(o).length;
  });
  const sha256Us = cpuPerCall(50_000, (i) => {
    sink += createHash('sha256').update(text).update(String(i)).digest('hex').length;
  });
  const actorUs = cpuPerCall(5_000, () => {
    const a = createActor(calibrationMachine).start();
    a.send({ type: 'START' });
    a.send({ type: 'DONE' });
    sink += a.getSnapshot().status === 'done' ? 1 : 0;
  });
  if (sink < 0) console.log(sink);
  return { jsonUs, sha256Us, actorUs };
}
