/**
 * Child process of limits.test.ts (run with `node --import tsx`): one member of a fleet sharing
 * rate limits on Redis. Args: `<mode> <redisUrl> <keyPrefix> <specJson> <optionsJson> [calls]`.
 *
 * - `burst`: prints `ready`, waits for `go` on stdin (so every process starts together), then fires
 *   `calls` acquires at once at a counting provider stub. Every call that starts reaches the stub,
 *   which records its time (this host's wall clock, the clock Redis on loopback also reads); it
 *   prints `call <ms>` per provider call, then `done <started> <shed>` and exits.
 * - `hold`: takes one call's slot, prints `held`, and waits to be killed (a crashed holder).
 * - `pause <ms>`: prints `ready`, waits for `go`, pauses the key (a 429 seen here), prints `paused`, exits.
 */
import { createInterface } from 'node:readline';
import { realClock } from '../../src/core/clock.js';
import { openLimits } from '../../src/limits/backend.js';
import type { LimitSpec } from '../../src/limits/limiter.js';
import { redisLimits, type RedisLimitsOptions } from '../../src/redis/index.js';

export const KEY = 'openai:gpt-4';

const [mode, url, keyPrefix, specJson, optionsJson, arg] = process.argv.slice(2);
if (mode === undefined || url === undefined || keyPrefix === undefined || specJson === undefined)
  throw new Error(
    'usage: limits-child.ts <burst|hold|pause> <redisUrl> <keyPrefix> <specJson> <optionsJson> [n]',
  );
const spec = JSON.parse(specJson) as LimitSpec;
const options = JSON.parse(optionsJson ?? '{}') as RedisLimitsOptions;

const { limiter, ready, close } = openLimits(
  { shared: redisLimits(url, { keyPrefix, ...options }), [KEY]: spec },
  { clock: realClock, onError: (e) => process.stderr.write(`${e.message}\n`) },
);
await ready(); // connects and loads the scripts before the race starts

const go = async (): Promise<void> => {
  process.stdout.write('ready\n');
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => lines.once('line', () => resolve()));
  lines.close();
};

if (mode === 'burst') {
  await go();
  const calls = Number(arg ?? 200);
  const provider: number[] = []; // the counting provider stub: when each call reached it
  let shed = 0;
  await Promise.all(
    Array.from({ length: calls }, async () => {
      const r = await limiter.acquire({ key: KEY });
      if (!r.ok) {
        shed++;
        return;
      }
      provider.push(Date.now());
      r.permit.release();
    }),
  );
  process.stdout.write(provider.map((t) => `call ${t}\n`).join(''));
  process.stdout.write(`done ${provider.length} ${shed}\n`);
  await close();
} else if (mode === 'hold') {
  const r = await limiter.acquire({ key: KEY });
  if (!r.ok) throw r.error;
  process.stdout.write('held\n');
  setInterval(() => {}, 60_000); // never releases: the parent kills this process
} else if (mode === 'pause') {
  await go();
  limiter.pause(KEY, Number(arg));
  await close(); // waits for the pause to be written
  process.stdout.write('paused\n');
} else throw new Error(`unknown mode ${mode}`);
