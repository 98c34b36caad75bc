/**
 * The Postgres half of the scale-out benchmark (`bench/scaleout.bench.ts`): each function measures
 * one side of one comparison against a server given by URL, so the smoke test can run them on the
 * test server with tiny counts.
 *
 * - append: `PostgresEventStore.append` (group commit) vs a hand-written `pg` transaction per
 *   append (lock the heads row, one multi-row INSERT, update the heads, COMMIT), same rows, same
 *   SHA-256 chain;
 * - scan: `store.iterate()` vs a raw keyset `SELECT … WHERE seq > $1 ORDER BY seq LIMIT 1000`
 *   (prepared, array rows) + `JSON.parse` of each payload;
 * - `store.verify()` throughput.
 */
import { hash, randomUUID } from 'node:crypto';
import pg from 'pg';
import { DEFAULT_EVENT_CLASS, EVENT_VERSIONS } from '../src/eventlog/events.js';
import type { NewEvent } from '../src/eventlog/events.js';
import { openPostgresStore } from '../src/eventlog/postgres.js';
import { canonicalPayloadJson } from '../src/eventlog/validate.js';
import { pool, timed, type Cost } from './harness.js';

/** Rows per keyset page of the raw scan: the store's page size. */
const PAGE_ROWS = 1000;

/** `n` events of invoice workflows (`perWorkflow` events each), in a realistic mix of types and sizes. */
export function makeEvents(n: number, perWorkflow: number, t0 = Date.UTC(2026, 0, 1)): NewEvent[] {
  const out: NewEvent[] = [];
  const path = 'invoice/par[0]/vendor';
  for (let i = 0; i < n; i++) {
    const workflowId = `wf-${Math.floor(i / perWorkflow)}`;
    const ts = t0 + i;
    switch (i % 4) {
      case 0:
        out.push({
          ts,
          workflowId,
          type: 'agent.invoked',
          payload: { path, agent: 'vendor', taskType: 'vendor', model: 'gpt-4' },
        });
        break;
      case 1:
        out.push({
          ts,
          workflowId,
          type: 'agent.succeeded',
          payload: {
            path,
            agent: 'vendor',
            taskType: 'vendor',
            model: 'gpt-4',
            output: { vendor: 'Acme GmbH', iban: 'DE89 3704 0044 0532 0130 00' },
            confidence: 0.94,
            attempts: 1,
            latencyMs: 812,
            usage: { inputTokens: 800, outputTokens: 200 },
            costUsd: 0.03,
          },
        });
        break;
      case 2:
        out.push({
          ts,
          workflowId,
          type: 'cost.incurred',
          payload: {
            path,
            agent: 'vendor',
            model: 'gpt-4',
            taskType: 'vendor',
            attempt: 1,
            usage: { inputTokens: 800, outputTokens: 200 },
            costUsd: 0.03,
            estimateUsd: 0.031,
          },
        });
        break;
      default:
        out.push({ ts, workflowId, type: 'cache.miss', payload: { path, agent: 'vendor', key: `k-${i}` } });
    }
  }
  return out;
}

/** A new, empty event-log schema (`keel_bench_…`) created by the store itself, so both sides write the same tables. */
export async function freshSchema(url: string): Promise<string> {
  const schema = `keel_bench_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const store = openPostgresStore({ url, schema });
  try {
    await store.ready();
  } finally {
    await store.close();
  }
  return schema;
}

/** Drops schemas made by {@link freshSchema} (the events' triggers refuse TRUNCATE, not DROP). */
export async function dropSchemas(url: string, schemas: readonly string[]): Promise<void> {
  if (schemas.length === 0) return;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** What the bench prints about the server: version and the settings that decide commit cost. */
export async function postgresSettings(url: string): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const names = [
      'server_version',
      'fsync',
      'synchronous_commit',
      'wal_sync_method',
      'full_page_writes',
      'commit_delay',
      'shared_buffers',
      'max_connections',
    ];
    const out: Record<string, string> = {};
    for (const n of names) {
      const r = await client.query<Record<string, string>>(`SHOW ${n}`);
      out[n] = r.rows[0]?.[n] ?? '?';
    }
    return out;
  } finally {
    await client.end();
  }
}

/** Result of one append run: its cost and the events it committed. */
export interface AppendRun {
  cost: Cost;
  events: number;
  /** Events per transaction (the store's group commit; 1 append per transaction for raw). */
  eventsPerCommit: number;
}

const heads = (s: string): string =>
  `SELECT seq, audit_hash, operational_hash FROM "${s}".heads WHERE id = 1 FOR UPDATE`;
const updateHeads = (s: string): string =>
  `UPDATE "${s}".heads SET seq = $1, audit_seq = coalesce($2::bigint, audit_seq), audit_hash = $3, operational_seq = coalesce($4::bigint, operational_seq), operational_hash = $5 WHERE id = 1`;
const insertRows = (s: string, rows: number): string => {
  const values: string[] = [];
  for (let r = 0; r < rows; r++) {
    const o = r * 8;
    values.push(`($${o + 1}, $${o + 2}, $${o + 3}, $${o + 4}, $${o + 5}, $${o + 6}, $${o + 7}, $${o + 8})`);
  }
  // Schema 2: the hash as 32 raw bytes, no prev_hash column (it is the previous row's hash).
  return `INSERT INTO "${s}".events (seq, ts, workflow_id, type, v, class, payload, hash) VALUES ${values.join(', ')}`;
};

/**
 * The baseline: what you would write by hand with `pg` — one transaction per append, each on a
 * pooled connection (`appenders` of them): `BEGIN`; lock the heads row (`FOR UPDATE`); chain the
 * events (same canonical JSON and SHA-256 form as the store); one multi-row INSERT; update the
 * heads; `COMMIT`. `events` go in appends of `eventsPerAppend`, `appenders` at a time.
 */
export async function rawAppend(
  url: string,
  schema: string,
  events: readonly NewEvent[],
  appenders: number,
  eventsPerAppend: number,
): Promise<AppendRun> {
  const db = new pg.Pool({ connectionString: url, max: appenders });
  db.on('error', () => undefined);
  try {
    // Open every connection before timing: a service keeps its pool warm.
    const clients = await Promise.all(Array.from({ length: appenders }, () => db.connect()));
    for (const c of clients) c.release();
    const lockSql = heads(schema);
    const updateSql = updateHeads(schema);
    const insertSql = insertRows(schema, eventsPerAppend);
    const appends = Math.floor(events.length / eventsPerAppend);
    const appendOne = async (i: number): Promise<void> => {
      const client = await db.connect();
      let failed = false;
      try {
        await client.query('BEGIN');
        const r = await client.query<{ seq: string; audit_hash: string; operational_hash: string }>({
          name: 'raw_lock',
          text: lockSql,
        });
        const h = r.rows[0];
        if (h === undefined) throw new Error(`raw append: no heads row in schema ${schema}`);
        let seq = Number(h.seq);
        let audit = h.audit_hash;
        let operational = h.operational_hash;
        let auditSeq = 0;
        let operationalSeq = 0;
        const args: unknown[] = [];
        for (let k = i * eventsPerAppend; k < (i + 1) * eventsPerAppend; k++) {
          const e = events[k] as NewEvent;
          const cls = DEFAULT_EVENT_CLASS[e.type];
          const v = EVENT_VERSIONS[e.type];
          const json = canonicalPayloadJson(e.payload);
          const prev = cls === 'audit' ? audit : operational;
          seq++;
          const text = `${prev}\n${seq}\n${e.ts}\n${e.workflowId}\n${e.type}\n${v}\n${cls}\n${json}`;
          const digest = hash('sha256', text, 'hex');
          if (cls === 'audit') {
            audit = digest;
            auditSeq = seq;
          } else {
            operational = digest;
            operationalSeq = seq;
          }
          args.push(seq, e.ts, e.workflowId, e.type, v, cls, json, Buffer.from(digest, 'hex'));
        }
        await client.query({ name: `raw_insert_${eventsPerAppend}`, text: insertSql, values: args });
        // A class without events in this append keeps its head seq: read it back in the UPDATE.
        await client.query({
          name: 'raw_heads',
          text: updateSql,
          values: [
            seq,
            auditSeq === 0 ? null : auditSeq,
            audit,
            operationalSeq === 0 ? null : operationalSeq,
            operational,
          ],
        });
        await client.query('COMMIT');
      } catch (e) {
        failed = true;
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      } finally {
        client.release(failed);
      }
    };
    const cost = await pool(appends, appenders, appendOne);
    return { cost, events: appends * eventsPerAppend, eventsPerCommit: eventsPerAppend };
  } finally {
    await db.end();
  }
}

/** `PostgresEventStore.append` under group commit: `appenders` callers, each awaiting appends of `eventsPerAppend`. */
export async function storeAppend(
  url: string,
  schema: string,
  events: readonly NewEvent[],
  appenders: number,
  eventsPerAppend: number,
): Promise<AppendRun> {
  const store = openPostgresStore({ url, schema });
  try {
    await store.ready();
    const appends = Math.floor(events.length / eventsPerAppend);
    const cost = await pool(appends, appenders, (i) =>
      store.append(events.slice(i * eventsPerAppend, (i + 1) * eventsPerAppend)),
    );
    const { transactions, events: committed } = store.stats();
    return { cost, events: committed, eventsPerCommit: committed / Math.max(1, transactions) };
  } finally {
    await store.close();
  }
}

/**
 * A schema holding `n` chained events, written the raw way in transactions of 1000 (set-up for the
 * scan and verify runs, not measured). `verify()` on it also checks that the raw baseline writes
 * the store's chain.
 */
export async function filledSchema(url: string, n: number): Promise<string> {
  const schema = await freshSchema(url);
  const events = makeEvents(n, 8);
  const batch = Math.min(n, 1000);
  await rawAppend(url, schema, events.slice(0, n - (n % batch)), 1, batch);
  if (n % batch > 0) await rawAppend(url, schema, events.slice(n - (n % batch)), 1, n % batch);
  return schema;
}

/** Result of a read run: its cost and the events read. */
export interface ReadRun {
  cost: Cost;
  events: number;
}

/** Raw keyset scan: prepared `SELECT … WHERE seq > $1 ORDER BY seq LIMIT 1000`, array rows, `JSON.parse` of each payload. */
export async function rawScan(url: string, schema: string): Promise<ReadRun> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const text = `SELECT seq, ts, workflow_id, type, v, class, payload FROM "${schema}".events WHERE seq > $1 ORDER BY seq LIMIT $2`;
    let n = 0;
    const cost = await timed(async () => {
      let cursor = 0;
      for (;;) {
        const r = await client.query<unknown[]>({
          name: 'raw_scan',
          text,
          values: [cursor, PAGE_ROWS],
          rowMode: 'array',
        });
        for (const row of r.rows) if (JSON.parse(row[6] as string) !== null) n++;
        if (r.rows.length < PAGE_ROWS) return;
        cursor = Number((r.rows[r.rows.length - 1] as unknown[])[0]);
      }
    });
    return { cost, events: n };
  } finally {
    await client.end();
  }
}

/** `for await (const e of store.iterate())` over the whole log. */
export async function storeScan(url: string, schema: string): Promise<ReadRun> {
  const store = openPostgresStore({ url, schema, readonly: true });
  try {
    await store.ready();
    let n = 0;
    const cost = await timed(async () => {
      for await (const e of store.iterate()) if (e.payload !== null) n++;
    });
    return { cost, events: n };
  } finally {
    await store.close();
  }
}

/** `store.verify()` over the whole log. */
export async function storeVerify(url: string, schema: string): Promise<ReadRun & { ok: boolean }> {
  const store = openPostgresStore({ url, schema, readonly: true });
  try {
    await store.ready();
    let result = { ok: false, events: 0 };
    const cost = await timed(async () => {
      result = await store.verify();
    });
    return { cost, events: result.events, ok: result.ok };
  } finally {
    await store.close();
  }
}
