/**
 * The same caller-chosen workflowId started at once in two OS processes sharing one SQLite file:
 * one process runs it, the other gets its recorded result or a named error (WorkflowBusyError /
 * WorkflowInProgressError) — never a second run. 50 ids, started together by both processes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { cleanupDirs, tempDb } from './helpers.js';
import { starter } from './start-child.js';

const N = 50;

afterEach(cleanupDirs);

describe('one workflowId started by two processes sharing a SQLite file', () => {
  it('runs once, for each of 50 ids started at once: the other process gets the recorded result or a named error', async () => {
    const db = tempDb('shared.db');
    await openSqliteStore({ path: db }).close(); // the log exists before the race
    const files = [tempDb('p0.calls'), tempDb('p1.calls')] as const;
    const procs = [starter(db, files[0], 'p0', N), starter(db, files[1], 'p1', N)];
    await Promise.all(procs.map((p) => p.ready));
    for (const p of procs) p.child.stdin.end('go\n');
    expect(await Promise.all(procs.map((p) => p.exited))).toEqual([0, 0]);
    expect(procs.map((p) => p.stderr())).toEqual(['', '']);

    const calls = files.flatMap((f) =>
      existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : [],
    );
    const store = openSqliteStore({ path: db });
    try {
      const started = store.query({ type: 'workflow.started' }).map((e) => e.workflowId);
      const completed = store.query({ type: 'workflow.completed' }).map((e) => e.workflowId);
      const ids = Array.from({ length: N }, (_, i) => `dup-${i}`);
      expect(started.sort()).toEqual([...ids].sort());
      expect(completed.sort()).toEqual([...ids].sort());
      const [o0, o1] = procs.map((p) => p.outcomes());
      for (const id of ids) {
        // a and b, once each, by one process.
        const mine = calls.filter((c) => c.endsWith(` ${id}`));
        expect([id, mine.map((c) => c.split(' ')[1])]).toEqual([id, ['a', 'b']]);
        const ranBy = mine[0]?.split(' ')[0];
        const [ran, other] = ranBy === 'p0' ? [o0?.[id], o1?.[id]] : [o1?.[id], o0?.[id]];
        expect([id, ran]).toEqual([id, 'ran']);
        expect(['recorded', 'WORKFLOW_BUSY', 'WORKFLOW_IN_PROGRESS']).toContain(other);
      }
      expect(await store.ownership().claims()).toEqual([]);
      expect(store.verify()).toMatchObject({ ok: true });
    } finally {
      await store.close();
    }
  }, 120_000);
});
