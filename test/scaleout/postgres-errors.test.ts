import { createServer, connect, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { afterEach, expect, it } from 'vitest';
import { isConfigError } from '../../src/core/errors.js';
import {
  EventLogError,
  ReadOnlyDatabaseError,
  SchemaConflictError,
  SchemaVersionError,
  StoreAccessDeniedError,
  StoreUnavailableError,
  isStoreAccessDeniedError,
  isStoreUnavailableError,
} from '../../src/eventlog/errors.js';
import type { NewEvent } from '../../src/eventlog/events.js';
import { openPostgresStore, postgres, type PostgresEventStore } from '../../src/eventlog/postgres.js';
import { PG_SCHEMA_VERSION } from '../../src/eventlog/postgres-schema.js';
import { describePostgres, freshDatabase } from '../support/scaleout.js';

const stores: PostgresEventStore[] = [];
const servers: Server[] = [];
const sockets = new Set<Socket>();

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

function track(store: PostgresEventStore): PostgresEventStore {
  stores.push(store);
  return store;
}

/** A loopback TCP server on a free port; `onSocket` decides what it does with connections. */
async function listen(onSocket: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    onSocket(socket);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : 0 };
}

/** A port nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const { server, port } = await listen(() => undefined);
  servers.splice(servers.indexOf(server), 1);
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function withPort(url: string, port: number): string {
  const u = new URL(url);
  u.port = String(port);
  return u.toString();
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function raw(url: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

const EVENTS: NewEvent[] = Array.from({ length: 10 }, (_, i) => ({
  ts: i,
  workflowId: `wf-${i}`,
  type: 'feedback.recorded',
  payload: { correct: true },
}));

it('refuses a malformed URL or schema name at once, naming the field and never the password', () => {
  const attempt = (f: () => unknown): unknown => {
    try {
      f();
    } catch (e) {
      return e;
    }
    return undefined;
  };
  const badUrl = attempt(() => openPostgresStore({ url: 'mysql://root:hunter2@db/keel' }));
  expect(isConfigError(badUrl)).toBe(true);
  expect(badUrl).toMatchObject({ field: 'url' });
  expect(String(badUrl)).not.toContain('hunter2');
  expect(attempt(() => postgres('postgres://127.0.0.1/keel', { schema: 'Bad-Name' }))).toMatchObject({
    field: 'schema',
  });
  expect(attempt(() => postgres('postgres://127.0.0.1/keel', { connectTimeoutMs: 0 }))).toMatchObject({
    field: 'connectTimeoutMs',
  });
});

describePostgres('Postgres store errors', () => {
  it('names an unreachable server (connection refused) instead of hanging', async () => {
    const url = withPort(await freshDatabase(), await closedPort());
    const store = track(openPostgresStore({ url, connectTimeoutMs: 2_000 }));

    const error = await store.ready().catch((e: unknown) => e);

    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(isStoreUnavailableError(error)).toBe(true);
    expect(String(error)).toMatch(/127\.0\.0\.1:\d+\/keel_\w+ is unavailable \(connection refused/);
    await expect(store.append(EVENTS)).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('gives up on a server that accepts but never answers after connectTimeoutMs', async () => {
    const { port } = await listen(() => undefined); // a black hole
    const url = withPort(await freshDatabase(), port);
    const store = track(openPostgresStore({ url, connectTimeoutMs: 300 }));

    const error = await store.ready().catch((e: unknown) => e);

    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(String(error)).toContain('no connection within connectTimeoutMs (300 ms)');
  });

  it('names a refused login and a missing database', async () => {
    const url = await freshDatabase();
    const noRole = new URL(url);
    noRole.username = 'no_such_role';
    const denied = await track(openPostgresStore({ url: noRole.toString() }))
      .ready()
      .catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(StoreAccessDeniedError);
    expect(String(denied)).toContain('no_such_role');

    const missing = await track(openPostgresStore({ url: withDatabase(url, 'keel_no_such_db') }))
      .ready()
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(StoreUnavailableError);
    expect(String(missing)).toMatch(/keel_no_such_db.*does not exist; create it first/);
  });

  it('refuses a schema holding tables it did not create, modifies nothing, and retries once fixed', async () => {
    const url = await freshDatabase();
    await raw(url, 'CREATE SCHEMA keel; CREATE TABLE keel.events (id int, note text)');
    const store = track(openPostgresStore({ url }));

    const error = await store.ready().catch((e: unknown) => e);

    expect(error).toBeInstanceOf(SchemaConflictError);
    expect(String(error)).toContain('schema "keel" already holds "events"');
    const tables = await raw(
      url,
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'keel'",
    );
    expect(tables.rows).toEqual([{ table_name: 'events' }]);

    await raw(url, 'DROP TABLE keel.events');
    await store.ready();
    expect(await store.append(EVENTS)).toHaveLength(10);
  });

  it('names a role that may log in but not read the log as access denied, not a schema conflict', async () => {
    const url = await freshDatabase();
    await track(openPostgresStore({ url })).append(EVENTS);
    const role = `keel_noread_${Math.floor(performance.now() * 1000) % 1_000_000}`;
    await raw(url, `CREATE ROLE ${role} LOGIN; GRANT USAGE ON SCHEMA keel TO ${role}`);
    const asRole = new URL(url);
    asRole.username = role;
    const error = await track(openPostgresStore({ url: asRole.toString(), readonly: true }))
      .ready()
      .catch((e: unknown) => e);
    expect(isStoreAccessDeniedError(error)).toBe(true);
    expect(String(error)).toContain('permission denied');
  });

  it('refuses a meta table that is not Keel’s', async () => {
    const url = await freshDatabase();
    await raw(url, 'CREATE SCHEMA keel; CREATE TABLE keel.meta (id int)');
    await expect(track(openPostgresStore({ url })).ready()).rejects.toBeInstanceOf(SchemaConflictError);
  });

  it('refuses a log written by a newer Keel', async () => {
    const url = await freshDatabase();
    const first = track(openPostgresStore({ url }));
    await first.append(EVENTS);
    await first.close();
    await raw(url, 'UPDATE keel.meta SET version = 99');

    const error = await track(openPostgresStore({ url }))
      .ready()
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(SchemaVersionError);
    expect(error).toMatchObject({ found: 99, supported: PG_SCHEMA_VERSION });
  });

  it('keeps separate logs in separate schemas of one database, created concurrently', async () => {
    const url = await freshDatabase();
    const a = track(openPostgresStore({ url, schema: 'log_a' }));
    const a2 = track(openPostgresStore({ url, schema: 'log_a' }));
    const b = track(openPostgresStore({ url, schema: 'log_b' }));
    await Promise.all([a.ready(), a2.ready(), b.ready()]);
    await a.append(EVENTS);
    await b.append(EVENTS.slice(0, 3));
    expect(await a2.lastSeq()).toBe(10);
    expect(await b.lastSeq()).toBe(3);
  });

  it('opens read-only for auditors: reads and verify work, writes are refused, nothing is created', async () => {
    const url = await freshDatabase();
    const empty = track(openPostgresStore({ url, readonly: true }));
    const error = await empty.ready().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventLogError);
    expect(error).toMatchObject({ code: 'EVENTLOG_NOT_FOUND' });
    const schemas = await raw(url, "SELECT 1 FROM pg_namespace WHERE nspname = 'keel'");
    expect(schemas.rowCount).toBe(0);

    const writer = track(openPostgresStore({ url }));
    await writer.append(EVENTS);
    const auditor = track(openPostgresStore({ url, readonly: true }));

    expect(auditor.readonly).toBe(true);
    expect(await auditor.verify()).toMatchObject({ ok: true, events: 10 });
    expect(await auditor.query({ workflowId: 'wf-3' })).toHaveLength(1);
    await expect(auditor.append(EVENTS)).rejects.toBeInstanceOf(ReadOnlyDatabaseError);
    await expect(auditor.prune({ class: 'audit', olderThan: 100 })).rejects.toBeInstanceOf(
      ReadOnlyDatabaseError,
    );
    expect(await writer.lastSeq()).toBe(10);
  });

  it('fails appends with a named error when the server goes away, losing nothing committed', async () => {
    const url = await freshDatabase();
    const upstream = Number(new URL(url).port);
    const { server, port } = await listen((client) => {
      const server = connect(upstream, '127.0.0.1');
      sockets.add(server);
      server.on('close', () => sockets.delete(server));
      client.pipe(server).pipe(client);
      client.on('error', () => server.destroy());
      server.on('error', () => client.destroy());
    });
    const store = track(openPostgresStore({ url: withPort(url, port), connectTimeoutMs: 2_000 }));
    const committed = await store.append(EVENTS);

    // The server vanishes: the proxy stops listening and cuts every connection.
    servers.splice(servers.indexOf(server), 1);
    const stopped = new Promise((resolve) => server.close(resolve));
    for (const socket of sockets) socket.destroy();
    await stopped;

    const error = await store.append(EVENTS.slice(0, 2)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    await expect(store.verify()).rejects.toBeInstanceOf(StoreUnavailableError);
    await store.close();

    const direct = track(openPostgresStore({ url }));
    expect(await direct.query()).toEqual(committed);
    expect(await direct.verify()).toMatchObject({ ok: true, events: 10 });
  });
});
