/**
 * Child process of capped-budget.test.ts (run with `node --import tsx`): one runtime of a fleet
 * sharing a $1/day budget on Redis, calling an agent with `maxOutputTokens` whose calls want
 * `ratio` × the estimated output (a provider stops at the cap). Args:
 * `<redisUrl> <keyPrefix> <ratio> <calls> <inFlight>`. It prints `ready`, waits for `go` on stdin
 * (so both processes race), then prints one JSON line: { ran, refused, costUsd }.
 */
import { createInterface } from 'node:readline';
import { isBudgetExceededError } from '../../src/cost/errors.js';
import { estimateTokens } from '../../src/cost/estimate.js';
import { redis } from '../../src/redis/index.js';
import { createRuntime } from '../../src/runtime.js';
import { agent, type AgentContext, type AgentOutput } from '../../src/supervisor/agent.js';
import { CAPPED_ESTIMATE, CAPPED_MAX_OUTPUT, CAPPED_PRICING } from './capped-budget-config.js';

const [url, keyPrefix, ratioArg, callsArg, inFlightArg] = process.argv.slice(2);
if (url === undefined || keyPrefix === undefined)
  throw new Error('usage: capped-budget-child.ts <redisUrl> <keyPrefix> <ratio> <calls> <inFlight>');
const ratio = Number(ratioArg ?? 10);
const calls = Number(callsArg ?? 150);
const inFlight = Number(inFlightArg ?? 50);

const rt = createRuntime({
  db: ':memory:',
  budget: { dailyUsd: 1, shared: redis(url, { keyPrefix }) },
  pricing: CAPPED_PRICING,
  cache: false,
  metrics: false,
  tracing: false,
});
rt.on('error', (e) => process.stderr.write(`runtime error: ${e instanceof Error ? e.message : String(e)}\n`));
await rt.ready();

const spender = agent({
  name: 'spender',
  model: 'm',
  estimate: CAPPED_ESTIMATE,
  maxOutputTokens: CAPPED_MAX_OUTPUT,
  run: (input: { text: string }, ctx: AgentContext) =>
    new Promise<AgentOutput<string>>((resolve) =>
      setTimeout(
        () =>
          resolve({
            value: 'ok',
            usage: {
              inputTokens: estimateTokens(input),
              outputTokens: Math.min(
                Math.round(CAPPED_ESTIMATE.outputTokens * ratio),
                ctx.maxOutputTokens ?? Infinity,
              ),
            },
          }),
        5,
      ),
    ),
});

process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
await new Promise<void>((resolve) => lines.once('line', () => resolve()));
lines.close();

let next = 0;
let ran = 0;
let refused = 0;
let costUsd = 0;
async function worker(): Promise<void> {
  while (next < calls) {
    next++;
    try {
      const r = await rt.run(spender, { text: 'x'.repeat(388) });
      ran++;
      costUsd += r.costUsd;
    } catch (e) {
      if (!isBudgetExceededError(e)) throw e;
      refused++;
    }
  }
}
await Promise.all(Array.from({ length: inFlight }, worker));
await rt.close();
process.stdout.write(`${JSON.stringify({ ran, refused, costUsd })}\n`);
