/**
 * The write side of a SQLite event log on one connection: the chain heads it has seen, the seq and
 * hash of each appended row, and multi-row INSERTs. The store uses one on its own connection, and
 * the writer thread (`writer: 'thread'`, ./sqlite-thread.ts) one on the thread's connection.
 * Internal to src/eventlog.
 */
import type Database from 'better-sqlite3';
import { GENESIS_HASH, chainHash, latestAnchors, parseAnchorPayload, rowHash } from './chain.js';
import type { AnchorClaim, ChainRow } from './chain.js';
import { SYSTEM_WORKFLOW_ID } from './events.js';
import type { EventClass, EventPayloads } from './events.js';
import type { ChainHeads } from './store.js';

/** A chain head: the seq and hash of a class's last event. */
export interface Head {
  seq: number;
  hash: string;
}

/** Highest seq and both heads: what a rolled-back transaction puts back. */
export interface ChainState {
  seq: number;
  audit: Head;
  operational: Head;
}

/** An anchor's claim plus its payload (to carry it forward when audit retention removes it). */
export interface StoredAnchor extends AnchorClaim {
  payload: EventPayloads['log.anchor'];
}

/** A cached prepared statement of the connection (raw rows when `raw`). */
export type StatementCache = (sql: string, raw?: boolean) => Database.Statement<unknown[], unknown>;

const INSERT_SQL =
  'INSERT INTO events (seq, ts, workflow_id, type, v, class, payload, prev_hash, hash) VALUES ';
const INSERT_ROW = '(?, ?, ?, ?, ?, ?, ?, ?, ?)';
const COLUMNS_PER_ROW = 9;
/** Rows per multi-row INSERT: one native call per 16 events is measurably cheaper than 16 calls. */
const ROWS_PER_INSERT = 16;

/** Columns of a chained row, in {@link ChainRow} order. */
export const CHAINED_COLUMNS = 'seq, ts, workflow_id, type, v, class, payload, prev_hash, hash';

/**
 * Chains and writes events on one connection. Call {@link ChainWriter.sync} first inside each write
 * transaction (another connection may have appended), {@link ChainWriter.append} per event, and
 * {@link ChainWriter.flushRows} before the transaction commits.
 */
export class ChainWriter {
  /** Highest seq this connection has seen committed or written. */
  seq = 0;
  readonly audit: Head = { seq: 0, hash: GENESIS_HASH };
  readonly operational: Head = { seq: 0, hash: GENESIS_HASH };

  private singleInsert: Database.Statement<unknown[], unknown> | undefined;
  private multiInsert: Database.Statement<unknown[], unknown> | undefined;
  /** Bind values of the rows {@link append} has buffered, {@link COLUMNS_PER_ROW} per row. */
  private readonly rowArgs = new Array<unknown>(ROWS_PER_INSERT * COLUMNS_PER_ROW);
  private bufferedRows = 0;

  constructor(private readonly stmt: StatementCache) {
    this.load();
  }

  /**
   * Assigns the next seq, chains the event into its class and buffers its row; every
   * {@link ROWS_PER_INSERT} rows go out as one multi-row INSERT. Returns the seq.
   */
  append(
    ts: number,
    workflowId: string,
    type: string,
    v: number,
    cls: EventClass,
    payloadJson: string,
  ): number {
    const head = cls === 'audit' ? this.audit : this.operational;
    const seq = this.seq + 1;
    const prevHash = head.hash;
    const hash = chainHash(prevHash, seq, ts, workflowId, type, v, cls, payloadJson);
    this.seq = seq;
    head.seq = seq;
    head.hash = hash;
    const a = this.rowArgs;
    let o = this.bufferedRows * COLUMNS_PER_ROW;
    a[o++] = seq;
    a[o++] = ts;
    a[o++] = workflowId;
    a[o++] = type;
    a[o++] = v;
    a[o++] = cls;
    a[o++] = payloadJson;
    a[o++] = prevHash;
    a[o] = hash;
    if (++this.bufferedRows === ROWS_PER_INSERT) {
      this.multiInsert ??= this.stmt(
        INSERT_SQL + new Array<string>(ROWS_PER_INSERT).fill(INSERT_ROW).join(', '),
      );
      this.multiInsert.run(a);
      this.bufferedRows = 0;
    }
    return seq;
  }

  /** Inserts the rows {@link append} still holds, one statement each. */
  flushRows(): void {
    const a = this.rowArgs;
    this.singleInsert ??= this.stmt(INSERT_SQL + INSERT_ROW);
    for (let r = 0; r < this.bufferedRows; r++) {
      const o = r * COLUMNS_PER_ROW;
      this.singleInsert.run(
        a[o],
        a[o + 1],
        a[o + 2],
        a[o + 3],
        a[o + 4],
        a[o + 5],
        a[o + 6],
        a[o + 7],
        a[o + 8],
      );
    }
    this.bufferedRows = 0;
  }

  /** The chain state before a write transaction, to put back if it rolls back. */
  save(): ChainState {
    return { seq: this.seq, audit: { ...this.audit }, operational: { ...this.operational } };
  }

  /** Puts back a {@link save}d state (and drops buffered rows). */
  restore(saved: ChainState): void {
    this.seq = saved.seq;
    Object.assign(this.audit, saved.audit);
    Object.assign(this.operational, saved.operational);
    this.bufferedRows = 0;
  }

  /**
   * Reloads the heads if another connection appended since this one last looked (one O(1) query).
   * Inside a write transaction this makes two writers on one file keep a single valid chain.
   */
  sync(): void {
    const max = (this.stmt('SELECT MAX(seq) FROM events').pluck().get() as number | null) ?? 0;
    if (max !== this.seq) this.load();
  }

  /** Reads the highest seq and both heads from the file. */
  load(): void {
    this.seq = (this.stmt('SELECT MAX(seq) FROM events').pluck().get() as number | null) ?? 0;
    const heads = this.readHeads();
    Object.assign(this.audit, heads.audit);
    Object.assign(this.operational, heads.operational);
  }

  /**
   * The last event of each class, found by walking back from the end of the log (both classes
   * interleave densely, so this is short); a class with no events left takes its retention anchor's
   * head, or genesis. Only a log holding no events at all of one class walks it whole.
   */
  private readHeads(): ChainHeads {
    let anchors: Partial<Record<EventClass, StoredAnchor>> | undefined;
    const headOf = (cls: EventClass): Head => {
      const row = this.stmt('SELECT seq, hash FROM events WHERE class = ? ORDER BY seq DESC LIMIT 1').get(
        cls,
      ) as Head | undefined;
      if (row !== undefined) return { seq: row.seq, hash: row.hash };
      anchors ??= latestAnchors(this.loadAnchors());
      const a = anchors[cls];
      return a ? { seq: a.prunedThroughSeq, hash: a.lastPrunedHash } : { seq: 0, hash: GENESIS_HASH };
    };
    return { audit: headOf('audit'), operational: headOf('operational') };
  }

  /**
   * Every `log.anchor` event's claim (there are few: audit retention removes old ones). The store
   * writes anchors to the `_system` workflow, whose index finds them; an event of that type
   * appended to any other workflow claims nothing.
   */
  loadAnchors(): StoredAnchor[] {
    const rows = this.stmt(
      `SELECT ${CHAINED_COLUMNS} FROM events WHERE workflow_id = '${SYSTEM_WORKFLOW_ID}' AND type = 'log.anchor' ORDER BY seq`,
      true,
    ).all() as ChainRow[];
    const claims: StoredAnchor[] = [];
    for (const r of rows) {
      const p = parseAnchorPayload(r[6]);
      if (p === undefined) continue;
      claims.push({
        seq: r[0],
        prunedClass: p.prunedClass,
        prunedThroughSeq: p.prunedThroughSeq,
        lastPrunedHash: p.lastPrunedHash,
        intact: rowHash(r) === r[8],
        ts: r[1],
        prunedCount: p.prunedCount,
        olderThanTs: p.olderThanTs,
        payload: p,
      });
    }
    return claims;
  }
}
