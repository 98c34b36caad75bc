/**
 * `createRuntime({ busyTimeoutMs })`: how long a commit waits on another process's lock of the
 * SQLite file, passed to the store the runtime opens; a bad value names the field.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/core/errors.js';
import { DatabaseLockedError } from '../../src/eventlog/errors.js';
import { createRuntime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const echo = agent({ name: 'echo', model: 'gpt-4', run: (x: string) => Promise.resolve({ value: x }) });

describe('createRuntime({ busyTimeoutMs })', () => {
  it('gives up on a lock held by another connection after busyTimeoutMs, naming the wait', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-busy-'));
    dirs.push(dir);
    const db = path.join(dir, 'keel.db');
    const rt = createRuntime({ db, busyTimeoutMs: 20, metrics: false, tracing: false, cache: false });
    try {
      await rt.run(echo, 'before');
      const locker = new Database(db);
      locker.exec('BEGIN EXCLUSIVE');
      try {
        const error = await rt.run(echo, 'while locked').catch((e: unknown) => e);
        expect(error).toBeInstanceOf(DatabaseLockedError);
        expect((error as DatabaseLockedError).busyTimeoutMs).toBe(20);
      } finally {
        locker.exec('ROLLBACK');
        locker.close();
      }
    } finally {
      await rt.close();
    }
  });

  it('refuses a value that is not a whole number of ms >= 0, naming the field', () => {
    for (const bad of [-1, 2.5, 'soon']) {
      let error: unknown;
      try {
        createRuntime({ db: ':memory:', busyTimeoutMs: bad as number });
      } catch (e) {
        error = e;
      }
      expect(isConfigError(error) && error.field).toBe('busyTimeoutMs');
      expect(String(error)).toMatch(/whole number of ms >= 0, e\.g\. 5000/);
    }
  });
});
