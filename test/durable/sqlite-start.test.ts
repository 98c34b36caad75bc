/**
 * The same caller-chosen workflowId started at once in two OS processes sharing one SQLite file:
 * one process runs it, the other gets its recorded result or a named error (WorkflowBusyError /
 * WorkflowInProgressError) — never a second run. 50 ids, started together by both processes.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { cleanupDirs, tempDb } from './helpers.js';

const CHILD = fileURLToPath(new URL('./pg-start-child.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const N = 50;

afterEach(cleanupDirs);

function starter(db: string, calls: string, name: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, db, calls, name, String(N)], {
    cwd: REPO,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = once(child, 'close').then(([code]) => code as number | null);
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', () => out.startsWith('ready\n') && resolve());
    void exited.then((code) => reject(new Error(`${name} exited (${String(code)}) before ready: ${err}`)));
  });
  return {
    child,
    ready,
    exited,
    stderr: () => err,
    outcomes: () =>
      (JSON.parse(out.trim().split('\n').at(-1) ?? '') as { outcomes: Record<string, string> }).outcomes,
  };
}

describe('one workflowId started by two processes sharing a SQLite file', () => {
  it('runs once, for each of 50 ids started at once: the other process gets the recorded result or a named error', async () => {
    const db = tempDb('shared.db');
    await openSqliteStore({ path: db }).close(); // the log exists before the race
    const files = [tempDb('p0.calls'), tempDb('p1.calls')] as const;
    const procs = [starter(db, files[0], 'p0'), starter(db, files[1], 'p1')];
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
