/**
 * Child process of fleet.test.ts (run with `node --import tsx`): one Keel runtime of a fleet that
 * shares a Postgres event log, a Redis cache and a Redis budget of $1/day. Args:
 * `<pgUrl> <redisUrl> <cachePrefix> <budgetPrefix> <name> <inputs,comma,separated> <inFlight>`.
 * It prints `ready`, waits for `go` on stdin (so the processes race), runs one workflow per input,
 * `inFlight` at a time, and prints one JSON line: { admitted, refused, calls, costUsd, ids, done, alerts }.
 */
import { createInterface } from 'node:readline';
import { postgres } from '../../src/eventlog/postgres.js';
import { redis } from '../../src/redis/index.js';
import { createRuntime } from '../../src/runtime.js';
import { isBudgetExceededError } from '../../src/cost/errors.js';
import { FLEET_PRICING, fleetWorkflow } from './fleet-topologies.js';

const [pgUrl, redisUrl, cachePrefix, budgetPrefix, name, inputsArg, inFlightArg] = process.argv.slice(2);
if (!pgUrl || !redisUrl || !cachePrefix || !budgetPrefix || !name || inputsArg === undefined)
  throw new Error(
    'usage: fleet-child.ts <pgUrl> <redisUrl> <cachePrefix> <budgetPrefix> <name> <inputs> <inFlight>',
  );
const inputs = inputsArg.split(',').filter((s) => s.length > 0);
const inFlight = Number(inFlightArg ?? 4);

const rt = createRuntime({
  store: postgres(pgUrl),
  cache: redis(redisUrl, { keyPrefix: cachePrefix }),
  // A shared cache needs the same redaction key in every process.
  redact: { hmacKey: 'fleet-test-redaction-key-0123456789' },
  budget: { dailyUsd: 1, shared: redis(redisUrl, { keyPrefix: budgetPrefix }) },
  pricing: FLEET_PRICING,
  seed: name,
  metrics: false,
  tracing: false,
});
const alerts: string[] = [];
rt.on('alert', (a) => {
  if (a.kind === 'budget') alerts.push(a.id);
});
rt.on('error', (e) => process.stderr.write(`runtime error: ${e instanceof Error ? e.message : String(e)}\n`));
await rt.ready();

process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
await new Promise<void>((resolve) => lines.once('line', () => resolve()));
lines.close();

const workflow = fleetWorkflow();
let next = 0;
let admitted = 0;
let refused = 0;
let costUsd = 0;
const ids: string[] = [];
const done: string[] = [];
async function worker(): Promise<void> {
  while (next < inputs.length) {
    const vendor = inputs[next++] as string;
    try {
      const r = await rt.run(workflow, { vendor });
      admitted++;
      costUsd += r.costUsd;
      ids.push(r.workflowId);
      done.push(vendor);
    } catch (e) {
      if (!isBudgetExceededError(e)) throw e;
      refused++;
    }
  }
}
await Promise.all(Array.from({ length: inFlight }, worker));
await rt.close();
const calls = (globalThis as { keelFleetCalls?: number }).keelFleetCalls ?? 0;
process.stdout.write(`${JSON.stringify({ admitted, refused, calls, costUsd, ids, done, alerts })}\n`);
