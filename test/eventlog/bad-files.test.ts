import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import {
  CorruptDatabaseError,
  DatabaseLockedError,
  DiskFullError,
  NotADatabaseError,
  ReadOnlyDatabaseError,
  SchemaVersionError,
  isEventLogError,
} from '../../src/eventlog/errors.js';
import type { NewEvent } from '../../src/eventlog/events.js';
import { KEEL_APPLICATION_ID, SCHEMA_VERSION } from '../../src/eventlog/schema.js';
import { auditEvent, mixedEvents, open, tempDb, tempDir } from './helpers.js';

/** A closed log file holding `n` events. */
async function logFile(n: number): Promise<string> {
  const file = tempDb();
  const store = open({ path: file });
  await store.append(mixedEvents(n));
  await store.close();
  return file;
}

/** Calls `fn` and returns what it threw. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

const bulky = (n: number): NewEvent[] =>
  Array.from({ length: n }, (_, i) => ({
    ts: i,
    workflowId: `bulk-${i}`,
    type: 'feedback.recorded',
    payload: { correct: true, expected: 'x'.repeat(500) },
  }));

describe('bad files', () => {
  it('refuses a file that is not SQLite without touching it', () => {
    const dir = tempDir();
    const file = path.join(dir, 'notes.txt');
    fs.writeFileSync(file, 'quarterly numbers, not a database\n'.repeat(100));
    const before = fs.readFileSync(file);

    const error = thrown(() => open({ path: file }));

    expect(error).toBeInstanceOf(NotADatabaseError);
    expect(isEventLogError(error)).toBe(true);
    expect((error as Error).message).toMatch(/not a SQLite database.*not modified/);
    expect(fs.readFileSync(file)).toEqual(before);
    expect(fs.readdirSync(dir)).toEqual(['notes.txt']); // no -wal / -shm either
    expect(() => open({ path: dir })).toThrow(NotADatabaseError);
  });

  it('refuses a database written by a newer Keel without touching it', () => {
    const file = tempDb();
    const raw = new Database(file);
    raw.exec(
      `CREATE TABLE future (x); PRAGMA user_version = 99; PRAGMA application_id = ${KEEL_APPLICATION_ID};`,
    );
    raw.close();
    const before = fs.readFileSync(file);

    const error = thrown(() => open({ path: file }));

    expect(error).toBeInstanceOf(SchemaVersionError);
    expect(error).toMatchObject({ found: 99, supported: SCHEMA_VERSION });
    expect(fs.readFileSync(file)).toEqual(before);
  });

  it('gives DatabaseLockedError while another connection holds the lock, and resumes after', async () => {
    const file = await logFile(10);
    const other = new Database(file);
    other.exec('BEGIN EXCLUSIVE');
    const store = open({ path: file, busyTimeoutMs: 20 });

    const error = await store.append([auditEvent(10)]).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(DatabaseLockedError);
    expect((error as Error).message).toMatch(/locked by another process \(waited 20 ms\)/);
    other.exec('ROLLBACK');
    other.close();
    const [next] = await store.append([auditEvent(10)]);
    expect(next?.seq).toBe(11);
    expect(store.verify()).toMatchObject({ ok: true, events: 11 });
  });

  it('opens a file without write permission read-only: reads and verify work, appends say chmod', async () => {
    const file = await logFile(10);
    fs.chmodSync(file, 0o444);
    const before = fs.readFileSync(file);

    const store = open({ path: file });

    expect(store.readonly).toBe(true);
    const error = await store.append([auditEvent(10)]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReadOnlyDatabaseError);
    expect((error as Error).message).toMatch(/file mode is 444.*chmod u\+w/);
    await expect(store.prune({ olderThan: Date.now(), class: 'audit' })).rejects.toThrow(
      ReadOnlyDatabaseError,
    );
    expect(store.query()).toHaveLength(10);
    expect(store.verify()).toMatchObject({ ok: true, events: 10 });
    await store.close();
    expect(fs.readFileSync(file)).toEqual(before);
  });

  it('rolls back a batch that fills the disk, keeps the chain, and continues once there is room', async () => {
    const store = open({ path: tempDb() });
    await store.append(mixedEvents(100));
    const before = store.query();
    const heads = store.heads();
    store.setMaxPageCount(1); // SQLite clamps this to the current size: the file cannot grow

    const big = store.append(bulky(1_000)); // below maxBatch: it waits for the tick, with the next one
    const sameBatch = store.append([auditEvent(100)]);

    await expect(big).rejects.toThrow(DiskFullError);
    await expect(sameBatch).rejects.toThrow(DiskFullError);
    expect(store.query()).toEqual(before);
    expect(store.heads()).toEqual(heads);
    expect(store.lastSeq()).toBe(100);
    expect(store.verify()).toMatchObject({ ok: true, events: 100 });

    expect(store.setMaxPageCount(1_000_000)).toBe(1_000_000);
    const [next] = await store.append([auditEvent(100)]);
    expect(next?.seq).toBe(101);
    await store.append(bulky(2_000));
    expect(store.verify()).toMatchObject({ ok: true, events: 2_101 });
  });

  it('applies maxPageCount from the options', async () => {
    const store = open({ path: tempDb(), maxPageCount: 20 });
    await expect(store.append(bulky(2_000))).rejects.toThrow(DiskFullError);
    expect(store.lastSeq()).toBe(0);
    expect(store.verify()).toMatchObject({ ok: true, events: 0 });
  });

  it('reports a damaged file as CorruptDatabaseError and leaves it as it was', async () => {
    for (const where of ['schema page', 'data page'] as const) {
      const file = await logFile(3_000);
      // A page of the events table in the middle of it (verify reads every one of those).
      const stat = new Database(file, { readonly: true });
      const eventPages = stat
        .prepare<[], number>("SELECT pageno FROM dbstat WHERE name = 'events' ORDER BY pageno")
        .pluck()
        .all();
      stat.close();
      const bytes = fs.readFileSync(file);
      const middle = eventPages[Math.floor(eventPages.length / 2)] as number;
      const at = where === 'schema page' ? 100 : (middle - 1) * 4096;
      bytes.fill(0x5a, at, at + 1024);
      fs.writeFileSync(file, bytes);

      const error = thrown(() => open({ path: file }).verify());

      expect(error, where).toBeInstanceOf(CorruptDatabaseError);
      expect((error as Error).message).toMatch(/damaged.*restore from a backup/);
      expect(fs.readFileSync(file).equals(bytes), where).toBe(true);
    }
  });

  it('names the path option when a directory is missing or a read-only file does not exist', () => {
    const missingDir = path.join(tempDir(), 'no', 'such', 'keel.db');
    expect(thrown(() => open({ path: missingDir }))).toMatchObject({ field: 'path' });
    const error = thrown(() => open({ path: tempDb(), readonly: true }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ field: 'path' });
  });
});
