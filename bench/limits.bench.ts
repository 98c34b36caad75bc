/**
 * The rate limiter's overhead per call when it does not limit (issue 24's goal: <= 2 us): one
 * `acquire` + `release` on a key with limits that never bind (rpm, tpm and concurrency far above
 * the load), and on a key without limits, against a bare loop doing the same bookkeeping.
 *
 *   npx tsx bench/limits.bench.ts [--quick] [--json]
 *
 * Calls run in a synchronous loop (the limiter answers at once when it does not limit); rounds
 * alternate between contenders and the best round is kept (bestOf).
 */
import { realClock } from '../src/core/clock.js';
import { createLimiter, type AcquireResult } from '../src/limits/index.js';
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
  return {
    bench: 'limits',
    method: [`${n} synchronous acquire+release per round, best of ${rounds} rounds (bestOf)`],
    tables: [
      {
        title: 'limiter overhead per call (not limiting)',
        rows: [
          { name: 'key with limits that do not bind', value: lim.wall, unit: 'us/call' },
          { name: 'key without limits', value: unl.wall, unit: 'us/call' },
        ],
      },
    ],
    goals: [goal('limiter overhead when not limiting <= 2 us/call', lim.wall, '<=', 2, us, lim.cpu)],
  };
}

if (isMain(import.meta.url)) {
  const flags = parseFlags();
  printReport(await runBench(flags), flags);
}
