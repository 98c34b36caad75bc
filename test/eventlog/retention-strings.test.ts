/**
 * Retention removes dictionary strings (schema 5): a prune deletes, in its transaction and through
 * the retention gate, every `keel_strings` row no remaining event refers to, so a pruned workflow's
 * id leaves the file's bytes; a string a remaining row still uses (as its workflow id, as a payload
 * value, or both) stays; another process that cached a deleted id never writes it; ids are never
 * reused; a schema-4 file migrates.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import { canonicalJson } from '../../src/core/json.js';
import type { NewEvent } from '../../src/eventlog/events.js';
import { addPayloadRefs, decodedRefs } from '../../src/eventlog/codec-refs.js';
import { migrate } from '../../src/eventlog/schema.js';
import type { ChainedEvent, PruneResult } from '../../src/eventlog/store.js';
import { createRuntime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';
import { par } from '../../src/supervisor/parallel.js';
import { seq } from '../../src/supervisor/sequential.js';
import { named } from '../../src/supervisor/topology.js';
import { T0, open, tempDb, tempDir, SIM_PRICING, invoiceFlow } from './helpers.js';
import { SQLITE_V3 } from './old-schemas.js';
import { logicalRow } from './raw-rows.js';

const DAY = 86_400_000;
const HASH = 'ab'.repeat(32);
/** Events before this are pruned. */
const CUT = T0 + 10 * DAY;
const OLD = T0 + DAY;
const NEW = T0 + 20 * DAY;
/** The clock of a store that prunes: after every event (an anchor is dated after what it prunes). */
const later = () => simulatedClock(NEW + DAY);

/** Workflow ids callers choose, hostile ones included (a lone surrogate is refused at append). */
const HOSTILE_IDS = [
  'acme-42',
  'ops+order-7@example.com',
  'nul\u0000inside-id',
  `${'L'.repeat(2_048)}-long-id`,
];

/** The bytes of a log file and its -wal (what is left on disk). */
function bytesOf(file: string): Buffer {
  const wal = `${file}-wal`;
  return Buffer.concat([fs.readFileSync(file), fs.existsSync(wal) ? fs.readFileSync(wal) : Buffer.alloc(0)]);
}

function holds(file: string, text: string): boolean {
  return bytesOf(file).includes(Buffer.from(text, 'utf8'));
}

/** The dictionary's strings, read with a plain connection. */
function dictionary(file: string): string[] {
  const raw = new Database(file, { readonly: true });
  try {
    return raw.prepare<[], string>('SELECT value FROM keel_strings ORDER BY id').pluck().all();
  } finally {
    raw.close();
  }
}

function workflowEvents(workflowId: string, ts: number, agentName: string, path_: string): NewEvent[] {
  return [
    { ts, workflowId, type: 'feedback.recorded', payload: { correct: true, expected: { workflowId } } },
    { ts, workflowId, type: 'cache.miss', payload: { path: path_, agent: agentName, key: `k-${ts}` } },
  ];
}

/** A log with old (pruned) and new (kept) workflows, strings shared across the cut in every way. */
function mixedLog(): NewEvent[] {
  const events: NewEvent[] = [];
  HOSTILE_IDS.forEach((id, i) =>
    events.push(...workflowEvents(id, OLD + i, `old-agent-${i}`, `old/path-${i}`)),
  );
  // "parent-7": a pruned workflow's id, and a payload value (dict-kind `agent`) of a kept row.
  events.push(...workflowEvents('parent-7', OLD, 'old-agent-parent', 'old/path-parent'));
  // "both-ways": a payload value of a pruned row, and the workflow id of a kept one.
  events.push(...workflowEvents('wf-old-9', OLD, 'both-ways', 'old/path-9'));
  // Topologies (json-kind: the canonical JSON text is one dictionary string).
  events.push(
    {
      ts: OLD,
      workflowId: 'wf-old-topo',
      type: 'workflow.started',
      payload: { name: 'old-flow', topology: { marker: 'topology-only-old' }, input: {}, inputHash: HASH },
    },
    {
      ts: OLD,
      workflowId: 'wf-old-topo',
      type: 'workflow.started',
      payload: { name: 'shared-flow', topology: { marker: 'topology-shared' }, input: {}, inputHash: HASH },
    },
    // A lone surrogate cannot be a dictionary string: stored inline in the pruned row.
    {
      ts: OLD,
      workflowId: 'wf-old-lone',
      type: 'cache.miss',
      payload: { path: 'lone-marker-\udc00-gone', agent: 'vendor', key: 'k' },
    },
  );
  events.push(
    ...workflowEvents('wf-new-1', NEW, 'parent-7', 'new/path-1'),
    ...workflowEvents('both-ways', NEW, 'vendor', 'new/path-2'),
    {
      ts: NEW,
      workflowId: 'wf-new-topo',
      type: 'workflow.started',
      payload: { name: 'shared-flow', topology: { marker: 'topology-shared' }, input: {}, inputHash: HASH },
    },
    {
      ts: NEW,
      workflowId: 'wf-new-lone',
      type: 'cache.miss',
      payload: { path: 'kept-\udc00-lone', agent: 'vendor', key: 'k' },
    },
  );
  return events;
}

const GONE = [
  ...HOSTILE_IDS,
  'old-agent-0',
  'old/path-3',
  'wf-old-9',
  'wf-old-topo',
  'old-flow',
  'topology-only-old',
  'lone-marker-',
];
const KEPT = ['parent-7', 'both-ways', 'shared-flow', 'topology-shared', 'wf-new-1', 'vendor', 'new/path-2'];

async function pruneBoth(store: {
  prune(o: { olderThan: number; class: 'audit' | 'operational' }): Promise<PruneResult>;
}): Promise<PruneResult[]> {
  return [
    await store.prune({ olderThan: CUT, class: 'operational' }),
    await store.prune({ olderThan: CUT, class: 'audit' }),
  ];
}

describe('retention removes the dictionary strings only pruned events used', () => {
  it('a pruned workflow id leaves the file bytes (and its -wal); what kept rows use stays and reads', async () => {
    const file = tempDb();
    const store = open({ path: file, writer: 'inline', clock: later() });
    const events = mixedLog();
    await store.append(events);
    for (const s of [...GONE, ...KEPT]) expect(holds(file, s), s).toBe(true);

    const results = await pruneBoth(store);
    // Each prune reports what it deleted (the second one, the audit rows' strings).
    expect(results.map((r) => (r.strings === undefined ? 'none' : Object.keys(r.strings).join()))).toEqual([
      'deleted',
      'deleted',
    ]);
    const deleted = results.reduce(
      (n, r) => n + (r.strings && 'deleted' in r.strings ? r.strings.deleted : 0),
      0,
    );
    expect(deleted).toBeGreaterThanOrEqual(GONE.length);
    for (const s of GONE) expect(holds(file, s), s).toBe(false);
    for (const s of KEPT) expect(holds(file, s), s).toBe(true);
    const strings = dictionary(file);
    for (const s of HOSTILE_IDS) expect(strings).not.toContain(s);
    expect(strings).toEqual(
      expect.arrayContaining(['parent-7', 'both-ways', JSON.stringify({ marker: 'topology-shared' })]),
    );

    expect(store.verify()).toMatchObject({ ok: true });
    const kept = events.filter((e) => e.ts >= CUT);
    expect(
      store
        .query({ fromTs: CUT })
        .filter((e) => e.workflowId !== '_system')
        .map(({ ts, workflowId, type, payload }) => ({ ts, workflowId, type, payload })),
    ).toEqual(kept.map(({ ts, workflowId, type, payload }) => ({ ts, workflowId, type, payload })));
    await store.close();
    for (const s of GONE) expect(holds(file, s), s).toBe(false);
    const reader = open({ path: file, readonly: true });
    expect(reader.verify()).toMatchObject({ ok: true });
    expect(reader.query({ workflowId: 'both-ways' })).toHaveLength(2);
    expect(reader.query({ workflowId: 'wf-new-1' })[1]?.payload).toMatchObject({ agent: 'parent-7' });
  });

  it('says why it kept every string when a remaining row does not read, and deletes none', async () => {
    const file = tempDb();
    const store = open({ path: file, writer: 'inline', clock: later() });
    await store.append(mixedLog());
    const victim = store.query({ fromTs: CUT }).find((e) => e.type === 'cache.miss')?.seq as number;
    await store.close();
    const raw = new Database(file);
    raw.exec('DROP TRIGGER events_no_update');
    raw.prepare('UPDATE events SET payload = ? WHERE seq = ?').run('[7,not json', victim);
    raw.close();
    const before = dictionary(file);

    const reopened = open({ path: file, writer: 'inline', clock: later() });
    const results = await pruneBoth(reopened);
    for (const r of results.filter((r) => r.pruned > 0)) {
      const why = r.strings !== undefined && 'kept' in r.strings ? r.strings.kept : '(none)';
      expect(why).toMatch(new RegExp(`^seq ${victim} does not read`));
    }
    expect(dictionary(file)).toEqual(expect.arrayContaining(before)); // nothing deleted on a guess
    await reopened.close();
  });

  it('refuses a lone surrogate as a workflow id at append, naming the field', async () => {
    const store = open({ path: tempDb(), writer: 'inline' });
    await expect(
      store.append([
        { ts: OLD, workflowId: 'bad-\ud800', type: 'feedback.recorded', payload: { correct: true } },
      ]),
    ).rejects.toThrow(/workflowId/);
  });

  it('keeps a string used only as a payload value of a kept row (the payload scan is what keeps it)', async () => {
    const file = tempDb();
    const store = open({ path: file, writer: 'inline', clock: later() });
    // The kept row names the pruned workflow in a dict-kind key only: no kept row has it as workflow.
    await store.append([
      ...workflowEvents('parent-only-in-payload', OLD, 'a', 'p'),
      {
        ts: NEW,
        workflowId: 'child',
        type: 'agent.invoked',
        payload: { path: 'x', agent: 'parent-only-in-payload', taskType: 't', model: 'm' },
      },
    ]);
    await pruneBoth(store);
    expect(dictionary(file)).toContain('parent-only-in-payload');
    expect(store.query({ workflowId: 'child' })[0]?.payload).toEqual({
      path: 'x',
      agent: 'parent-only-in-payload',
      taskType: 't',
      model: 'm',
    });
    expect(store.verify()).toMatchObject({ ok: true });
  });

  it('keeps the dictionary append-only outside a prune: DELETE and UPDATE refused, DELETE only through the gate', async () => {
    const file = tempDb();
    const store = open({ path: file, writer: 'inline', clock: later() });
    await store.append(workflowEvents('wf-1', NEW, 'a', 'p'));
    const raw = new Database(file);
    expect(() => raw.exec('DELETE FROM keel_strings')).toThrow(
      /keel_strings is append-only; DELETE is refused outside retention/,
    );
    expect(() => raw.exec("UPDATE keel_strings SET value = 'x' WHERE id = 1")).toThrow(/UPDATE is refused/);
    // The gate is what lets a prune delete; left open, verify names it and the next writable open closes it.
    raw.exec('UPDATE retention_gate SET open = 1');
    expect(() => raw.exec("UPDATE keel_strings SET value = 'x' WHERE id = 1")).toThrow(/UPDATE is refused/);
    raw.exec("DELETE FROM keel_strings WHERE value = 'p'");
    raw.close();
    expect(store.verify()).toMatchObject({ ok: false });
    await store.close();
  });

  it('never reuses a deleted id: after a restart new strings get higher ids, and a reader that cached the old one reads them right', async () => {
    const file = tempDb();
    // A first prune of each class (dated just after OLD), so the anchors' strings precede acme-42's.
    const early = open({ path: file, writer: 'inline', clock: simulatedClock(OLD + 1) });
    await early.append(workflowEvents('first', OLD, 'vendor', 'p'));
    await early.prune({ olderThan: OLD + 1, class: 'operational' });
    await early.prune({ olderThan: OLD + 1, class: 'audit' });
    await early.close();
    const store = open({ path: file, writer: 'inline', clock: later() });
    await store.append(workflowEvents('acme-42', OLD + 2, 'agent-42', 'path-42'));
    const raw = new Database(file, { readonly: true });
    const idOf = (v: string) =>
      raw.prepare<[string], number>('SELECT id FROM keel_strings WHERE value = ?').pluck().get(v);
    const maxBefore = raw.prepare<[], number>('SELECT max(id) FROM keel_strings').pluck().get() as number;
    // acme-42's strings are the newest: the highest ids.
    expect(maxBefore).toBe(idOf('path-42'));
    // Another connection reads acme-42's rows: it caches their ids' strings.
    const reader = open({ path: file, readonly: true });
    expect(reader.query({ workflowId: 'acme-42' })[1]?.payload).toMatchObject({ agent: 'agent-42' });
    await pruneBoth(store);
    await store.close();
    expect(idOf('acme-42')).toBeUndefined();
    expect(idOf('path-42')).toBeUndefined();

    const again = open({ path: file, writer: 'inline', clock: later() });
    await again.append(workflowEvents('newcomer', NEW + 1, 'agent-new', 'path-new'));
    for (const s of ['newcomer', 'agent-new', 'path-new']) expect(idOf(s), s).toBeGreaterThan(maxBefore);
    raw.close();
    expect(again.verify()).toMatchObject({ ok: true });
    expect(reader.query({ workflowId: 'newcomer' })[1]).toMatchObject({
      workflowId: 'newcomer',
      payload: { agent: 'agent-new', path: 'path-new' },
    });
    expect(reader.verify()).toMatchObject({ ok: true });
  });

  for (const writer of ['inline', 'thread'] as const) {
    it(`another process (${writer} writer) that cached a deleted id appends after the prune with a new id, and the log verifies`, async () => {
      const dir = tempDir();
      const file = path.join(dir, 'keel.db');
      const store = open({ path: file, writer: 'inline', clock: later() });
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', path.join(import.meta.dirname, 'prune-child.ts'), file, 'acme-42', writer],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      let out = '';
      let cached!: () => void;
      const isCached = new Promise<void>((r) => (cached = r));
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (out.includes('cached\n') || out.includes('Error')) cached();
      });
      const done = new Promise<number | null>((r) => child.on('close', r));
      await isCached;
      expect(out).toBe('cached\n');
      // Kept, and logged after the child's first (pruned) event.
      await store.append([
        { ts: NEW, workflowId: 'parent', type: 'feedback.recorded', payload: { correct: true } },
      ]);
      await store.prune({ olderThan: T0, class: 'operational' });
      // Its workflow id, agent, path and even the event type are gone: nothing kept uses them.
      const strings = dictionary(file);
      for (const s of ['acme-42', 'child-agent', 'child/path', 'cache.miss'])
        expect(strings).not.toContain(s);
      child.stdin.end('go\n');
      expect(await done).toBe(0);
      expect(out).toBe('cached\nok\n');
      console.log(store.verify(), dictionary(file));
      expect(store.verify()).toMatchObject({ ok: true });
      expect(store.query({ workflowId: 'acme-42' })).toMatchObject([
        {
          ts: Date.UTC(2030, 0, 1),
          type: 'cache.miss',
          payload: { agent: 'child-agent', path: 'child/path' },
        },
      ]);
    }, 60_000);
  }

  it('replays a kept workflow exactly after its neighbours were pruned', async () => {
    const file = path.join(tempDir(), 'rt.db');
    const flow = invoiceFlow;
    const pricing = SIM_PRICING;
    const old = createRuntime({ db: file, clock: simulatedClock(OLD), seed: 1, pricing });
    await old.run(flow({ n: 0 }), { id: 'INV-old-customer-77' });
    await old.close();
    const rt = createRuntime({ db: file, clock: simulatedClock(NEW), seed: 1, pricing });
    try {
      const { workflowId } = await rt.run(flow({ n: 0 }), { id: 'INV-new' });
      const before = [...rt.store.iterateChained({ workflowId })].map((c: ChainedEvent) => c.hash);
      await pruneBoth(rt.store);
      expect(dictionary(file)).not.toContain('INV-old-customer-77');
      expect([...rt.store.iterateChained({ workflowId })].map((c) => c.hash)).toEqual(before);
      const calls = { n: 0 };
      const [report] = await rt.replay(workflowId, { topologies: { invoice: flow(calls) } });
      expect(calls.n).toBe(0);
      expect(report?.divergences).toEqual([]);
      expect(report?.ok).toBe(true);
      expect(rt.store.verify()).toMatchObject({ ok: true });
    } finally {
      await rt.close();
    }
  });
});

/** Each stored row's ids by the fast scan and by the codec's decoder (or what each threw). */
function refsBothWays(type: string, stored: string): [unknown, unknown] {
  const run = (f: (t: string, s: string, into: Set<number>) => void): unknown => {
    const into = new Set<number>();
    try {
      f(type, stored, into);
      return [...into].sort((a, b) => a - b);
    } catch (e) {
      return (e as Error).name;
    }
  };
  return [run(addPayloadRefs), run(decodedRefs)];
}

describe("the payload scan finds exactly the ids the codec's decoder reads", () => {
  it('agrees with the decoder on every row of real logs and on hostile and altered rows', async () => {
    const file = tempDb();
    const store = open({ path: file, writer: 'inline', clock: later() });
    await store.append(mixedLog());
    await store.append([
      {
        ts: NEW,
        workflowId: 'hostile',
        type: 'tool.called',
        payload: {
          path: 'a",]\\[{',
          agent: 'b\u0000c',
          tool: 'x'.repeat(3_000),
          callId: 'c-1',
          step: 7,
          args: { nested: [1, [2, { three: '"]}' }]], n: null, t: true },
        },
      },
      {
        ts: NEW,
        workflowId: 'hostile',
        type: 'agent.failed',
        payload: {
          path: 12,
          agent: ['wrapped', 3],
          taskType: { o: 1 },
          model: true,
          category: 'timeout',
          message: 'm',
          attempts: 1,
          latencyMs: 17,
          costUsd: 0,
          extraKey: { id: 5 },
        } as never,
      },
    ]);
    await store.close();
    const rt = createRuntime({ db: file, clock: simulatedClock(NEW + 2 * DAY), seed: 1 });
    const a = (name: string) =>
      agent({
        name,
        model: 'gpt-4',
        run: () => Promise.resolve({ value: name, usage: { inputTokens: 3, outputTokens: 2 } }),
      });
    await rt.run(named('flow', seq(par(a('v'), a('w')), a('r'))), { id: 'rt-1' });
    await rt.close();

    const raw = new Database(file, { readonly: true });
    const rows = raw
      .prepare<[], [string, unknown]>(
        'SELECT t.value, e.payload FROM events e JOIN keel_strings t ON t.id = e.type ORDER BY e.seq',
      )
      .raw()
      .all();
    raw.close();
    expect(rows.length).toBeGreaterThan(30);
    let withIds = 0;
    for (const [type, stored] of rows) {
      if (typeof stored !== 'string') continue;
      const [fast, decoded] = refsBothWays(type, stored);
      expect(fast, `${type} ${stored}`).toEqual(decoded);
      if (Array.isArray(fast) && fast.length > 0) withIds++;
      // Altered forms: the scan must not trust what it does not recognise.
      for (const altered of [
        stored.replace(/,/, ', '),
        stored.replace(/,(\d+)/, ',$1.0'),
        stored.replace(/,(\d+)/, ',0$1'),
        stored.replace(/,(\d+)/, ',$1e0'),
        stored.slice(0, -1),
        `${stored.slice(0, -1)},{"x":1}]`,
        stored.replace(/^\[\d+/, '[1073741823'),
      ]) {
        const [f, d] = refsBothWays(type, altered);
        // Never fewer ids than the decoder reads; a row the decoder refuses may still scan (its
        // coded ids are kept as found), but one the scan refuses, the decoder refuses too.
        if (Array.isArray(f) && Array.isArray(d))
          expect(f, `${type} ${altered}`).toEqual(expect.arrayContaining(d));
        else if (!Array.isArray(f)) expect(d).toBe(f);
      }
    }
    expect(withIds).toBeGreaterThan(20);
  });
});

describe('schema 5: migration from schema 4', () => {
  /** A schema-4 file as Keel 4 left it: a schema-3 file with rows, migrated by the shipped steps to 4. */
  function v4File(
    rows: { seq: number; ts: number; workflowId: string; type: string; cls: string; payload: unknown }[],
  ): string {
    const file = tempDb();
    const db = new Database(file);
    db.exec(SQLITE_V3);
    const insert = db.prepare('INSERT INTO events VALUES (?, ?, ?, ?, 1, ?, ?, ?)');
    for (const r of rows)
      insert.run(r.seq, r.ts, r.workflowId, r.type, r.cls, canonicalJson(r.payload), Buffer.alloc(32));
    db.pragma('user_version = 3');
    db.transaction(() => migrate(db, 4))();
    db.close();
    return file;
  }

  it('keeps every id, makes ids never reused, lets the next prune delete strings (old orphans too)', async () => {
    // Real rows: appended by this Keel, copied back to schema 3, migrated to 4 by the shipped steps.
    const src = open({ path: ':memory:', clock: simulatedClock(NEW) });
    await src.append([
      ...workflowEvents('wf-old', OLD, 'old-agent', 'old/p'),
      ...workflowEvents('wf-new', NEW, 'vendor', 'p'),
    ]);
    const chained = [...src.iterateChained()];
    const file = tempDb();
    const db = new Database(file);
    db.exec(SQLITE_V3);
    const insert = db.prepare('INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    for (const { event: e, hash } of chained) insert.run(...logicalRow(e, hash));
    db.transaction(() => migrate(db, 4))();
    // A string no row uses, as a failed coding attempt of the 3 → 4 migration could leave.
    db.exec("INSERT INTO keel_strings (value) VALUES ('orphan-from-v4')");
    const v4Ids = db.prepare('SELECT id, value FROM keel_strings ORDER BY id').all();
    expect(db.pragma('user_version', { simple: true })).toBe(4);
    db.close();

    // Read-only, schema 4 is read as it is, its triggers are the ones it should have.
    const reader = open({ path: file, readonly: true });
    expect(reader.verify()).toMatchObject({ ok: true, events: 4 });
    await reader.close();

    const store = open({ path: file, writer: 'inline', clock: simulatedClock(NEW + 1) });
    const raw = new Database(file, { readonly: true });
    expect(raw.pragma('user_version', { simple: true })).toBe(5);
    expect(raw.prepare("SELECT sql FROM sqlite_master WHERE name = 'keel_strings'").pluck().get()).toMatch(
      /AUTOINCREMENT/,
    );
    const after = raw.prepare('SELECT id, value FROM keel_strings ORDER BY id').all();
    expect(after.slice(0, v4Ids.length)).toEqual(v4Ids);
    expect(store.verify()).toMatchObject({ ok: true });
    await pruneBoth(store);
    const left = dictionary(file);
    for (const s of ['wf-old', 'old-agent', 'old/p', 'orphan-from-v4']) expect(left).not.toContain(s);
    for (const s of ['wf-new', 'vendor', 'p']) expect(left).toContain(s);
    raw.close();
    expect(store.verify()).toMatchObject({ ok: true });
    expect(store.query({ workflowId: 'wf-new' })).toHaveLength(2);
  });

  it('a v4 file built by the shipped steps reads read-only with no schema problem', () => {
    const file = v4File([
      {
        seq: 1,
        ts: NEW,
        workflowId: 'wf',
        type: 'feedback.recorded',
        cls: 'audit',
        payload: { correct: true },
      },
    ]);
    const reader = open({ path: file, readonly: true });
    expect(reader.query()).toHaveLength(1);
    // Hash bytes are zeros here: the chain is not the point, the schema check is.
    expect(reader.verify()).not.toMatchObject({ reason: 'schema' });
  });
});
