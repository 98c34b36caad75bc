/**
 * Keel opens only its own files (application_id, or the exact schema of an earlier Keel), creates
 * them private, stores only well-formed strings, and restores (and logs) removed triggers.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import {
  ForeignDatabaseError,
  MalformedStringError,
  isForeignDatabaseError,
} from '../../src/eventlog/errors.js';
import { KEEL_APPLICATION_ID, SCHEMA_VERSION } from '../../src/eventlog/schema.js';
import { CacheForeignDatabaseError } from '../../src/cache/errors.js';
import { openSqliteTier } from '../../src/cache/sqlite-tier.js';
import { simulatedClock } from '../../src/core/clock.js';
import { createRuntime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';
import { T0, auditEvent, mixedEvents, open, tempDb, tempDir } from './helpers.js';

const sha256 = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

/** An application's own database in a fresh directory. */
function appDb(sql: string): { file: string; dir: string } {
  const dir = tempDir();
  const file = path.join(dir, 'app.db');
  const raw = new Database(file);
  raw.exec(sql);
  raw.close();
  return { file, dir };
}

/** The schema an earlier Keel wrote (version 2, no application_id). */
const LEGACY_V2 = `
CREATE TABLE events (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, workflow_id TEXT NOT NULL,
  type TEXT NOT NULL, v INTEGER NOT NULL, class TEXT NOT NULL CHECK (class IN ('audit', 'operational')),
  payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX events_by_workflow ON events (workflow_id);
CREATE INDEX events_by_ts ON events (ts);
CREATE TABLE retention_gate (id INTEGER PRIMARY KEY CHECK (id = 1), open INTEGER NOT NULL);
INSERT INTO retention_gate (id, open) VALUES (1, 0);
PRAGMA user_version = 2;
`;

describe('Keel opens only its own files', () => {
  it.each([
    [
      'an application database',
      "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT); INSERT INTO users VALUES (1, 'a@b.c');",
    ],
    [
      'a database with its own "events" table',
      "CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT, at TEXT); INSERT INTO events VALUES (1, 'x', 'y');",
    ],
    ['a database stamped by another application', 'PRAGMA application_id = 1234; CREATE TABLE t (x);'],
    [
      'a Keel-like schema with another user_version',
      LEGACY_V2.replace('user_version = 2', 'user_version = 0'),
    ],
  ])('refuses %s, writable or read-only, leaving it byte-for-byte unchanged', (_, sql) => {
    const { file, dir } = appDb(sql);
    const before = sha256(file);
    for (const readonly of [false, true]) {
      const error = thrown(() => open({ path: file, readonly }));
      expect(error).toBeInstanceOf(ForeignDatabaseError);
      expect(isForeignDatabaseError(error)).toBe(true);
      expect((error as Error).message).toMatch(/is not a Keel event log \(.+\).*not modified/);
    }
    expect(sha256(file)).toBe(before);
    expect(fs.readdirSync(dir)).toEqual(['app.db']); // no -wal / -shm
  });

  it('the cache refuses a database stamped by another application (even without tables), or the event log, unchanged', async () => {
    const { file, dir } = appDb('PRAGMA application_id = 1234;');
    const before = sha256(file);
    expect(() => openSqliteTier(file)).toThrow(CacheForeignDatabaseError);
    expect(sha256(file)).toBe(before);
    expect(fs.readdirSync(dir)).toEqual(['app.db']);
    const log = tempDb();
    await open({ path: log }).close();
    const logBefore = sha256(log);
    expect(() => openSqliteTier(log)).toThrow(CacheForeignDatabaseError);
    expect(sha256(log)).toBe(logBefore);
  });

  it('refuses a file that is not SQLite as a ForeignDatabaseError too', () => {
    const dir = tempDir();
    const file = path.join(dir, 'notes.db');
    fs.writeFileSync(file, 'not a database\n'.repeat(20));
    expect(isForeignDatabaseError(thrown(() => open({ path: file })))).toBe(true);
    expect(fs.readdirSync(dir)).toEqual(['notes.db']);
  });

  it('reads a log of an earlier Keel (no application_id) as it is, and migrates it on a writable open, logging it', async () => {
    const { file } = appDb(LEGACY_V2);
    const seed = open({ path: ':memory:' });
    await seed.append(mixedEvents(4));
    // copy the rows of a real log into the unstamped file
    const raw = new Database(file);
    const insert = raw.prepare('INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    for (const c of seed.iterateChained()) {
      insert.run(
        c.event.seq,
        c.event.ts,
        c.event.workflowId,
        c.event.type,
        c.event.v,
        c.event.class,
        JSON.stringify(c.event.payload),
        c.prevHash,
        c.hash,
      );
    }
    raw.exec(`CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
  SELECT RAISE(ABORT, 'keel: events are append-only; UPDATE is refused (the hash chain would break)');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
WHEN (SELECT open FROM retention_gate WHERE id = 1) IS NOT 1
BEGIN
  SELECT RAISE(ABORT, 'keel: events are append-only; DELETE is refused outside retention (EventStore.prune)');
END;`);
    raw.close();
    const before = sha256(file);

    const reader = open({ path: file, readonly: true });
    expect(reader.verify()).toMatchObject({ ok: true, events: 4 });
    await reader.close();
    expect(sha256(file)).toBe(before);

    const writer = open({ path: file });
    expect(writer.query({ workflowId: '_system' })).toMatchObject([
      { type: 'log.maintained', payload: { action: 'migrated', fromVersion: 2, toVersion: SCHEMA_VERSION } },
    ]);
    expect(writer.verify()).toMatchObject({ ok: true, events: 5 });
    await writer.close();
    const check = new Database(file, { readonly: true });
    expect(check.pragma('application_id', { simple: true })).toBe(KEEL_APPLICATION_ID);
    check.close();
  });

  it('verify reports dropped triggers; a writable open restores them and logs it in _system', async () => {
    const file = tempDb();
    const store = open({ path: file });
    await store.append(mixedEvents(3));
    await store.close();
    const raw = new Database(file);
    raw.exec('DROP TRIGGER events_no_delete; UPDATE retention_gate SET open = 1;');
    raw.close();

    const reader = open({ path: file, readonly: true });
    expect(reader.verify()).toMatchObject({
      ok: false,
      reason: 'schema',
      detail: expect.stringMatching(/trigger events_no_delete is missing.*retention gate/) as unknown,
    });
    await reader.close();

    const writer = open({ path: file });
    expect(writer.query({ type: 'log.maintained' })).toMatchObject([
      {
        workflowId: '_system',
        class: 'audit',
        payload: {
          action: 'triggers_restored',
          details: ['trigger events_no_delete is missing', 'the retention gate was left open'],
        },
      },
    ]);
    expect(writer.verify()).toMatchObject({ ok: true, events: 4 });
    await writer.close();
    const again = new Database(file);
    expect(() => again.exec('DELETE FROM events WHERE seq = 1')).toThrow(/append-only/);
    again.close();
  });
});

describe('well-formed strings at the store', () => {
  it.each(['a\ud800', '\udc00b', 'x\ud83dy'])(
    'refuses workflow id %j: nothing written, verify stays OK',
    async (id) => {
      const store = open({ path: tempDb() });
      await store.append(mixedEvents(2));
      const error = await store.append([auditEvent(9, id)]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MalformedStringError);
      expect((error as Error).message).toMatch(/events\[0\]\.workflowId holds a lone surrogate/);
      await expect(store.appendOne(auditEvent(9, id))).rejects.toThrow(MalformedStringError);
      expect(store.lastSeq()).toBe(2);
      expect(store.verify()).toMatchObject({ ok: true, events: 2 });
    },
  );

  it('round-trips NUL, astral characters and surrogate pairs in ids and payloads, and verifies', async () => {
    const file = tempDb();
    const store = open({ path: file });
    const ids = ['nul\u0000id', '🧾💶 astral', 'pair \ud83d\ude00', 'jane.doe@example.com'];
    await store.append(
      ids.map((id, i) => ({ ...auditEvent(i, id), payload: { correct: true, expected: `${id}\ud800` } })),
    );
    await store.close();
    const reader = open({ path: file, readonly: true });
    expect(reader.query().map((e) => e.workflowId)).toEqual(ids);
    expect(reader.query().map((e) => (e.payload as { expected: string }).expected)).toEqual(
      ids.map((id) => `${id}\ud800`), // payload text is JSON: the lone surrogate is escaped, not lost
    );
    expect(reader.verify()).toMatchObject({ ok: true, events: 4 });
  });
});

describe('private files', () => {
  it('creates the log and its -wal/-shm 0600 by default, or with fileMode', async () => {
    const file = tempDb();
    const store = open({ path: file });
    await store.append([auditEvent(1, 'wf', T0)]);
    for (const f of [file, `${file}-wal`, `${file}-shm`]) expect(fs.statSync(f).mode & 0o777).toBe(0o600);
    await store.close();

    const shared = tempDb();
    const s2 = open({ path: shared, fileMode: 0o640 });
    await s2.append([auditEvent(1)]);
    for (const f of [shared, `${shared}-wal`, `${shared}-shm`])
      expect(fs.statSync(f).mode & 0o777).toBe(0o640);
    expect(() => open({ path: tempDb(), fileMode: 0o444 })).toThrow(ConfigError);
  });

  it('a runtime creates its log, cache and ECS log file 0600, or with its fileMode', async () => {
    for (const [fileMode, want] of [
      [undefined, 0o600],
      [0o640, 0o640],
    ] as const) {
      const dir = tempDir();
      const db = path.join(dir, 'keel.db');
      const logFile = path.join(dir, 'logs', 'keel.ndjson');
      const rt = createRuntime({
        db,
        clock: simulatedClock(),
        logs: { destination: logFile },
        metrics: false,
        tracing: false,
        ...(fileMode !== undefined ? { fileMode } : {}),
      });
      const cached = agent({
        name: 'a',
        model: 'gpt-4',
        cache: { ttlMs: 60_000 },
        run: () => Promise.resolve({ value: 1 }),
      });
      await rt.run(cached, { x: 1 });
      await rt.close();
      for (const f of [db, `${db}.cache`, logFile]) expect(fs.statSync(f).mode & 0o777, f).toBe(want);
    }
  });
});
