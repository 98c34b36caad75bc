/**
 * The Postgres event store (node-postgres): the same events and the same hash chains as the SQLite
 * store, for runtimes in many processes on many hosts appending to one log. See
 * {@link openPostgresStore}.
 */
import pg from 'pg';
import { realClock, type Clock } from '../core/clock.js';
import { ConfigError, isKeelError } from '../core/errors.js';
import { GENESIS_HASH, anchorClaimOf, chainHash, latestAnchors, verifyChainPages } from './chain.js';
import type { AsyncChainLookup, ChainRow, StoredAnchorClaim } from './chain.js';
import {
  CorruptDatabaseError,
  DiskFullError,
  EventLogError,
  EventValidationError,
  ReadOnlyDatabaseError,
  StoreAccessDeniedError,
  StoreClosedError,
  StoreUnavailableError,
} from './errors.js';
import { EVENT_VERSIONS, SYSTEM_WORKFLOW_ID } from './events.js';
import type { EventClass, EventPayloads, KeelEvent, NewEvent } from './events.js';
import { SCHEMA_NAME, ensureSchema, quoteSchema } from './postgres-schema.js';
import {
  CHAINED_COLUMNS,
  EVENT_COLUMNS,
  compileFilter,
  mergeBySeq,
  toChained,
  toEvent,
} from './postgres-query.js';
import { checkFilter, typeList } from './filter.js';
import type { EventRow, SqlFilter } from './postgres-query.js';
import type {
  ChainHeads,
  ChainedEvent,
  CommitInfo,
  CommitListener,
  EventFilter,
  EventStore,
  PruneResult,
  VerifyResult,
} from './store.js';
import { canonicalPayloadJson, prepareEvents } from './validate.js';

/** Options of {@link openPostgresStore}. */
export interface PostgresStoreOptions {
  /**
   * `postgres://user:password@host:port/database` of the server. The database must exist; the
   * store creates its schema (tables, indexes, triggers) in it on first use, unless `readonly`.
   */
  url: string;
  /**
   * Postgres schema (namespace) that holds the store's tables: lower-case letters, digits and `_`.
   * Default `'keel'`. Runtimes that share one log use the same database and schema.
   */
  schema?: string;
  /** Where anchor events (retention) read their `ts` from. Default {@link realClock}. */
  clock?: Clock;
  /**
   * Open for reading only (auditors): queries and `verify` work, `append`/`prune` reject with
   * `ReadOnlyDatabaseError`, every transaction is read-only on the server, and the schema must
   * already exist. Default `false`.
   */
  readonly?: boolean;
  /**
   * How long to wait for a connection before failing with `StoreUnavailableError`, in ms: an
   * unreachable server is an error, never a hang. Default 5000.
   */
  connectTimeoutMs?: number;
  /**
   * Most events one transaction commits, in events. Appends that arrive while a transaction is in
   * flight wait for the next one; a single append is never split. Default 4096.
   */
  maxBatch?: number;
  /**
   * Further node-postgres pool settings (`max` connections, `ssl`, `statement_timeout`,
   * `lock_timeout` …). `connectionString`, `connectionTimeoutMillis` and `types` are the store's.
   */
  pool?: pg.PoolConfig;
  /** Receives errors thrown by `onCommit` listeners (they never break a commit). Default `console.error`. */
  onListenerError?: (error: unknown, events: readonly KeelEvent[]) => void;
}

/** Counters of a {@link PostgresEventStore} since it was opened (this process only). */
export interface PostgresStoreStats {
  /** Write transactions committed (group commits and prunes). */
  transactions: number;
  /** Events committed, anchors included. */
  events: number;
}

/** The Postgres {@link EventStore}: reads answer asynchronously. */
export interface PostgresEventStore extends EventStore {
  /** `host:port/database` the store writes to (no password): what its errors name. */
  readonly target: string;
  /** The Postgres schema holding its tables. */
  readonly schema: string;
  /**
   * Connects and creates or checks the schema. Every operation does this on first use; await it at
   * start-up to fail fast. Rejects with `StoreUnavailableError` (unreachable, timed out, no such
   * database), `StoreAccessDeniedError` (login or privilege refused), `SchemaConflictError`
   * (foreign tables named like the store's) or `SchemaVersionError` (a newer Keel's schema); a
   * later call tries again.
   */
  ready(): Promise<void>;
  /** Events matching the filter, in seq order (one query). */
  query(filter?: EventFilter): Promise<KeelEvent[]>;
  /** Streams matches in seq order, one keyset page (1000 rows) per query: never the whole table. */
  iterate(filter?: EventFilter): AsyncIterableIterator<KeelEvent>;
  /** Like `iterate`, with each event's chain hashes. */
  iterateChained(filter?: EventFilter): AsyncIterableIterator<ChainedEvent>;
  /** Highest committed seq across every process (0 for an empty log). */
  lastSeq(): Promise<number>;
  /** Head of each class chain, as committed by any process. */
  heads(): Promise<ChainHeads>;
  /** Walks every chain in one consistent snapshot and reports the first break. */
  verify(): Promise<VerifyResult>;
  /** Commit counters: `events / transactions` is the average group-commit size. */
  stats(): PostgresStoreStats;
}

/**
 * Opens an event log in a Postgres database. Returns at once; the connection and the schema are
 * set up on first use (or by `ready()`).
 *
 * Appends are validated, queued, and committed together (group commit): each transaction locks
 * the log's heads row, reads the current heads inside the lock (another process may have appended),
 * chains and inserts the batch, and commits, so every process appends to one gap-free chain. Each
 * `append` resolves only after COMMIT, and `onCommit` listeners see this process's batches, in seq
 * order, before their appends resolve. A log copied from SQLite verifies the same way here.
 *
 * @throws ConfigError for a bad option (nothing connects before first use).
 * @example
 * const store = openPostgresStore({ url: 'postgres://keel@db.internal:5432/keel' });
 * await store.ready();
 * const [event] = await store.append([
 *   { ts: clock.now(), workflowId: 'wf-1', type: 'feedback.recorded', payload: { correct: true } },
 * ]);
 * console.log(event?.seq, (await store.verify()).ok);
 * await store.close();
 */
export function openPostgresStore(options: PostgresStoreOptions): PostgresEventStore {
  return new PostgresStore(resolveOptions(options));
}

/**
 * Short form of {@link openPostgresStore}: `createRuntime({ store: postgres(url) })`.
 *
 * @example
 * const store = postgres(process.env.DATABASE_URL ?? 'postgres://keel@127.0.0.1/keel', { schema: 'audit' });
 */
export function postgres(url: string, options: Omit<PostgresStoreOptions, 'url'> = {}): PostgresEventStore {
  return openPostgresStore({ ...options, url });
}

// ── internals ─────────────────────────────────────────────────────────────────────────────────

interface ResolvedOptions {
  url: string;
  target: string;
  schema: string;
  clock: Clock;
  readonly: boolean;
  connectTimeoutMs: number;
  maxBatch: number;
  pool: pg.PoolConfig;
  onListenerError: (error: unknown, events: readonly KeelEvent[]) => void;
}

function resolveOptions(options: PostgresStoreOptions): ResolvedOptions {
  const { url } = options;
  const target = describeTarget(url);
  const schema = options.schema ?? 'keel';
  if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema)) {
    throw new ConfigError(
      'schema',
      `must be a lower-case Postgres identifier (letters, digits, _), got ${JSON.stringify(schema)}`,
    );
  }
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  if (!Number.isInteger(connectTimeoutMs) || connectTimeoutMs < 1) {
    throw new ConfigError('connectTimeoutMs', `must be an integer >= 1 (ms), got ${connectTimeoutMs}`);
  }
  const maxBatch = options.maxBatch ?? 4096;
  if (!Number.isInteger(maxBatch) || maxBatch < 1) {
    throw new ConfigError('maxBatch', `must be an integer >= 1 (events), got ${maxBatch}`);
  }
  const readonly = options.readonly ?? false;
  const extra = options.pool ?? {};
  const serverOptions = [extra.options, readonly ? '-c default_transaction_read_only=on' : undefined]
    .filter((o) => o !== undefined && o !== '')
    .join(' ');
  return {
    url,
    target,
    schema,
    clock: options.clock ?? realClock,
    readonly,
    connectTimeoutMs,
    maxBatch,
    pool: {
      application_name: 'keel',
      keepAlive: true,
      ...extra,
      connectionString: url,
      connectionTimeoutMillis: connectTimeoutMs,
      types: PG_TYPES,
      ...(serverOptions === '' ? {} : { options: serverOptions }),
    },
    onListenerError:
      options.onListenerError ?? ((error) => console.error('keel: onCommit listener threw', error)),
  };
}

/** `host:port/database` of a postgres:// URL, for messages (the password never appears). */
function describeTarget(url: unknown): string {
  let u: URL | undefined;
  try {
    u = typeof url === 'string' ? new URL(url) : undefined;
  } catch {
    u = undefined;
  }
  if (u === undefined || (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:')) {
    throw new ConfigError(
      'url',
      `must be a postgres:// URL such as postgres://user@host:5432/database, got ${typeof url === 'string' ? JSON.stringify(url.replace(/:[^:@/]*@/, ':***@')) : typeof url}`,
    );
  }
  const host = u.hostname || u.searchParams.get('host') || 'localhost';
  const database = decodeURIComponent(u.pathname.slice(1)) || decodeURIComponent(u.username) || 'postgres';
  return `${host}:${u.port || '5432'}/${database}`;
}

/** `bigint` columns (seq, v) arrive as numbers: seqs stay far below 2^53. */
const INT8_OID = 20;
const parseInt8 = (value: string): number => Number(value);
const builtinParser = pg.types.getTypeParser as (oid: number, format?: 'text' | 'binary') => unknown;
const PG_TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
    oid === INT8_OID && format !== 'binary'
      ? parseInt8
      : builtinParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/** Rows per keyset page for `iterate` and `verify`. */
const PAGE_SIZE = 1000;
/** Named (server-side prepared) read statements kept per store. */
const MAX_NAMED_STATEMENTS = 64;

/** Node's network error codes that mean "no server there (now)". */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

/** node-postgres / pg-pool messages of a connection that failed, timed out or broke. */
const CONNECTION_MESSAGE =
  /timeout exceeded when trying to connect|Connection terminated|not queryable|connection error|Connection ended/i;

interface Head {
  seq: number;
  hash: string;
}

interface ChainState {
  seq: number;
  audit: Head;
  operational: Head;
}

interface HeadsRow {
  seq: number;
  audit_seq: number;
  audit_hash: string;
  operational_seq: number;
  operational_hash: string;
}

interface PendingAppend {
  events: KeelEvent[];
  payloadJson: string[];
  resolve: (events: KeelEvent[]) => void;
  reject: (error: unknown) => void;
}

/** Column arrays of rows to insert (one `unnest` parameter each). */
class RowBuffer {
  readonly seq: number[] = [];
  readonly ts: number[] = [];
  readonly workflowId: string[] = [];
  readonly type: string[] = [];
  readonly v: number[] = [];
  readonly cls: string[] = [];
  readonly payload: string[] = [];
  readonly prevHash: string[] = [];
  readonly hash: string[] = [];

  /** Assigns the next seq to `e`, chains it into its class and buffers its row. */
  chain(state: ChainState, e: KeelEvent, payloadJson: string): void {
    const head = e.class === 'audit' ? state.audit : state.operational;
    const seq = state.seq + 1;
    const prevHash = head.hash;
    const hash = chainHash(prevHash, seq, e.ts, e.workflowId, e.type, e.v, e.class, payloadJson);
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
    this.prevHash.push(prevHash);
    this.hash.push(hash);
  }
}

/** A client that breaks while held fails its next query; this keeps the break from crashing the process. */
const ignoreClientError = (): void => undefined;

type Queryable = Pick<pg.ClientBase, 'query'>;

class PostgresStore implements PostgresEventStore {
  readonly readonly: boolean;
  readonly target: string;
  readonly schema: string;

  private readonly options: ResolvedOptions;
  private readonly pool: pg.Pool;
  private readonly sql: ReturnType<typeof statements>;
  private readonly names = new Map<string, string>();

  private initialised = false;
  private initialising: Promise<void> | undefined;

  private queue: PendingAppend[] = [];
  private queuedEvents = 0;
  private scheduled: NodeJS.Immediate | undefined;
  private draining: Promise<void> | undefined;
  /** Tail of the write jobs (group commits, prunes) of this process: one runs at a time. */
  private writes: Promise<unknown> = Promise.resolve();
  private listeners: CommitListener[] = [];
  private closed = false;
  private ended = false;
  private closing: Promise<void> | undefined;
  private transactions = 0;
  private committedEvents = 0;

  constructor(options: ResolvedOptions) {
    this.options = options;
    this.readonly = options.readonly;
    this.target = options.target;
    this.schema = options.schema;
    this.sql = statements(quoteSchema(options.schema));
    this.pool = new pg.Pool(options.pool);
    // An idle connection that breaks (server restart) is dropped by the pool; the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  // ── lifecycle ───────────────────────────────────────────────────────────────────────────────

  ready(): Promise<void> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    return this.ensureReady();
  }

  private ensureReady(): Promise<void> {
    if (this.initialised) return Promise.resolve();
    this.initialising ??= this.initialise().then(
      () => {
        this.initialised = true;
        this.initialising = undefined;
      },
      (e: unknown) => {
        this.initialising = undefined;
        throw e;
      },
    );
    return this.initialising;
  }

  private async initialise(): Promise<void> {
    await this.withClient((client) => ensureSchema(client, this.target, this.schema, this.options.readonly));
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    await this.settle();
    this.ended = true;
    await this.pool.end();
  }

  /** Waits until every queued append and write job has finished. */
  private async settle(): Promise<void> {
    while (this.queue.length > 0 || this.draining !== undefined) {
      this.startDrain();
      await this.draining;
    }
    await this.writes;
  }

  stats(): PostgresStoreStats {
    return { transactions: this.transactions, events: this.committedEvents };
  }

  onCommit(listener: CommitListener): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners = [...this.listeners.slice(0, i), ...this.listeners.slice(i + 1)];
    };
  }

  // ── writes ──────────────────────────────────────────────────────────────────────────────────

  append(events: readonly NewEvent[]): Promise<KeelEvent[]> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    if (this.readonly) return Promise.reject(this.readOnlyError());
    let prepared: ReturnType<typeof prepareEvents>;
    try {
      prepared = prepareEvents(events);
      checkStorable(prepared.events);
    } catch (e) {
      return Promise.reject(asError(e));
    }
    const n = prepared.events.length;
    if (n === 0) return Promise.resolve([]);
    return new Promise<KeelEvent[]>((resolve, reject) => {
      this.queue.push({ events: prepared.events, payloadJson: prepared.payloadJson, resolve, reject });
      this.queuedEvents += n;
      if (this.draining !== undefined) return; // the running drain takes it next
      if (this.queuedEvents >= this.options.maxBatch) this.startDrain();
      else this.scheduled ??= setImmediate(this.startDrain);
    });
  }

  /** Starts committing the queue (unless already doing so). */
  private readonly startDrain = (): void => {
    if (this.scheduled !== undefined) {
      clearImmediate(this.scheduled);
      this.scheduled = undefined;
    }
    if (this.draining !== undefined || this.queue.length === 0) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if (this.queue.length > 0) this.startDrain();
    });
  };

  /** Commits queued appends, at most `maxBatch` events per transaction, until the queue is empty. */
  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      let take = 0;
      let events = 0;
      while (take < this.queue.length && (take === 0 || events < this.options.maxBatch)) {
        events += (this.queue[take] as PendingAppend).events.length;
        take++;
      }
      const batch = this.queue.splice(0, take);
      this.queuedEvents -= events;
      await this.exclusive(() => this.commitBatch(batch));
    }
  }

  /** Runs write jobs one at a time, in call order. */
  private exclusive<T>(job: () => Promise<T>): Promise<T> {
    const run = this.writes.then(job, job);
    this.writes = run.catch(() => undefined);
    return run;
  }

  /**
   * One group commit: lock the heads, chain and insert every event of the batch, commit; then tell
   * listeners and resolve. On failure every append of the batch rejects with the same named error.
   */
  private async commitBatch(batch: readonly PendingAppend[]): Promise<void> {
    const startedAt = performance.now(); // commit duration for metrics only, never for logic
    let commitSent = false;
    try {
      await this.ensureReady();
      await this.withClient(async (client) => {
        const state = await this.lockHeads(client);
        const rows = new RowBuffer();
        for (const p of batch) {
          const { events, payloadJson } = p;
          for (let i = 0; i < events.length; i++) {
            rows.chain(state, events[i] as KeelEvent, payloadJson[i] as string);
          }
        }
        await this.insertRows(client, rows, state);
        commitSent = true;
        await client.query('COMMIT');
      });
    } catch (e) {
      const error = this.toError(e, commitSent);
      for (const p of batch) p.reject(error);
      return;
    }
    let events: KeelEvent[] = (batch[0] as PendingAppend).events;
    if (batch.length > 1) {
      events = [];
      for (const p of batch) for (const e of p.events) events.push(e);
    }
    this.committed(events, { commitMs: performance.now() - startedAt });
    for (const p of batch) p.resolve(p.events);
  }

  /**
   * Begins a transaction and locks the heads row: from here until COMMIT no other writer (in any
   * process) can append. Reads the heads inside the lock, and rebuilds them from the events when
   * the table's last seq disagrees (rows copied in from another log).
   */
  private async lockHeads(client: pg.ClientBase): Promise<ChainState> {
    // Three statements, one round trip; in READ COMMITTED each one reads the latest commits.
    const results = (await client.query(this.sql.beginAndLock)) as unknown as pg.QueryResult[];
    const row = results[1]?.rows[0] as HeadsRow | undefined;
    const max = (results[2]?.rows[0] as { max: number | null } | undefined)?.max ?? 0;
    if (row === undefined) {
      throw new EventLogError(
        'EVENTLOG_CORRUPT_HEADS',
        `${this.target}: the heads row of schema "${this.schema}" is missing, so no append can be chained. Restore it from a backup or re-create the schema from a copy of the events; nothing was written.`,
      );
    }
    if (row.seq === max) {
      return {
        seq: row.seq,
        audit: { seq: row.audit_seq, hash: row.audit_hash },
        operational: { seq: row.operational_seq, hash: row.operational_hash },
      };
    }
    return this.headsFromEvents(client, max);
  }

  /** Inserts the buffered rows and moves the heads row to `state`, in one statement. */
  private async insertRows(client: pg.ClientBase, rows: RowBuffer, state: ChainState): Promise<void> {
    await client.query({
      name: 'keel_append',
      text: this.sql.append,
      values: [
        rows.seq,
        rows.ts,
        rows.workflowId,
        rows.type,
        rows.v,
        rows.cls,
        rows.payload,
        rows.prevHash,
        rows.hash,
        state.seq,
        state.audit.seq,
        state.audit.hash,
        state.operational.seq,
        state.operational.hash,
      ],
    });
  }

  prune(options: { olderThan: number; class: EventClass }): Promise<PruneResult> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    if (this.readonly) return Promise.reject(this.readOnlyError());
    const { olderThan, class: cls } = options;
    if (typeof olderThan !== 'number' || Number.isNaN(olderThan)) {
      return Promise.reject(
        new ConfigError('prune.olderThan', `must be a time in ms since epoch, got ${String(olderThan)}`),
      );
    }
    if (cls !== 'audit' && cls !== 'operational') {
      return Promise.reject(
        new ConfigError('prune.class', `must be 'audit' or 'operational', got ${JSON.stringify(cls)}`),
      );
    }
    this.startDrain(); // appends queued before the prune commit before it
    return this.exclusive(() => this.pruneNow(cls, olderThan));
  }

  /**
   * Retention, in one transaction under the heads lock: removes every `cls` event before the first
   * one at or after `olderThan`, through the sanctioned path (`SET LOCAL keel.retention`), and
   * appends a `log.anchor` that the class chain continues from.
   */
  private async pruneNow(cls: EventClass, olderThan: number): Promise<PruneResult> {
    const startedAt = performance.now();
    let written: KeelEvent[] = [];
    let commitSent = false;
    let result: PruneResult;
    try {
      await this.ensureReady();
      result = await this.withClient(async (client) => {
        const state = await this.lockHeads(client);
        const cut = await client.query<{ seq: number }>(this.sql.pruneCut, [cls, olderThan]);
        const last = await client.query<Head>(this.sql.pruneLast, [
          cls,
          cut.rows[0]?.seq ?? Number.MAX_SAFE_INTEGER,
        ]);
        const through = last.rows[0];
        if (through === undefined) {
          await client.query('ROLLBACK');
          return { class: cls, pruned: 0, throughSeq: 0 };
        }
        // Pruning audit may delete the anchor the operational chain starts from: carry it forward.
        const carried =
          cls === 'audit' ? latestAnchors(await this.loadAnchors(client)).operational : undefined;

        await client.query("SET LOCAL keel.retention = 'on'");
        const deleted = await client.query(this.sql.pruneDelete, [cls, through.seq]);
        await client.query("SET LOCAL keel.retention = 'off'");

        const now = this.options.clock.now();
        const rows = new RowBuffer();
        const anchor = (payload: EventPayloads['log.anchor']): KeelEvent => {
          const event = anchorEvent(now, payload);
          rows.chain(state, event, canonicalPayloadJson(payload));
          return event;
        };
        const pruned = deleted.rowCount ?? 0;
        written = [
          anchor({
            prunedClass: cls,
            prunedThroughSeq: through.seq,
            lastPrunedHash: through.hash,
            prunedCount: pruned,
            olderThanTs: olderThan,
          }),
        ];
        if (carried !== undefined && carried.intact && carried.seq <= through.seq) {
          written.push(anchor(carried.payload));
        }
        await this.insertRows(client, rows, state);
        commitSent = true;
        await client.query('COMMIT');
        return { class: cls, pruned, throughSeq: through.seq, anchorSeq: (written[0] as KeelEvent).seq };
      });
    } catch (e) {
      throw this.toError(e, commitSent);
    }
    if (written.length > 0) this.committed(written, { commitMs: performance.now() - startedAt });
    return result;
  }

  private committed(events: readonly KeelEvent[], info?: CommitInfo): void {
    this.transactions++;
    this.committedEvents += events.length;
    for (const listener of this.listeners) {
      try {
        listener(events, info);
      } catch (error) {
        try {
          this.options.onListenerError(error, events);
        } catch {
          // A failing error reporter must not break the commit either.
        }
      }
    }
  }

  // ── reads ───────────────────────────────────────────────────────────────────────────────────

  async query(filter: EventFilter = {}): Promise<KeelEvent[]> {
    this.assertOpen();
    checkFilter(filter);
    await this.ready();
    const c = filter.limit === 0 ? undefined : await this.plan(filter);
    if (c === undefined) return [];
    const params = [...c.params];
    const where = [...c.where];
    if (c.afterSeq > 0) {
      params.push(c.afterSeq);
      where.push(`seq > $${params.length}`);
    }
    let sql = `SELECT ${EVENT_COLUMNS} FROM ${this.sql.events}`;
    if (where.length > 0) sql += ` WHERE ${where.join(' AND ')}`;
    sql += ' ORDER BY seq';
    if (filter.limit !== undefined) {
      params.push(filter.limit);
      sql += ` LIMIT $${params.length}`;
    }
    const rows = await this.rows<EventRow>(this.pool, sql, params);
    const out = new Array<KeelEvent>(rows.length);
    for (let i = 0; i < rows.length; i++) out[i] = toEvent(rows[i] as EventRow);
    return out;
  }

  iterate(filter: EventFilter = {}): AsyncIterableIterator<KeelEvent> {
    this.assertOpen();
    checkFilter(filter);
    return this.select<EventRow, KeelEvent>(filter, EVENT_COLUMNS, toEvent);
  }

  iterateChained(filter: EventFilter = {}): AsyncIterableIterator<ChainedEvent> {
    this.assertOpen();
    checkFilter(filter);
    return this.select<ChainRow, ChainedEvent>(filter, CHAINED_COLUMNS, toChained);
  }

  async lastSeq(): Promise<number> {
    this.assertOpen();
    await this.ready();
    const [row] = await this.rows<[number]>(this.pool, this.sql.lastSeq, []);
    return row?.[0] ?? 0;
  }

  async heads(): Promise<ChainHeads> {
    this.assertOpen();
    await this.ready();
    const [row] = await this.rows<[number, number, string, number, string, number]>(
      this.pool,
      this.sql.heads,
      [],
    );
    if (row !== undefined && row[0] === row[5]) {
      return { audit: { seq: row[1], hash: row[2] }, operational: { seq: row[3], hash: row[4] } };
    }
    const state = await this.headsFromEvents(this.pool, row?.[5] ?? 0);
    return { audit: state.audit, operational: state.operational };
  }

  /**
   * Walks every chain in one consistent snapshot (a REPEATABLE READ transaction, so concurrent
   * appends and prunes by other processes cannot make it see half a change).
   */
  async verify(): Promise<VerifyResult> {
    this.assertOpen();
    await this.ready();
    return this.withClient(async (client) => {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const anchors = await this.loadAnchors(client);
      const exists = async (sql: string, hash: string, afterSeq: number): Promise<boolean> =>
        (await this.rows(client, sql, [hash, afterSeq])).length > 0;
      const lookup: AsyncChainLookup = {
        hashExistsAfter: (hash, afterSeq) => exists(this.sql.hashAfter, hash, afterSeq),
        prevHashExistsAfter: (prevHash, afterSeq) => exists(this.sql.prevHashAfter, prevHash, afterSeq),
      };
      const result = await verifyChainPages(anchors, this.chainPages(client), lookup);
      await client.query('COMMIT');
      return result;
    });
  }

  /** Every row in seq order, a keyset page at a time. */
  private async *chainPages(client: Queryable): AsyncGenerator<ChainRow[]> {
    let cursor = 0;
    for (;;) {
      this.assertOpen();
      const rows = await this.rows<ChainRow>(client, this.sql.page, [cursor, PAGE_SIZE]);
      yield rows;
      if (rows.length < PAGE_SIZE) return;
      cursor = (rows[rows.length - 1] as ChainRow)[0];
    }
  }

  /** Streams matches in seq order; a list of types is read as one cursor per type, merged. */
  private async *select<R extends EventRow | ChainRow, T>(
    filter: EventFilter,
    columns: string,
    map: (row: R) => T,
  ): AsyncGenerator<T> {
    await this.ready();
    if (filter.limit === 0) return;
    const types = typeList(filter);
    if (types === undefined) {
      yield* this.pages(filter, columns, map);
      return;
    }
    const sources = types.map((type) =>
      this.pages<R, R>({ ...filter, type, limit: undefined }, columns, (r) => r),
    );
    let remaining = filter.limit ?? Number.POSITIVE_INFINITY;
    for await (const row of mergeBySeq(sources)) {
      if (remaining-- <= 0) return;
      yield map(row);
    }
  }

  /** Keyset pagination: one short query per page, so memory stays flat and writes interleave. */
  private async *pages<R extends EventRow | ChainRow, T>(
    filter: EventFilter,
    columns: string,
    map: (row: R) => T,
  ): AsyncGenerator<T> {
    const c = await this.plan(filter);
    if (c === undefined) return;
    const n = c.params.length;
    const sql = `SELECT ${columns} FROM ${this.sql.events} WHERE ${[...c.where, `seq > $${n + 1}`].join(' AND ')} ORDER BY seq LIMIT $${n + 2}`;
    let cursor = c.afterSeq;
    let remaining = filter.limit ?? Number.POSITIVE_INFINITY;
    while (remaining > 0) {
      this.assertOpen();
      const size = Math.min(PAGE_SIZE, remaining);
      const rows = await this.rows<R>(this.pool, sql, [...c.params, cursor, size]);
      for (let i = 0; i < rows.length; i++) yield map(rows[i] as R);
      if (rows.length < size) return;
      cursor = (rows[rows.length - 1] as R)[0];
      remaining -= rows.length;
    }
  }

  /**
   * Compiles a filter. A time window with no workflow or type narrows the scan to the seq range of
   * the window, read once from the ts index, so pages walk the primary key instead of sorting.
   */
  private async plan(filter: EventFilter): Promise<SqlFilter | undefined> {
    const c = compileFilter(filter);
    if (c === undefined) return undefined;
    const { fromTs, toTs } = filter;
    if ((fromTs === undefined && toTs === undefined) || filter.workflowId !== undefined) return c;
    if (filter.type !== undefined) return c;
    const where: string[] = [];
    const params: number[] = [];
    if (fromTs !== undefined) {
      params.push(fromTs);
      where.push(`ts >= $${params.length}`);
    }
    if (toTs !== undefined) {
      params.push(toTs);
      where.push(`ts < $${params.length}`);
    }
    const [bounds] = await this.rows<[number | null, number | null]>(
      this.pool,
      `SELECT min(seq), max(seq) FROM ${this.sql.events} WHERE ${where.join(' AND ')}`,
      params,
    );
    if (bounds === undefined || bounds[0] === null || bounds[1] === null) return undefined;
    c.afterSeq = Math.max(c.afterSeq, bounds[0] - 1);
    c.params.push(bounds[1]);
    c.where.push(`seq <= $${c.params.length}`);
    return c;
  }

  /**
   * The heads rebuilt from the events: each class's last event, else its retention anchor's head,
   * else genesis (found by walking back from the end, where both classes interleave densely).
   */
  private async headsFromEvents(runner: Queryable, maxSeq: number): Promise<ChainState> {
    let anchors: Partial<Record<EventClass, StoredAnchorClaim>> | undefined;
    const headOf = async (cls: EventClass): Promise<Head> => {
      const [row] = await this.rows<[number, string]>(runner, this.sql.classHead, [cls]);
      if (row !== undefined) return { seq: row[0], hash: row[1] };
      anchors ??= latestAnchors(await this.loadAnchors(runner));
      const a = anchors[cls];
      return a ? { seq: a.prunedThroughSeq, hash: a.lastPrunedHash } : { seq: 0, hash: GENESIS_HASH };
    };
    return { seq: maxSeq, audit: await headOf('audit'), operational: await headOf('operational') };
  }

  /** Every `log.anchor` event's claim (there are few: audit retention removes old ones). */
  private async loadAnchors(runner: Queryable): Promise<StoredAnchorClaim[]> {
    const rows = await this.rows<ChainRow>(runner, this.sql.anchors, []);
    const claims: StoredAnchorClaim[] = [];
    for (const r of rows) {
      const claim = anchorClaimOf(r);
      if (claim !== undefined) claims.push(claim);
    }
    return claims;
  }

  // ── plumbing ────────────────────────────────────────────────────────────────────────────────

  /** Array rows of a query, through a named (prepared once per connection) statement. */
  private async rows<R extends readonly unknown[]>(
    runner: Queryable,
    text: string,
    values: unknown[],
  ): Promise<R[]> {
    let name = this.names.get(text);
    if (name === undefined && this.names.size < MAX_NAMED_STATEMENTS) {
      name = `keel_q${this.names.size}`;
      this.names.set(text, name);
    }
    try {
      const result = await runner.query<unknown[]>({
        text,
        values,
        rowMode: 'array',
        ...(name ? { name } : {}),
      });
      return result.rows as unknown as R[];
    } catch (e) {
      throw this.closed && !isKeelError(e) ? new StoreClosedError() : this.toError(e);
    }
  }

  /**
   * Runs `work` on a pooled connection. A connection that saw an error is discarded rather than
   * returned (the server rolls back whatever transaction it had open).
   */
  private async withClient<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.ended) throw new StoreClosedError();
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw this.toError(e);
    }
    client.on('error', ignoreClientError);
    let failed = false;
    try {
      return await work(client);
    } catch (e) {
      failed = true;
      throw e;
    } finally {
      client.removeListener('error', ignoreClientError);
      client.release(failed);
    }
  }

  private toError(e: unknown, commitSent = false): unknown {
    return toStoreError(e, this.target, this.options.connectTimeoutMs, commitSent);
  }

  private readOnlyError(): ReadOnlyDatabaseError {
    return new ReadOnlyDatabaseError(this.target, 'opened with { readonly: true }', {
      fix: 'Open it without readonly to append',
    });
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }
}

/** The SQL texts of one schema. */
function statements(s: string) {
  const events = `${s}.events`;
  return {
    events,
    beginAndLock: `BEGIN; SELECT seq, audit_seq, audit_hash, operational_seq, operational_hash FROM ${s}.heads WHERE id = 1 FOR UPDATE; SELECT max(seq) AS max FROM ${events}`,
    append: `WITH inserted AS (
  INSERT INTO ${events} (seq, ts, workflow_id, type, v, class, payload, prev_hash, hash)
  SELECT * FROM unnest($1::bigint[], $2::float8[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[])
)
UPDATE ${s}.heads SET seq = $10, audit_seq = $11, audit_hash = $12, operational_seq = $13, operational_hash = $14 WHERE id = 1`,
    lastSeq: `SELECT coalesce(max(seq), 0) FROM ${events}`,
    heads: `SELECT seq, audit_seq, audit_hash, operational_seq, operational_hash, (SELECT coalesce(max(seq), 0) FROM ${events}) FROM ${s}.heads WHERE id = 1`,
    classHead: `SELECT seq, hash FROM ${events} WHERE class = $1 ORDER BY seq DESC LIMIT 1`,
    anchors: `SELECT ${CHAINED_COLUMNS} FROM ${events} WHERE workflow_id = '${SYSTEM_WORKFLOW_ID}' AND type = 'log.anchor' ORDER BY seq`,
    page: `SELECT ${CHAINED_COLUMNS} FROM ${events} WHERE seq > $1 ORDER BY seq LIMIT $2`,
    hashAfter: `SELECT 1 FROM ${events} WHERE hash = $1 AND seq > $2 LIMIT 1`,
    prevHashAfter: `SELECT 1 FROM ${events} WHERE prev_hash = $1 AND seq > $2 LIMIT 1`,
    pruneCut: `SELECT seq FROM ${events} WHERE class = $1 AND ts >= $2 ORDER BY seq LIMIT 1`,
    pruneLast: `SELECT seq, hash FROM ${events} WHERE class = $1 AND seq < $2 ORDER BY seq DESC LIMIT 1`,
    pruneDelete: `DELETE FROM ${events} WHERE class = $1 AND seq <= $2`,
  };
}

function anchorEvent(ts: number, payload: EventPayloads['log.anchor']): KeelEvent<'log.anchor'> {
  return {
    seq: 0,
    ts,
    workflowId: SYSTEM_WORKFLOW_ID,
    type: 'log.anchor',
    v: EVENT_VERSIONS['log.anchor'],
    class: 'audit',
    payload,
  };
}

/** What Postgres text cannot hold (payloads are JSON, which escapes NUL; workflow ids are raw). */
function checkStorable(events: readonly KeelEvent[]): void {
  for (let i = 0; i < events.length; i++) {
    if ((events[i] as KeelEvent).workflowId.includes('\u0000')) {
      throw new EventValidationError(
        `events[${i}].workflowId`,
        'contains a NUL character (\\u0000), which Postgres text cannot store',
      );
    }
  }
}

/** Maps node-postgres and network errors to the event log's named errors; others pass through. */
function toStoreError(e: unknown, target: string, connectTimeoutMs: number, commitSent: boolean): unknown {
  if (isKeelError(e)) return e;
  if (e instanceof pg.DatabaseError) {
    const code = e.code ?? '';
    if (code === '28P01' || code === '28000' || code === '42501') {
      return new StoreAccessDeniedError(target, e.message, { cause: e });
    }
    if (code === '3D000')
      return new StoreUnavailableError(target, `${e.message}; create it first`, { cause: e });
    if (code.startsWith('08') || code.startsWith('57P') || code === '53300') {
      return new StoreUnavailableError(target, e.message, { cause: e, outcomeUnknown: commitSent });
    }
    if (code === '25006') {
      return new ReadOnlyDatabaseError(target, `the server refused the write: ${e.message}`, {
        cause: e,
        fix: 'Connect to the primary with a role that may INSERT into the schema, or open the store with { readonly: true } to audit it',
      });
    }
    if (code === '53100') return new DiskFullError(target, { cause: e });
    if (code === 'XX001' || code === 'XX002') return new CorruptDatabaseError(target, { cause: e });
    return new EventLogError(
      'EVENTLOG_POSTGRES',
      `${target}: Postgres failed (${code}: ${e.message}); nothing of this operation was written and committed events are intact.`,
      { cause: e },
    );
  }
  const reason = connectionFailure(e, connectTimeoutMs);
  if (reason !== undefined) {
    return new StoreUnavailableError(target, reason, { cause: e, outcomeUnknown: commitSent });
  }
  return e;
}

/** Why a connection failed, in words, or `undefined` when `e` is not a connection failure. */
function connectionFailure(e: unknown, connectTimeoutMs: number): string | undefined {
  if (!(e instanceof Error)) return undefined;
  const errors = e instanceof AggregateError ? (e.errors as unknown[]) : [e];
  for (const err of errors) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) {
      if (code === 'ECONNREFUSED') return 'connection refused: no server listens there';
      if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host name does not resolve';
      return `${code}: ${(err as Error).message || 'the network failed'}`;
    }
  }
  if (/timeout/i.test(e.message) && /connect/i.test(e.message)) {
    return `no connection within connectTimeoutMs (${connectTimeoutMs} ms)`;
  }
  if (CONNECTION_MESSAGE.test(e.message)) return `the connection broke: ${e.message}`;
  return undefined;
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
