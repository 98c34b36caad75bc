/**
 * Throwaway PostgreSQL and Redis servers on loopback, each in a temp dir, for the scale-out tests
 * (`servers.ts`, vitest's global setup) and the scale-out benchmark (`bench/scaleout.bench.ts`).
 *
 * Both bind 127.0.0.1 on a free port. Postgres runs as the `postgres` user when this process is
 * root (it refuses to run as root). A missing binary rejects with a message naming the Debian
 * package to install.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A server started by {@link startPostgres} or {@link startRedis}. */
export interface LocalServer {
  /** `postgres://keel@127.0.0.1:<port>/postgres` or `redis://127.0.0.1:<port>`. */
  url: string;
  /** Stops the server (waiting up to 10 s for it to exit, then killing it) and removes its temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startPostgres}. */
export interface LocalPostgresOptions {
  /**
   * Whether commits wait for the WAL to reach the disk (`fsync` and `full_page_writes` as Postgres
   * ships them). Default `false`: `fsync=off`, `full_page_writes=off`, since a test cluster need not
   * survive a crash. Benchmarks pass `true` to measure what a production server does.
   */
  fsync?: boolean;
  /** `max_connections` of the server (default 200). */
  maxConnections?: number;
}

/**
 * Starts a PostgreSQL cluster (`initdb` in a temp dir, user `keel`, trust auth) listening on
 * 127.0.0.1 only.
 *
 * @throws Error when the binaries are missing (Debian `postgresql`), or initdb or the server fails.
 * @example
 * const server = await startPostgres({ fsync: true });
 * try {
 *   const store = openPostgresStore({ url: server.url });
 *   // …
 * } finally {
 *   await server.stop();
 * }
 */
export async function startPostgres(options: LocalPostgresOptions = {}): Promise<LocalServer> {
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
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  }
  const port = await freePort();
  const settings = [
    'listen_addresses=127.0.0.1',
    `max_connections=${options.maxConnections ?? 200}`,
    ...(options.fsync === true ? [] : ['fsync=off', 'full_page_writes=off']),
  ];
  const child = spawn(
    join(bin, 'postgres'),
    ['-D', data, '-p', String(port), '-k', dir, ...settings.flatMap((s) => ['-c', s])],
    { stdio: 'ignore', ...(user ?? {}) },
  );
  // SIGQUIT: immediate shutdown, no checkpoint (the data dir is thrown away).
  const stop = stopper(child, 'SIGQUIT', dir);
  try {
    await waitForPort(port, 'postgres', child);
    await waitForPostgres(bin, port, child);
  } catch (e) {
    await stop();
    throw e;
  }
  return { url: `postgres://keel@127.0.0.1:${port}/postgres`, stop };
}

/**
 * Starts a Redis server without persistence (no RDB snapshots, no AOF) listening on 127.0.0.1 only.
 *
 * @throws Error when `redis-server` is missing (Debian `redis-server`) or does not start.
 * @example
 * const server = await startRedis();
 * try {
 *   const shared = redis(server.url);
 *   // …
 * } finally {
 *   await server.stop();
 * }
 */
export async function startRedis(): Promise<LocalServer> {
  const which = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  if (which.status !== 0) throw new Error('redis-server not found (install Debian `redis-server`)');
  const dir = mkdtempSync(join(tmpdir(), 'keel-redis-'));
  const port = await freePort();
  const child = spawn(
    which.stdout.trim(),
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  const stop = stopper(child, 'SIGTERM', dir);
  try {
    await waitForPort(port, 'redis-server', child);
  } catch (e) {
    await stop();
    throw e;
  }
  return { url: `redis://127.0.0.1:${port}`, stop };
}

/** How long `stop()` waits for a server to exit before killing it, ms. */
const EXIT_WAIT_MS = 10_000;

/** `stop()` of a server: signal, wait for exit (SIGKILL after {@link EXIT_WAIT_MS}), remove `dir`. */
function stopper(child: ChildProcess, signal: NodeJS.Signals, dir: string): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_WAIT_MS);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return () => (stopping ??= stop());
}

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

/**
 * Waits until the server accepts connections (`pg_isready`): it listens a moment before it has
 * finished starting up, and refuses logins meanwhile ("the database system is starting up").
 */
async function waitForPostgres(
  bin: string,
  port: number,
  child: ChildProcess,
  timeoutMs = 20_000,
): Promise<void> {
  const isReady = join(bin, 'pg_isready');
  if (!existsSync(isReady)) return;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`postgres exited with code ${child.exitCode} while starting`);
    const probe = spawn(
      isReady,
      ['-q', '-h', '127.0.0.1', '-p', String(port), '-U', 'keel', '-d', 'postgres'],
      {
        stdio: 'ignore',
      },
    );
    const [code] = (await once(probe, 'exit')) as [number | null];
    if (code === 0) return;
    if (performance.now() > deadline)
      throw new Error(`postgres on 127.0.0.1:${port} did not accept connections in ${timeoutMs} ms`);
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
