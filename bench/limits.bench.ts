/**
 * The rate limiter's overhead per call when it does not limit (issue 24's goal: <= 2 us): one
 * `acquire` + `release` on a key with limits that never bind (rpm, tpm and concurrency far above
 * the load), and on a key without limits, against a bare loop doing the same bookkeeping.
 *
 *   npx tsx bench/limits.bench.ts [--quick] [--json]
 *
 * Calls run in a synchronous loop (the limiter answers at once when it does not limit); rounds
 * alternate between contenders and the best round is kept (bestOf).
 *
 * Then, on a loopback Redis (`KEEL_BENCH_REDIS_URL`, or a `redis-server` of its own; skipped
 * without one), the cost per call of buckets shared on Redis (`redis(url)` as `limits.shared`): one
 * acquire script per start, plus a release script when the key caps concurrency, next to one
 * `EVALSHA` of a script returning a constant (the round trip alone); one call at a time and 64 in flight.
 */
import { Redis } from 'ioredis';
import { realClock } from '../src/core/clock.js';
import { createLimiter, openLimits, type AcquireResult, type Limiter } from '../src/limits/index.js';
import { redis } from '../src/redis/index.js';
import { startRedis, type LocalServer } from '../test/support/local-servers.js';
import {
  bestOf,
  goal,
  isMain,
  parseFlags,
  per,
  printReport,
  timed,
  us,
  type BenchFlags,
  type BenchReport,
  pool,
} from './harness.js';

const LIMITED = 'openai:gpt-4';

export async function runBench(flags: BenchFlags): Promise<BenchReport> {
  const n = flags.quick ? 2_000 : 1_000_000;
  const rounds = flags.quick ? 1 : 7;
  const limiter = createLimiter({
    clock: realClock,
    limits: { [LIMITED]: { rpm: 1e12, tpm: 1e15, concurrency: 1e9 } },
  });
  let sink = 0;
  const loop = (key: string | undefined): Promise<void> => {
    for (let i = 0; i < n; i++) {
      if (key === undefined) {
        sink += i & 1;
        continue;
      }
      const r = limiter.acquire({ key, tokens: 1_000, tenant: 'acme' }) as AcquireResult;
      if (!r.ok) throw r.error;
      r.permit.release(900);
      sink += i & 1;
    }
    return Promise.resolve();
  };
  const costs = await bestOf(['bare', 'limited', 'unlimited'] as const, rounds, async (c) =>
    per(await timed(() => loop(c === 'bare' ? undefined : c === 'limited' ? LIMITED : 'other:model')), n),
  );
  limiter.close();
  if (sink < 0) console.log(sink);
  const over = (c: 'limited' | 'unlimited'): { wall: number; cpu: number } => ({
    wall: Math.max(0, costs[c].wallUs - costs.bare.wallUs),
    cpu: Math.max(0, costs[c].cpuUs - costs.bare.cpuUs),
  });
  const lim = over('limited');
  const unl = over('unlimited');
  const method = [`${n} synchronous acquire+release per round, best of ${rounds} rounds (bestOf)`];
  const tables: BenchReport['tables'] = [
    {
      title: 'limiter overhead per call (not limiting)',
      rows: [
        { name: 'key with limits that do not bind', value: lim.wall, unit: 'us/call' },
        { name: 'key without limits', value: unl.wall, unit: 'us/call' },
      ],
    },
  ];
  const shared = await benchRedis(flags);
  method.push(shared.method);
  if (shared.table) tables.push(shared.table);
  return {
    bench: 'limits',
    method,
    tables,
    goals: [goal('limiter overhead when not limiting <= 2 us/call', lim.wall, '<=', 2, us, lim.cpu)],
  };
}

/** Acquire (+ release) through buckets shared on Redis, against the bare round trip. */
async function benchRedis(
  flags: BenchFlags,
): Promise<{ method: string; table?: BenchReport['tables'][number] }> {
  let own: LocalServer | undefined;
  let url = process.env.KEEL_BENCH_REDIS_URL;
  if (!url) {
    try {
      own = await startRedis();
      url = own.url;
    } catch (e) {
      return { method: `redis: SKIPPED (${e instanceof Error ? e.message : String(e)})` };
    }
  }
  const n = flags.quick ? 200 : 20_000;
  const rounds = flags.quick ? 1 : 5;
  const prefix = `keel-bench:limits:${process.pid}:`;
  const backend = redis(url, { keyPrefix: prefix });
  const open = (spec: Record<string, number>): Limiter =>
    openLimits({ shared: backend, [LIMITED]: spec }, { clock: realClock, onError: (e) => console.error(e) })
      .limiter;
  // Limits that never bind: every call starts at once, so the figure is the cost of asking Redis.
  const rpmOnly = open({ rpm: 1e12, tpm: 1e15 });
  const withSlots = open({ rpm: 1e12, tpm: 1e15, concurrency: 1e9 });
  const raw = new Redis(url, { lazyConnect: true });
  const sha = String(await raw.script('LOAD', 'return 1'));
  const call = (limiter: Limiter) => async (): Promise<void> => {
    const r = await limiter.acquire({ key: LIMITED, tokens: 1_000, tenant: 'acme' });
    if (!r.ok) throw r.error;
    r.permit.release(900);
  };
  const contenders = {
    'EVALSHA round trip (raw)': async () => {
      await raw.evalsha(sha, 0);
    },
    'shared acquire+release: rpm, tpm': call(rpmOnly),
    'shared acquire+release: rpm, tpm, concurrency': call(withSlots),
  };
  type Name = keyof typeof contenders;
  const names = Object.keys(contenders) as Name[];
  const rows: BenchReport['tables'][number]['rows'] = [];
  try {
    for (const inFlight of [1, 64]) {
      const costs = await bestOf(names, rounds, async (c) => per(await pool(n, inFlight, contenders[c]), n));
      for (const c of names)
        rows.push({ name: `${c}, ${inFlight} in flight`, value: costs[c].wallUs, unit: 'us/call' });
    }
  } finally {
    rpmOnly.close();
    withSlots.close();
    const keys = await raw.keys(`${prefix}*`);
    if (keys.length > 0) await raw.del(...keys);
    raw.disconnect();
    await backend.close();
    await own?.stop();
  }
  return {
    method: `redis ${own ? 'of its own' : 'KEEL_BENCH_REDIS_URL'} on loopback: ${n} calls per round, best of ${rounds}; wall time per call`,
    table: { title: 'rate limits shared on Redis (per call, limits that do not bind)', rows },
  };
}

if (isMain(import.meta.url)) {
  const flags = parseFlags();
  printReport(await runBench(flags), flags);
}
