/**
 * Child process of shared-budget.test.ts (run with `node --import tsx`): one member of a fleet
 * sharing a budget on Redis. Args: `<redisUrl> <keyPrefix> <attempts> <inFlight>`. It prints
 * `ready`, waits for `go` on stdin (so both processes start together), then makes `attempts`
 * calls of $0.01 each, `inFlight` at a time, against a $1/day budget: reserve, wait 5 ms (the
 * model call), settle at the estimate. It prints `alert <scope> <threshold> <spentUsd>`
 * for each alert this process raised, then `admitted <n> <day>` and exits.
 */
import { createInterface } from 'node:readline';
import { realClock } from '../../src/core/clock.js';
import { createPricing } from '../../src/cost/pricing.js';
import { createSharedBudgets } from '../../src/redis/budget.js';
import { RedisConnection } from '../../src/redis/connection.js';
import { CHILD_BUDGET, CHILD_CALL_USD } from './shared-budget-config.js';

const [url, keyPrefix, attemptsArg, inFlightArg] = process.argv.slice(2);
if (url === undefined || keyPrefix === undefined)
  throw new Error('usage: shared-budget-child.ts <redisUrl> <keyPrefix> <attempts> <inFlight>');
const attempts = Number(attemptsArg ?? 150);
const inFlight = Number(inFlightArg ?? 10);

const connection = new RedisConnection(url, { keyPrefix });
const budgets = createSharedBudgets(connection, CHILD_BUDGET, {
  clock: realClock,
  pricing: createPricing(),
  onAlert: (a) => process.stdout.write(`alert ${a.scope} ${a.threshold} ${a.spentUsd}\n`),
  onError: (e) => process.stderr.write(`${e.message}\n`),
});
await budgets.refresh(); // connects before the race starts

process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
await new Promise<void>((resolve) => lines.once('line', () => resolve()));
lines.close();

let next = 0;
let admitted = 0;
async function worker(): Promise<void> {
  while (next < attempts) {
    next++;
    const r = await budgets.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: CHILD_CALL_USD });
    if (!r.ok) continue;
    admitted++;
    await new Promise((resolve) => setTimeout(resolve, 5));
    r.reservation.settle(CHILD_CALL_USD);
  }
}
await Promise.all(Array.from({ length: inFlight }, worker));
budgets.stop();
await budgets.flush();
await connection.close();
process.stdout.write(`admitted ${admitted} ${budgets.today().day}\n`);
