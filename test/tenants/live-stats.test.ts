/**
 * Error rate and latency by tenant, live (issue 24): `rt.stats().tenants` is the report's tenant
 * table folded as events commit — workflows, calls, cost, outcomes, errors, error rate and P95 — and
 * is rebuilt from the log after a restart. With a user's own agent throwing a plain Error for one
 * tenant and untenanted work beside it (counted under no tenant).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import { createRuntime } from '../../src/runtime.js';
import { PRICING, cleanupDirs, counting, tempDb } from '../durable/helpers.js';

afterAll(() => cleanupDirs());

describe('rt.stats().tenants', () => {
  it('breaks error rate, cost and P95 latency down by tenant, live and after a restart', async () => {
    const db = tempDb();
    const clock = simulatedClock(Date.UTC(2026, 4, 4, 10));
    const open = () => createRuntime({ db, clock, seed: 1, pricing: PRICING, cache: false });
    const rt = open();
    const ok = counting('ok').agent;
    const bad = counting('bad', undefined, { fail: true }).agent;
    for (let i = 0; i < 3; i++) await rt.run(ok, { i }, { tenant: 'acme' });
    await rt.run(bad, { i: 0 }, { tenant: 'acme' }).catch(() => undefined);
    for (let i = 0; i < 2; i++) await rt.run(bad, { i }, { tenant: 'globex' }).catch(() => undefined);
    await rt.run(ok, { i: 9 });

    const live = rt.stats().tenants;
    expect(live.map((t) => t.tenant).sort()).toEqual(['acme', 'globex']);
    const acme = live.find((t) => t.tenant === 'acme');
    const globex = live.find((t) => t.tenant === 'globex');
    expect(acme).toMatchObject({ workflows: 4, outcomes: 4, errors: 1, errorRate: 0.25 });
    expect(globex).toMatchObject({ workflows: 2, errors: 2, errorRate: 1 });
    expect(acme?.costUsd).toBeGreaterThan(0);
    expect(acme?.calls).toBe(3 + 1);
    await rt.close();

    const again = open();
    try {
      const restored = again.stats().tenants;
      expect(restored.find((t) => t.tenant === 'acme')).toMatchObject({
        workflows: 4,
        outcomes: 4,
        errors: 1,
        errorRate: 0.25,
      });
      expect(restored.find((t) => t.tenant === 'globex')).toMatchObject({ workflows: 2, errors: 2 });
      await again.run(ok, { i: 10 }, { tenant: 'globex' });
      expect(again.stats().tenants.find((t) => t.tenant === 'globex')).toMatchObject({
        workflows: 3,
        outcomes: 3,
        errors: 2,
      });
    } finally {
      await again.close();
    }
  });
});
