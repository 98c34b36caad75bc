/**
 * `rt.close()` with a shared (Redis) budget, against the real test server: the settles of calls in
 * flight reach Redis, and the `budget.alert` their replies raise is in the log, before the log
 * closes. (Closing the log first lost the alert while Redis marked the threshold as fired, so it
 * never fired again that day, fleet-wide.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { RedisConnection } from '../../src/redis/connection.js';
import { redis } from '../../src/redis/index.js';
import { createRuntime } from '../../src/runtime.js';
import { agent, type AgentContext } from '../../src/supervisor/agent.js';
import { describeRedis, redisPrefix, redisUrl } from '../support/scaleout.js';

/** Noon UTC, 2026-01-01. */
const NOON = Date.UTC(2026, 0, 1, 12);

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describeRedis('close() order with a shared budget', () => {
  it('a call cancelled by close() is charged on Redis and its budget.alert is committed to the log', async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-close-'));
    const db = join(dir, 'keel.db');
    const prefix = redisPrefix();
    const rt = createRuntime({
      db,
      clock: simulatedClock(NOON),
      seed: 1,
      budget: { dailyUsd: 1, alertAt: 0.8, shared: redis(redisUrl(), { keyPrefix: prefix }) },
      metrics: false,
      tracing: false,
    });
    await rt.ready();
    const errors: unknown[] = [];
    rt.on('error', (e) => errors.push(e));
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    // GPT-4 at $0.03/$0.06 per 1K: the estimate is $0.60 + $0.30 = $0.90, past the 80% threshold.
    const hang = agent({
      name: 'long_call',
      model: 'gpt-4',
      estimate: { inputTokens: 20_000, outputTokens: 5_000 },
      run: (_input: unknown, ctx: AgentContext) =>
        new Promise<never>((_, reject) => {
          started();
          ctx.signal.addEventListener('abort', () => reject(new Error('aborted by close')));
        }),
    });
    const outcome = rt.run(hang, {}).catch((e: unknown) => e);
    await running;
    await rt.close();
    expect(await outcome).toMatchObject({ category: 'cancelled' });
    expect(errors).toEqual([]);

    // Redis charged the call and marked the 0.8 threshold as fired …
    const connection = new RedisConnection(redisUrl(), { keyPrefix: prefix });
    try {
      const totals = await connection
        .client()
        .hgetall(connection.key('budget', '2026-01-01', 'spend', 'global'));
      expect(Number(totals.spent)).toBe(900_000);
      expect(totals['a:0.8']).toBe('1');
    } finally {
      await connection.close();
    }
    // … and the log, reopened, has the alert it raised.
    const store = openSqliteStore({ path: db });
    try {
      const alerts = store.query({ type: 'budget.alert' });
      expect(alerts.map((e) => e.payload)).toEqual([
        { scope: 'global', threshold: 0.8, spentUsd: 0.9, limitUsd: 1, day: '2026-01-01' },
      ]);
      expect(store.query({ type: 'cost.incurred' })[0]?.payload).toMatchObject({
        costUsd: 0.9,
        estimated: true,
      });
      expect(store.query({ type: 'workflow.cancelled' })).toHaveLength(1);
    } finally {
      await store.close();
    }
  });
});
