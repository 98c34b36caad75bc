/**
 * Golden histories: a log recorded by the demos (test/fixtures/golden.db, `keel demo all --count 20
 * --seed 7`) must replay with no divergence on every change to Keel — and a tampered copy must not.
 * Regenerate it only on purpose, when a change of recorded decisions is intended.
 */
import Database from 'better-sqlite3';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { demoTopologies } from '../../demos/index.js';
import { simulatedClock } from '../../src/core/clock.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';

const GOLDEN = join(import.meta.dirname, '..', 'fixtures', 'golden.db');
let dir: string;
let rt: Runtime<SqliteEventStore> | undefined;
afterEach(async () => {
  await rt?.close();
  rt = undefined;
  rmSync(dir, { recursive: true, force: true });
});

function copy(): string {
  dir = mkdtempSync(join(tmpdir(), 'keel-golden-'));
  const db = join(dir, 'golden.db');
  copyFileSync(GOLDEN, db);
  return db;
}

describe('golden histories', () => {
  it('the recorded demo log verifies and replays with zero divergences and zero model calls', async () => {
    const db = copy();
    rt = createRuntime({ db, clock: simulatedClock(), seed: 7, cache: false });
    expect(rt.store.verify().ok).toBe(true);
    const progress: [string, number, number][] = [];
    const reports = await rt.replay('all', {
      topologies: demoTopologies(7),
      onReport: (r, done, total) => progress.push([r.workflowId, done, total]),
    });
    expect(reports.length).toBeGreaterThan(100);
    expect(progress).toEqual(reports.map((r, i) => [r.workflowId, i + 1, reports.length]));
    const diverged = reports.filter((r) => !r.ok);
    expect(diverged.map((r) => `${r.name} ${r.workflowId}: ${r.divergences[0]?.message ?? ''}`)).toEqual([]);
    expect(reports.every((r) => r.modelCalls === 0)).toBe(true);
  });

  it('a tampered history fails both the chain check and replay', async () => {
    const db = copy();
    const raw = new Database(db);
    raw.exec('DROP TRIGGER events_no_update');
    // one screener's recorded answer is flipped: the chain breaks, and replay feeds the flipped
    // answer to the vote, which no longer matches the recorded vote.cast
    const row = raw
      .prepare(
        "SELECT seq, workflow_id AS workflowId, payload FROM events WHERE type = 'agent.succeeded' AND payload LIKE '%fraud_screener%' AND payload LIKE '%\"legit\"%' LIMIT 1",
      )
      .get() as { seq: number; workflowId: string; payload: string };
    raw
      .prepare('UPDATE events SET payload = ? WHERE seq = ?')
      .run(row.payload.replace('"legit"', '"fraud"'), row.seq);
    raw.close();
    const store = openSqliteStore({ path: db, readonly: true });
    const verdict = store.verify();
    await store.close();
    expect(verdict.ok).toBe(false);
    rt = createRuntime({ db, clock: simulatedClock(), seed: 7, cache: false });
    const [report] = await rt.replay(row.workflowId, { topologies: demoTopologies(7) });
    expect(report?.ok).toBe(false);
    expect(report?.divergences.length).toBeGreaterThan(0);
  });
});
