/**
 * Child process of create-race.test.ts: says "ready", waits for a line on stdin (so every child
 * starts at once), then opens the log argv[2] and the cache argv[3] (both new paths), appends one
 * event, stores one cache entry, closes, and prints "ok" (or the error's name and message).
 */
import { createInterface } from 'node:readline';
import { realClock } from '../../src/core/clock.js';
import { createCache } from '../../src/cache/cache.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';

const [log, cachePath, id] = process.argv.slice(2);
if (log === undefined || cachePath === undefined || id === undefined) {
  throw new Error('usage: create-child.ts <log> <cache> <id>');
}
const lines = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
lines.once('line', () => {
  lines.close();
  void (async () => {
    try {
      const store = openSqliteStore({ path: log, writer: 'inline' });
      const cache = createCache({ path: cachePath, clock: realClock });
      await store.append([
        { ts: 1, workflowId: `child-${id}`, type: 'feedback.recorded', payload: { correct: true } },
      ]);
      cache.set(`k-${id}`, 'a', { v: id }, 60_000);
      cache.close();
      await store.close();
      process.stdout.write('ok\n');
    } catch (e) {
      process.stdout.write(`${(e as Error).name}: ${(e as Error).message}\n`);
      process.exitCode = 1;
    }
  })();
});
