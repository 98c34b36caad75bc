/**
 * Both stores run one verify (src/eventlog/sql/verify.ts): a forged retention anchor that hides a
 * deleted, recent `workflow.started` fails on Postgres as on SQLite, and a real prune that cut a
 * workflow in two still verifies on both.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import { chainHash, chainRowOf, type ChainRow } from '../../src/eventlog/chain.js';
import { canonicalJson } from '../../src/core/json.js';
import type { KeelEvent, NewEvent } from '../../src/eventlog/events.js';
import { openPostgresStore } from '../../src/eventlog/postgres.js';
import type { EventStore } from '../../src/eventlog/store.js';
import { describePostgres, freshDatabase } from '../support/scaleout.js';
import { T0, open, tempDb } from './helpers.js';
import { insertRow, logicalRow } from './raw-rows.js';

/** Runs SQL on the log behind the store's back: rows as arrays. */
type Raw = (sql: string, params?: unknown[]) => Promise<unknown[][]>;

interface Backend {
  store: EventStore;
  raw: Raw;
  /** Every row as the chain reads it (hashes hex, payload canonical JSON). */
  rows: () => Promise<ChainRow[]>;
  /** Inserts a row behind the store's back, in the store's own row format. */
  insert: (e: KeelEvent, hash: string) => Promise<void>;
  /** Deletes rows through the retention gate, as only `prune` may. */
  deleteThroughGate: (seqs: number[]) => Promise<void>;
  cleanup: () => Promise<void>;
}

/** wf-1 ran 40 s and ended; wf-2 started and ended later. */
function history(): NewEvent[] {
  const started = (workflowId: string, ts: number): NewEvent<'workflow.started'> => ({
    ts,
    workflowId,
    type: 'workflow.started',
    payload: { name: 'invoice', topology: { kind: 'agent' }, input: 'x', inputHash: 'h' },
  });
  const completed = (workflowId: string, ts: number, latencyMs: number): NewEvent<'workflow.completed'> => ({
    ts,
    workflowId,
    type: 'workflow.completed',
    payload: { output: 'ok', latencyMs, costUsd: 0, agentsCalled: 1 },
  });
  const miss: NewEvent<'cache.miss'> = {
    ts: T0 + 1_000,
    workflowId: 'wf-1',
    type: 'cache.miss',
    payload: { path: 'p', agent: 'a', key: 'k' },
  };
  return [
    started('wf-1', T0),
    miss,
    completed('wf-1', T0 + 40_000, 40_000),
    started('wf-2', T0 + 50_000),
    completed('wf-2', T0 + 60_000, 10_000),
  ];
}

/**
 * Deletes wf-1's `workflow.started` (seq 1) and appends an anchor claiming retention removed it
 * as older than the epoch: the anchor itself is consistent, only wf-1's kept end contradicts it.
 */
async function forgeAnchor(b: Backend): Promise<void> {
  const rows = await b.rows();
  const first = rows[0] as ChainRow;
  await b.deleteThroughGate([first[0]]);
  const lastAudit = rows.filter((r) => r[5] === 'audit').at(-1) as ChainRow;
  const last = rows.at(-1) as ChainRow;
  const anchor = {
    lastPrunedHash: first[8],
    olderThanTs: 0,
    prunedClass: 'audit',
    prunedCount: 1,
    prunedThroughSeq: first[0],
  } as const;
  const payload = JSON.stringify(anchor);
  const seq = Number(last[0]) + 1;
  const ts = Number(last[1]) + 1;
  const hash = chainHash(lastAudit[8], seq, ts, '_system', 'log.anchor', 1, 'audit', payload);
  const event = {
    seq,
    ts,
    workflowId: '_system',
    type: 'log.anchor',
    v: 1,
    class: 'audit',
    payload: anchor,
  } as const;
  await b.insert(event, hash);
}

function verifyCases(open: () => Promise<Backend>): void {
  let backend: Backend | undefined;
  afterEach(async () => {
    await backend?.cleanup();
    backend = undefined;
  });

  it('fails a forged anchor whose claim a kept workflow end contradicts, naming the workflow', async () => {
    backend = await open();
    await backend.store.append(history());
    expect((await backend.store.verify()).ok).toBe(true);
    await forgeAnchor(backend);
    const result = await backend.store.verify();
    expect(result).toMatchObject({ ok: false, reason: 'anchor_implausible', seq: 6 });
    expect(result.ok ? '' : result.detail).toMatch(
      /workflow "wf-1", whose workflow\.started is gone, ended at seq 3 after 40000 ms, so it started at 2026-01-01T00:00:00\.000Z/,
    );
  });

  it('still verifies after a real prune cut a workflow in two (its start is older than the cut)', async () => {
    backend = await open();
    await backend.store.append(history());
    const pruned = await backend.store.prune({ olderThan: T0 + 30_000, class: 'audit' });
    expect(pruned).toMatchObject({ class: 'audit', pruned: 1, throughSeq: 1 });
    expect(await backend.store.verify()).toMatchObject({ ok: true, events: 5 });
  });
}

describe('verify against forged anchors: SQLite', () => {
  verifyCases(() => {
    const path = tempDb();
    const store = open({ path });
    const db = (): Database.Database => new Database(path);
    const raw: Raw = (sql, params = []) => {
      const d = db();
      try {
        const st = d.prepare(sql.replace(/\$\d+/g, '?'));
        return Promise.resolve(
          st.reader ? (st.raw(true).all(...params) as unknown[][]) : (st.run(...params), []),
        );
      } finally {
        d.close();
      }
    };
    return Promise.resolve({
      store,
      raw,
      // Schema 4 codes the rows: read them decoded, write them coded.
      rows: () =>
        Promise.resolve(
          [...store.iterateChained()].map(({ event: e, hash }): ChainRow => [
            e.seq,
            e.ts,
            e.workflowId,
            e.type,
            e.v,
            e.class,
            canonicalJson(e.payload),
            null,
            hash,
          ]),
        ),
      insert: (e, hash) => {
        const d = db();
        try {
          insertRow(d, e, hash);
        } finally {
          d.close();
        }
        return Promise.resolve();
      },
      deleteThroughGate: async (seqs) => {
        await raw('UPDATE retention_gate SET open = 1');
        for (const seq of seqs) await raw('DELETE FROM events WHERE seq = $1', [seq]);
        await raw('UPDATE retention_gate SET open = 0');
      },
      cleanup: () => store.close(),
    });
  });
});

describePostgres('verify against forged anchors: Postgres', () => {
  verifyCases(async () => {
    const url = await freshDatabase();
    const store = openPostgresStore({ url, clock: simulatedClock(T0 + 1_000_000) });
    await store.ready();
    const client = new pg.Client({ connectionString: url, options: '-c search_path=keel' });
    await client.connect();
    const raw: Raw = async (sql, params) =>
      (await client.query<unknown[]>({ text: sql, values: params, rowMode: 'array' })).rows.map((r) =>
        r.map((v, i) => (i === 0 || i === 4 ? Number(v) : v)),
      );
    return {
      store,
      raw,
      // Compact rows (Postgres 2): the hash is 32 raw bytes and the previous hash is not stored.
      rows: async () =>
        (
          await raw(
            'SELECT seq, ts, workflow_id, type, v, class, payload, NULL, hash FROM events ORDER BY seq',
          )
        ).map(chainRowOf),
      insert: async (e, hash) => {
        await raw('INSERT INTO events VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', logicalRow(e, hash));
      },
      deleteThroughGate: async (seqs) => {
        await client.query('BEGIN');
        await client.query("SET LOCAL keel.retention = 'on'");
        await client.query('DELETE FROM events WHERE seq = ANY($1::bigint[])', [seqs]);
        await client.query('COMMIT');
      },
      cleanup: async () => {
        await client.end();
        await store.close();
      },
    };
  });
});
