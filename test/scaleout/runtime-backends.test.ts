/**
 * The runtime on scale-out backends when something is wrong: an unreachable Postgres, a bad
 * `budget.shared`, a wrong `--store` URL. Each is a named error that says what to do, never a hang.
 */
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/main.js';
import { isConfigError } from '../../src/core/errors.js';
import { isStoreUnavailableError } from '../../src/eventlog/errors.js';
import { postgres } from '../../src/eventlog/postgres.js';
import { createRuntime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';
import { captureIo } from '../cli/io.js';

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
