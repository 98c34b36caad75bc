/**
 * Two OS processes share one $1/day budget on Redis and call an agent that wants 10× its
 * estimated output: with `maxOutputTokens` every call reserves its worst case, so the fleet's spend
 * never passes the shared limit (issue 18).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { RedisConnection } from '../../src/redis/connection.js';
import { describeRedis, redisPrefix, redisUrl } from '../support/scaleout.js';

const CHILD = fileURLToPath(new URL('./capped-budget-child.ts', import.meta.url));

describeRedis('a capped agent on a budget shared by two processes', () => {
  it('never passes the shared daily limit, whatever the calls want to spend', async () => {
    const prefix = redisPrefix();
    const outputs = [0, 1].map(() => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', CHILD, redisUrl(), prefix, '10', '150', '50'],
        {
          stdio: ['pipe', 'pipe', 'pipe'],
        },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const exited = once(child, 'exit').then(([code]) => ({
        code: code as number | null,
        out: () => out,
        err: () => err,
      }));
      const ready = new Promise<void>((resolve) => {
        child.stdout.on('data', () => {
          if (out.includes('ready\n')) resolve();
        });
      });
      return { child, exited, ready };
    });
    await Promise.all(outputs.map((o) => o.ready));
    for (const o of outputs) o.child.stdin.end('go\n');
    const results = await Promise.all(outputs.map((o) => o.exited));
    for (const r of results) expect(r.code, r.err()).toBe(0);
    const figures = results.map(
      (r) =>
        JSON.parse(r.out().trim().split('\n').at(-1) ?? '{}') as {
          ran: number;
          refused: number;
          costUsd: number;
        },
    );
    const spent = figures.reduce((s, f) => s + f.costUsd, 0);
    console.log(
      `two processes, 300 calls wanting 10x the estimate, maxOutputTokens 1000, $1 shared: spent $${spent.toFixed(4)} ` +
        `(${figures.map((f) => `${f.ran} ran / ${f.refused} refused`).join(', ')})`,
    );
    expect(figures.every((f) => f.ran > 0)).toBe(true);
    expect(spent).toBeLessThanOrEqual(1 + 1e-9);

    // Redis, the fleet's source of truth, agrees: spent within the limit, nothing left reserved.
    const c = new RedisConnection(redisUrl(), { keyPrefix: prefix });
    try {
      const day = new Date().toISOString().slice(0, 10);
      const [stored, reserved] = await c
        .client()
        .hmget(c.key('budget', day, 'spend', 'global'), 'spent', 'reserved');
      expect(Number(stored) / 1e6).toBeLessThanOrEqual(1 + 1e-9);
      expect(Number(stored) / 1e6).toBeCloseTo(spent, 5);
      expect(Number(reserved)).toBe(0);
    } finally {
      await c.close();
    }
  }, 90_000);
});
