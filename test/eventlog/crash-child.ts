/**
 * Child process of crash.test.ts: appends to the log at argv[2] (writer argv[3]) in a loop, 16 appends in flight,
 * and prints each seq on its own line once its append has resolved (i.e. once it is committed).
 * The parent SIGKILLs it mid-stream. Stops by itself after MAX_APPENDS, so it can never run away.
 */
import { openSqliteStore } from '../../src/eventlog/sqlite.js';

const MAX_APPENDS = 100_000;
const IN_FLIGHT = 16;

const path = process.argv[2];
const writer = process.argv[3] ?? 'inline';
if (path === undefined || (writer !== 'inline' && writer !== 'thread')) {
  throw new Error('usage: crash-child.ts <dbfile> [inline|thread]');
}
const store = openSqliteStore({ path, writer });

let next = 0;
async function appender(): Promise<void> {
  while (next < MAX_APPENDS) {
    const i = next++;
    const [event] = await store.append([
      {
        ts: Date.now(),
        workflowId: `wf-${i}`,
        type: 'feedback.recorded',
        payload: { correct: true, expected: i },
      },
    ]);
    process.stdout.write(`${event?.seq}\n`);
  }
}

await Promise.all(Array.from({ length: IN_FLIGHT }, appender));
await store.close();
