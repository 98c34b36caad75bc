/**
 * Compact rows (issue 26): a log written by the previous schema — SQLite version 2, Postgres
 * version 1, with hex hashes and a `prev_hash` column — is read as it is by a read-only store and
 * migrated by a writable open; the migrated log verifies with the same hashes, and verify over the
 * compact rows names the same tampering as before (modified, missing, reordered, a pruned event put
 * back, the first event after a retention anchor removed).
 */
import fs from 'node:fs';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import { openPostgresStore } from '../../src/eventlog/postgres.js';
import { pgMigrationSql } from '../../src/eventlog/postgres-schema.js';
import { SCHEMA_VERSION } from '../../src/eventlog/schema.js';
import { collectEvents, type ChainedEvent } from '../../src/eventlog/store.js';
import { canonicalJson } from '../../src/core/json.js';
import { describePostgres, freshDatabase } from '../support/scaleout.js';
import { T0, mixedEvents, open, tempDb } from './helpers.js';
import { SQLITE_V2 } from './old-schemas.js';
import { editPayload, insertRow } from './raw-rows.js';

type V2Row = [number, number, string, string, number, string, string, string, string];

/**
 * The chained rows of a real log of 60 events whose operational events before T0 + 20 were pruned
 * (so it holds a retention anchor), as the previous schema stored them.
 */
async function previousRows(): Promise<{ rows: V2Row[]; chained: ChainedEvent[] }> {
  const store = open({ path: ':memory:', clock: simulatedClock(T0 + 1_000) });
  await store.append(mixedEvents(60));
  await store.prune({ olderThan: T0 + 20, class: 'operational' });
  const chained = [...store.iterateChained()];
  await store.close();
  const rows = chained.map(({ event: e, prevHash, hash }): V2Row => [
    e.seq,
    e.ts,
    e.workflowId,
    e.type,
    e.v,
    e.class,
    canonicalJson(e.payload),
    prevHash,
    hash,
  ]);
  return { rows, chained };
}

/** A version-2 file holding `rows`. */
function v2File(rows: readonly V2Row[]): string {
  const path = tempDb();
  const db = new Database(path);
  db.exec(SQLITE_V2);
  const insert = db.prepare('INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
  db.transaction(() => {
    for (const r of rows) insert.run(...r);
  })();
  db.close();
  return path;
}

/** A version-2 file migrated by a writable open (and closed again). */
async function migratedFile(): Promise<{ path: string; chained: ChainedEvent[] }> {
  const { rows, chained } = await previousRows();
  const path = v2File(rows);
  await open({ path }).close();
  return { path, chained };
}

/** Tampers with a migrated file the way an attacker with file access would (triggers dropped). */
function tamper(path: string, sql: string, ...params: unknown[]): void {
  const raw = new Database(path);
  raw.exec('DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete;');
  raw.prepare(sql).run(...params);
  raw.close();
}

describe('compact rows: SQLite version 2 → 3 (→ 4)', () => {
  it('reads a version-2 file read-only as it is, then migrates it on a writable open with the same hashes', async () => {
    const { rows, chained } = await previousRows();
    const path = v2File(rows);
    const before = fs.readFileSync(path);

    const reader = open({ path, readonly: true });
    expect([...reader.iterateChained()]).toEqual(chained);
    const heads = reader.heads();
    expect(reader.verify()).toEqual({ ok: true, events: chained.length, heads });
    await reader.close();
    expect(fs.readFileSync(path).equals(before)).toBe(true); // a read-only open writes nothing

    const writer = open({ path });
    const after = [...writer.iterateChained()];
    // Every event, its previous hash and its hash are what they were; the migration is logged.
    expect(after.slice(0, -1)).toEqual(chained);
    expect(after.at(-1)?.event).toMatchObject({
      workflowId: '_system',
      type: 'log.maintained',
      payload: { action: 'migrated', fromVersion: 2, toVersion: SCHEMA_VERSION },
    });
    expect(after.at(-1)?.prevHash).toBe(heads.audit.hash);
    expect(writer.verify()).toMatchObject({ ok: true, events: chained.length + 1 });
    await writer.append(mixedEvents(4, 100));
    expect(writer.verify()).toMatchObject({ ok: true, events: chained.length + 5 });
    expect(writer.heads().operational.seq).toBe(writer.lastSeq());
    await writer.close();

    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    const columns = raw.prepare("SELECT name FROM pragma_table_info('events') ORDER BY cid").pluck().all();
    // Through version 3 (compact rows) to 4 (dictionary-coded rows).
    expect(columns).toEqual(['seq', 'ts', 'workflow', 'type', 'v', 'class', 'payload', 'hash']);
    const hashes = raw.prepare('SELECT hash FROM events ORDER BY seq').pluck().all() as Buffer[];
    expect(hashes.every((h) => Buffer.isBuffer(h) && h.length === 32)).toBe(true);
    expect(hashes[0]?.toString('hex')).toBe(chained[0]?.hash);
    const triggers = raw
      .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
      .pluck()
      .all();
    expect(triggers).toEqual([
      'events_no_delete',
      'events_no_update',
      'keel_strings_no_delete',
      'keel_strings_no_update',
    ]);
    raw.close();

    // Reopening a migrated log migrates nothing more.
    const again = open({ path });
    expect(again.query({ type: 'log.maintained' })).toHaveLength(1);
    await again.close();
  });

  it('keeps a malformed hash of a version-2 row as it was, so verify still reports that row', async () => {
    const { rows } = await previousRows();
    const bad = rows.findIndex((r) => r[0] === 30);
    (rows[bad] as V2Row)[8] = 'not a hash \u{1F4A5}';
    const path = v2File(rows);
    const reader = open({ path, readonly: true });
    expect(reader.verify()).toMatchObject({ ok: false, reason: 'modified', seq: 30 });
    await reader.close();
    const writer = open({ path }); // migrates: a bad row does not stop the file opening
    expect(writer.verify()).toMatchObject({ ok: false, reason: 'modified', seq: 30 });
    await writer.close();
  });

  it('detects a modified payload over compact rows', async () => {
    const { path } = await migratedFile();
    const raw = new Database(path);
    raw.exec('DROP TRIGGER events_no_update');
    editPayload(raw, 41, (p) => ({ ...p, correct: !p.correct }));
    raw.close();
    const store = open({ path, readonly: true });
    expect(store.verify()).toMatchObject({ ok: false, reason: 'modified', seq: 41 });
    await store.close();
  });

  it('detects a missing row over compact rows, at its seq', async () => {
    const { path } = await migratedFile();
    tamper(path, 'DELETE FROM events WHERE seq = 45');
    const store = open({ path, readonly: true });
    expect(store.verify()).toMatchObject({ ok: false, reason: 'missing', seq: 45 });
    await store.close();
  });

  it('detects rows of one class swapped over compact rows as reordered', async () => {
    const { path } = await migratedFile();
    const raw = new Database(path);
    raw.exec(`DROP TRIGGER events_no_update;
      UPDATE events SET seq = -1 WHERE seq = 51;
      UPDATE events SET seq = 51 WHERE seq = 55;
      UPDATE events SET seq = 55 WHERE seq = -1;`);
    raw.close();
    const store = open({ path, readonly: true });
    expect(store.verify()).toMatchObject({ ok: false, reason: 'reordered', seq: 51 });
    await store.close();
  });

  it('detects, past a retention anchor, the first kept event removed and a pruned event put back', async () => {
    const { path, chained } = await migratedFile();
    const anchor = chained.find((c) => c.event.type === 'log.anchor')?.event;
    expect(anchor?.payload).toMatchObject({ prunedClass: 'operational' });
    const through = (anchor?.payload as { prunedThroughSeq: number }).prunedThroughSeq;
    const firstKept = chained.find((c) => c.event.class === 'operational' && c.event.seq > through);
    tamper(path, 'DELETE FROM events WHERE seq = ?', firstKept?.event.seq);
    const store = open({ path, readonly: true });
    expect(store.verify()).toMatchObject({ ok: false, reason: 'missing', seq: firstKept?.event.seq });
    await store.close();

    // The same log before its prune gives the pruned row (same events, same hashes).
    const second = await migratedFile();
    const unpruned = open({ path: ':memory:' });
    await unpruned.append(mixedEvents(60));
    const [back] = [...unpruned.iterateChained({ afterSeq: through - 1, limit: 1 })];
    await unpruned.close();
    expect(back?.event).toMatchObject({ seq: through, class: 'operational' });
    if (back === undefined) throw new Error('no row to put back');
    const raw = new Database(second.path);
    insertRow(raw, back.event, back.hash);
    raw.close();
    const reader = open({ path: second.path, readonly: true });
    expect(reader.verify()).toMatchObject({ ok: false, reason: 'anchor_mismatch', seq: through });
    await reader.close();
  });
});

describePostgres('compact rows: Postgres version 1 → 2', () => {
  const clients: pg.Client[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.end();
  });

  it('reads a version-1 log read-only, migrates it on a writable open, and verify still catches tampering', async () => {
    const { rows, chained } = await previousRows();
    const url = await freshDatabase();
    const client = new pg.Client({ connectionString: url });
    clients.push(client);
    await client.connect();
    await client.query(pgMigrationSql(0, '"keel"'));
    const cols = Array.from({ length: 9 }, (_, c) => rows.map((r) => r[c]));
    await client.query(
      `INSERT INTO keel.events SELECT * FROM unnest($1::bigint[], $2::float8[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[])`,
      cols,
    );
    const last = (cls: string) => rows.filter((r) => r[5] === cls).at(-1) as V2Row;
    await client.query(
      'UPDATE keel.heads SET seq = $1, audit_seq = $2, audit_hash = $3, operational_seq = $4, operational_hash = $5',
      [rows.length, last('audit')[0], last('audit')[8], last('operational')[0], last('operational')[8]],
    );

    const reader = openPostgresStore({ url, readonly: true });
    expect(await collectEvents(reader.iterateChained())).toEqual(chained);
    expect(await reader.verify()).toMatchObject({ ok: true, events: chained.length });
    await reader.close();

    const writer = openPostgresStore({ url, clock: simulatedClock(T0 + 2_000) });
    expect(await collectEvents(writer.iterateChained())).toEqual(chained);
    expect(await writer.verify()).toMatchObject({ ok: true, events: chained.length });
    await writer.append(mixedEvents(4, 100));
    expect(await writer.verify()).toMatchObject({ ok: true, events: chained.length + 4 });

    const meta = await client.query<{ version: number }>('SELECT version FROM keel.meta');
    expect(meta.rows[0]?.version).toBe(2);
    const columns = await client.query<{ column_name: string; data_type: string }>(
      "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'keel' AND table_name = 'events' ORDER BY ordinal_position",
    );
    expect(columns.rows.map((c) => `${c.column_name}:${c.data_type}`)).toEqual([
      'seq:bigint',
      'ts:double precision',
      'workflow_id:text',
      'type:text',
      'v:bigint',
      'class:text',
      'payload:text',
      'hash:bytea',
    ]);
    const indexes = await client.query<{ indexname: string }>(
      "SELECT indexname FROM pg_indexes WHERE schemaname = 'keel' AND tablename = 'events' ORDER BY indexname",
    );
    expect(indexes.rows.map((r) => r.indexname)).toEqual([
      'events_by_ts',
      'events_by_workflow',
      'events_pkey',
    ]);

    await client.query('ALTER TABLE keel.events DISABLE TRIGGER USER');
    await client.query(`UPDATE keel.events SET payload = replace(payload, 'true', 'false') WHERE seq = 41`);
    expect(await writer.verify()).toMatchObject({ ok: false, reason: 'modified', seq: 41 });
    await writer.close();
  });
});
