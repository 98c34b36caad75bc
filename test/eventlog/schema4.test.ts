/**
 * SQLite schema 4 (issue 26): the `keel_strings` dictionary and integer-coded rows. A file written
 * by schema 3 (or 2) is read as it is read-only and migrated by a writable open, with the same
 * hashes and an exact replay; verify over coded rows names the same tampering as before, and a
 * changed or missing dictionary string too; two processes adding new strings at once agree; a
 * rolled-back append leaves no stale dictionary id behind.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it, vi } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import { canonicalJson } from '../../src/core/json.js';
import { CHAIN_RECIPE_SQL, chainHash } from '../../src/eventlog/chain.js';
import { SCHEMA_VERSION } from '../../src/eventlog/schema.js';
import type { ChainedEvent } from '../../src/eventlog/store.js';
import type { NewEvent } from '../../src/eventlog/events.js';
import { encodePayload } from '../../src/eventlog/codec.js';
import { createRuntime } from '../../src/runtime.js';
import { T0, mixedEvents, open, tempDb, tempDir, SIM_PRICING, invoiceFlow } from './helpers.js';
import { SQLITE_V2, SQLITE_V3 } from './old-schemas.js';

/** A schema-3 (or 2) file holding `chained` (rows of a real log), as that schema stored them. */
function oldFile(chained: readonly ChainedEvent[], version: 2 | 3 = 3, file = tempDb()): string {
  const db = new Database(file);
  db.exec(version === 3 ? SQLITE_V3 : SQLITE_V2);
  const insert = db.prepare(
    version === 3
      ? 'INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)'
      : 'INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  db.transaction(() => {
    for (const { event: e, prevHash, hash } of chained) {
      const cols = [e.seq, e.ts, e.workflowId, e.type, e.v, e.class, canonicalJson(e.payload)];
      if (version === 3) insert.run(...cols, Buffer.from(hash, 'hex'));
      else insert.run(...cols, prevHash, hash);
    }
  })();
  db.close();
  return file;
}

/** The chained rows of a log of 60 events whose operational events before T0 + 20 were pruned. */
async function realRows(n = 60): Promise<ChainedEvent[]> {
  const store = open({ path: ':memory:', clock: simulatedClock(T0 + 1_000) });
  await store.append(mixedEvents(n));
  await store.prune({ olderThan: T0 + 20, class: 'operational' });
  const chained = [...store.iterateChained()];
  await store.close();
  return chained;
}

/** Runs SQL on a file as an attacker with file access would (both tables' triggers dropped). */
function tamper(file: string, ...sql: string[]): void {
  const raw = new Database(file);
  raw.exec(
    'DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete; DROP TRIGGER IF EXISTS keel_strings_no_update; DROP TRIGGER IF EXISTS keel_strings_no_delete;',
  );
  for (const s of sql) raw.exec(s);
  raw.close();
}

function version(file: string): number {
  const raw = new Database(file, { readonly: true });
  try {
    return raw.pragma('user_version', { simple: true }) as number;
  } finally {
    raw.close();
  }
}

/** A v4 file of `n` mixed events. */
async function v4File(n: number): Promise<string> {
  const file = tempDb();
  const store = open({ path: file, writer: 'inline' });
  await store.append(mixedEvents(n));
  await store.close();
  return file;
}

describe('schema 4: migration from schema 3 and 2', () => {
  it('reads a schema-3 file read-only as it is, then migrates it with the same hashes', async () => {
    const chained = await realRows();
    const file = oldFile(chained);
    const before = fs.readFileSync(file);

    const reader = open({ path: file, readonly: true });
    expect([...reader.iterateChained()]).toEqual(chained);
    expect(reader.query({ workflowId: 'wf-40' })).toHaveLength(1);
    expect(reader.verify()).toMatchObject({ ok: true, events: chained.length });
    await reader.close();
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    expect(version(file)).toBe(3);

    const store = open({ path: file });
    expect(version(file)).toBe(SCHEMA_VERSION);
    expect(SCHEMA_VERSION).toBe(5);
    const all = [...store.iterateChained()];
    expect(all.slice(0, chained.length)).toEqual(chained);
    const maintained = all.at(-1);
    expect(maintained?.event).toMatchObject({
      type: 'log.maintained',
      payload: { action: 'migrated', fromVersion: 3, toVersion: 5 },
    });
    expect(store.verify()).toMatchObject({ ok: true, events: chained.length + 1 });
    // The rows are coded: integer workflow/type/class, the strings once in keel_strings.
    const raw = new Database(file, { readonly: true });
    const types = raw
      .prepare('SELECT DISTINCT typeof(workflow) || typeof(type) || typeof(class) FROM events')
      .pluck()
      .all();
    expect(types).toEqual(['integerintegerinteger']);
    expect(raw.prepare("SELECT count(*) FROM keel_strings WHERE value = 'wf-40'").pluck().get()).toBe(1);
    expect(raw.prepare('SELECT workflow_id, type, class FROM events_readable WHERE seq = 41').get()).toEqual({
      workflow_id: 'wf-40',
      type: 'feedback.recorded',
      class: 'audit',
    });
    raw.close();

    // It keeps working as a log: appends, reopen, verify.
    await store.append(mixedEvents(10, 100));
    await store.close();
    const again = open({ path: file, readonly: true });
    expect(again.verify()).toMatchObject({ ok: true, events: chained.length + 11 });
    expect(again.query({ workflowId: 'wf-105' })).toHaveLength(1);
  });

  it('migrates a schema-2 file through 3 and 4 to 5 in one open, and it verifies', async () => {
    const chained = await realRows();
    const file = oldFile(chained, 2);
    const store = open({ path: file });
    expect(version(file)).toBe(5);
    expect([...store.iterateChained()].slice(0, chained.length)).toEqual(chained);
    expect(store.verify()).toMatchObject({ ok: true, events: chained.length + 1 });
  });

  it('keeps a payload altered in schema 3 verbatim, so verify still names that row', async () => {
    const chained = await realRows();
    const file = oldFile(chained);
    // Whitespace only: the same JSON value, other bytes than were hashed.
    tamper(file, `UPDATE events SET payload = ' ' || payload WHERE seq = 41`);
    const store = open({ path: file });
    expect(store.verify()).toMatchObject({ ok: false, reason: 'modified', seq: 41 });
    const raw = new Database(file, { readonly: true });
    expect(raw.prepare('SELECT typeof(payload) FROM events WHERE seq = 41').pluck().get()).toBe('blob');
    raw.close();
    expect(store.query({ workflowId: 'wf-40' })[0]?.payload).toEqual(
      chained.find((c) => c.event.seq === 41)?.event.payload,
    );
  });

  it('leaves the file at schema 3 when the migration fails midway (the disk fills)', async () => {
    const chained = await realRows(2_000);
    const file = oldFile(chained);
    const raw = new Database(file, { readonly: true });
    const pages = raw.pragma('page_count', { simple: true }) as number;
    raw.close();
    // Room for the dictionary and part of the copy, not all of it.
    expect(() => open({ path: file, maxPageCount: pages + 8 })).toThrow(
      /disk or database size limit is full/,
    );
    expect(version(file)).toBe(3);
    const after = new Database(file, { readonly: true });
    const tables = after
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .pluck()
      .all();
    after.close();
    expect(tables).toEqual(['events', 'retention_gate']);
    const reader = open({ path: file, readonly: true });
    expect([...reader.iterateChained()]).toEqual(chained);
    await reader.close();
    // With room, the next open migrates it.
    expect(open({ path: file }).verify()).toMatchObject({ ok: true, events: chained.length + 1 });
  });

  it('replays a workflow exactly after migrating its schema-3 log', async () => {
    const file = path.join(tempDir(), 'rt.db');
    const flow = invoiceFlow;
    const pricing = SIM_PRICING;
    const rt = createRuntime({ db: file, clock: simulatedClock(T0), seed: 1, pricing });
    const { workflowId } = await rt.run(flow({ n: 0 }), { id: 'INV-9' });
    const chained = [...rt.store.iterateChained()];
    await rt.close();
    fs.rmSync(file);
    oldFile(chained, 3, file);

    const again = createRuntime({ db: file, clock: simulatedClock(T0), seed: 1, pricing });
    try {
      expect(version(file)).toBe(5);
      const calls = { n: 0 };
      const [report] = await again.replay(workflowId, { topologies: { invoice: flow(calls) } });
      expect(calls.n).toBe(0);
      expect(report?.divergences).toEqual([]);
      expect(report?.ok).toBe(true);
      expect(again.store.verify()).toMatchObject({ ok: true });
    } finally {
      await again.close();
    }
  });
});

describe('schema 4: verify over coded rows', () => {
  it('reads coded rows back as appended, and a read-only reader never inserts a string', async () => {
    const file = await v4File(20);
    const before = fs.readFileSync(file);
    const reader = open({ path: file, readonly: true });
    expect(reader.query({ workflowId: 'no-such-workflow' })).toEqual([]);
    expect([...reader.iterate({ workflowId: 'no-such-workflow' })]).toEqual([]);
    expect(reader.query({ type: 'feedback.recorded', limit: 2 }).map((e) => e.seq)).toEqual([1, 3]);
    expect(reader.query({ class: 'operational', limit: 2 }).map((e) => e.seq)).toEqual([2, 4]);
    const raw = new Database(file, { readonly: true });
    expect(
      raw.prepare("SELECT count(*) FROM keel_strings WHERE value = 'no-such-workflow'").pluck().get(),
    ).toBe(0);
    raw.close();
    expect(reader.verify()).toMatchObject({ ok: true, events: 20 });
    expect([...reader.iterateChained({ workflowId: 'wf-3' })]).toHaveLength(1);
    await reader.close();
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });

  it('stores hostile payloads from both writers as the parse path codes their hashed text, and verifies', async () => {
    // The writer codes rows from the canonical text without parsing it (encodeCanonicalPayload).
    const hex = 'c0'.repeat(32);
    const payloads: [NewEvent['type'], Record<string, unknown>][] = [
      [
        'agent.invoked',
        { path: 'a\\"b\\\\', agent: '\ud800', model: '\u2028\u{1F600}', '"k"': { '\\': [-0, 1e21] } },
      ],
      [
        'agent.succeeded',
        { path: 'p', output: '}",', usage: { inputTokens: 1, outputTokens: 2 }, a: 1, zz: 'x\0y' },
      ],
      ['cost.incurred', { usage: { inputTokens: 1, outputTokens: 2, zcached: 3 }, costUsd: 5e-324 }],
      ['workflow.started', { name: 'n', topology: { kind: 'seq', c: [{ '\n': '"]}' }] }, inputHash: hex }],
      [
        'workflow.started',
        { topology: ['a'.repeat(3000)], inputHash: hex.toUpperCase(), owner: 'o'.repeat(2049) },
      ],
      ['cache.miss', {}],
    ];
    for (const writer of ['inline', 'thread'] as const) {
      const file = tempDb();
      const store = open({ path: file, writer });
      const events = payloads.map(
        ([type, payload], i) =>
          ({
            ts: T0 + i,
            workflowId: `wf-${i}`,
            type,
            payload,
          }) as NewEvent,
      );
      // The inline writer codes on this thread: none of the hashed texts is parsed whole.
      const texts = new Set(payloads.map(([, p]) => canonicalJson(p)));
      const parse = vi.spyOn(JSON, 'parse');
      try {
        await store.append(events);
        if (writer === 'inline') expect(parse.mock.calls.filter(([t]) => texts.has(t))).toEqual([]);
      } finally {
        parse.mockRestore();
      }
      expect(store.verify()).toMatchObject({ ok: true, events: payloads.length });
      expect(store.query().map((e) => canonicalJson(e.payload))).toEqual(
        payloads.map(([, p]) => canonicalJson(p)),
      );
      await store.close();
      const db = new Database(file, { readonly: true });
      const select = db.prepare<[string], number>('SELECT id FROM keel_strings WHERE value = ?').pluck();
      // The file's ids, looked up only: every string the parse path codes must be there already.
      const strings = {
        code: (value: string) => select.get(value) ?? expect.fail(`no keel_strings id for ${value}`),
        lookup: () => expect.fail('the encoder never looks up'),
      };
      const rows = db.prepare('SELECT payload FROM events ORDER BY seq').pluck().all() as string[];
      expect(rows).toEqual(
        payloads.map(([type, p]) =>
          encodePayload(type, JSON.parse(canonicalJson(p)) as Record<string, unknown>, strings),
        ),
      );
      db.close();
      tamper(file, `UPDATE events SET payload = replace(payload, '"}\\",', '"}\\", ') WHERE seq = 2`);
      expect(open({ path: file, readonly: true }).verify()).toMatchObject({
        ok: false,
        reason: 'modified',
        seq: 2,
      });
    }
  });

  it('names a modified payload at its seq', async () => {
    const file = await v4File(40);
    tamper(file, `UPDATE events SET payload = replace(payload, '"k-21"', '"k-99"') WHERE seq = 22`);
    expect(open({ path: file, readonly: true }).verify()).toMatchObject({
      ok: false,
      reason: 'modified',
      seq: 22,
      events: 21,
    });
  });

  it('names stored bytes that changed without changing the value (a space) as modified', async () => {
    const file = await v4File(10);
    tamper(file, `UPDATE events SET payload = payload || ' ' WHERE seq = 6`);
    expect(open({ path: file, readonly: true }).verify()).toMatchObject({
      ok: false,
      reason: 'modified',
      seq: 6,
    });
  });

  it('names the first row using a changed dictionary string as modified', async () => {
    const file = await v4File(40);
    tamper(file, `UPDATE keel_strings SET value = 'wf-x' WHERE value = 'wf-17'`);
    const result = open({ path: file, readonly: true }).verify();
    expect(result).toMatchObject({ ok: false, reason: 'modified', seq: 18 });
    // An event type changed in the dictionary breaks its first row.
    const other = await v4File(40);
    tamper(other, `UPDATE keel_strings SET value = 'cache.hit' WHERE value = 'cache.miss'`);
    expect(open({ path: other, readonly: true }).verify()).toMatchObject({
      ok: false,
      reason: 'modified',
      seq: 2,
    });
  });

  it('reports a dictionary id with no string as a corrupt row naming its seq and the id', async () => {
    const file = await v4File(40);
    tamper(file, `DELETE FROM keel_strings WHERE value = 'wf-30'`);
    const store = open({ path: file, readonly: true });
    const result = store.verify();
    expect(result).toMatchObject({ ok: false, reason: 'modified', seq: 31, events: 30 });
    expect(result.ok === false && result.detail).toMatch(
      /seq 31: its workflow refers to keel_strings id \d+, which the file does not hold/,
    );
    // Reads name it too, as an error (not a crash of another kind).
    expect(() => store.query({})).toThrow(/seq 31: its workflow refers to keel_strings id/);
    const types = await v4File(10);
    tamper(types, `UPDATE events SET type = 9999 WHERE seq = 4`);
    const r2 = open({ path: types, readonly: true }).verify();
    expect(r2).toMatchObject({ ok: false, reason: 'modified', seq: 4 });
    expect(r2.ok === false && r2.detail).toMatch(/keel_strings id 9999/);
  });

  it('names a deleted row as missing, swapped rows as reordered, a forged row as modified', async () => {
    const missing = await v4File(20);
    tamper(missing, 'DELETE FROM events WHERE seq = 7');
    expect(open({ path: missing, readonly: true }).verify()).toMatchObject({
      ok: false,
      reason: 'missing',
      seq: 7,
    });

    const swapped = await v4File(20);
    tamper(
      swapped,
      'UPDATE events SET seq = -1 WHERE seq = 9; UPDATE events SET seq = 9 WHERE seq = 11; UPDATE events SET seq = 11 WHERE seq = -1;',
    );
    expect(open({ path: swapped, readonly: true }).verify()).toMatchObject({
      ok: false,
      reason: 'reordered',
      seq: 9,
    });

    const forged = await v4File(4);
    tamper(
      forged,
      'INSERT INTO events SELECT 5, ts, workflow, type, v, class, payload, hash FROM events WHERE seq = 3',
    );
    expect(open({ path: forged, readonly: true }).verify()).toMatchObject({
      ok: false,
      reason: 'modified',
      seq: 5,
    });
  });

  it('names the first kept row after a retention anchor, once removed, as missing', async () => {
    const file = tempDb();
    const store = open({ path: file, clock: simulatedClock(T0 + 1_000), writer: 'inline' });
    await store.append(mixedEvents(60));
    await store.prune({ olderThan: T0 + 20, class: 'operational' });
    expect(store.verify()).toMatchObject({ ok: true });
    const firstKept = store.query({ class: 'operational', limit: 1 })[0];
    await store.close();
    tamper(file, `DELETE FROM events WHERE seq = ${firstKept?.seq}`);
    expect(open({ path: file, readonly: true }).verify()).toMatchObject({
      ok: false,
      reason: 'missing',
      seq: firstKept?.seq,
    });
  });

  it('gives the hashes an auditor recomputes from the readable view and the decoded payloads', async () => {
    const file = await v4File(12);
    const store = open({ path: file, readonly: true });
    const raw = new Database(file, { readonly: true });
    const hashes = raw.prepare('SELECT seq, hash FROM events_readable ORDER BY seq').raw().all() as [
      number,
      string,
    ][];
    raw.close();
    const last: Record<string, string> = { audit: '0'.repeat(64), operational: '0'.repeat(64) };
    const events = store.query({});
    expect(events).toHaveLength(12);
    for (const [i, e] of events.entries()) {
      const hash = chainHash(
        last[e.class] as string,
        e.seq,
        e.ts,
        e.workflowId,
        e.type,
        e.v,
        e.class,
        canonicalJson(e.payload),
      );
      expect(hashes[i]).toEqual([e.seq, hash]);
      last[e.class] = hash;
    }
    // CHAIN_RECIPE_SQL reads schema-3 columns; a schema-4 file has none of them.
    const again = new Database(file, { readonly: true });
    expect(() => again.prepare(CHAIN_RECIPE_SQL)).toThrow(/no such column/);
    again.close();
  });

  it('refuses UPDATE and DELETE on keel_strings while its triggers stand, and verify names a dropped one', async () => {
    const file = await v4File(5);
    const raw = new Database(file);
    expect(() => raw.prepare(`UPDATE keel_strings SET value = 'x' WHERE id = 1`).run()).toThrow(
      /append-only/,
    );
    expect(() => raw.prepare('DELETE FROM keel_strings WHERE id = 1').run()).toThrow(/append-only/);
    raw.exec('DROP TRIGGER keel_strings_no_update');
    raw.close();
    const broken = open({ path: file, readonly: true }).verify();
    expect(broken).toMatchObject({ ok: false, reason: 'schema' });
    expect(broken.ok === false && broken.detail).toMatch(/keel_strings_no_update is missing/);
    // A writable open restores it.
    open({ path: file });
    expect(open({ path: file, readonly: true }).verify()).toMatchObject({ ok: true });
  });
});

describe('schema 4: the dictionary under failure and concurrency', () => {
  it('forgets the ids of a rolled-back append: the same new strings append and verify afterwards', async () => {
    const file = tempDb();
    const store = open({ path: file, writer: 'inline' });
    await store.append(mixedEvents(4));
    // A trigger fails the batch after its strings were inserted into keel_strings.
    const raw = new Database(file);
    raw.exec(`CREATE TRIGGER fail_new BEFORE INSERT ON events WHEN NEW.seq = 5
      BEGIN SELECT RAISE(ABORT, 'simulated failure'); END`);
    const fresh = {
      ts: T0,
      workflowId: 'wf-new',
      type: 'cache.miss',
      payload: { path: 'p', agent: 'fresh', key: 'k' },
    } as const;
    await expect(store.append([fresh])).rejects.toThrow(/simulated failure/);
    raw.exec('DROP TRIGGER fail_new');
    expect(raw.prepare("SELECT count(*) FROM keel_strings WHERE value = 'wf-new'").pluck().get()).toBe(0);
    // Another writer takes the ids the rolled-back batch had: a stale cache would now misname them.
    const other = open({ path: file, writer: 'inline' });
    await other.append([
      { ...fresh, workflowId: 'wf-other', payload: { path: 'q', agent: 'other', key: 'k' } },
    ]);
    await other.close();
    raw.close();
    await store.append([fresh]);
    expect(store.verify()).toMatchObject({ ok: true, events: 6 });
    expect(store.query({ workflowId: 'wf-new' })).toMatchObject([
      { seq: 6, workflowId: 'wf-new', payload: fresh.payload },
    ]);
    expect(open({ path: file, readonly: true }).query({ workflowId: 'wf-other' })).toHaveLength(1);
  });

  it('appends coded rows from the writer thread too', async () => {
    const file = tempDb();
    const store = open({ path: file, writer: 'thread' });
    await store.append(mixedEvents(300));
    await store.append([
      { ts: T0, workflowId: 'wf-thread', type: 'feedback.recorded', payload: { correct: true } },
    ]);
    expect(store.query({ workflowId: 'wf-thread' })).toHaveLength(1);
    expect(store.verify()).toMatchObject({ ok: true, events: 301 });
  });

  it('two processes appending new strings to one file at once both complete, and it verifies', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'keel.db');
    await open({ path: file }).close();
    const child = path.join(import.meta.dirname, 'strings-child.ts');
    const start = (tag: string) => {
      const p = spawn(process.execPath, ['--import', 'tsx', child, file, tag, '40'], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      let out = '';
      let ready!: () => void;
      const isReady = new Promise<void>((r) => (ready = r));
      p.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (out.includes('ready\n')) ready();
      });
      const done = new Promise<{ code: number | null; out: string }>((r) =>
        p.on('close', (code) => r({ code, out: out.replace('ready\n', '') })),
      );
      return { isReady, done, go: () => p.stdin.end('go\n') };
    };
    const children = [start('a'), start('b')];
    await Promise.all(children.map((c) => c.isReady));
    for (const c of children) c.go();
    expect(await Promise.all(children.map((c) => c.done))).toEqual([
      { code: 0, out: 'ok\n' },
      { code: 0, out: 'ok\n' },
    ]);
    const store = open({ path: file, readonly: true });
    expect(store.verify()).toMatchObject({ ok: true, events: 160 });
    expect(store.query({ workflowId: 'wf-a-39' })).toMatchObject([
      { type: 'cache.miss', payload: { agent: 'agent-a-39' } },
      { type: 'cache.hit', payload: { agent: 'agent-a-39' } },
    ]);
    expect(store.query({ workflowId: 'wf-b-0' })).toHaveLength(2);
  }, 60_000);
});
