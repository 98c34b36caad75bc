/**
 * Per-invocation overhead of `rt.run(agent)` (issue 3), with an agent whose `run` resolves at once.
 *
 *   npx tsx bench/agent.bench.ts [--quick] [--json]
 *
 * Against, in the same run: (a) a bare call of the same function; (b) the hand-wired baseline of
 * `bench/baseline.ts` (XState actor + cockatiel breaker + hash-chained events group-committed to
 * better-sqlite3), with the 2 events and with the 5 events Keel actually writes; (c) cockatiel
 * alone; (d) opossum alone; and Keel's breaker gate alone. Sequential (await each) and concurrent
 * (many in flight through a lazy pool). Rounds alternate between contenders; the best round counts.
 * Goals: <= 1.1x hand-wired, <= 50 us per invocation, breaker gate <= opossum's.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConsecutiveBreaker, circuitBreaker, handleAll } from 'cockatiel';
import CircuitBreaker from 'opossum';
import { realClock } from '../src/core/clock.js';
import type { SqliteEventStore } from '../src/eventlog/sqlite.js';
import { createRuntime, type Runtime, type RuntimeConfig } from '../src/runtime.js';
import { agent, type Agent } from '../src/supervisor/agent.js';
import { createBreaker } from '../src/supervisor/breaker.js';
import { createCommitFloor, createHandWired, type HandWired, type TrivialOutput } from './baseline.js';
import {
  bestOf,
  goal,
  isMain,
  parseFlags,
  per,
  pool,
  printReport,
  us,
  x,
  type BenchFlags,
  type BenchReport,
  type Cost,
} from './harness.js';
import type { BenchRow } from './lib.js';

const OUTPUT: TrivialOutput = { value: 'ok', confidence: 0.9, usage: { inputTokens: 10, outputTokens: 5 } };

/** The trivial work both sides call: resolves at once. */
export const work = (_input: unknown): Promise<TrivialOutput> => Promise.resolve(OUTPUT);

const PRICING = { 'bench-model': { inputPer1K: 0.001, outputPer1K: 0.002 } };

/** The agent every Keel contender runs: a breaker (like the baseline's), no cache, no retry. */
export const benchAgent: Agent<unknown, string> = agent({
  name: 'bench',
  model: 'bench-model',
  breaker: { name: 'bench', failureThreshold: 5 },
  run: work,
});

/** Runtime configurations measured: the defaults, and everything optional off. */
export const RUNTIME_CONFIGS = {
  /** What `createRuntime({ db })` gives: redaction, metrics, tracing (no-op tracer) on. */
  default: {},
  /** Only the core pipeline: actor, breaker, events, group commit, cost/latency folds. */
  lean: { redact: false, metrics: false, tracing: false, cache: false },
  /**
   * The defaults plus a rate limit on the agent's model that never limits (issue 24): every call
   * takes a permit, reserves and settles its tokens, and gives it back.
   */
  limited: {
    limits: { 'bench-model': { rpm: 1e12, tpm: 1e15, concurrency: 1e9 } },
  },
  /**
   * The defaults with `writeAhead: 'reservations'` (issue 26): the bench has no budget, so the call
   * does not wait for its `agent.invoked` to commit — one durable commit per workflow, as the
   * one-commit hand-wired baseline.
   */
  reservations: { writeAhead: 'reservations' },
  /**
   * Daily budgets, global and per tenant, that never refuse (issue 23): every call reserves its
   * estimate (a `cost.reserved` written ahead of the call) in its tenant's scope and the global one;
   * runs are spread over 100 tenants.
   */
  tenants: { budget: { dailyUsd: 1e9, perTenant: { default: 1e7 } } },
} satisfies Record<string, RuntimeConfig>;

/** Where each measurement's database lives (created on first use); removed by {@link cleanup}. */
let dir: string | undefined;
let fileNo = 0;

/** A new database path in the bench's temp folder. */
export function freshFile(): string {
  dir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'keel-bench-'));
  return path.join(dir, `db-${fileNo++}.db`);
}

/** Removes the temp files. */
export function cleanup(): void {
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  dir = undefined;
}

/** Where the log commits: the runtime's default (`'auto'`) unless a writer is named. */
export type BenchWriter = 'inline' | 'thread' | 'auto' | undefined;

/**
 * A Keel runtime on a fresh file with the given preset (durability `normal` unless told; the
 * runtime's default writer unless told).
 */
export function benchRuntime(
  preset: keyof typeof RUNTIME_CONFIGS,
  durability: 'normal' | 'fsync' = 'normal',
  writer: BenchWriter = undefined,
): Runtime<SqliteEventStore> {
  return createRuntime({
    db: freshFile(),
    durability,
    ...(writer !== undefined ? { writer } : {}),
    seed: 1,
    pricing: PRICING,
    ...RUNTIME_CONFIGS[preset],
  });
}

/** Cost per `rt.run(benchAgent)` on a fresh runtime with `preset`, `inFlight` at a time. */
export async function measureKeel(
  preset: keyof typeof RUNTIME_CONFIGS,
  n: number,
  inFlight: number,
  writer: BenchWriter = undefined,
  ids: 'generated' | 'caller' = 'generated',
): Promise<Cost> {
  const rt = benchRuntime(preset, 'normal', writer);
  // `caller`: each run under its own caller-chosen id (an order number, an idempotency key), which
  // the runtime looks up in the log before starting it, as a service's requests would.
  const options = (prefix: string, i: number) =>
    ids === 'caller'
      ? { workflowId: `${prefix}-${i}` }
      : preset === 'tenants'
        ? { tenant: `tenant-${i % 100}` }
        : undefined;
  try {
    // Warm-up at the measured concurrency: creates the breaker and the prepared statements and, with
    // `writer: 'auto'` (the default) under load, starts the writer thread, as a service in its
    // steady state has.
    await pool(Math.min(n, 1_000), inFlight, (i) => rt.run(benchAgent, 'warm', options('warm', i)));
    return per(await pool(n, inFlight, (i) => rt.run(benchAgent, 'in', options('order', i))), n);
  } finally {
    await rt.close();
  }
}

/**
 * Cost per hand-wired invocation writing `events` events (`writeAhead`: the call waits for its
 * `agent.invoked` to commit, as Keel's default does), or (`'floor'`) per bare call + 2 prebuilt
 * rows committed by raw better-sqlite3, `inFlight` at a time.
 */
export async function measureHandWired(
  events: 2 | 5 | 'floor',
  n: number,
  inFlight: number,
  writeAhead = false,
): Promise<Cost> {
  const hw: HandWired =
    events === 'floor'
      ? await createCommitFloor(freshFile(), work)
      : await createHandWired(freshFile(), work, events, writeAhead);
  try {
    await hw.invoke('warm');
    return per(await pool(n, inFlight, () => hw.invoke('in')), n);
  } finally {
    hw.close();
  }
}

const HEAVY = [
  'keel',
  'keelInline',
  'keelThread',
  'keelLean',
  'keelLimited',
  'keelReservations',
  'keelCallerIds',
  'keelTenants',
  'handWired2',
  'handWired5',
  'handWired2wa',
  'handWired5wa',
  'floor',
] as const;
const LIGHT = ['bare', 'cockatiel', 'opossum', 'keelGate'] as const;
type Heavy = (typeof HEAVY)[number];
type Light = (typeof LIGHT)[number];

/** The lighter contenders (bare call, breakers alone), each a fresh instance. */
export function lightContenders(): Record<Light, () => Promise<unknown>> {
  const cockatiel = circuitBreaker(handleAll, { halfOpenAfter: 60_000, breaker: new ConsecutiveBreaker(5) });
  const opossum = new CircuitBreaker(work, { resetTimeout: 60_000 });
  const keelGate = createBreaker({ name: 'gate', failureThreshold: 5 }, { clock: realClock });
  return {
    bare: () => work('in'),
    cockatiel: () => cockatiel.execute(() => work('in')),
    opossum: () => opossum.fire('in'),
    keelGate: async () => {
      const permit = keelGate.acquire();
      if (permit === undefined) throw new Error('bench: breaker unexpectedly open');
      const out = await work('in');
      permit.success();
      return out;
    },
  };
}

/** Cost per call of `call`, `n` times, `inFlight` at a time. */
export async function measureCall(call: () => Promise<unknown>, n: number, inFlight: number): Promise<Cost> {
  return per(await pool(n, inFlight, call), n);
}

/** Sizes of a run. */
export interface AgentBenchSizes {
  /** Invocations per round of the heavy contenders (Keel, hand-wired). */
  heavy: number;
  /** Calls per round of the light contenders (bare, breakers). */
  light: number;
  rounds: number;
  /** In flight in the concurrent variant. */
  inFlight: number;
}

/** Sizes for a real run and for `--quick`. */
export function sizes(quick: boolean): AgentBenchSizes {
  return quick
    ? { heavy: 200, light: 2_000, rounds: 1, inFlight: 16 }
    : { heavy: 5_000, light: 100_000, rounds: 3, inFlight: 256 };
}

async function measureMode(
  s: AgentBenchSizes,
  inFlight: number,
): Promise<{ heavy: Record<Heavy, Cost>; light: Record<Light, Cost> }> {
  const heavy = await bestOf(HEAVY, s.rounds, (c) => {
    switch (c) {
      case 'keel':
        return measureKeel('default', s.heavy, inFlight);
      case 'keelInline':
        return measureKeel('default', s.heavy, inFlight, 'inline');
      case 'keelThread':
        return measureKeel('default', s.heavy, inFlight, 'thread');
      case 'keelLean':
        return measureKeel('lean', s.heavy, inFlight);
      case 'keelLimited':
        return measureKeel('limited', s.heavy, inFlight);
      case 'keelReservations':
        return measureKeel('reservations', s.heavy, inFlight);
      case 'keelCallerIds':
        return measureKeel('default', s.heavy, inFlight, undefined, 'caller');
      case 'keelTenants':
        return measureKeel('tenants', s.heavy, inFlight);
      case 'handWired2':
        return measureHandWired(2, s.heavy, inFlight);
      case 'handWired5':
        return measureHandWired(5, s.heavy, inFlight);
      case 'handWired2wa':
        return measureHandWired(2, s.heavy, inFlight, true);
      case 'handWired5wa':
        return measureHandWired(5, s.heavy, inFlight, true);
      case 'floor':
        return measureHandWired('floor', s.heavy, inFlight);
    }
  });
  const calls = lightContenders();
  const light = await bestOf(LIGHT, s.rounds, (c) => measureCall(calls[c], s.light, inFlight));
  return { heavy, light };
}

/** `wall us (cpu us)` and a ratio line for a contender against two baselines. */
function vs(c: Cost, base2: Cost, base5: Cost): string {
  return (
    `cpu ${c.cpuUs.toFixed(1)} us; vs hand-wired 2 ev ${x(c.wallUs / base2.wallUs)} wall, ${x(c.cpuUs / base2.cpuUs)} cpu; ` +
    `vs 5 ev ${x(c.wallUs / base5.wallUs)} wall, ${x(c.cpuUs / base5.cpuUs)} cpu`
  );
}

/** Runs the whole benchmark and returns its report. */
export async function run(flags: BenchFlags): Promise<BenchReport> {
  const s = sizes(flags.quick);
  const tables: BenchReport['tables'] = [];
  const goals: BenchReport['goals'] = [];
  try {
    for (const [mode, inFlight] of [
      ['sequential', 1],
      ['concurrent', s.inFlight],
    ] as const) {
      const { heavy, light } = await measureMode(s, inFlight);
      const {
        keel,
        keelInline,
        keelThread,
        keelLean,
        keelLimited,
        keelReservations,
        keelCallerIds,
        keelTenants,
        handWired2,
        handWired5,
        handWired2wa,
        handWired5wa,
        floor,
      } = heavy;
      const gate = (name: Light, k: keyof Cost = 'wallUs'): number => light[name][k] - light.bare[k];
      const gateNote = (name: Light): string =>
        `cpu ${light[name].cpuUs.toFixed(3)} us; overhead ${gate(name).toFixed(3)} us wall, ${gate(name, 'cpuUs').toFixed(3)} us cpu`;
      const rows: BenchRow[] = [
        { name: 'bare call of run()', value: light.bare.wallUs, unit: 'us', note: gateNote('bare') },
        {
          name: 'rt.run(agent), default runtime (5 events)',
          value: keel.wallUs,
          unit: 'us',
          note: vs(keel, handWired2, handWired5),
        },
        {
          name: 'rt.run(agent), default runtime, writer inline',
          value: keelInline.wallUs,
          unit: 'us',
          note: vs(keelInline, handWired2, handWired5),
        },
        {
          name: 'rt.run(agent), default runtime, writer thread',
          value: keelThread.wallUs,
          unit: 'us',
          note: vs(keelThread, handWired2, handWired5),
        },
        {
          name: 'rt.run(agent), lean runtime (5 events)',
          value: keelLean.wallUs,
          unit: 'us',
          note: vs(keelLean, handWired2, handWired5),
        },
        {
          name: 'rt.run(agent), limits configured, not limiting',
          value: keelLimited.wallUs,
          unit: 'us',
          note:
            `cpu ${keelLimited.cpuUs.toFixed(1)} us; vs default runtime ${x(keelLimited.wallUs / keel.wallUs)} wall, ` +
            `${x(keelLimited.cpuUs / keel.cpuUs)} cpu (a rate-limit permit per call)`,
        },
        {
          name: "rt.run(agent), writeAhead: 'reservations'",
          value: keelReservations.wallUs,
          unit: 'us',
          note: vs(keelReservations, handWired2, handWired5),
        },
        {
          name: 'rt.run(agent), a caller-chosen id per run',
          value: keelCallerIds.wallUs,
          unit: 'us',
          note:
            `cpu ${keelCallerIds.cpuUs.toFixed(1)} us; vs default runtime ${x(keelCallerIds.wallUs / keel.wallUs)} wall, ` +
            `${x(keelCallerIds.cpuUs / keel.cpuUs)} cpu (the id looked up in the log, its start written only if new)`,
        },
        {
          name: 'rt.run(agent), tenant + daily budgets, not limiting',
          value: keelTenants.wallUs,
          unit: 'us',
          note:
            `cpu ${keelTenants.cpuUs.toFixed(1)} us; vs default runtime ${x(keelTenants.wallUs / keel.wallUs)} wall, ` +
            `${x(keelTenants.cpuUs / keel.cpuUs)} cpu (a cost.reserved per call, written ahead; 100 tenants)`,
        },
        {
          name: 'hand-wired, 2 events (issue baseline)',
          value: handWired2.wallUs,
          unit: 'us',
          note: `cpu ${handWired2.cpuUs.toFixed(1)} us`,
        },
        {
          name: 'hand-wired, 5 events (as many as Keel)',
          value: handWired5.wallUs,
          unit: 'us',
          note: `cpu ${handWired5.cpuUs.toFixed(1)} us`,
        },
        {
          name: 'hand-wired, 2 events, written ahead',
          value: handWired2wa.wallUs,
          unit: 'us',
          note: `cpu ${handWired2wa.cpuUs.toFixed(1)} us; the call waits for its agent.invoked to commit (2 commits)`,
        },
        {
          name: 'hand-wired, 5 events, written ahead',
          value: handWired5wa.wallUs,
          unit: 'us',
          note: `cpu ${handWired5wa.cpuUs.toFixed(1)} us; Keel's default vs this is like for like`,
        },
        {
          name: 'default runtime vs written-ahead hand-wired',
          value: keel.wallUs / handWired2wa.wallUs,
          unit: 'x',
          note: `vs 2 ev written ahead; ${x(keel.cpuUs / handWired2wa.cpuUs)} cpu; vs 5 ev written ahead ${x(keel.wallUs / handWired5wa.wallUs)} wall, ${x(keel.cpuUs / handWired5wa.cpuUs)} cpu`,
        },
        {
          name: 'floor: call + 2 prebuilt rows committed (raw)',
          value: floor.wallUs,
          unit: 'us',
          note: `cpu ${floor.cpuUs.toFixed(1)} us; no JSON, hashing, actor or breaker: the commit per call alone`,
        },
        {
          name: 'keel breaker gate alone',
          value: light.keelGate.wallUs,
          unit: 'us',
          note: `${gateNote('keelGate')}; ${x(gate('keelGate') / gate('opossum'))} opossum's overhead`,
        },
        {
          name: 'cockatiel execute() alone',
          value: light.cockatiel.wallUs,
          unit: 'us',
          note: gateNote('cockatiel'),
        },
        { name: 'opossum fire() alone', value: light.opossum.wallUs, unit: 'us', note: gateNote('opossum') },
      ];
      tables.push({
        title: `${mode} (${inFlight} in flight): wall us per invocation, best of ${s.rounds}`,
        rows,
      });
      goals.push(
        goal(
          `${mode}: rt.run(agent) <= 1.1x hand-wired (2 events)`,
          keel.wallUs / handWired2.wallUs,
          '<=',
          1.1,
          x,
          keel.cpuUs / handWired2.cpuUs,
        ),
        // Issue 26, like for like (proposed, RESULTS.md "session 9"): the default runtime writes the
        // call ahead (its agent.invoked is committed before the model is called), so it is compared
        // with a hand-wired baseline that keeps the same promise.
        goal(
          `${mode}: rt.run(agent) <= 1.1x hand-wired written ahead (2 events, 2 commits)`,
          keel.wallUs / handWired2wa.wallUs,
          '<=',
          1.1,
          x,
          keel.cpuUs / handWired2wa.cpuUs,
        ),
        goal(
          `(context) ${mode}: writeAhead 'reservations' (no budget, 1 commit) vs hand-wired (2 events)`,
          keelReservations.wallUs / handWired2.wallUs,
          '<=',
          Infinity,
          x,
          keelReservations.cpuUs / handWired2.cpuUs,
        ),
        // Issue 26: what Keel adds above the least a durable-before-ack call costs on this disk,
        // measured in the same run (the old absolute <= 50 us was withdrawn: sequentially it is
        // below the commit floor). Judged at 256 in flight; sequentially it is context.
        goal(
          `${mode === 'concurrent' ? '' : '(context) '}${mode}: rt.run(agent) above the raw commit floor <= 50 us`,
          keel.wallUs - floor.wallUs,
          '<=',
          mode === 'concurrent' ? 50 : Infinity,
          us,
          keel.cpuUs - floor.cpuUs,
        ),
        goal(
          `${mode}: breaker gate overhead <= opossum's`,
          gate('keelGate') / gate('opossum'),
          '<=',
          1,
          x,
          gate('keelGate', 'cpuUs') / gate('opossum', 'cpuUs'),
        ),
      );
    }
  } finally {
    cleanup();
  }
  return {
    bench: 'agent',
    method: [
      `agent run() resolves at once; Keel agent has a breaker, no cache/retry; file DB, WAL, synchronous=NORMAL`,
      `heavy contenders: ${s.heavy.toLocaleString('en-US')} invocations/round on a fresh DB; light: ${s.light.toLocaleString('en-US')} calls/round`,
      `rounds alternate between contenders after a warm-up; best of ${s.rounds} (wall and cpu minima kept separately)`,
      `hand-wired = XState actor (idle->calling->done, 30 s timeout) + cockatiel breaker + sha256-chained events,`,
      `  one better-sqlite3 transaction per tick, resolves after commit (bench/baseline.ts)`,
      `floor = the bare call, then 2 prebuilt rows (no JSON/hash/actor/breaker) committed the same way: the least any durable-before-ack call costs here`,
      `Keel writes 5 events per one-agent workflow, so "5 ev" is the like-for-like ratio; the goal uses the issue's 2`,
      `"written ahead" = the hand-wired call waits for its agent.invoked to commit first (Keel's default write-ahead promise): 2 commits per call`,
      `cpu = this process's user+system CPU time per invocation (the writer thread's included): steadier than wall time when the cores are shared`,
    ],
    tables,
    goals,
  };
}

if (isMain(import.meta.url)) {
  const flags = parseFlags();
  printReport(await run(flags), flags);
}
