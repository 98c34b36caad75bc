/**
 * Child process of retention-strings.test.ts: appends a first event for workflow argv[3] (so its
 * connection caches that workflow id's dictionary id, and the agent name's), prints "cached", waits
 * for a line on stdin (the parent prunes meanwhile, deleting those strings), appends a second event
 * with the same strings, and prints "ok" (or the error). argv[4] is the writer: inline or thread.
 */
import { createInterface } from 'node:readline';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';

const [log, workflowId, writer] = process.argv.slice(2);
if (log === undefined || workflowId === undefined || (writer !== 'inline' && writer !== 'thread')) {
  throw new Error('usage: prune-child.ts <log> <workflowId> <inline|thread>');
}
const lines = createInterface({ input: process.stdin });
const event = (ts: number) =>
  ({
    ts,
    workflowId,
    type: 'cache.miss',
    payload: { path: 'child/path', agent: 'child-agent', key: `k-${ts}` },
  }) as const;

void (async () => {
  try {
    const store = openSqliteStore({ path: log, writer, busyTimeoutMs: 20_000 });
    await store.append([event(1_000)]);
    process.stdout.write('cached\n');
    await new Promise<void>((resolve) => lines.once('line', () => resolve()));
    lines.close();
    await store.append([event(Date.UTC(2030, 0, 1))]);
    await store.close();
    process.stdout.write('ok\n');
  } catch (e) {
    lines.close();
    process.stdout.write(`${(e as Error).name}: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
})();
