/**
 * Child process of writer-thread.test.ts: opens a store with a writer thread, appends, prints the
 * last seq, and returns WITHOUT closing the store. An idle writer thread must not keep the process
 * alive, so the process exits by itself.
 */
import { openSqliteStore } from '../../src/eventlog/sqlite.js';

const path = process.argv[2];
if (path === undefined) throw new Error('usage: writer-thread-child.ts <dbfile>');
const store = openSqliteStore({ path, writer: 'thread' });
const events = await Promise.all(
  Array.from({ length: 20 }, (_, i) =>
    store.append([{ ts: i, workflowId: `wf-${i}`, type: 'feedback.recorded', payload: { correct: true } }]),
  ),
);
process.stdout.write(`${Math.max(...events.flat().map((e) => e.seq))}\n`);
