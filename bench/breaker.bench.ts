/**
 * Breaker gate overhead per call, closed state: Keel's `acquire()` + `success()` against opossum 9
 * `fire()` and cockatiel 3 `execute()` around the same trivial async function, and a bare call.
 *
 *   npx tsx bench/breaker.bench.ts [iterations]
 *
 * Each contender runs sequentially awaited calls (one `await` per call, like an agent); rounds
 * alternate between contenders and the best round is reported, so GC and JIT noise hurt everyone
 * alike. Prints ns/call, overhead over the bare call, and ratios to opossum.
 */
import CircuitBreaker from 'opossum';
import { ConsecutiveBreaker, circuitBreaker, handleAll } from 'cockatiel';
import { realClock } from '../src/core/clock.js';
import { createBreaker } from '../src/supervisor/breaker.js';

const iterations = Number(process.argv[2] ?? 200_000);
const rounds = 7;

let sink = 0;
const work = (): Promise<number> => Promise.resolve(++sink);

const keel = createBreaker({ name: 'bench', failureThreshold: 5 }, { clock: realClock });
const keelRate = createBreaker(
  { name: 'bench-rate', errorThresholdPercentage: 50, volumeThreshold: 10 },
  { clock: realClock },
);
const opossum = new CircuitBreaker(work, { resetTimeout: 60_000 });
const opossumNoTimeout = new CircuitBreaker(work, { resetTimeout: 60_000, timeout: false });
const cockatiel = circuitBreaker(handleAll, { halfOpenAfter: 60_000, breaker: new ConsecutiveBreaker(5) });

async function gated(breaker: typeof keel): Promise<number> {
  const permit = breaker.acquire();
  if (permit === undefined) throw new Error('bench: breaker unexpectedly open');
  try {
    const value = await work();
    permit.success();
    return value;
  } catch (e) {
    permit.failure('provider_error');
    throw e;
  }
}

const contenders: Array<[name: string, call: () => Promise<number>]> = [
  ['bare call', work],
  ['keel acquire+success', () => gated(keel)],
  ['keel (rate strategy: sends per call)', () => gated(keelRate)],
  ['opossum fire()', () => opossum.fire()],
  ['opossum fire() timeout:false', () => opossumNoTimeout.fire()],
  ['cockatiel execute()', () => cockatiel.execute(work)],
];

async function measure(call: () => Promise<number>): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) await call();
  return Number(process.hrtime.bigint() - start) / iterations;
}

async function main(): Promise<void> {
  const best = new Map<string, number>();
  for (const [, call] of contenders) await measure(call); // warm-up
  for (let r = 0; r < rounds; r++) {
    for (const [name, call] of contenders) {
      const ns = await measure(call);
      best.set(name, Math.min(best.get(name) ?? Infinity, ns));
    }
  }
  const bare = best.get('bare call') ?? 0;
  const opossumNs = best.get('opossum fire()') ?? 1;
  const opossumOverhead = opossumNs - bare;
  console.log(`breaker gate, closed state: ${iterations} sequential calls x ${rounds} rounds (best round)\n`);
  console.log(
    `${'contender'.padEnd(38)}${'ns/call'.padStart(10)}${'overhead'.padStart(11)}${'vs opossum'.padStart(12)}`,
  );
  for (const [name] of contenders) {
    const ns = best.get(name) ?? 0;
    const overhead = ns - bare;
    const ratio = name === 'bare call' ? '' : `${(overhead / opossumOverhead).toFixed(2)}x`;
    console.log(
      `${name.padEnd(38)}${ns.toFixed(0).padStart(10)}${overhead.toFixed(0).padStart(11)}${ratio.padStart(12)}`,
    );
  }
  const keelOverhead = (best.get('keel acquire+success') ?? 0) - bare;
  console.log(
    `\nkeel gate overhead is ${(keelOverhead / opossumOverhead).toFixed(2)}x opossum's ` +
      `(goal: <= 1x) and ${(keelOverhead / ((best.get('cockatiel execute()') ?? 0) - bare)).toFixed(2)}x cockatiel's`,
  );
  keel.stop();
  keelRate.stop();
  opossum.shutdown();
  opossumNoTimeout.shutdown();
}

await main();
