import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/core/json.js';
import { CHAIN_RECIPE_SQL } from '../../src/eventlog/chain.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { mixedEvents, open, tempDb } from './helpers.js';
import { logicalRow } from './raw-rows.js';

/** A log of `n` events (odd seqs audit, even seqs operational) and a raw connection to tamper with. */
async function logWith(n: number): Promise<{ store: SqliteEventStore; raw: Database.Database }> {
  const path = tempDb();
  const store = open({ path });
  await store.append(mixedEvents(n));
  const raw = new Database(path);
  return { store, raw };
}

/** The rows of `store` in an in-memory schema-3 table (what CHAIN_RECIPE_SQL reads). */
async function schema3Copy(store: SqliteEventStore): Promise<Database.Database> {
  const db = new Database(':memory:');
  db.exec(
    'CREATE TABLE events (seq INTEGER PRIMARY KEY, ts INTEGER, workflow_id TEXT, type TEXT, v INTEGER, class TEXT, payload TEXT, hash BLOB)',
  );
  const insert = db.prepare('INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  for (const { event: e, hash } of store.iterateChained()) {
    insert.run(...logicalRow(e, hash));
  }
  return Promise.resolve(db);
}

/** What an attacker with file access does first. */
function dropTriggers(raw: Database.Database): void {
  raw.exec('DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;');
}

/** Swaps the rows at seqs a and b (content, hashes and all) through a free seq. */
function swapRows(raw: Database.Database, a: number, b: number): void {
  raw.exec(`UPDATE events SET seq = -1 WHERE seq = ${a};
            UPDATE events SET seq = ${a} WHERE seq = ${b};
            UPDATE events SET seq = ${b} WHERE seq = -1;`);
}

describe('hash chain and verify()', () => {
  it('passes on an untouched log and reports the heads', async () => {
    const { store, raw } = await logWith(2_500);
    raw.close();
    const result = store.verify();
    expect(result).toEqual({ ok: true, events: 2_500, heads: store.heads() });
    expect(store.heads()).toMatchObject({ audit: { seq: 2_499 }, operational: { seq: 2_500 } });
  });

  it('stores hashes an auditor can recompute from the columns with sha256 alone', async () => {
    const { store, raw } = await logWith(20);
    const stored = raw.prepare('SELECT hash FROM events ORDER BY seq').pluck().all() as Buffer[];
    const rows = raw
      .prepare('SELECT seq, ts, workflow_id, type, v, class, payload, hash FROM events_readable ORDER BY seq')
      .raw()
      .all() as [number, number, string, string, number, string, string, string][];
    raw.close();
    const last: Record<string, string> = { audit: '0'.repeat(64), operational: '0'.repeat(64) };
    for (const [i, [seq, ts, wf, type, v, cls, , hash]] of rows.entries()) {
      expect(stored[i]).toHaveLength(32); // raw bytes, no prev_hash column: it is the class's previous hash
      // Schema 4 codes the payload: the hashed text is the canonical JSON of what Keel decodes.
      const payload = canonicalJson(store.query({ afterSeq: seq - 1, limit: 1 })[0]?.payload);
      const form = [last[cls], seq, ts, wf, type, v, cls, payload].join('\n');
      expect(hash).toBe(createHash('sha256').update(form, 'utf8').digest('hex'));
      last[cls] = hash;
    }
    // The documented sqlite3 recipe of schema 3: each row's stored hash is sha256 of the bytes the SQL spells out.
    const v3 = await schema3Copy(store);
    const recipe = v3.prepare(CHAIN_RECIPE_SQL).raw().all() as [number, string, string][];
    v3.close();
    expect(recipe).toHaveLength(20);
    for (const [, hash, form] of recipe) {
      expect(createHash('sha256').update(Buffer.from(form, 'hex')).digest('hex')).toBe(hash);
    }
    expect(store.heads()).toEqual({
      audit: { seq: 19, hash: last.audit },
      operational: { seq: 20, hash: last.operational },
    });
  });

  it('refuses UPDATE and DELETE on events while the triggers stand', async () => {
    const { store, raw } = await logWith(5);
    expect(() => raw.prepare(`UPDATE events SET payload = '{}' WHERE seq = 2`).run()).toThrow(/append-only/);
    expect(() => raw.prepare('DELETE FROM events WHERE seq = 2').run()).toThrow(/append-only/);
    raw.close();
    expect(store.verify()).toMatchObject({ ok: true, events: 5 });
  });

  it('detects a modified payload at its seq', async () => {
    const { store, raw } = await logWith(2_500);
    dropTriggers(raw);
    raw
      .prepare(`UPDATE events SET payload = replace(payload, '"k-1501"', '"k-9999"') WHERE seq = 1502`)
      .run();
    raw.close();
    expect(store.verify()).toMatchObject({ ok: false, reason: 'modified', seq: 1_502, events: 1_501 });
  });

  it('detects a modified ts and a modified hash', async () => {
    const { store, raw } = await logWith(10);
    dropTriggers(raw);
    raw.prepare('UPDATE events SET ts = ts + 1 WHERE seq = 4').run();
    expect(store.verify()).toMatchObject({ ok: false, reason: 'modified', seq: 4 });
    raw.prepare('UPDATE events SET ts = ts - 1 WHERE seq = 4').run();
    // The chains are whole again, but the triggers are still gone: verify says so.
    expect(store.verify()).toMatchObject({ ok: false, reason: 'schema', seq: 0 });
    raw.prepare(`UPDATE events SET hash = randomblob(32) WHERE seq = 6`).run();
    raw.close();
    expect(store.verify()).toMatchObject({ ok: false, reason: 'modified', seq: 6 });
  });

  it('detects a deleted row as missing at its seq', async () => {
    const { store, raw } = await logWith(10);
    dropTriggers(raw);
    raw.prepare('DELETE FROM events WHERE seq = 7').run();
    raw.close();
    expect(store.verify()).toMatchObject({ ok: false, reason: 'missing', seq: 7, events: 6 });
  });

  it('detects deleted leading events as missing from the first gone seq', async () => {
    const { store, raw } = await logWith(10);
    dropTriggers(raw);
    raw.prepare('DELETE FROM events WHERE seq IN (1, 3)').run(); // the first two audit events
    raw.close();
    expect(store.verify()).toMatchObject({ ok: false, reason: 'missing', seq: 1 });
  });

  it('detects swapped rows of one class as reordered', async () => {
    const { store, raw } = await logWith(20);
    dropTriggers(raw);
    swapRows(raw, 9, 11); // both audit
    raw.close();
    expect(store.verify()).toMatchObject({ ok: false, reason: 'reordered', seq: 9, events: 8 });
  });

  it('detects a forged row appended at the end', async () => {
    const { store, raw } = await logWith(4);
    raw
      .prepare(
        `INSERT INTO events (seq, ts, workflow, type, v, class, payload, hash)
         SELECT 5, ts, workflow, type, v, class, '{"correct":true}', hash FROM events WHERE seq = 3`,
      )
      .run();
    raw.close();
    expect(store.verify()).toMatchObject({ ok: false, reason: 'modified', seq: 5 });
  });
});
