/**
 * The runtime on scale-out backends when something is wrong: an unreachable Postgres, a bad
 * `budget.shared`, a wrong `--store` URL. Each is a named error that says what to do, never a hang.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/main.js';
import { isConfigError } from '../../src/core/errors.js';
import { isStoreUnavailableError } from '../../src/eventlog/errors.js';
import { postgres } from '../../src/eventlog/postgres.js';
import { createRuntime } from '../../src/runtime.js';
import { isBudgetUnavailableError } from '../../src/cost/errors.js';
import { redis } from '../../src/redis/index.js';
import { agent } from '../../src/supervisor/agent.js';
import { captureIo } from '../cli/io.js';
import { describePostgres, freshDatabase } from '../support/scaleout.js';

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const srv: Server = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const address = srv.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

const echo = agent({ name: 'echo', model: 'gpt-4', run: (s: string) => Promise.resolve({ value: s }) });

describe('scale-out configuration and outages', () => {
  let closeRt: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await closeRt?.();
    closeRt = undefined;
  });

  it('an unreachable Postgres fails rt.ready() and every run with StoreUnavailableError, promptly', async () => {
    const url = `postgres://keel@127.0.0.1:${await closedPort()}/keel`;
    const rt = createRuntime({
      store: postgres(url, { connectTimeoutMs: 1_000 }),
      metrics: false,
      tracing: false,
    });
    closeRt = () => rt.close().catch(() => undefined);
    const ready = await rt.ready().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isStoreUnavailableError(ready)).toBe(true);
    expect(String(ready)).toContain('127.0.0.1');
    await expect(rt.run(echo, 'x')).rejects.toSatisfy(isStoreUnavailableError);
  });

  it('a shared budget on an unreachable Redis fails rt.ready() and refuses calls, unless told to admit', async () => {
    const url = `redis://127.0.0.1:${await closedPort()}`;
    const guarded = createRuntime({
      db: ':memory:',
      budget: { dailyUsd: 1, shared: redis(url) },
      metrics: false,
      tracing: false,
    });
    const errors: unknown[] = [];
    guarded.on('error', (e) => errors.push(e));
    closeRt = () => guarded.close();
    await expect(guarded.ready()).rejects.toSatisfy(isBudgetUnavailableError);
    await expect(guarded.run(echo, 'x')).rejects.toSatisfy(isBudgetUnavailableError);
    await guarded.close();

    const open = createRuntime({
      db: ':memory:',
      budget: { dailyUsd: 1, shared: redis(url, { budget: { onUnavailable: 'admit' } }) },
      metrics: false,
      tracing: false,
    });
    open.on('error', (e) => errors.push(e));
    closeRt = () => open.close();
    expect((await open.run(echo, 'y')).value).toBe('y');
    expect(errors.some(isBudgetUnavailableError)).toBe(true);
  });

  it('budget.shared must be a shared budget backend', () => {
    let error: unknown;
    try {
      createRuntime({
        db: ':memory:',
        budget: { dailyUsd: 1, shared: { url: 'redis://127.0.0.1' } as never },
      });
    } catch (e) {
      error = e;
    }
    expect(isConfigError(error) && error.field).toBe('budget.shared');
    expect(String(error)).toContain("redis('redis://127.0.0.1:6379')");
  });

  it('keel --store: a non-Postgres URL is a usage error; an unreachable server exits 3 naming it', async () => {
    const usage = captureIo();
    expect(await runCli(['audit', 'verify', '--store', 'mysql://db/keel'], usage.io)).toBe(EXIT.usage);
    expect(usage.stderr()).toContain('--store must be a postgres:// URL');

    const port = await closedPort();
    const down = captureIo();
    expect(
      await runCli(['audit', 'verify', '--store', `postgres://keel:secret@127.0.0.1:${port}/keel`], down.io),
    ).toBe(EXIT.error);
    expect(down.stderr()).toContain(`127.0.0.1:${port}`);
    expect(down.stderr()).not.toContain('secret');
  });
});

describePostgres('a runtime whose Postgres comes back', () => {
  let closeRt: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await closeRt?.();
    closeRt = undefined;
  });

  it('reads the log again on the next run once Postgres is back, without counting anything twice', async () => {
    const real = new URL(await freshDatabase());
    // A loopback door in front of Postgres: closed at first (every connection dropped), then open.
    let open = false;
    const sockets = new Set<Socket>();
    const door = createServer((client) => {
      sockets.add(client);
      if (!open) {
        client.destroy();
        return;
      }
      const upstream = connect(Number(real.port), real.hostname);
      sockets.add(upstream);
      client.pipe(upstream).pipe(client);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
    await new Promise<void>((resolve) => door.listen(0, '127.0.0.1', resolve));
    const address = door.address();
    const viaDoor = new URL(real);
    viaDoor.port = String(typeof address === 'object' && address ? address.port : 0);
    try {
      const rt = createRuntime({
        store: postgres(viaDoor.toString(), { connectTimeoutMs: 1_000 }),
        metrics: false,
        tracing: false,
      });
      closeRt = () => rt.close().catch(() => undefined);
      await expect(rt.run(echo, 'first')).rejects.toSatisfy(isStoreUnavailableError);
      await expect(rt.ready()).rejects.toSatisfy(isStoreUnavailableError);

      open = true;
      await rt.ready();
      const r = await rt.run(echo, 'second');
      expect(r.value).toBe('second');
      const started = await rt.store.query({ type: 'workflow.started' });
      expect(started.map((e) => e.workflowId)).toEqual([r.workflowId]);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => door.close(() => resolve()));
    }
  });

  it('keel --store --schema reads a log kept in another schema; without it, names what is missing', async () => {
    const url = await freshDatabase();
    const rt = createRuntime({
      store: postgres(url, { schema: 'invoices' }),
      metrics: false,
      tracing: false,
    });
    closeRt = () => rt.close();
    await rt.run(echo, 'x');
    await rt.close();

    const ok = captureIo();
    expect(await runCli(['audit', 'verify', '--store', url, '--schema', 'invoices'], ok.io)).toBe(EXIT.ok);
    expect(ok.stdout()).toMatch(/^OK: \d+ events/);
    const missing = captureIo();
    expect(await runCli(['audit', 'verify', '--store', url], missing.io)).toBe(EXIT.error);
    expect(missing.stderr()).toContain('no Keel event log in schema "keel"');
    const stray = captureIo();
    expect(await runCli(['audit', 'verify', '--schema', 'invoices'], stray.io)).toBe(EXIT.usage);
    expect(stray.stderr()).toContain('--schema applies to a Postgres log');
  });
});
