/**
 * What every demo shares: its options, a runtime on virtual time, a bounded pool of workflows fed
 * lazily, and reading the results back from the log file once it is closed. Internal to demos/.
 */
import { existsSync } from 'node:fs';
import {
  ConfigError,
  SEED_PRICING,
  createRuntime,
  openSqliteStore,
  simulatedClock,
  type Clock,
  type KeelEvent,
  type Runtime,
  type RuntimeConfig,
  type SimulatedClock,
  type SqliteEventStore,
} from '../src/index.js';

/** Options every demo takes. */
export interface DemoOptions {
  /** SQLite file the demo writes its event log to: created when missing, appended to otherwise. */
  db: string;
  /** Workflows to run (invoices, transactions or requests), a whole number >= 1. */
  count: number;
  /** Seed of every random draw: the same seed on a fresh file gives the same numbers. */
  seed: number;
  /**
   * Source of time. Default: virtual time (`simulatedClock()`, from 2026-01-01 or just after the
   * last event already in `db`), which the demo advances itself, so simulated model latencies cost
   * no wall time and the run is reproducible. A `SimulatedClock` you pass is advanced the same way;
   * any other clock (e.g. `realClock`) runs in its own time.
   */
  clock?: Clock;
  /** Called after each workflow finishes, with how many are done and the total. */
  onProgress?: (done: number, total: number) => void;
  /** Serve Prometheus metrics on `127.0.0.1:<port>` while the demo runs (0 picks a free port). */
  serveMetricsPort?: number;
  /** Workflows in flight at once (default 64). */
  concurrency?: number;
}

/** The tutorial's weekly volume: every "per week" figure is per 10,000 workflows. */
export const WEEKLY_VOLUME = 10_000;
/** Workflows in flight at once unless `concurrency` says otherwise. */
export const DEFAULT_CONCURRENCY = 64;
/** Start of virtual time for a fresh log. */
const EPOCH_MS = Date.UTC(2026, 0, 1);
/** Virtual ms advanced per step while driving a simulated clock. */
const STEP_MS = 10;

/** Checks the options every demo shares, naming the field and the fix. */
export function checkDemoOptions(options: DemoOptions): void {
  if (typeof options?.db !== 'string' || options.db.length === 0 || options.db === ':memory:')
    throw new ConfigError(
      'db',
      'must be the path of a SQLite file to write the event log to, e.g. "keel.db"',
    );
  if (!Number.isInteger(options.count) || options.count < 1)
    throw new ConfigError('count', `must be a whole number >= 1, got ${String(options.count)}`);
  if (!Number.isSafeInteger(options.seed))
    throw new ConfigError('seed', `must be a whole number, e.g. 42; got ${String(options.seed)}`);
  const c = options.concurrency;
  if (c !== undefined && !(Number.isInteger(c) && c >= 1))
    throw new ConfigError('concurrency', `must be a whole number >= 1, got ${String(c)}`);
}

function isSimulated(clock: Clock): clock is SimulatedClock {
  return typeof (clock as Partial<SimulatedClock>).advanceAsync === 'function';
}

/**
 * The demo's clock: the one given, or virtual time starting at 2026-01-01 — or an hour after the
 * last event when `db` already holds a log, so appended runs keep time moving forward.
 */
export async function demoClock(options: DemoOptions): Promise<Clock> {
  if (options.clock) return options.clock;
  let start = EPOCH_MS;
  if (existsSync(options.db)) {
    const store = openSqliteStore({ path: options.db, readonly: true });
    try {
      const last = store.query({ afterSeq: Math.max(0, store.lastSeq() - 1) })[0];
      if (last && last.ts + 3_600_000 > start) start = last.ts + 3_600_000;
    } finally {
      await store.close();
    }
  }
  return simulatedClock(start);
}

/** A runtime opened by a demo, with the log position it started from. */
export interface DemoRuntime {
  rt: Runtime<SqliteEventStore>;
  /** Highest seq in the log before this runtime ran anything: its events come after it. */
  startSeq: number;
}

/** Opens a runtime on the demo's file, clock and seed, priced at the tutorial's flat rates. */
export async function openDemoRuntime(
  options: DemoOptions,
  clock: Clock,
  config: Omit<RuntimeConfig, 'db' | 'clock' | 'seed' | 'pricing' | 'store'> = {},
): Promise<DemoRuntime> {
  const rt = createRuntime({
    // A memory-only cache: each demo run starts cold, so the same seed gives the same numbers.
    cache: { path: ':memory:' },
    ...config,
    db: options.db,
    clock,
    seed: options.seed,
    pricing: { ...SEED_PRICING },
  });
  const startSeq = rt.store.lastSeq();
  if (options.serveMetricsPort !== undefined) await rt.serveMetrics({ port: options.serveMetricsPort });
  return { rt, startSeq };
}

/**
 * Resolves with `work`, advancing `clock` in small steps meanwhile when it is simulated, so every
 * timer (model latency, timeouts, backoff, breaker resets) fires in order and on time.
 */
export async function drive<T>(clock: Clock, work: Promise<T>): Promise<T> {
  if (!isSimulated(clock)) return work;
  let settled = false;
  const mark = (): void => {
    settled = true;
  };
  work.then(mark, mark);
  while (!settled) await clock.advanceAsync(STEP_MS);
  return work;
}

/** True for a workflow's own failure (it is in the log); false for a bug in the demo or its config. */
function isWorkflowFailure(e: unknown): boolean {
  return typeof (e as { category?: unknown } | null)?.category === 'string';
}

/**
 * Runs `run(item)` for every item, at most `concurrency` at once, pulling items from the iterator
 * only as slots free up (never building every promise up front). A workflow's failure is data
 * (logged); anything else rejects.
 */
export function runPool<T>(
  items: Iterator<T>,
  total: number,
  concurrency: number,
  run: (item: T) => Promise<unknown>,
  onProgress?: (done: number, total: number) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let inFlight = 0;
    let done = 0;
    let exhausted = false;
    let failed = false;
    const finish = (): void => {
      inFlight--;
      done++;
      onProgress?.(done, total);
      fill();
    };
    const fail = (e: unknown): void => {
      if (isWorkflowFailure(e)) return finish();
      failed = true;
      reject(e instanceof Error ? e : new Error(String(e)));
    };
    const fill = (): void => {
      while (!failed && !exhausted && inFlight < concurrency) {
        const next = items.next();
        if (next.done) {
          exhausted = true;
          break;
        }
        inFlight++;
        run(next.value).then(finish, fail);
      }
      if (exhausted && inFlight === 0 && !failed) resolve();
    };
    fill();
  });
}

/**
 * Runs `run(item)` for each item at a steady pace — item `i` starts `i × intervalMs` after the
 * first, on the clock — whatever the earlier ones are doing. For timelines (the chaos demo).
 */
export function runPaced<T>(
  items: Iterator<T>,
  total: number,
  intervalMs: number,
  clock: Clock,
  run: (item: T) => Promise<unknown>,
  onProgress?: (done: number, total: number) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let inFlight = 0;
    let done = 0;
    let exhausted = false;
    let failed = false;
    const first = clock.now();
    let launched = 0;
    const finish = (): void => {
      inFlight--;
      done++;
      onProgress?.(done, total);
      if (exhausted && inFlight === 0 && !failed) resolve();
    };
    const launch = (): void => {
      if (failed) return;
      const next = items.next();
      if (next.done) {
        exhausted = true;
        if (inFlight === 0) resolve();
        return;
      }
      inFlight++;
      launched++;
      run(next.value).then(finish, (e: unknown) => {
        if (isWorkflowFailure(e)) return finish();
        failed = true;
        reject(e instanceof Error ? e : new Error(String(e)));
      });
      clock.setTimeout(launch, Math.max(0, first + launched * intervalMs - clock.now()));
    };
    launch();
  });
}

/** Events of the log after `afterSeq` up to and including `throughSeq`, read from a closed log file. */
export function readRange(store: SqliteEventStore, afterSeq: number, throughSeq: number): KeelEvent[] {
  const out: KeelEvent[] = [];
  for (const e of store.iterate({ afterSeq })) {
    if (e.seq > throughSeq) break;
    out.push(e);
  }
  return out;
}

/**
 * Opens the demo's log for reading once every runtime on it has closed. Writable (the demo owns the
 * file; it writes nothing): the last connection to close a WAL file removes `-wal` and `-shm`, which a
 * read-only connection cannot, so a demo would otherwise leave both beside its log.
 */
export function openResults(options: DemoOptions): SqliteEventStore {
  return openSqliteStore({ path: options.db });
}

/** Nearest-rank percentile of ascending `sorted` values (0 for none). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

/** Workflow latencies (completed and failed) of the workflows named `name`, ascending. */
export function workflowLatencies(events: readonly KeelEvent[], name: string): number[] {
  const ids = new Set<string>();
  const out: number[] = [];
  for (const e of events) {
    if (e.type === 'workflow.started' && e.payload.name === name) ids.add(e.workflowId);
    else if ((e.type === 'workflow.completed' || e.type === 'workflow.failed') && ids.has(e.workflowId))
      out.push(e.payload.latencyMs);
  }
  return out.sort((a, b) => a - b);
}

/** Latency percentiles of a sample, ms. */
export interface LatencySummary {
  p50Ms: number;
  p90Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** P50/P90/P95/P99/max of ascending latencies. */
export function latencySummary(sorted: readonly number[]): LatencySummary {
  return {
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p95Ms: percentile(sorted, 95),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.length ? (sorted[sorted.length - 1] as number) : 0,
  };
}

/** Rounds to `digits` decimals (results stay readable as JSON). */
export function round(value: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** `$1,234.56`. */
export function usd(value: number, digits = 2): string {
  return `$${value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })}`;
}

/** `12.3%`. */
export function pct(ratio: number, digits = 1): string {
  return `${(ratio * 100).toFixed(digits)}%`;
}

/** `850 ms` or `4.2 s`. */
export function ms(value: number): string {
  return value < 1_000 ? `${Math.round(value)} ms` : `${(value / 1_000).toFixed(1)} s`;
}

/** A figure measured from the log beside the tutorial's. */
export interface TutorialFigure {
  /** What the log shows. */
  measured: number;
  /** What the tutorial prints. */
  tutorial: number;
  /** (measured − tutorial) / tutorial: the relative difference (0 when both are 0). */
  diff: number;
}

/** `measured` beside `tutorial`, with their relative difference. */
export function vsTutorial(measured: number, tutorial: number): TutorialFigure {
  const diff = tutorial === 0 ? (measured === 0 ? 0 : 1) : (measured - tutorial) / Math.abs(tutorial);
  return { measured, tutorial, diff: round(diff) };
}

/** `+1.8%` / `−0.4%`: a relative difference. */
export function signedPct(ratio: number): string {
  const text = pct(Math.abs(ratio));
  return ratio < 0 && text !== '0.0%' ? `−${text}` : `+${text}`;
}

/** `measured (tutorial X, +1.8%)`, each side formatted by `format`. */
export function besideTutorial(f: TutorialFigure, format: (x: number) => string): string {
  if (!Number.isFinite(f.measured)) return `unknown (tutorial ${format(f.tutorial)})`;
  return `${format(f.measured)} (tutorial ${format(f.tutorial)}, ${signedPct(f.diff)})`;
}
