/**
 * Child process of schema4.test.ts: says "ready", waits for a line on stdin (so both children start
 * at once), then appends `rounds` batches to the log argv[2], each with strings no other process
 * uses (workflow ids and agent names carrying argv[3]), and prints "ok" (or the error).
 */
import { createInterface } from 'node:readline';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';

const [log, tag, roundsArg] = process.argv.slice(2);
if (log === undefined || tag === undefined) throw new Error('usage: strings-child.ts <log> <tag> [rounds]');
const rounds = Number(roundsArg ?? '40');
const lines = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
lines.once('line', () => {
  lines.close();
  void (async () => {
    try {
      const store = openSqliteStore({ path: log, writer: 'inline', busyTimeoutMs: 20_000 });
      for (let r = 0; r < rounds; r++) {
        const workflowId = `wf-${tag}-${r}`;
        const agent = `agent-${tag}-${r}`;
        await store.append([
          {
            ts: 1_000 + r,
            workflowId,
            type: 'cache.miss',
            payload: { path: `${tag}/${r}`, agent, key: `k-${r}` },
          },
          {
            ts: 1_000 + r,
            workflowId,
            type: 'cache.hit',
            payload: { path: `${tag}/${r}/hit`, agent, key: `k-${r}`, ageMs: r, savedUsd: r },
          },
        ]);
      }
      await store.close();
      process.stdout.write('ok\n');
    } catch (e) {
      process.stdout.write(`${(e as Error).name}: ${(e as Error).message}\n`);
      process.exitCode = 1;
    }
  })();
});
