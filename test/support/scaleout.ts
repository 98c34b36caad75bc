/**
 * What scale-out tests need from the servers `servers.ts` starts: a fresh Postgres database per
 * test file, a Redis key prefix per test, and a clear skip when a server is unavailable.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { describe, inject } from 'vitest';

/** `describe` for suites that need Postgres: skipped (with the reason) when it is unavailable. */
export const describePostgres = (name: string, body: () => void): void => {
  const skip = inject('pgSkip');
  if (skip) describe.skip(`${name} (skipped: ${skip})`, body);
  else describe(name, body);
};

/** `describe` for suites that need Redis: skipped (with the reason) when it is unavailable. */
export const describeRedis = (name: string, body: () => void): void => {
  const skip = inject('redisSkip');
  if (skip) describe.skip(`${name} (skipped: ${skip})`, body);
  else describe(name, body);
};

/** The Redis server's URL (call inside a `describeRedis` suite). */
export function redisUrl(): string {
  const url = inject('redisUrl');
  if (!url) throw new Error('Redis is not available to this test run');
  return url;
}

/** A key prefix no other test uses, so tests share one Redis server without seeing each other. */
export function redisPrefix(): string {
  return `keel-test:${randomUUID().slice(0, 8)}:`;
}

/** Creates an empty database on the test server and returns its URL (call inside a `describePostgres` suite). */
export async function freshDatabase(): Promise<string> {
  const base = inject('pgUrl');
  if (!base) throw new Error('Postgres is not available to this test run');
  const name = `keel_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const client = new pg.Client({ connectionString: base });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}
