/**
 * The Postgres group commit is one statement that writes only when the heads are the ones this
 * process chained onto (src/eventlog/postgres-writer.ts). These pin what happens when they are not:
 * another writer appended in between, or rows lie beyond the heads.
 */
import pg from 'pg';
import { afterEach, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import type { NewEvent } from '../../src/eventlog/events.js';
import { openPostgresStore, type PostgresEventStore } from '../../src/eventlog/postgres.js';
import { describePostgres, freshDatabase } from '../support/scaleout.js';

const T0 = Date.UTC(2026, 0, 1);
const stores: PostgresEventStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

function open(url: string): PostgresEventStore {
  const store = openPostgresStore({ url, clock: simulatedClock(T0) });
  stores.push(store);
  return store;
}

const audit = (i: number): NewEvent<'feedback.recorded'> => ({
  ts: T0 + i,
  workflowId: `wf-${i}`,
  type: 'feedback.recorded',
  payload: { correct: true, expected: { i } },
});
const operational = (i: number): NewEvent<'cache.miss'> => ({
  ts: T0 + i,
  workflowId: `wf-${i}`,
  type: 'cache.miss',
  payload: { path: 'p', agent: 'a', key: `k-${i}` },
});

describePostgres('Postgres commit path', () => {
  it('chains onto what another writer appended since its own last commit, never over it', async () => {
    const url = await freshDatabase();
    const a = open(url);
    const b = open(url);
    // Each writer's second commit finds heads it did not leave: the other one appended in between.
    for (let round = 0; round < 5; round++) {
      await a.append([audit(round * 4), operational(round * 4 + 1)]);
      await b.append([audit(round * 4 + 2), operational(round * 4 + 3)]);
    }
    const rows = await a.query();
    expect(rows.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(rows.map((e) => e.workflowId)).toEqual(Array.from({ length: 20 }, (_, i) => `wf-${i}`));
    expect(await a.verify()).toEqual({ ok: true, events: 20, heads: await b.heads() });
    expect(await b.heads()).toMatchObject({ audit: { seq: 19 }, operational: { seq: 20 } });
  });

  it('continues the chain of rows written beyond the heads row (copied in), rebuilding the heads', async () => {
    const url = await freshDatabase();
    const a = open(url);
    await a.append([audit(0), operational(1)]);
    const b = open(url);
    await b.append([audit(2)]);
    // Copy b's row back in as seq 4 under a new workflow, leaving the heads row at seq 3.
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(
        `INSERT INTO keel.events SELECT 4, ts, 'copied', type, v, class, payload, hash FROM keel.events WHERE seq = 3`,
      );
    } finally {
      await client.end();
    }
    // a believes the heads are at seq 2; the table ends at seq 4 while the heads row says 3.
    const [next] = await a.append([audit(5)]);
    expect(next?.seq).toBe(5);
    const chained = [];
    for await (const c of a.iterateChained({ afterSeq: 3 })) chained.push(c);
    expect(chained.map((c) => [c.event.seq, c.event.workflowId])).toEqual([
      [4, 'copied'],
      [5, 'wf-5'],
    ]);
    expect((chained[1] as (typeof chained)[number]).prevHash).toBe(
      (chained[0] as (typeof chained)[number]).hash,
    );
  });
});
