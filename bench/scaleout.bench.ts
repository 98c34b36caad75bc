/**
 * Scale-out benchmark (issue 11): the Postgres event store, the Redis cache and the shared budget,
 * each against the raw client code it replaces, measured in the same run.
 *
 *   npx tsx bench/scaleout.bench.ts [--quick] [--json]
 *
 * Starts its own PostgreSQL (fsync on: server defaults) and Redis (no persistence) on 127.0.0.1 in
 * temp dirs and stops them at the end; `KEEL_BENCH_PG_URL` / `KEEL_BENCH_REDIS_URL` point it at
 * servers of your own instead (it writes only in `keel_bench_*` schemas and `keel-bench:*` keys, and
 * removes them). A part whose server is unavailable is skipped with a line saying why.
 *
 * 1. Postgres append, events/s at 1, 16, 64 concurrent appenders × 1 and 10 events per append:
 *    `store.append` (group commit) vs one hand-written `pg` transaction per append
 *    (bench/scaleout-postgres.ts); then `store.iterate()` vs a raw keyset scan, and `verify()`.
 * 2. Redis cache `get` hit vs `GET` + `JSON.parse` (µs/op, sequential and 64 in flight); the
 *    single-flight miss path vs a hand-written lock (bench/scaleout-redis.ts).
 * 3. Shared budget `reserve` + `settle` vs one Lua `EVALSHA` doing one `INCRBYFLOAT` (ops/s).
 *
 * No issue sets a goal for these figures: the ratios are informational, and the report has no goals.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { withoutPassword } from '../src/core/url.js';
import { startPostgres, startRedis, type LocalServer } from '../test/support/local-servers.js';
import {
  bestOf,
  isMain,
  loadavg,
  parseFlags,
  printReport,
  type BenchFlags,
  type BenchReport,
  type Cost,
} from './harness.js';
import type { BenchRow } from './lib.js';
import {
  dropSchemas,
  filledSchema,
  freshSchema,
  makeEvents,
  postgresSettings,
  rawAppend,
  rawScan,
  storeAppend,
  storeScan,
  storeVerify,
  type AppendRun,
} from './scaleout-postgres.js';
import { benchPrefix, openRedisBench, redisSettings, type RedisBench } from './scaleout-redis.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/** Iteration counts of a run. */
export interface ScaleoutSizes {
  /** Best of this many rounds (after one warm-up pass per contender). */
  rounds: number;
  /** Appends per raw run: each is one fsync'd commit, so this sets the raw run's length. */
  rawAppends: number;
  /** Appends per store run at `c` appenders of `e` events: enough for group commit to settle. */
  storeAppends(c: number, e: number): number;
  /** Events in the log that the scan and verify runs read. */
  scanEvents: number;
  /** Operations per Redis run, sequential and with {@link ScaleoutSizes.inFlight} in flight. */
  redisSequential: number;
  redisConcurrent: number;
  /** Concurrent callers of the concurrent Redis runs. */
  inFlight: number;
}

/** Counts for a full run (about a minute and a half on a loaded 2-core machine) or `--quick`. */
export function sizes(quick: boolean): ScaleoutSizes {
  return quick
    ? {
        rounds: 1,
        rawAppends: 8,
        storeAppends: (c, e) => Math.min(8 * c, Math.floor(400 / e)),
        scanEvents: 2_000,
        redisSequential: 200,
        redisConcurrent: 400,
        inFlight: 64,
      }
    : {
        rounds: 3,
        rawAppends: 100,
        storeAppends: (c, e) => Math.min(100 * c, Math.floor(12_000 / e)),
        scanEvents: 30_000,
        redisSequential: 2_000,
        redisConcurrent: 5_000,
        inFlight: 64,
      };
}

/** Concurrent appenders × events per append, as measured. */
const APPEND_CASES: readonly (readonly [appenders: number, eventsPerAppend: number])[] = [
  [1, 1],
  [16, 1],
  [64, 1],
  [1, 10],
  [16, 10],
  [64, 10],
];

const perSec = (events: number, c: Cost): number => (events / c.wallUs) * 1e6;
const ratioText = (a: number, b: number): string => `${(a / b).toFixed(2)}x`;

/** Postgres append, scan and verify: tables. */
async function benchPostgres(url: string, s: ScaleoutSizes): Promise<BenchReport['tables']> {
  const appendRows: BenchRow[] = [];
  const maxEvents = Math.max(
    ...APPEND_CASES.map(([c, e]) => Math.max(s.rawAppends, s.storeAppends(c, e)) * e),
  );
  const events = makeEvents(maxEvents, 8);
  for (const [c, e] of APPEND_CASES) {
    const runs: Record<'raw' | 'store', AppendRun | undefined> = { raw: undefined, store: undefined };
    const best = await bestOf(['raw', 'store'] as const, s.rounds, async (side) => {
      const schema = await freshSchema(url);
      try {
        const n = (side === 'raw' ? s.rawAppends : s.storeAppends(c, e)) * e;
        const r = await (side === 'raw' ? rawAppend : storeAppend)(url, schema, events.slice(0, n), c, e);
        runs[side] = r;
        return r.cost;
      } finally {
        await dropSchemas(url, [schema]);
      }
    });
    const { raw, store } = runs;
    if (raw === undefined || store === undefined) throw new Error('bench: no append round ran');
    const rawRate = perSec(raw.events, best.raw);
    const storeRate = perSec(store.events, best.store);
    const label = `${c} appender${c > 1 ? 's' : ''} x ${e} event${e > 1 ? 's' : ''}`;
    appendRows.push(
      {
        name: `raw pg, 1 transaction/append (${label})`,
        value: rawRate,
        unit: 'events/s',
        note: `client cpu ${(best.raw.cpuUs / raw.events).toFixed(1)} us/event`,
      },
      {
        name: `store.append (${label})`,
        value: storeRate,
        unit: 'events/s',
        note:
          `${ratioText(storeRate, rawRate)} raw; client cpu ${(best.store.cpuUs / store.events).toFixed(1)} us/event; ` +
          `${Math.round(store.eventsPerCommit)} events/commit (last round)`,
      },
    );
  }

  const scanSchema = await filledSchema(url, s.scanEvents);
  try {
    let verified = { ok: false, events: 0 };
    const counts = { raw: 0, store: 0, verify: 0 };
    const best = await bestOf(['raw', 'store', 'verify'] as const, s.rounds, async (side) => {
      if (side === 'verify') {
        const v = await storeVerify(url, scanSchema);
        verified = v;
        counts.verify = v.events;
        return v.cost;
      }
      const r = await (side === 'raw' ? rawScan : storeScan)(url, scanSchema);
      counts[side] = r.events;
      return r.cost;
    });
    // The raw side wrote this log: a break means the baseline does not do the store's work.
    if (!verified.ok) throw new Error('bench: verify() found the chain the raw side wrote broken');
    const rawRate = perSec(counts.raw, best.raw);
    const storeRate = perSec(counts.store, best.store);
    const readRows: BenchRow[] = [
      {
        name: 'raw keyset SELECT (1000 rows/page) + JSON.parse',
        value: rawRate,
        unit: 'events/s',
        note: `client cpu ${(best.raw.cpuUs / counts.raw).toFixed(2)} us/event`,
      },
      {
        name: 'store.iterate()',
        value: storeRate,
        unit: 'events/s',
        note: `${ratioText(storeRate, rawRate)} raw; client cpu ${(best.store.cpuUs / counts.store).toFixed(2)} us/event`,
      },
      {
        name: 'store.verify()',
        value: perSec(counts.verify, best.verify),
        unit: 'events/s',
        note: `chain ok; client cpu ${(best.verify.cpuUs / counts.verify).toFixed(2)} us/event`,
      },
    ];
    return [
      { title: `Postgres append: events/s, best of ${s.rounds}`, rows: appendRows },
      {
        title: `Postgres reads of ${s.scanEvents.toLocaleString('en-US')} events: events/s, best of ${s.rounds}`,
        rows: readRows,
      },
    ];
  } finally {
    await dropSchemas(url, [scanSchema]);
  }
}

/** One Redis comparison: a raw contender and Keel's, each running `n` operations `inFlight` at a time. */
interface RedisPair {
  raw: { name: string; run: (n: number, inFlight: number) => Promise<Cost> };
  keel: { name: string; run: (n: number, inFlight: number) => Promise<Cost> };
  /** `us/op` rows show wall time per operation; `ops/s` rows throughput. */
  unit: 'us/op' | 'ops/s';
}

/** Operations per run of the (untimed) Redis server-time measurement. */
const SERVER_STAT_OPS = 1_000;

/**
 * Redis cache and shared budget: tables. With `serverStats` (a server of the bench's own), each
 * row's note also gives the Redis server's time per operation.
 */
async function benchRedis(
  bench: RedisBench,
  s: ScaleoutSizes,
  serverStats: boolean,
): Promise<BenchReport['tables']> {
  const pairs: { table: 'cache' | 'budget'; pair: RedisPair }[] = [
    {
      table: 'cache',
      pair: {
        raw: { name: 'raw GET + JSON.parse', run: bench.rawGet },
        keel: { name: 'cache.get hit', run: bench.cacheHit },
        unit: 'us/op',
      },
    },
    {
      table: 'cache',
      pair: {
        raw: { name: 'raw miss: GET, SET NX lock, SET, DEL', run: bench.rawMiss },
        keel: { name: 'cache miss: get, singleFlight, set', run: bench.cacheMiss },
        unit: 'us/op',
      },
    },
    {
      table: 'budget',
      pair: {
        raw: { name: 'raw EVALSHA, 1 INCRBYFLOAT', run: bench.rawIncr },
        keel: { name: 'budget reserve + settle (2 scripts)', run: bench.budget },
        unit: 'ops/s',
      },
    },
  ];
  const rows: Record<'cache' | 'budget', BenchRow[]> = { cache: [], budget: [] };
  for (const [mode, inFlight, n] of [
    ['sequential', 1, s.redisSequential],
    [`${s.inFlight} in flight`, s.inFlight, s.redisConcurrent],
  ] as const) {
    for (const { table, pair } of pairs) {
      const best = await bestOf(['raw', 'keel'] as const, s.rounds, (side) => pair[side].run(n, inFlight));
      const value = (c: Cost): number => (pair.unit === 'us/op' ? c.wallUs / n : perSec(n, c));
      const server = async (side: 'raw' | 'keel'): Promise<string> => {
        if (!serverStats) return '';
        const ops = Math.min(n, SERVER_STAT_OPS);
        const us = await bench.serverUsPerOp(ops, () => pair[side].run(ops, inFlight));
        return `; redis server ${us.toFixed(1)} us/op`;
      };
      const raw = value(best.raw);
      const keel = value(best.keel);
      const ratio =
        pair.unit === 'us/op' ? `${ratioText(keel, raw)} raw's time` : `${ratioText(keel, raw)} raw`;
      rows[table].push(
        {
          name: `${pair.raw.name} (${mode})`,
          value: raw,
          unit: pair.unit,
          note: `client cpu ${(best.raw.cpuUs / n).toFixed(1)} us/op${await server('raw')}`,
        },
        {
          name: `${pair.keel.name} (${mode})`,
          value: keel,
          unit: pair.unit,
          note: `${ratio}; client cpu ${(best.keel.cpuUs / n).toFixed(1)} us/op${await server('keel')}`,
        },
      );
    }
  }
  return [
    { title: `Redis cache: wall us per operation, best of ${s.rounds}`, rows: rows.cache },
    { title: `Redis shared budget: operations/s, best of ${s.rounds}`, rows: rows.budget },
  ];
}

/** A server of the user's (from `envName`) or one started here; `skip` says why there is none. */
async function server(
  envName: string,
  start: () => Promise<LocalServer>,
): Promise<{ url: string; own?: LocalServer } | { skip: string }> {
  const fromEnv = process.env[envName];
  if (fromEnv) return { url: fromEnv };
  try {
    const own = await start();
    return { url: own.url, own };
  } catch (e) {
    return { skip: `${e instanceof Error ? e.message : String(e)}; or set ${envName}` };
  }
}

/** `probe()`, or an error naming the server it could not use (a URL from the environment may be wrong). */
async function reach<T>(what: string, url: string, probe: () => Promise<T>): Promise<T> {
  try {
    return await probe();
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new Error(`bench: cannot use ${what} at ${withoutPassword(url)}: ${reason}`, { cause: e });
  }
}

/** The installed version of a package, from its package.json. */
function versionOf(name: string): string {
  try {
    const json = fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8');
    return (JSON.parse(json) as { version?: string }).version ?? '?';
  } catch {
    return '?';
  }
}

/** File system type of a directory (`ext4`, `tmpfs` …), for the fsync line. */
function fsType(dir: string): string {
  const r = spawnSync('findmnt', ['-n', '-o', 'FSTYPE', '-T', dir], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : 'an unknown file system';
}

const settingsLine = (settings: Record<string, string>): string =>
  Object.entries(settings)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');

/** Runs the whole benchmark and returns its report (servers are stopped before it returns). */
export async function run(flags: BenchFlags): Promise<BenchReport> {
  const s = sizes(flags.quick);
  const method: string[] = [
    `load at start ${loadavg()}; clients: pg ${versionOf('pg')}, ioredis ${versionOf('ioredis')}`,
    `rounds alternate between contenders after a warm-up pass each; best of ${s.rounds}`,
  ];
  const tables: BenchReport['tables'] = [];
  const stops: LocalServer[] = [];
  const onSignal = (): void => {
    void Promise.all(stops.map((o) => o.stop())).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  try {
    const [pgServer, redisServer] = await Promise.all([
      server('KEEL_BENCH_PG_URL', () => startPostgres({ fsync: true })),
      server('KEEL_BENCH_REDIS_URL', startRedis),
    ]);
    for (const srv of [pgServer, redisServer]) if ('own' in srv && srv.own) stops.push(srv.own);

    if ('skip' in pgServer) {
      const line = `postgres: SKIPPED (${pgServer.skip})`;
      console.log(line);
      method.push(line);
    } else {
      const { server_version: version, ...settings } = await reach('Postgres', pgServer.url, () =>
        postgresSettings(pgServer.url),
      );
      const where =
        'own' in pgServer && pgServer.own
          ? `own cluster, data dir on ${fsType(os.tmpdir())}`
          : 'KEEL_BENCH_PG_URL';
      method.push(
        `postgres ${version} (${where}): ${settingsLine(settings)}`,
        `append: each side starts on a fresh schema; raw = BEGIN, SELECT heads FOR UPDATE, 1 multi-row INSERT, UPDATE heads, COMMIT per append`,
        `  (${s.rawAppends} appends/run, pool of as many connections as appenders); store = group commit, up to ` +
          `${s.storeAppends(64, 1)} appends/run; events/s = events / wall time; client cpu excludes the server's`,
        `reads: ${s.scanEvents.toLocaleString('en-US')} events written by the raw side (so verify() also checks it chains like the store)`,
      );
      tables.push(...(await benchPostgres(pgServer.url, s)));
    }

    if ('skip' in redisServer) {
      const line = `redis: SKIPPED (${redisServer.skip})`;
      console.log(line);
      method.push(line);
    } else {
      const { redis_version: version, ...settings } = await reach('Redis', redisServer.url, () =>
        redisSettings(redisServer.url),
      );
      const own = 'own' in redisServer && redisServer.own !== undefined;
      const where = own ? 'own server' : 'KEEL_BENCH_REDIS_URL';
      method.push(
        `redis ${version} (${where}): ${settingsLine(settings)}`,
        `redis runs: ${s.redisSequential.toLocaleString('en-US')} ops sequential, ${s.redisConcurrent.toLocaleString('en-US')} with ${s.inFlight} in flight; ` +
          `one ioredis connection per side, no auto-pipelining; cached value ~300 B of JSON`,
        `miss path: trailing writes unawaited on both sides, each run ends with PING / flush(); budget: 1 scope (dailyUsd only)`,
        own
          ? `redis server us/op: INFO commandstats over a separate untimed run of ${SERVER_STAT_OPS} ops (after CONFIG RESETSTAT)`
          : 'redis server time not measured (it needs CONFIG RESETSTAT, done only on a server of its own)',
      );
      const bench = await openRedisBench(redisServer.url, benchPrefix());
      try {
        tables.push(...(await benchRedis(bench, s, own)));
      } finally {
        await bench.close();
      }
    }
    method.push('no issue sets a goal for these figures: ratios are informational (report has no goals)');
  } finally {
    process.removeListener('SIGINT', onSignal);
    await Promise.all(stops.map((o) => o.stop()));
  }
  return { bench: 'scaleout', method, tables, goals: [] };
}

if (isMain(import.meta.url)) {
  const flags = parseFlags();
  printReport(await run(flags), flags);
}
