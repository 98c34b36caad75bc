import pg from 'pg';
import { expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import { openPostgresStore, type PostgresEventStore } from '../../src/eventlog/postgres.js';
import { describePostgres, freshDatabase } from '../support/scaleout.js';
import { CONTRACT_NOW, storeContract } from './contract.js';

/** Runs `work` on a connection of its own (the attacker's, or the DBA's). */
async function raw<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

describePostgres('Postgres store', () => {
  storeContract('PostgresEventStore', async () => {
    const url = await freshDatabase();
    const openStore = (): PostgresEventStore =>
      openPostgresStore({ url, clock: simulatedClock(CONTRACT_NOW) });
    let store = openStore();
    return {
      store,
      reopen: async () => {
        await store.close();
        store = openStore();
        return store;
      },
      tamper: (seq) =>
        raw(url, async (c) => {
          await c.query('ALTER TABLE keel.events DISABLE TRIGGER events_no_update');
          await c.query(`UPDATE keel.events SET payload = payload || ' ' WHERE seq = $1`, [seq]);
          await c.query('ALTER TABLE keel.events ENABLE TRIGGER events_no_update');
        }),
      rawWrite: (kind, seq) =>
        raw(url, async (c) => {
          const sql =
            kind === 'update'
              ? 'UPDATE keel.events SET payload = payload WHERE seq = $1'
              : 'DELETE FROM keel.events WHERE seq = $1';
          await c.query(sql, [seq]);
        }),
      cleanup: () => store.close(),
    };
  });

  it('refuses TRUNCATE always, and UPDATE even inside the retention gate', async () => {
    const url = await freshDatabase();
    const store = openPostgresStore({ url });
    try {
      await store.append([
        { ts: 1, workflowId: 'wf', type: 'feedback.recorded', payload: { correct: true } },
        { ts: 2, workflowId: 'wf', type: 'cache.miss', payload: { path: 'p', agent: 'a', key: 'k' } },
      ]);
      await expect(raw(url, (c) => c.query('TRUNCATE keel.events'))).rejects.toThrow(/append-only; TRUNCATE/);
      await expect(
        raw(url, async (c) => {
          await c.query('BEGIN');
          await c.query("SET LOCAL keel.retention = 'on'");
          await c.query('UPDATE keel.events SET ts = 0');
        }),
      ).rejects.toThrow(/append-only; UPDATE/);
      expect(await store.verify()).toMatchObject({ ok: true, events: 2 });
    } finally {
      await store.close();
    }
  });
});
