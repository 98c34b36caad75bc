/**
 * Opening a Postgres event log: options checked and defaulted (the URL described without its
 * password), `bigint` parsing, and node-postgres and network errors mapped to the event log's named
 * errors. Its option types are re-exported by `postgres.ts`; the rest is internal to it.
 */
import pg from 'pg';
import { realClock, type Clock } from '../core/clock.js';
import { ConfigError, isKeelError } from '../core/errors.js';
import {
  CorruptDatabaseError,
  DiskFullError,
  EventLogError,
  EventValidationError,
  ReadOnlyDatabaseError,
  StoreAccessDeniedError,
  StoreUnavailableError,
} from './errors.js';
import type { KeelEvent } from './events.js';
import { SCHEMA_NAME } from './postgres-schema.js';

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
   * Group commits use one more connection of their own (pipeline mode), with the same settings.
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

export interface ResolvedOptions {
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

export function resolveOptions(options: PostgresStoreOptions): ResolvedOptions {
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

/** What Postgres text cannot hold (payloads are JSON, which escapes NUL; workflow ids are raw). */
export function checkStorable(events: readonly KeelEvent[]): void {
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
export function toStoreError(
  e: unknown,
  target: string,
  connectTimeoutMs: number,
  commitSent: boolean,
): unknown {
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
