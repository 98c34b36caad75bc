/**
 * The write side of a SQLite event log on one connection: the chain heads it has seen, the seq and
 * hash of each appended row, and multi-row INSERTs. The store uses one on its own connection, and
 * the writer thread (`writer: 'thread'`, ./sqlite-thread.ts) one on the thread's connection.
 * Internal to src/eventlog.
 */
import type Database from 'better-sqlite3';
import { GENESIS_HASH, chainHash } from './chain.js';
import type { EventClass } from './events.js';
import type { SqlDialect } from './sql/dialect.js';
import { encodeCanonicalPayload } from './codec.js';
import type { SqliteStrings } from './sqlite-strings.js';
import { runSync, type SqlProgram, type Step } from './sql/program.js';
import { headsFromEvents, type ChainState, type Head } from './sql/retention.js';

export type { ChainState, Head } from './sql/retention.js';

/** A cached prepared statement of the connection (raw rows when `raw`). */
export type StatementCache = (sql: string, raw?: boolean) => Database.Statement<unknown[], unknown>;

/** Schema 4: `workflow` and `type` are `keel_strings` ids, `class` 0 (audit) or 1, `payload` coded. */
const INSERT_SQL = 'INSERT INTO events (seq, ts, workflow, type, v, class, payload, hash) VALUES ';
const INSERT_ROW = '(?, ?, ?, ?, ?, ?, ?, ?)';
const COLUMNS_PER_ROW = 8;
/** Rows per multi-row INSERT: one native call per 16 events is measurably cheaper than 16 calls. */
const ROWS_PER_INSERT = 16;

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

  /**
   * `dialect`: the file's (a read-only store reads an older schema; writes need the current one,
   * which every writable open migrates to); `strings`: the connection's dictionary (writes need it).
   */
  constructor(
    private readonly stmt: StatementCache,
    private readonly dialect: SqlDialect,
    private readonly strings: SqliteStrings | undefined,
  ) {
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
    const hash = chainHash(head.hash, seq, ts, workflowId, type, v, cls, payloadJson);
    this.seq = seq;
    head.seq = seq;
    head.hash = hash;
    const strings = this.strings;
    if (strings === undefined) throw new TypeError('ChainWriter: a read-only connection cannot append');
    const a = this.rowArgs;
    let o = this.bufferedRows * COLUMNS_PER_ROW;
    a[o++] = seq;
    a[o++] = ts;
    a[o++] = strings.code(workflowId);
    a[o++] = strings.code(type);
    a[o++] = v;
    a[o++] = cls === 'audit' ? 0 : 1;
    // From the hashed text, not the caller's object (which it may have changed since `append`),
    // scanned rather than parsed and written again (the same row, byte for byte).
    a[o++] = encodeCanonicalPayload(type, payloadJson, strings);
    // chainHash's own lowercase hex: no need for hashBytes' format check.
    a[o] = Buffer.from(hash, 'hex');
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
      this.singleInsert.run(a[o], a[o + 1], a[o + 2], a[o + 3], a[o + 4], a[o + 5], a[o + 6], a[o + 7]);
    }
    this.bufferedRows = 0;
  }

  /**
   * The chain state before a write transaction, to put back if it rolls back (the dictionary
   * starts noting the ids it learns, to forget them then).
   */
  save(): ChainState {
    this.strings?.begin();
    return { seq: this.seq, audit: { ...this.audit }, operational: { ...this.operational } };
  }

  /**
   * Puts back a {@link save}d state (and drops buffered rows); the dictionary forgets the ids it
   * learnt since (`rolledBack`: the default; the store adopting its writer thread's state passes false).
   */
  restore(saved: ChainState, rolledBack = true): void {
    if (rolledBack) this.strings?.rollback();
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
    const max = (this.stmt('SELECT MAX(seq) FROM events').pluck().get() as number | null) ?? 0;
    const state = this.run(headsFromEvents(this.dialect, max));
    this.seq = state.seq;
    Object.assign(this.audit, state.audit);
    Object.assign(this.operational, state.operational);
  }

  /** Runs a shared SQL procedure on this connection. */
  run<T>(program: SqlProgram<T>): T {
    return runSync(program, sqliteStep(this.stmt));
  }
}

/** Runs one step of a shared SQL procedure on a better-sqlite3 connection. */
export function sqliteStep(stmt: StatementCache): (step: Step) => unknown {
  return (step) =>
    step.kind === 'rows'
      ? stmt(step.sql, true).all(...step.params)
      : stmt(step.sql).run(...step.params).changes;
}
