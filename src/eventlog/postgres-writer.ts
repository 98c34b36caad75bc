/**
 * The Postgres store's writer: the rows of a group commit as column arrays (one `unnest` parameter
 * each, sent in Postgres's binary array format), chained onto the heads, and the statements that commit them. Internal to `postgres.ts`.
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

/** Element type OIDs of the binary arrays the writer sends. */
const INT8_OID = 20;
const FLOAT8_OID = 701;
const TEXT_OID = 25;
const BYTEA_OID = 17;
const TWO_32 = 4294967296;

/**
 * A one-dimensional Postgres array in the binary wire format (`array_recv`: ndim, flags, element
 * type, size, lower bound, then each element as length + bytes), built in one growing buffer and
 * sent as a binary parameter: no text-array literal, so no quoting and escaping of every element
 * on the client and no parsing of it on the server. Text elements are their UTF-8 bytes, exactly
 * what a text parameter carries.
 */
export class BinaryArray {
  private buf: Buffer;
  private at = HEADER;
  private n = 0;

  constructor(
    private readonly oid: number,
    capacity = 1024,
  ) {
    this.buf = Buffer.allocUnsafe(Math.max(capacity, HEADER));
  }

  get length(): number {
    return this.n;
  }

  private room(bytes: number): void {
    if (this.at + bytes <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + bytes));
    this.buf.copy(grown, 0, 0, this.at);
    this.buf = grown;
  }

  /** An `int8` element (any safe integer). */
  int8(value: number): void {
    this.room(12);
    const hi = Math.floor(value / TWO_32);
    this.buf.writeInt32BE(8, this.at);
    this.buf.writeInt32BE(hi, this.at + 4);
    this.buf.writeUInt32BE(value - hi * TWO_32, this.at + 8);
    this.at += 12;
    this.n++;
  }

  /** A `float8` element (exactly the JS number). */
  float8(value: number): void {
    this.room(12);
    this.buf.writeInt32BE(8, this.at);
    this.buf.writeDoubleBE(value, this.at + 4);
    this.at += 12;
    this.n++;
  }

  /** A `text` element: the string's UTF-8 bytes (as node-postgres sends a text parameter). */
  text(value: string): void {
    // Room for the worst case (3 bytes per UTF-16 unit), else for the exact size: no needless growth.
    const worst = 4 + value.length * 3;
    this.room(this.at + worst <= this.buf.length ? worst : 4 + Buffer.byteLength(value, 'utf8'));
    const bytes = this.buf.write(value, this.at + 4, 'utf8');
    this.buf.writeInt32BE(bytes, this.at);
    this.at += 4 + bytes;
    this.n++;
  }

  /** A `bytea` element from lowercase hex (a 64-character hash: 32 bytes). */
  hex(value: string): void {
    this.room(4 + (value.length >> 1));
    const bytes = this.buf.write(value, this.at + 4, 'hex');
    this.buf.writeInt32BE(bytes, this.at);
    this.at += 4 + bytes;
    this.n++;
  }

  /** The array as a binary parameter (a view of the buffer: no element may be added after). */
  finish(): Buffer {
    const b = this.buf;
    b.writeInt32BE(1, 0); // one dimension
    b.writeInt32BE(0, 4); // no NULLs
    b.writeInt32BE(this.oid, 8);
    b.writeInt32BE(this.n, 12);
    b.writeInt32BE(1, 16); // lower bound
    return b.subarray(0, this.at);
  }
}

/** ndim, flags, element type, size and lower bound of a one-dimensional array. */
const HEADER = 20;

/** The rows of a group commit as binary column arrays (one `unnest` parameter each). */
export class RowBuffer {
  private readonly seq: BinaryArray;
  private readonly ts: BinaryArray;
  private readonly workflowId: BinaryArray;
  private readonly type: BinaryArray;
  private readonly v: BinaryArray;
  private readonly cls: BinaryArray;
  private readonly payload: BinaryArray;
  private readonly hash: BinaryArray;

  /** `rows` and `payloadBytes` size the buffers (they grow past them). */
  constructor(rows = 16, payloadBytes = rows * 256) {
    this.seq = new BinaryArray(INT8_OID, HEADER + rows * 12);
    this.ts = new BinaryArray(FLOAT8_OID, HEADER + rows * 12);
    this.workflowId = new BinaryArray(TEXT_OID, HEADER + rows * 48);
    this.type = new BinaryArray(TEXT_OID, HEADER + rows * 24);
    this.v = new BinaryArray(INT8_OID, HEADER + rows * 12);
    this.cls = new BinaryArray(TEXT_OID, HEADER + rows * 15);
    this.payload = new BinaryArray(TEXT_OID, HEADER + rows * 4 + payloadBytes);
    this.hash = new BinaryArray(BYTEA_OID, HEADER + rows * 36);
  }

  /** Rows buffered. */
  get length(): number {
    return this.seq.length;
  }

  /** Assigns the next seq to `e`, chains it into its class and buffers its row. */
  chain(state: ChainState, e: KeelEvent, payloadJson: string): void {
    const head = e.class === 'audit' ? state.audit : state.operational;
    const seq = state.seq + 1;
    const hash = chainHash(head.hash, seq, e.ts, e.workflowId, e.type, e.v, e.class, payloadJson);
    state.seq = seq;
    head.seq = seq;
    head.hash = hash;
    e.seq = seq;
    this.seq.int8(seq);
    this.ts.float8(e.ts);
    this.workflowId.text(e.workflowId);
    this.type.text(e.type);
    this.v.int8(e.v);
    this.cls.text(e.class);
    this.payload.text(payloadJson);
    this.hash.hex(hash);
  }

  /** The eight column parameters, `$1` … `$8` (binary arrays). */
  columns(): unknown[] {
    return [
      this.seq.finish(),
      this.ts.finish(),
      this.workflowId.finish(),
      this.type.finish(),
      this.v.finish(),
      this.cls.finish(),
      this.payload.finish(),
      this.hash.finish(),
    ];
  }
}

/** Every event of a batch chained onto a copy of `from`: the rows and the heads after them. */
export function chainBatch(
  batch: readonly PendingAppend[],
  from: ChainState,
): { rows: RowBuffer; state: ChainState } {
  const state = copyState(from);
  let n = 0;
  let bytes = 0;
  for (const p of batch) {
    n += p.events.length;
    for (const json of p.payloadJson) bytes += json.length;
  }
  const rows = new RowBuffer(n, bytes + (bytes >> 3));
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
  SELECT u.s, u.t, u.w, u.y, u.v, u.c, u.p, u.h
    FROM unnest($1::bigint[], $2::float8[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::bytea[])
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
