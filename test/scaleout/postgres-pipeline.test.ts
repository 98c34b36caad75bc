/**
 * The Postgres writer sends a group commit's rows as binary arrays and keeps up to two group
 * commits in flight on one pipeline-mode connection, each chained onto the heads the one before it
 * leaves (src/eventlog/postgres.ts, postgres-writer.ts). These pin that rows round-trip byte for
 * byte whatever they hold, and what happens when a commit in the pipeline is refused (another
 * writer moved the heads) or fails (the server raises): nothing is lost, written twice or reordered.
 */
import pg from 'pg';
import { afterEach, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import { EventLogError } from '../../src/eventlog/errors.js';
import type { KeelEvent, NewEvent } from '../../src/eventlog/events.js';
import { openPostgresStore, type PostgresEventStore } from '../../src/eventlog/postgres.js';
import { canonicalPayloadJson } from '../../src/eventlog/validate.js';
import { describePostgres, freshDatabase } from '../support/scaleout.js';

const T0 = Date.UTC(2026, 0, 1);
const stores: PostgresEventStore[] = [];
const clients: pg.Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.end().catch(() => undefined);
  for (const s of stores.splice(0)) await s.close();
});

function open(url: string): PostgresEventStore {
  const store = openPostgresStore({ url, clock: simulatedClock(T0) });
  stores.push(store);
  return store;
}

async function admin(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  clients.push(client);
  await client.connect();
  return client;
}

const feedback = (i: number, expected: unknown, workflowId = `wf-${i}`): NewEvent<'feedback.recorded'> => ({
  ts: T0 + i,
  workflowId,
  type: 'feedback.recorded',
  payload: { correct: i % 2 === 0, expected },
});

const batch = (from: number, n: number, workflowId?: string): NewEvent<'feedback.recorded'>[] =>
  Array.from({ length: n }, (_, i) => feedback(from + i, { i: from + i }, workflowId));

/** Every stored payload, byte for byte as the column holds it, against what was hashed. */
async function expectStoredPayloads(url: string, events: readonly KeelEvent[]): Promise<void> {
  const client = await admin(url);
  const { rows } = await client.query<{ seq: string; payload: string; bytes: number }>(
    'SELECT seq, payload, octet_length(payload) AS bytes FROM keel.events ORDER BY seq',
  );
  expect(rows.map((r) => Number(r.seq))).toEqual(events.map((e) => e.seq));
  for (let i = 0; i < events.length; i++) {
    const json = canonicalPayloadJson((events[i] as KeelEvent).payload);
    const row = rows[i] as (typeof rows)[number];
    expect(row.payload === json).toBe(true);
    expect(row.bytes).toBe(Buffer.byteLength(json, 'utf8'));
  }
}

describePostgres('Postgres writer: binary rows and pipelined group commits', () => {
  it('round-trips hostile payloads byte for byte: quotes, backslashes, array syntax, unicode, escaped lone surrogates, 1 MB', async () => {
    const url = await freshDatabase();
    const store = open(url);
    const hostile: unknown[] = [
      'a "quoted" word and a \\"pre-escaped\\" one',
      '\\',
      '\\\\x00ff',
      '{"a","b"}',
      '{NULL}',
      'NULL',
      ',',
      '',
      ' ',
      '\t\n\r\u0001\u001f\u007f',
      'naïve café — 日本語 — עברית — 🧾💸',
      '\ud800 lone high, lone low \udfff, pair \ud83d\ude00',
      { '"': '\\', '{': '}', 'k\u0000ey': 'NUL inside a JSON string is escaped' },
      [1.5, -1, 1e300, 5e-324, 2 ** 53 - 1, 'x'],
      'x'.repeat(1024 * 1024),
      `${'é'.repeat(200_000)}"${'\\'.repeat(100_000)}`,
    ];
    const input = hostile.map((expected, i) =>
      feedback(i, expected, i === 3 ? 'wf "{x,y}" \\ 🧾' : undefined),
    );

    const written = await store.append(input);

    expect(written.map((e) => e.seq)).toEqual(input.map((_, i) => i + 1));
    const read = await store.query();
    expect(read).toEqual(written);
    expect(read.map((e) => e.payload)).toEqual(
      input.map((e) => JSON.parse(JSON.stringify(e.payload)) as unknown),
    );
    expect(read[3]?.workflowId).toBe('wf "{x,y}" \\ 🧾');
    await expectStoredPayloads(url, written);
    expect(await store.verify()).toMatchObject({ ok: true, events: hostile.length });
    // Another process (a fresh store) reads and verifies the same bytes.
    const other = open(url);
    expect(await other.query()).toEqual(written);
    expect(await other.verify()).toMatchObject({ ok: true, events: hostile.length });
  });

  it('commits one append of 5,000 rows as one transaction, gap-free, and verifies', async () => {
    const url = await freshDatabase();
    const store = open(url);
    await store.append(batch(0, 1)); // the first commit takes the locked path; the next one is pipelined
    const before = store.stats().transactions;

    const written = await store.append(batch(1, 5_000));

    expect(store.stats().transactions - before).toBe(1);
    expect(written.map((e) => e.seq)).toEqual(Array.from({ length: 5_000 }, (_, i) => i + 2));
    const read = await store.query();
    expect(read.slice(1)).toEqual(written);
    await expectStoredPayloads(url, read);
    expect(await open(url).verify()).toMatchObject({ ok: true, events: 5_001 });
  });

  it('chains again, in order, both commits of a pipeline whose heads another writer moved', async () => {
    const url = await freshDatabase();
    const a = open(url);
    const b = open(url);
    await a.append(batch(0, 1));
    await b.append(batch(1, 1)); // a's heads are stale now
    const seen: number[][] = [];
    a.onCommit((events) => seen.push(events.map((e) => e.seq)));
    const before = a.stats().transactions;

    // Two appends in one tick, 80 events: sent as two commits, both chained onto stale heads.
    const [first, second] = await Promise.all([a.append(batch(10, 40)), a.append(batch(50, 40))]);

    expect(a.stats().transactions - before).toBe(2);
    expect(first.map((e) => e.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 3));
    expect(second.map((e) => e.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 43));
    expect(seen).toEqual([first.map((e) => e.seq), second.map((e) => e.seq)]);
    const all = await b.query();
    expect(all.map((e) => e.workflowId)).toEqual([
      'wf-0',
      'wf-1',
      ...batch(10, 40).map((e) => e.workflowId),
      ...batch(50, 40).map((e) => e.workflowId),
    ]);
    expect(await b.verify()).toEqual({ ok: true, events: 82, heads: await a.heads() });
    // Both writers continue the one chain.
    await b.append(batch(100, 1));
    const [next] = await a.append(batch(101, 1));
    expect(next?.seq).toBe(84);
    expect(await a.verify()).toMatchObject({ ok: true, events: 84 });
  });

  it('rejects a pipelined commit the server fails, and still commits the one sent behind it', async () => {
    const url = await freshDatabase();
    const store = open(url);
    await store.append(batch(0, 1));
    // The server refuses any row of workflow 'poison' (a plain exception, as a full disk or a
    // statement timeout would raise) — only inside the first of the two commits.
    const client = await admin(url);
    await client.query(`CREATE FUNCTION keel.poison() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.workflow_id = 'poison' THEN RAISE EXCEPTION 'poisoned row'; END IF; RETURN NEW; END $$`);
    await client.query(
      'CREATE TRIGGER poison BEFORE INSERT ON keel.events FOR EACH ROW EXECUTE FUNCTION keel.poison()',
    );
    const seen: number[][] = [];
    store.onCommit((events) => seen.push(events.map((e) => e.seq)));
    const before = store.stats().transactions;

    const [failed, second] = await Promise.allSettled([
      store.append([...batch(10, 39), feedback(49, null, 'poison')]),
      store.append(batch(50, 40)),
    ]);

    expect(failed.status).toBe('rejected');
    const error = (failed as PromiseRejectedResult).reason as EventLogError;
    expect(error).toBeInstanceOf(EventLogError);
    expect(error.message).toMatch(/poisoned row/);
    expect(error.message).toMatch(/nothing of this operation was written/);
    expect(second.status).toBe('fulfilled');
    const written = (second as PromiseFulfilledResult<KeelEvent[]>).value;
    expect(written.map((e) => e.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 2));
    expect(seen).toEqual([written.map((e) => e.seq)]);
    expect(store.stats().transactions - before).toBe(1);
    const all = await store.query();
    expect(all.map((e) => e.workflowId)).not.toContain('poison');
    expect(all).toHaveLength(41);
    await client.query('DROP TRIGGER poison ON keel.events');
    const [next] = await store.append(batch(90, 1));
    expect(next?.seq).toBe(42);
    expect(await open(url).verify()).toMatchObject({ ok: true, events: 42 });
  });

  it('keeps one gap-free chain when two writers pipeline at once, acknowledging only what committed', async () => {
    const url = await freshDatabase();
    const a = open(url);
    const b = open(url);
    const acked: KeelEvent[] = [];
    const work = async (store: PostgresEventStore, tag: string): Promise<void> => {
      for (let round = 0; round < 8; round++) {
        const appends = Array.from({ length: 6 }, (_, k) =>
          store.append(batch(round * 100 + k * 12, 12, `${tag}-${round}-${k}`)),
        );
        for (const events of await Promise.all(appends)) acked.push(...events);
      }
    };

    await Promise.all([work(a, 'a'), work(b, 'b')]);

    const all = await a.query();
    expect(all.map((e) => e.seq)).toEqual(Array.from({ length: 2 * 8 * 6 * 12 }, (_, i) => i + 1));
    expect(new Set(acked.map((e) => e.seq)).size).toBe(acked.length);
    const bySeq = new Map(all.map((e) => [e.seq, e]));
    for (const e of acked) expect(bySeq.get(e.seq)).toEqual(e);
    // Each append's events are contiguous and in append order.
    for (const tag of ['a', 'b'])
      for (let round = 0; round < 8; round++)
        for (let k = 0; k < 6; k++) {
          const seqs = all.filter((e) => e.workflowId === `${tag}-${round}-${k}`).map((e) => e.seq);
          expect(seqs).toEqual(Array.from({ length: 12 }, (_, i) => (seqs[0] as number) + i));
        }
    expect(await b.verify()).toMatchObject({ ok: true, events: all.length });
  });
});
