/**
 * The Postgres store's writer: the rows of a group commit as column arrays (one `unnest` parameter
 * each), chained onto the heads, and the statements that commit them. Internal to `postgres.ts`.
 *
 * A group commit is one statement, so one round trip, in its own implicit transaction (durable on
 * return with `synchronous_commit` on): it locks the heads row, checks that the heads are the ones
 * this process chained the batch onto (nobody else appended since), inserts the rows and moves the
 * heads — or, when the heads moved, writes nothing and answers them, and the batch is chained again.
 * The explicit transaction (`BEGIN`, lock and read the heads, insert, `COMMIT`: three round trips)
 * serves the first commit, a second miss in a row, and heads that disagree with the rows.
 */
import { chainHash } from './chain.js';
import type { KeelEvent } from './events.js';
import type { ChainState } from './sql/retention.js';

/** An `append` call waiting for its group commit. */
export interface PendingAppend {
  events: KeelEvent[];
  payloadJson: string[];
  resolve: (events: KeelEvent[]) => void;
  reject: (error: unknown) => void;
}

/** Column arrays of rows to insert (one `unnest` parameter each). */
export class RowBuffer {
  readonly seq: number[] = [];
  readonly ts: number[] = [];
  readonly workflowId: string[] = [];
  readonly type: string[] = [];
  readonly v: number[] = [];
  readonly cls: string[] = [];
  readonly payload: string[] = [];
  /** Hex: the statement stores `decode(hash, 'hex')`, 32 bytes. */
  readonly hash: string[] = [];

  /** Assigns the next seq to `e`, chains it into its class and buffers its row. */
  chain(state: ChainState, e: KeelEvent, payloadJson: string): void {
    const head = e.class === 'audit' ? state.audit : state.operational;
    const seq = state.seq + 1;
    const hash = chainHash(head.hash, seq, e.ts, e.workflowId, e.type, e.v, e.class, payloadJson);
    state.seq = seq;
    head.seq = seq;
    head.hash = hash;
    e.seq = seq;
    this.seq.push(seq);
    this.ts.push(e.ts);
    this.workflowId.push(e.workflowId);
    this.type.push(e.type);
    this.v.push(e.v);
    this.cls.push(e.class);
    this.payload.push(payloadJson);
    this.hash.push(hash);
  }

  /** The eight column parameters, `$1` … `$8`. */
  columns(): unknown[] {
    return [this.seq, this.ts, this.workflowId, this.type, this.v, this.cls, this.payload, this.hash];
  }
}

/** Every event of a batch chained onto a copy of `from`: the rows and the heads after them. */
export function chainBatch(
  batch: readonly PendingAppend[],
  from: ChainState,
): { rows: RowBuffer; state: ChainState } {
  const state = copyState(from);
  const rows = new RowBuffer();
  for (const p of batch) {
    const { events, payloadJson } = p;
    for (let i = 0; i < events.length; i++)
      rows.chain(state, events[i] as KeelEvent, payloadJson[i] as string);
  }
  return { rows, state };
}

export function copyState(s: ChainState): ChainState {
  return { seq: s.seq, audit: { ...s.audit }, operational: { ...s.operational } };
}

/** The heads as parameters. */
export function stateParams(s: ChainState): unknown[] {
  return [s.seq, s.audit.seq, s.audit.hash, s.operational.seq, s.operational.hash];
}

/** A heads row as the queries return it. */
export interface HeadsRow {
  seq: number;
  audit_seq: number;
  audit_hash: string;
  operational_seq: number;
  operational_hash: string;
}

/** A heads row as a chain state. */
export function stateOf(row: HeadsRow): ChainState {
  return {
    seq: row.seq,
    audit: { seq: row.audit_seq, hash: row.audit_hash },
    operational: { seq: row.operational_seq, hash: row.operational_hash },
  };
}

/** The writer's SQL texts, for one (quoted) schema. */
export function writerStatements(s: string) {
  const events = `${s}.events`;
  const heads = 'seq, audit_seq, audit_hash, operational_seq, operational_hash';
  const insert = `INSERT INTO ${events} (seq, ts, workflow_id, type, v, class, payload, hash)
  SELECT u.s, u.t, u.w, u.y, u.v, u.c, u.p, decode(u.h, 'hex')
    FROM unnest($1::bigint[], $2::float8[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[])
      AS u(s, t, w, y, v, c, p, h)`;
  return {
    events,
    beginAndLock: `BEGIN; SELECT ${heads} FROM ${s}.heads WHERE id = 1 FOR UPDATE; SELECT max(seq) AS max FROM ${events}`,
    /** In the explicit transaction: the rows, and the heads moved to `$9` … `$13`. */
    append: `WITH inserted AS (${insert})
UPDATE ${s}.heads SET seq = $9, audit_seq = $10, audit_hash = $11, operational_seq = $12, operational_hash = $13 WHERE id = 1`,
    /**
     * One statement, one implicit transaction: when the locked heads are `$9` … `$13` and no row
     * lies beyond them, the rows and the heads moved to `$14` … `$18`. Answers whether it wrote,
     * the heads it found and the last seq of the table.
     */
    appendIfHeads: `WITH h AS (SELECT ${heads} FROM ${s}.heads WHERE id = 1 FOR UPDATE),
m AS (SELECT coalesce(max(seq), 0) AS max FROM ${events}),
ok AS (
  SELECT h.seq = $9 AND h.audit_seq = $10 AND h.audit_hash = $11 AND h.operational_seq = $12
     AND h.operational_hash = $13 AND m.max = $9 AS ok
    FROM h, m
),
inserted AS (${insert} WHERE (SELECT ok FROM ok)),
moved AS (
  UPDATE ${s}.heads SET seq = $14, audit_seq = $15, audit_hash = $16, operational_seq = $17, operational_hash = $18
   WHERE id = 1 AND (SELECT ok FROM ok)
)
SELECT ok.ok, h.seq, h.audit_seq, h.audit_hash, h.operational_seq, h.operational_hash, m.max FROM h, m, ok`,
    lastSeq: `SELECT coalesce(max(seq), 0) FROM ${events}`,
    heads: `SELECT ${heads}, (SELECT coalesce(max(seq), 0) FROM ${events}) FROM ${s}.heads WHERE id = 1`,
  };
}
