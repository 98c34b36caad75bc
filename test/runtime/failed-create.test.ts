/**
 * A createRuntime that fails part-way (a config error found by a constructor step) releases the
 * event log it opened: no connection, WAL or writer thread is left behind, and the file can be
 * opened again at once. One whose log cannot be opened at all creates no other file either (no
 * empty ECS log).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/core/errors.js';
import { isForeignDatabaseError, SchemaVersionError } from '../../src/eventlog/errors.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { KEEL_APPLICATION_ID } from '../../src/eventlog/schema.js';
import Database from 'better-sqlite3';
import { createRuntime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tempDb(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-failed-create-'));
  dirs.push(d);
  return path.join(d, 'keel.db');
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

describe('createRuntime whose log cannot be opened', () => {
  it('names the problem and leaves no ECS log file (nor any other) behind', () => {
    const db = tempDb();
    const dir = path.dirname(db);
    const logs = { destination: path.join(dir, 'logs', 'keel.ndjson') };

    // Not SQLite at all.
    fs.writeFileSync(db, 'quarterly numbers, not a database\n'.repeat(100));
    const notSqlite = thrown(() => createRuntime({ db, logs }));
    expect(isForeignDatabaseError(notSqlite)).toBe(true);
    expect((notSqlite as Error).message).toMatch(/not a SQLite database.*Point "db"/);
    expect(fs.readdirSync(dir)).toEqual(['keel.db']);

    // Another application's SQLite database (its own application_id).
    const other = new Database(db.replace('keel.db', 'other.db'));
    other.exec('CREATE TABLE users (id INTEGER); PRAGMA application_id = 42;');
    other.close();
    fs.renameSync(db.replace('keel.db', 'other.db'), db);
    const foreign = thrown(() => createRuntime({ db, logs }));
    expect(isForeignDatabaseError(foreign)).toBe(true);
    expect((foreign as Error).message).toMatch(/application_id is 42/);
    expect(fs.readdirSync(dir)).toEqual(['keel.db']);

    // A log written by a newer Keel.
    fs.rmSync(db);
    const newer = new Database(db);
    newer.exec(
      `CREATE TABLE future (x); PRAGMA user_version = 99; PRAGMA application_id = ${KEEL_APPLICATION_ID};`,
    );
    newer.close();
    expect(thrown(() => createRuntime({ db, logs }))).toBeInstanceOf(SchemaVersionError);
    expect(fs.readdirSync(dir)).toEqual(['keel.db']);
  });

  it('a failure after the log opened leaves no ECS log file either', () => {
    const db = tempDb();
    const destination = path.join(path.dirname(db), 'keel.ndjson');
    expect(() => createRuntime({ db, logs: { destination }, budget: { dailyUsd: -5 } })).toThrow(/budget/);
    expect(fs.existsSync(destination)).toBe(false);
  });

  it('still writes the ECS lines of the last commits before close', async () => {
    const db = tempDb();
    const destination = path.join(path.dirname(db), 'keel.ndjson');
    const rt = createRuntime({
      db,
      logs: { destination },
      pricing: { sim: { inputPer1K: 0, outputPer1K: 0 } },
    });
    const echo = agent({
      name: 'echo',
      model: 'sim',
      run: (input: string) => Promise.resolve({ value: input, usage: { inputTokens: 1, outputTokens: 1 } }),
    });
    const { workflowId } = await rt.run(echo, 'hi');
    await rt.close();
    const lines = fs.readFileSync(destination, 'utf8').trim().split('\n');
    // The runtime's last events (the workflow's end) committed before the ECS log closed.
    expect(lines.some((l) => l.includes('workflow.completed') && l.includes(workflowId))).toBe(true);
  });
});

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
