/**
 * Vitest global setup: starts a throwaway PostgreSQL cluster and a Redis server on loopback, in
 * temp dirs, for the scale-out tests, and hands their URLs to test files (`inject('pgUrl')`).
 *
 * - `KEEL_TEST_PG_URL` / `KEEL_TEST_REDIS_URL` point the tests at servers of your own instead.
 * - Without the binaries (Debian `postgresql`, `redis-server`) the scale-out tests skip with a
 *   message, except in CI (`CI` set), where a missing server is an error: `.ci/run` installs them.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** `postgres://…` of a server tests may create databases on, or '' when unavailable. */
    pgUrl: string;
    /** Why Postgres is unavailable ('' when it is available). */
    pgSkip: string;
    /** `redis://…` of a server tests may use (each test picks its own key prefix), or ''. */
    redisUrl: string;
    /** Why Redis is unavailable ('' when it is available). */
    redisSkip: string;
  }
}

const inCi = Boolean(process.env.CI);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(
  port: number,
  what: string,
  child: ChildProcess,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`${what} exited with code ${child.exitCode} before listening`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (performance.now() > deadline)
      throw new Error(`${what} did not listen on 127.0.0.1:${port} in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function postgresBinDir(): string | undefined {
  const fromConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  const candidates: string[] = [];
  if (fromConfig.status === 0) candidates.push(fromConfig.stdout.trim());
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    for (const v of readdirSync(root).sort((a, b) => Number(b) - Number(a)))
      candidates.push(join(root, v, 'bin'));
  }
  return candidates.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'postgres')));
}

/** Postgres refuses to run as root: run its binaries as the `postgres` user then. */
function asPostgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0 || gid.status !== 0) {
    throw new Error('running as root and there is no `postgres` user to run the test cluster as');
  }
  return { uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

interface Started {
  url: string;
  stop(): void;
}

async function startPostgres(): Promise<Started> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL binaries not found (install Debian `postgresql`)');
  const user = asPostgresUser();
  const dir = mkdtempSync(join(tmpdir(), 'keel-pg-'));
  if (user) chownSync(dir, user.uid, user.gid);
  chmodSync(dir, 0o700);
  const data = join(dir, 'data');
  const init = spawnSync(
    join(bin, 'initdb'),
    ['-D', data, '-U', 'keel', '--auth=trust', '--encoding=UTF8', '--no-sync'],
    { encoding: 'utf8', ...(user ?? {}) },
  );
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  const port = await freePort();
  const child = spawn(
    join(bin, 'postgres'),
    [
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=200',
    ],
    { stdio: 'ignore', ...(user ?? {}) },
  );
  await waitForPort(port, 'postgres', child);
  return {
    url: `postgres://keel@127.0.0.1:${port}/postgres`,
    stop: () => {
      child.kill('SIGQUIT');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startRedis(): Promise<Started> {
  const which = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  if (which.status !== 0) throw new Error('redis-server not found (install Debian `redis-server`)');
  const dir = mkdtempSync(join(tmpdir(), 'keel-redis-'));
  const port = await freePort();
  const child = spawn(
    which.stdout.trim(),
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  await waitForPort(port, 'redis-server', child);
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function provideServer(
  project: TestProject,
  name: 'pg' | 'redis',
  envUrl: string | undefined,
  start: () => Promise<Started>,
): Promise<(() => void) | undefined> {
  const urlKey = name === 'pg' ? 'pgUrl' : 'redisUrl';
  const skipKey = name === 'pg' ? 'pgSkip' : 'redisSkip';
  if (envUrl) {
    project.provide(urlKey, envUrl);
    project.provide(skipKey, '');
    return undefined;
  }
  try {
    const server = await start();
    project.provide(urlKey, server.url);
    project.provide(skipKey, '');
    return () => server.stop();
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    if (inCi)
      throw new Error(
        `CI needs ${name === 'pg' ? 'PostgreSQL' : 'Redis'} for the scale-out tests: ${reason}`,
      );
    console.warn(`[keel tests] ${name === 'pg' ? 'Postgres' : 'Redis'} tests skipped: ${reason}`);
    project.provide(urlKey, '');
    project.provide(skipKey, reason);
    return undefined;
  }
}

export default async function setup(project: TestProject): Promise<() => void> {
  const [stopPg, stopRedis] = await Promise.all([
    provideServer(project, 'pg', process.env.KEEL_TEST_PG_URL, startPostgres),
    provideServer(project, 'redis', process.env.KEEL_TEST_REDIS_URL, startRedis),
  ]);
  return () => {
    stopPg?.();
    stopRedis?.();
  };
}
