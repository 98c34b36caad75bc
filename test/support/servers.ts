/**
 * Vitest global setup: starts a throwaway PostgreSQL cluster and a Redis server on loopback, in
 * temp dirs, for the scale-out tests, and hands their URLs to test files (`inject('pgUrl')`).
 *
 * - `KEEL_TEST_PG_URL` / `KEEL_TEST_REDIS_URL` point the tests at servers of your own instead.
 * - Without the binaries (Debian `postgresql`, `redis-server`) the scale-out tests skip with a
 *   message, except in CI (`CI` set), where a missing server is an error: `.ci/run` installs them.
 */
import type { TestProject } from 'vitest/node';
import { startPostgres, startRedis, type LocalServer } from './local-servers.js';

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

async function provideServer(
  project: TestProject,
  name: 'pg' | 'redis',
  envUrl: string | undefined,
  start: () => Promise<LocalServer>,
): Promise<(() => Promise<void>) | undefined> {
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

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const [stopPg, stopRedis] = await Promise.all([
    // fsync off: the test cluster is thrown away, and need not survive a crash.
    provideServer(project, 'pg', process.env.KEEL_TEST_PG_URL, () => startPostgres({ fsync: false })),
    provideServer(project, 'redis', process.env.KEEL_TEST_REDIS_URL, startRedis),
  ]);
  return async () => {
    await Promise.all([stopPg?.(), stopRedis?.()]);
  };
}
