import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import type { KeelEvent, NewEvent } from '../../src/eventlog/events.js';
import { openPostgresStore, type PostgresEventStore } from '../../src/eventlog/postgres.js';
import { openSqliteStore, type SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { collectEvents } from '../../src/eventlog/store.js';
import { insertRow, logicalRow, type LogicalRow } from '../eventlog/raw-rows.js';
import { describePostgres, freshDatabase } from '../support/scaleout.js';

const T0 = Date.UTC(2026, 0, 1);
/** The stored columns of Postgres's compact rows (schema 2): the hash as 32 bytes, no prev_hash. */
const COLUMNS = 'seq, ts, workflow_id, type, v, class, payload, hash';

/**
 * A logical row, as a copy script moves it between stores: the eight hashed fields (the payload as
 * its canonical JSON, what Postgres stores) and the 32-byte hash. SQLite's schema 4 stores the same
 * fields dictionary-coded (src/eventlog/codec.ts), so the script reads and writes them through the
 * store's coding (`iterateChained`, test/eventlog/raw-rows.ts) — the hashes do not change.
 */
type StoredRow = LogicalRow;

const dirs: string[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function sqliteAt(file: string): SqliteEventStore {
  const store = openSqliteStore({ path: file, clock: simulatedClock(T0 + 1_000_000) });
  closers.push(() => store.close());
  return store;
}

function postgresAt(url: string): PostgresEventStore {
  const store = openPostgresStore({ url, clock: simulatedClock(T0 + 1_000_000) });
  closers.push(() => store.close());
  return store;
}

function tempFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-copy-'));
  dirs.push(dir);
  return path.join(dir, 'keel.db');
}

/** `n` events, audit and operational interleaved, over a few workflows. */
function events(n: number, from = 0): NewEvent[] {
  return Array.from({ length: n }, (_, k): NewEvent => {
    const i = from + k;
    return i % 3 === 0
      ? {
          ts: T0 + i,
          workflowId: `wf-${i % 5}`,
          type: 'cache.miss',
          payload: { path: 'p', agent: 'a', key: `k${i}` },
        }
      : {
          ts: T0 + i,
          workflowId: `wf-${i % 5}`,
          type: 'feedback.recorded',
          payload: { correct: true, expected: { i } },
        };
  });
}

/** A SQLite log with both chains, pruned once per class (so it carries anchors). */
async function sqliteLog(): Promise<{ file: string; store: SqliteEventStore }> {
  const file = tempFile();
  const store = sqliteAt(file);
  await store.append(events(300));
  await store.prune({ class: 'operational', olderThan: T0 + 100 });
  await store.prune({ class: 'audit', olderThan: T0 + 50 });
  await store.append(events(20, 300));
  return { file, store };
}

async function insertIntoPostgres(url: string, rows: readonly StoredRow[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const cols = Array.from({ length: 8 }, (_, c) => rows.map((r) => r[c]));
    await client.query(
      `INSERT INTO keel.events (${COLUMNS}) SELECT * FROM unnest($1::bigint[], $2::float8[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::bytea[])`,
      cols,
    );
  } finally {
    await client.end();
  }
}

describePostgres('a log copied between SQLite and Postgres', () => {
  it('verifies the same in Postgres, and both stores extend it with identical hashes', async () => {
    const { store: lite } = await sqliteLog();
    const rows = await readSqliteRows(lite);
    const url = await freshDatabase();
    const pgStore = postgresAt(url);
    await pgStore.ready();

    await insertIntoPostgres(url, rows); // raw rows, as a migration script would copy them

    const expected = lite.verify();
    expect(expected).toMatchObject({ ok: true });
    expect(await pgStore.verify()).toEqual(expected);
    expect(await pgStore.heads()).toEqual(lite.heads());
    expect(await pgStore.query()).toEqual(lite.query());

    const more = events(5, 1_000);
    await lite.append(more);
    await pgStore.append(more);
    expect(await collectEvents(pgStore.iterateChained({ afterSeq: rows.length }))).toEqual(
      await collectEvents(lite.iterateChained({ afterSeq: rows.length })),
    );
    expect(await pgStore.verify()).toEqual(lite.verify());
  });

  it('verifies the same in SQLite after copying a Postgres log there', async () => {
    const url = await freshDatabase();
    const source = postgresAt(url);
    await source.append(events(120));
    await source.prune({ class: 'operational', olderThan: T0 + 60 });
    const chained = await collectEvents(source.iterateChained());
    const copied = await pgRows(url);
    expect(copied).toHaveLength(chained.length);

    const file = tempFile();
    await sqliteAt(file).close(); // creates the schema
    const db = new Database(file);
    db.transaction(() => {
      for (const [seq, ts, workflowId, type, v, cls, payload, hash] of copied) {
        const event = {
          seq,
          ts,
          workflowId,
          type,
          v,
          class: cls,
          payload: JSON.parse(payload) as unknown,
        } as KeelEvent;
        insertRow(db, event, hash.toString('hex'));
      }
    })();
    db.close();
    const lite = sqliteAt(file);

    expect(lite.verify()).toEqual(await source.verify());
    expect(lite.verify()).toMatchObject({ ok: true, events: chained.length });
    expect(lite.query()).toEqual(await source.query());
    expect(lite.heads()).toEqual(await source.heads());
  });
});

/** Every row of a SQLite log as its logical row (decoded from schema 4's coded columns). */
async function readSqliteRows(store: SqliteEventStore): Promise<StoredRow[]> {
  return (await collectEvents(store.iterateChained())).map(({ event: e, hash }) => logicalRow(e, hash));
}

/** Every row of a Postgres log, as SQLite stores them (bigint columns as numbers). */
async function pgRows(url: string): Promise<StoredRow[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query<unknown[]>({
      text: `SELECT ${COLUMNS} FROM keel.events ORDER BY seq`,
      rowMode: 'array',
    });
    return result.rows.map((r): StoredRow => [
      Number(r[0]),
      Number(r[1]),
      String(r[2]),
      String(r[3]),
      Number(r[4]),
      String(r[5]),
      String(r[6]),
      r[7] as Buffer,
    ]);
  } finally {
    await client.end();
  }
}
