/**
 * The Postgres schema of the event log and its migrations. Every table lives in one Postgres schema
 * (namespace, default `keel`), whose `meta` row records the version; migration `i` takes it from
 * version `i` to `i + 1`. Add a migration at the end, never edit a shipped one.
 */
import type pg from 'pg';
import { GENESIS_HASH } from './chain.js';
import { EventLogError, SchemaConflictError, SchemaVersionError, StoreAccessDeniedError } from './errors.js';

/**
 * Version 1.
 * - `events`: the same columns as the SQLite table. `payload` is text, byte for byte the canonical
 *   JSON that is hashed (jsonb would reorder keys and normalise numbers); `ts` is `double precision`
 *   so any finite JS number round-trips exactly. Keyset pages of a workflow or a type read
 *   `(workflow_id, seq)` / `(type, seq)` in order; there is no class index (both classes interleave
 *   densely, so a class filter walks the primary key), as in SQLite.
 * - `heads`: one row, the last seq and each class chain's head. Writers lock it (`FOR UPDATE`) for
 *   the whole append transaction: that is the single writer order across processes.
 * - Statement-level triggers refuse UPDATE and TRUNCATE always, and DELETE unless the transaction
 *   set `keel.retention` to `on` (only `prune` does, with `SET LOCAL`). They guard against mistakes,
 *   not against the table owner, who can disable them: the hash chain is what proves integrity.
 */
function v1(s: string): string {
  return `
CREATE SCHEMA IF NOT EXISTS ${s};
CREATE TABLE ${s}.meta (
  id      integer PRIMARY KEY CHECK (id = 1),
  app     text    NOT NULL CHECK (app = 'keel'),
  version integer NOT NULL
);
INSERT INTO ${s}.meta (id, app, version) VALUES (1, 'keel', 1);

CREATE TABLE ${s}.events (
  seq         bigint           PRIMARY KEY,
  ts          double precision NOT NULL,
  workflow_id text             NOT NULL,
  type        text             NOT NULL,
  v           bigint           NOT NULL,
  class       text             NOT NULL CHECK (class IN ('audit', 'operational')),
  payload     text             NOT NULL,
  prev_hash   text             NOT NULL,
  hash        text             NOT NULL
);
CREATE INDEX events_by_workflow ON ${s}.events (workflow_id, seq);
CREATE INDEX events_by_type     ON ${s}.events (type, seq);
CREATE INDEX events_by_ts       ON ${s}.events (ts);

CREATE TABLE ${s}.heads (
  id               integer PRIMARY KEY CHECK (id = 1),
  seq              bigint  NOT NULL,
  audit_seq        bigint  NOT NULL,
  audit_hash       text    NOT NULL,
  operational_seq  bigint  NOT NULL,
  operational_hash text    NOT NULL
);
INSERT INTO ${s}.heads VALUES (1, 0, 0, '${GENESIS_HASH}', 0, '${GENESIS_HASH}');

CREATE FUNCTION ${s}.refuse_event_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF current_setting('keel.retention', true) = 'on' THEN
      RETURN NULL;
    END IF;
    RAISE EXCEPTION 'keel: events are append-only; DELETE is refused outside retention (EventStore.prune)';
  END IF;
  RAISE EXCEPTION 'keel: events are append-only; % is refused (the hash chain would break)', TG_OP;
END
$fn$;
CREATE TRIGGER events_no_update BEFORE UPDATE ON ${s}.events
  FOR EACH STATEMENT EXECUTE FUNCTION ${s}.refuse_event_change();
CREATE TRIGGER events_no_delete BEFORE DELETE ON ${s}.events
  FOR EACH STATEMENT EXECUTE FUNCTION ${s}.refuse_event_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON ${s}.events
  FOR EACH STATEMENT EXECUTE FUNCTION ${s}.refuse_event_change();
`;
}

/**
 * Version 2: compact rows (issue 26). `hash` is 32 raw bytes (`bytea`) instead of 64 hex
 * characters, and `prev_hash` is gone: it is the `hash` of the previous row of the same class (or
 * the retention anchor's `lastPrunedHash` for the first row after a prune), derived when read, and
 * the chain covers exactly the same fields as before (`src/eventlog/chain.ts`). `events_by_type`
 * is dropped: type queries within a time window scan the window's seq range (as SQLite does since
 * its version 2), the runtime's other type queries name a workflow. `ALTER TABLE` rewrites the
 * table in the migration's transaction (the row triggers do not fire: it is not an UPDATE).
 */
function v2(s: string): string {
  return `
ALTER TABLE ${s}.events DROP COLUMN prev_hash;
ALTER TABLE ${s}.events ALTER COLUMN hash TYPE bytea USING decode(hash, 'hex');
ALTER TABLE ${s}.events ADD CONSTRAINT events_hash_32 CHECK (octet_length(hash) = 32);
DROP INDEX IF EXISTS ${s}.events_by_type;
`;
}

const MIGRATIONS: readonly ((schema: string) => string)[] = [v1, v2];

/**
 * The SQL of migration `from` → `from + 1` for the (quoted) schema `s`: tests build logs of older
 * versions with it. Not for applications: opening a store migrates.
 */
export function pgMigrationSql(from: number, s: string): string {
  const m = MIGRATIONS[from];
  if (m === undefined) throw new RangeError(`no Postgres migration from version ${from}`);
  return m(s);
}

/** Oldest version a read-only store reads as it is (version 1 stores `prev_hash` and hex hashes). */
export const PG_MIN_READABLE_VERSION = 1;

/** Schema version this Keel writes and understands. */
export const PG_SCHEMA_VERSION = MIGRATIONS.length;

/** The store's tables: a schema holding any of them without Keel's `meta` row is not ours. */
const TABLES = ['meta', 'events', 'heads'] as const;

/** A valid unquoted Postgres identifier, lower case (so it means the same quoted or not). */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** `"schema"`, for SQL text (the name was checked against {@link SCHEMA_NAME}). */
export function quoteSchema(schema: string): string {
  return `"${schema}"`;
}

/**
 * Checks the store's schema on an open connection and, unless `readonly`, creates or migrates it in
 * one transaction under an advisory lock (so processes opening a new database at once do not race).
 * Answers the version the store then reads (a read-only store reads an older one as it is).
 *
 * @throws SchemaConflictError when the schema holds our table names without Keel's `meta` row,
 *   SchemaVersionError when it is newer than this Keel, EventLogError when a read-only store finds
 *   no log or an old one.
 */
export async function ensureSchema(
  client: pg.ClientBase,
  target: string,
  schema: string,
  readonly: boolean,
): Promise<number> {
  await client.query(readonly ? 'BEGIN READ ONLY' : 'BEGIN');
  try {
    if (!readonly) {
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [KEEL_LOCK_CLASS, schema]);
    }
    const found = await readVersion(client, target, schema);
    if (readonly) checkReadable(found, target, schema);
    const s = quoteSchema(schema);
    for (let v = found; v < PG_SCHEMA_VERSION && !readonly; v++) {
      await client.query((MIGRATIONS[v] as (schema: string) => string)(s));
    }
    if (!readonly && found < PG_SCHEMA_VERSION) {
      await client.query(`UPDATE ${s}.meta SET version = $1 WHERE id = 1`, [PG_SCHEMA_VERSION]);
    }
    await client.query('COMMIT');
    return readonly ? found : PG_SCHEMA_VERSION;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

function checkReadable(found: number, target: string, schema: string): void {
  if (found === 0) {
    throw new EventLogError(
      'EVENTLOG_NOT_FOUND',
      `${target} holds no Keel event log in schema "${schema}"; a read-only store opens an existing log. Check the URL and the schema option.`,
    );
  }
  if (found < PG_MIN_READABLE_VERSION) {
    throw new EventLogError(
      'EVENTLOG_NEEDS_MIGRATION',
      `${target} (schema "${schema}") has schema version ${found}, but this Keel reads version ${PG_SCHEMA_VERSION}, and a read-only store cannot migrate it. Open it once writable (without readonly) to migrate.`,
    );
  }
}

/** First key of the advisory lock that serialises schema creation ('keel' in ASCII). */
const KEEL_LOCK_CLASS = 0x6b65656c;

/** The version in `meta`, 0 when none of our tables exist; refuses foreign tables and newer versions. */
async function readVersion(client: pg.ClientBase, target: string, schema: string): Promise<number> {
  const present = await client.query<{ relname: string }>(
    `SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) ORDER BY c.relname`,
    [schema, TABLES],
  );
  const names = present.rows.map((r) => r.relname);
  if (names.length === 0) return 0;
  if (!names.includes('meta')) throw new SchemaConflictError(target, schema, names);
  let row: { app: unknown; version: unknown } | undefined;
  try {
    await client.query('SAVEPOINT keel_meta');
    const r = await client.query<{ app: unknown; version: unknown }>(
      `SELECT app, version FROM ${quoteSchema(schema)}.meta WHERE id = 1`,
    );
    await client.query('RELEASE SAVEPOINT keel_meta');
    row = r.rows[0];
  } catch (e) {
    await client.query('ROLLBACK TO SAVEPOINT keel_meta').catch(() => undefined);
    // 42501 insufficient_privilege: the log is there, this role may not read it.
    if ((e as { code?: unknown } | null)?.code === '42501') {
      throw new StoreAccessDeniedError(target, `reading schema "${schema}": ${(e as Error).message}`, {
        cause: e,
      });
    }
    throw new SchemaConflictError(target, schema, names);
  }
  if (row === undefined || row.app !== 'keel' || typeof row.version !== 'number') {
    throw new SchemaConflictError(target, schema, names);
  }
  if (row.version > PG_SCHEMA_VERSION) {
    throw new SchemaVersionError(`${target} (schema "${schema}")`, row.version, PG_SCHEMA_VERSION);
  }
  return row.version;
}
