import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { realClock } from '../../src/core/clock.js';
import { describeRedis, redisPrefix, redisUrl } from '../support/scaleout.js';
import { deferred, listeners, redisCaches } from './redis-cache-helpers.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, '..', '..');
const CHILD = join(HERE, 'redis-cache-child.ts');
/** A child that has not answered by then is killed (it would otherwise be waiting on a bug). */
const GIVE_UP_MS = 25_000;

interface ChildAnswer {
  value: unknown;
  computed: boolean;
}

/** Runs the child process's lookup of `key` and returns what it printed. */
function lookUpInChild(prefix: string, key: string): Promise<ChildAnswer> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, redisUrl(), prefix, key], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const guard = setTimeout(() => child.kill('SIGKILL'), GIVE_UP_MS);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      if (code !== 0) {
        reject(new Error(`child exited with ${code ?? signal}: ${err}`));
        return;
      }
      try {
        resolve(JSON.parse(out.trim()) as ChildAnswer);
      } catch (e) {
        reject(new Error(`child printed ${JSON.stringify(out)} (${String(e)}); stderr: ${err}`));
      }
    });
  });
}

describeRedis('Redis cache: two OS processes', () => {
  const caches = redisCaches();
  let prefix: string;
  beforeEach(() => {
    prefix = redisPrefix();
  });
  afterEach(() => caches.closeAll());

  it('serves another process the value this one stored, without it computing', async () => {
    const a = caches.open(prefix, { clock: realClock });
    a.cache.set('inv-42', 'vendor', { vendor: 'Acme GmbH' }, 60_000);
    await a.cache.get('inv-42');
    expect(await lookUpInChild(prefix, 'inv-42')).toEqual({
      value: { vendor: 'Acme GmbH' },
      computed: false,
    });
  });

  it('makes another process wait for this one’s in-flight call instead of calling too', async () => {
    const a = caches.open(prefix, { clock: realClock });
    const gate = deferred<void>();
    let calls = 0;
    const leader = a.cache.singleFlight('inv-43', async () => {
      calls++;
      await gate.promise;
      const out = { vendor: 'computed by the parent' };
      a.cache.set('inv-43', 'vendor', out, 60_000);
      return out;
    });
    const child = lookUpInChild(prefix, 'inv-43');
    // The child missed, found the lock held and listens for the result.
    await vi.waitFor(async () => expect(await listeners(caches.raw(), `${prefix}cache:f:inv-43`)).toBe(1), {
      timeout: 20_000,
      interval: 50,
    });
    gate.resolve();
    expect(await leader).toEqual({ vendor: 'computed by the parent' });
    expect(await child).toEqual({ value: { vendor: 'computed by the parent' }, computed: false });
    expect(calls).toBe(1);
  });
});
