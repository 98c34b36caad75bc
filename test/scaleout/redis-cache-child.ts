/**
 * Child process of redis-cache-processes.test.ts (run with `node --import tsx`): a second runtime
 * process looking up one key the way the runtime does — `get`, and on a miss `singleFlight` around
 * the call — on the real clock. Prints one JSON line: `{ "value": …, "computed": boolean }`.
 *
 * usage: redis-cache-child.ts <redisUrl> <keyPrefix> <key>
 */
import { realClock } from '../../src/core/clock.js';
import { createRedisCache } from '../../src/redis/cache.js';
import { RedisConnection } from '../../src/redis/connection.js';

const [url, keyPrefix, key] = process.argv.slice(2);
if (url === undefined || keyPrefix === undefined || key === undefined) {
  throw new Error('usage: redis-cache-child.ts <redisUrl> <keyPrefix> <key>');
}

const connection = new RedisConnection(url, { keyPrefix });
const cache = createRedisCache(connection, {
  clock: realClock,
  waitForLeaderMs: 20_000,
  onError: (e) => process.stderr.write(`${e.message}\n`),
});
let computed = false;
const hit = await cache.get(key);
const value =
  hit !== undefined
    ? hit.value
    : await cache.singleFlight(key, () => {
        computed = true;
        const out = { vendor: 'computed by the child' };
        cache.set(key, 'vendor', out, 60_000);
        return Promise.resolve(out);
      });
process.stdout.write(`${JSON.stringify({ value, computed })}\n`);
await cache.close();
await connection.close();
