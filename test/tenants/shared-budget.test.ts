/**
 * Per-tenant budgets on the budget shared across processes (Redis, the real test server): two
 * connections reserving for one tenant admit exactly what fits its limit together, another tenant
 * keeps its own limit, and each tenant's alert fires once for the fleet, naming the tenant.
 */
import { afterEach, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import type { BudgetConfig } from '../../src/cost/budget.js';
import { isBudgetExceededError } from '../../src/cost/errors.js';
import { createPricing } from '../../src/cost/pricing.js';
import type { EventPayloads } from '../../src/eventlog/events.js';
import { createSharedBudgets, type SharedBudgets } from '../../src/redis/budget.js';
import { RedisConnection } from '../../src/redis/connection.js';
import { describeRedis, redisPrefix, redisUrl } from '../support/scaleout.js';

const pricing = createPricing();
const NOON = Date.UTC(2026, 0, 1, 12);
const made: { b: SharedBudgets; c: RedisConnection }[] = [];
afterEach(async () => {
  for (const { b } of made) {
    b.stop();
    await b.flush();
  }
  for (const { c } of made.splice(0)) await c.close();
});

function member(prefix: string, config: BudgetConfig, alerts: EventPayloads['budget.alert'][]) {
  const c = new RedisConnection(redisUrl(), { keyPrefix: prefix });
  const b = createSharedBudgets(c, config, {
    clock: simulatedClock(NOON),
    pricing,
    onAlert: (a) => alerts.push(a),
  });
  made.push({ b, c });
  return b;
}

describeRedis('budget.perTenant on a shared budget', () => {
  it('holds each tenant to its own limit across two connections, and alerts once per tenant', async () => {
    const prefix = redisPrefix();
    const config: BudgetConfig = { dailyUsd: 100, perTenant: { default: 0.1, acme: 0.2 } };
    const alerts: EventPayloads['budget.alert'][] = [];
    const [a, b] = [member(prefix, config, alerts), member(prefix, config, alerts)];
    const attempt = (i: number, tenant?: string) =>
      (i % 2 === 0 ? a : b).reserve({
        model: 'gpt-4',
        taskType: 'fraud',
        estimateUsd: 0.03,
        ...(tenant !== undefined ? { tenant } : {}),
      });
    const results = await Promise.all([
      ...Array.from({ length: 20 }, (_, i) => attempt(i, 'acme')),
      ...Array.from({ length: 20 }, (_, i) => attempt(i, 'globex')),
      ...Array.from({ length: 20 }, (_, i) => attempt(i)),
    ]);
    const admitted = (from: number) => results.slice(from, from + 20).filter((r) => r.ok).length;
    expect(admitted(0)).toBe(6); // floor($0.20 / $0.03)
    expect(admitted(20)).toBe(3); // floor($0.10 / $0.03), the default
    expect(admitted(40)).toBe(20); // no tenant: only the global $100
    for (const r of results)
      if (!r.ok) {
        expect(isBudgetExceededError(r.error)).toBe(true);
        expect(r.scope).toMatch(/^tenant:(acme|globex)$/);
      }
    for (const r of results) if (r.ok) r.reservation.settle(0.03);
    await a.flush();
    await b.flush();
    const tenantAlerts = alerts.filter((x) => x.scope.startsWith('tenant:'));
    expect(tenantAlerts.map((x) => `${x.tenant}@${x.threshold}`).sort()).toEqual(['acme@0.8', 'globex@0.8']);
    // Each process mirrors the figures Redis answered it last: the later one saw all $0.18.
    const mirrored = [a, b].map((m) => m.state('tenant:acme')?.spentUsd ?? 0);
    expect(Math.max(...mirrored)).toBeCloseTo(0.18, 9);
  });
});
