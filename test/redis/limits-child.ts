/**
 * Child process of limits.test.ts (run with `node --import tsx`): one member of a fleet sharing
 * rate limits on Redis. Args: `<mode> <redisUrl> <keyPrefix> <specJson> <optionsJson> [calls]`.
 *
 * - `burst`: prints `ready`, waits for `go` on stdin (so every process starts together), then fires
 *   `calls` acquires at once at a counting provider stub. It prints `grant <ms>` per start Redis
 *   granted, `<ms>` being the Redis `TIME` the acquire script ran at (from the script's reply, so
 *   how late this process saw the reply does not move it), `call` per call that reached the stub,
 *   then `done <started> <shed>`, and exits.
 * - `hold`: takes one call's slot, prints `held`, and waits to be killed (a crashed holder).
 * - `pause <ms>`: prints `ready`, waits for `go`, pauses the key (a 429 seen here), prints `paused`, exits.
 */
import { createInterface } from 'node:readline';
import { realClock } from '../../src/core/clock.js';
import { openLimits } from '../../src/limits/backend.js';
import type { LimitSpec } from '../../src/limits/limiter.js';
import { type LuaScript } from '../../src/redis/connection.js';
import { RedisConnection, redisLimits, type RedisLimitsOptions } from '../../src/redis/index.js';

export const KEY = 'openai:gpt-4';

const [mode, url, keyPrefix, specJson, optionsJson, arg] = process.argv.slice(2);
if (mode === undefined || url === undefined || keyPrefix === undefined || specJson === undefined)
  throw new Error(
    'usage: limits-child.ts <burst|hold|pause> <redisUrl> <keyPrefix> <specJson> <optionsJson> [n]',
  );
const spec = JSON.parse(specJson) as LimitSpec;
const options = JSON.parse(optionsJson ?? '{}') as RedisLimitsOptions;

/** A connection that notes the Redis time of every start the acquire script granted. */
class GrantLog extends RedisConnection {
  readonly grants: number[] = [];
  override evalScript(script: LuaScript, keys: readonly string[], args: readonly (string | number)[]) {
    return super.evalScript(script, keys, args).then((reply) => {
      // The acquire script's reply: [started 1/0, wait ms, paused ms, Redis TIME in ms].
      if (script.source.includes('return {started, wait, paused, now}') && Array.isArray(reply)) {
        if (Number(reply[0]) === 1) this.grants.push(Number(reply[3]));
      }
      return reply;
    });
  }
}
const connection = new GrantLog(url, { keyPrefix });

const { limiter, ready, close } = openLimits(
  { shared: redisLimits(connection, options), [KEY]: spec },
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
  let provider = 0; // the counting provider stub
  let shed = 0;
  await Promise.all(
    Array.from({ length: calls }, async () => {
      const r = await limiter.acquire({ key: KEY });
      if (!r.ok) {
        shed++;
        return;
      }
      provider++;
      r.permit.release();
    }),
  );
  await close(); // every acquire script answered
  process.stdout.write(connection.grants.map((t) => `grant ${t}\n`).join(''));
  process.stdout.write(`call\n`.repeat(provider));
  process.stdout.write(`done ${provider} ${shed}\n`);
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
if (mode !== 'hold') await connection.close();
