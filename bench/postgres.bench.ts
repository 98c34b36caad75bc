/**
 * Keel on Postgres vs Keel on SQLite (issue 26): invoice-shaped workflows (`seq(par(a, b, c), d)`,
 * agents resolving at once, durable before acknowledged) per second at 256 in flight, on a fresh
 * log each, with the Postgres server's CPU time beside the client's. Goal: Postgres >= 0.8x SQLite.
 *
 *   npx tsx bench/postgres.bench.ts [--quick] [--json]
 *
 * Starts its own PostgreSQL (fsync on, synchronous_commit on: the server's full durability) on
 * 127.0.0.1 in a temp dir and stops it at the end; `KEEL_BENCH_PG_URL` points it at a server of
 * your own instead (it writes only in `keel_bench_*` schemas, and drops them). Without a server the
 * report says why and has no goal. SQLite runs with its default durability (`'normal'`: a killed
 * process loses nothing) and with `'fsync'` (power loss loses nothing, like Postgres here).
 */
import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { withoutPassword } from '../src/core/url.js';
import { postgres, type PostgresEventStore } from '../src/eventlog/postgres.js';
import type { EventStore } from '../src/eventlog/store.js';
import { createRuntime, type Runtime } from '../src/runtime.js';
import { startPostgres, type LocalServer } from '../test/support/local-servers.js';
import { cleanup, freshFile, RUNTIME_CONFIGS } from './agent.bench.js';
import {
  goal,
  isMain,
  loadavg,
  parseFlags,
  pool,
  printReport,
  x,
  type BenchFlags,
  type BenchReport,
} from './harness.js';
import { fmt, type BenchRow } from './lib.js';
import { invoiceShaped } from './workflows.bench.js';

const PRICING = { 'bench-model': { inputPer1K: 0.001, outputPer1K: 0.002 } };
const IN_FLIGHT = 256;

type Contender = 'sqlite' | 'sqlite-fsync' | 'postgres';

/** One measurement: workflows/s by wall time and by client CPU time, and the server's CPU per workflow. */
interface Figure {
  perSec: number;
  perCpuSec: number;
  /** Client CPU µs per workflow. */
  clientCpuUsPerWorkflow: number;
  /** Postgres server CPU (every backend and background process of the cluster), µs per workflow. */
  serverCpuUsPerWorkflow?: number;
  /** Postgres group commits (one statement, one round trip each; pipelined) per workflow. */
  commitsPerWorkflow?: number;
}

/** Sizes of a run. */
function sizes(quick: boolean): { n: number; rounds: number } {
  return quick ? { n: 1_000, rounds: 1 } : { n: 8_000, rounds: 3 };
}

/** CPU ticks (user + system) of a process, from /proc; 0 when it is gone or /proc is not there. */
function cpuTicks(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
  } catch {
    return 0;
  }
}

const TICK_US = 1e6 / 100; // USER_HZ is 100 on Linux

/** The cluster's processes (backends and background workers) and their CPU ticks so far. */
async function serverCpu(admin: pg.Client): Promise<Map<number, number>> {
  const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity');
  return new Map(rows.map((r) => [r.pid, cpuTicks(r.pid)]));
}

/** Server CPU µs spent between two {@link serverCpu} snapshots (processes started since count whole). */
function serverCpuSince(before: Map<number, number>, after: Map<number, number>): number {
  let ticks = 0;
  for (const [pid, t] of after) ticks += t - (before.get(pid) ?? 0);
  return ticks * TICK_US;
}

/** Runs `n` workflows `IN_FLIGHT` at a time; checks every acknowledged one committed. */
async function run(rt: Runtime<EventStore>, n: number): Promise<{ wallUs: number; cpuUs: number }> {
  const before = (await rt.store.query({ type: 'workflow.completed' })).length;
  const cost = await pool(n, IN_FLIGHT, () => rt.run(invoiceShaped, 'in'));
  const committed = (await rt.store.query({ type: 'workflow.completed' })).length - before;
  if (committed !== n)
    throw new Error(`bench: ${n} runs acknowledged but ${committed} completions committed`);
  return cost;
}

/** One measurement of `contender` on a fresh log, after a warm-up of 1,000 workflows. */
async function measure(
  contender: Contender,
  n: number,
  url: string | undefined,
  admin: pg.Client | undefined,
): Promise<Figure> {
  let store: PostgresEventStore | undefined;
  const schema = `keel_bench_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const rt: Runtime<EventStore> =
    contender === 'postgres'
      ? createRuntime({
          store: (store = postgres(url ?? '', { schema })),
          seed: 1,
          pricing: PRICING,
          ...RUNTIME_CONFIGS.default,
        })
      : createRuntime({
          db: freshFile(),
          durability: contender === 'sqlite' ? 'normal' : 'fsync',
          seed: 1,
          pricing: PRICING,
          ...RUNTIME_CONFIGS.default,
        });
  try {
    await rt.ready();
    await run(rt, Math.min(n, 1_000));
    const server0 = admin ? await serverCpu(admin) : undefined;
    const commits0 = store?.stats().transactions ?? 0;
    const cost = await run(rt, n);
    const serverUs = admin && server0 ? serverCpuSince(server0, await serverCpu(admin)) : undefined;
    const commits = (store?.stats().transactions ?? 0) - commits0;
    return {
      perSec: n / (cost.wallUs / 1e6),
      perCpuSec: n / (cost.cpuUs / 1e6),
      clientCpuUsPerWorkflow: cost.cpuUs / n,
      ...(serverUs !== undefined && contender === 'postgres' ? { serverCpuUsPerWorkflow: serverUs / n } : {}),
      ...(store ? { commitsPerWorkflow: commits / n } : {}),
    };
  } finally {
    await rt.close();
    if (store && admin) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  }
}

/** Runs the benchmark and returns its report (the server it started is stopped before it returns). */
export async function runBench(flags: BenchFlags): Promise<BenchReport> {
  const s = sizes(flags.quick);
  const method = [
    `load at start ${loadavg()}; invoice-shaped workflow seq(par(a,b,c),d), agents resolve at once, default runtime`,
    `${s.n.toLocaleString('en-US')} workflows per measurement, ${IN_FLIGHT} in flight (lazy pool), after 1,000 warm-up ones, fresh log each`,
    `rounds alternate between contenders; best of ${s.rounds}; /cpu-s = per second of the client's CPU time`,
    "goal by cpu time = SQLite's client cpu per workflow / (Postgres client + server cpu per workflow)",
  ];
  let own: LocalServer | undefined;
  let url = process.env.KEEL_BENCH_PG_URL;
  let skip: string | undefined;
  if (url === undefined) {
    try {
      own = await startPostgres({ fsync: true });
      url = own.url;
    } catch (e) {
      skip = `${e instanceof Error ? e.message : String(e)}; or set KEEL_BENCH_PG_URL`;
    }
  }
  const admin = url !== undefined ? new pg.Client({ connectionString: url }) : undefined;
  try {
    const contenders: Contender[] = ['sqlite', 'sqlite-fsync'];
    if (admin) {
      await admin.connect();
      const { rows } = await admin.query<{ name: string; setting: string }>(
        "SELECT name, setting FROM pg_settings WHERE name IN ('server_version', 'fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method', 'shared_buffers')",
      );
      method.push(
        `postgres at ${withoutPassword(url ?? '')}${own ? ' (own cluster)' : ''}: ${rows.map((r) => `${r.name}=${r.setting}`).join(', ')}`,
        'server cpu = utime+stime of every process in pg_stat_activity (backends and background workers), from /proc',
      );
      contenders.push('postgres');
    } else method.push(`postgres: SKIPPED (${skip ?? 'no server'})`);

    const best: Partial<Record<Contender, Figure>> = {};
    for (let round = 0; round < s.rounds; round++) {
      for (let i = 0; i < contenders.length; i++) {
        const c = contenders[(round + i) % contenders.length] as Contender;
        const f = await measure(c, s.n, url, admin);
        const b = best[c];
        best[c] = {
          perSec: Math.max(b?.perSec ?? 0, f.perSec),
          perCpuSec: Math.max(b?.perCpuSec ?? 0, f.perCpuSec),
          clientCpuUsPerWorkflow: Math.min(b?.clientCpuUsPerWorkflow ?? Infinity, f.clientCpuUsPerWorkflow),
          ...(f.serverCpuUsPerWorkflow !== undefined
            ? {
                serverCpuUsPerWorkflow: Math.min(
                  b?.serverCpuUsPerWorkflow ?? Infinity,
                  f.serverCpuUsPerWorkflow,
                ),
              }
            : {}),
          ...(f.commitsPerWorkflow !== undefined ? { commitsPerWorkflow: f.commitsPerWorkflow } : {}),
        };
      }
    }
    const sqlite = best.sqlite as Figure;
    const names: Record<Contender, string> = {
      sqlite: 'Keel on SQLite (durability normal, the default)',
      'sqlite-fsync': "Keel on SQLite (durability 'fsync')",
      postgres: 'Keel on Postgres (fsync on, synchronous_commit on)',
    };
    const rows: BenchRow[] = contenders.map((c) => {
      const f = best[c] as Figure;
      const server =
        f.serverCpuUsPerWorkflow !== undefined
          ? `; server ${fmt(f.serverCpuUsPerWorkflow)} cpu-µs/workflow`
          : '';
      const commits =
        f.commitsPerWorkflow !== undefined
          ? `; ${f.commitsPerWorkflow.toFixed(3)} group commits (round trips)/workflow`
          : '';
      return {
        name: names[c],
        value: f.perSec,
        unit: 'workflows/s',
        note: `${fmt(f.perCpuSec)}/client-cpu-s; ${x(f.perSec / sqlite.perSec)} SQLite${server}${commits}`,
      };
    });
    method.push(`load at end ${loadavg()}`);
    const pgFigure = best.postgres;
    return {
      bench: 'postgres',
      method,
      tables: [{ title: `workflows/s at ${IN_FLIGHT} in flight, best of ${s.rounds}`, rows }],
      goals: pgFigure
        ? [
            goal(
              'Keel on Postgres >= 0.8x Keel on SQLite, 256 in flight',
              pgFigure.perSec / sqlite.perSec,
              '>=',
              0.8,
              (v) => `${v.toFixed(2)}x`,
              // By CPU: SQLite's CPU per workflow over Postgres's, client and server together —
              // the ratio on a machine where CPU is all that limits both.
              sqlite.clientCpuUsPerWorkflow /
                (pgFigure.clientCpuUsPerWorkflow + (pgFigure.serverCpuUsPerWorkflow ?? 0)),
            ),
          ]
        : [],
    };
  } finally {
    await admin?.end().catch(() => undefined);
    await own?.stop();
    cleanup();
  }
}

if (isMain(import.meta.url)) {
  const flags = parseFlags();
  printReport(await runBench(flags), flags);
}
