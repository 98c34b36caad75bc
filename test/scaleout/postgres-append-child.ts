/**
 * Child process of postgres-chain.test.ts (run with `node --import tsx`): opens the Postgres event
 * log at argv[2], prints `ready`, waits for a line on stdin (so both writers start together), then
 * appends argv[4] events with workflow ids `<argv[3]>-<n>` in appends of 1–4 events, 16 in flight,
 * audit and operational mixed. It prints `<seq> <workflowId>` for each event once its append
 * resolved (i.e. after COMMIT), then `done <transactions>` and exits after closing the store.
 */
import { createInterface } from 'node:readline';
import type { NewEvent } from '../../src/eventlog/events.js';
import { openPostgresStore } from '../../src/eventlog/postgres.js';

const [url, tag, countArg] = process.argv.slice(2);
if (url === undefined || tag === undefined || countArg === undefined) {
  throw new Error('usage: postgres-append-child.ts <url> <tag> <count>');
}
const agent = tag;
const count = Number(countArg);
const IN_FLIGHT = 16;

const store = openPostgresStore({ url });
await store.ready();
process.stdout.write('ready\n');
await new Promise<void>((resolve) => {
  const lines = createInterface({ input: process.stdin });
  lines.once('line', () => {
    lines.close();
    process.stdin.destroy(); // nothing more to read: let the process exit when done
    resolve();
  });
});

function event(n: number): NewEvent {
  const workflowId = `${agent}-${n}`;
  return n % 3 === 0
    ? { ts: n, workflowId, type: 'cache.miss', payload: { path: 'p', agent, key: `k-${n}` } }
    : { ts: n, workflowId, type: 'feedback.recorded', payload: { correct: n % 2 === 0, expected: { n } } };
}

let next = 0;
async function writer(): Promise<void> {
  while (next < count) {
    const size = Math.min(1 + (next % 4), count - next);
    const batch: NewEvent[] = [];
    for (let k = 0; k < size; k++) batch.push(event(next++));
    const committed = await store.append(batch);
    process.stdout.write(committed.map((e) => `${e.seq} ${e.workflowId}\n`).join(''));
  }
}
await Promise.all(Array.from({ length: IN_FLIGHT }, writer));
process.stdout.write(`done ${store.stats().transactions}\n`);
await store.close();
