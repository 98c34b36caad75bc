/**
 * A createRuntime that fails part-way (a config error found by a constructor step) releases the
 * event log it opened: no connection, WAL or writer thread is left behind, and the file can be
 * opened again at once.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/core/errors.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { createRuntime } from '../../src/runtime.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tempDb(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-failed-create-'));
  dirs.push(d);
  return path.join(d, 'keel.db');
}

describe('createRuntime failing after the log is open', () => {
  it('closes the log it opened and names the bad field', async () => {
    const db = tempDb();
    let error: unknown;
    try {
      createRuntime({ db, budget: { dailyUsd: -5 } });
    } catch (e) {
      error = e;
    }
    expect(isConfigError(error) && error.field).toMatch(/budget/);
    // The last connection to close checkpoints and removes the WAL: none is left open.
    expect(fs.existsSync(`${db}-wal`)).toBe(false);
    const store = openSqliteStore({ path: db });
    expect(store.verify()).toMatchObject({ ok: true, events: 0 });
    await store.close();
  });

  it('leaves a store it was given open: it belongs to the caller', async () => {
    const store = openSqliteStore({ path: tempDb() });
    expect(() => createRuntime({ store, budget: { dailyUsd: -5 } })).toThrow(/budget/);
    await store.append([{ ts: 1, workflowId: 'wf', type: 'feedback.recorded', payload: { correct: true } }]);
    expect(store.lastSeq()).toBe(1);
    await store.close();
  });
});
