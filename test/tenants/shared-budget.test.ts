/**
 * Per-tenant budgets on the budget shared across processes (Redis, the real test server): two
 * connections reserving for one tenant admit exactly what fits its limit together, another tenant
 * keeps its own limit, and each tenant's alert fires once for the fleet, naming the tenant. Idle
 * tenants' mirrors are evicted past `idleTenantActors`, and one re-created reads Redis's figures.
 */
import { afterEach, expect, it, vi } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import type { BudgetConfig } from '../../src/cost/budget.js';
import { isBudgetExceededError } from '../../src/cost/errors.js';
import { createPricing } from '../../src/cost/pricing.js';
import type { EventPayloads } from '../../src/eventlog/events.js';
import { createSharedBudgets, type SharedBudgets } from '../../src/redis/budget.js';
import { RedisConnection } from '../../src/redis/connection.js';
import { redis } from '../../src/redis/index.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';
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

/** $1 a call, whatever its tokens. */
const FLAT = { flat: { inputPer1K: 0, outputPer1K: 0, perCall: 1 } };
const runtimes: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close();
});

/** One process of the fleet: a runtime whose budget is shared on `prefix`, $5 a tenant a day. */
function process_(prefix: string, idleTenantActors: number): Runtime<SqliteEventStore> {
  const rt = createRuntime<SqliteEventStore>({
    db: ':memory:',
    clock: simulatedClock(NOON),
    seed: 1,
    pricing: FLAT,
    cache: false,
    budget: {
      dailyUsd: 1_000_000,
      alertAt: 0.8,
      perTenant: { default: 5 },
      idleTenantActors,
      shared: redis(redisUrl(), { keyPrefix: prefix }),
    },
  });
  runtimes.push(rt);
  return rt;
}

const flatCall = agent({
  name: 'call',
  model: 'flat',
  estimate: { inputTokens: 0, outputTokens: 0 },
  run: () => Promise.resolve({ value: 'ok', usage: { inputTokens: 1, outputTokens: 1 } }),
});

/** One $1 call per tenant given, one after another: 'ok' or `over:<scope>`. */
async function calls(rt: Runtime<SqliteEventStore>, tenants: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const tenant of tenants)
    out.push(
      await rt.run(flatCall, {}, { tenant }).then(
        () => 'ok',
        (e: unknown) => (isBudgetExceededError(e) ? `over:${e.scope}` : `other:${String(e)}`),
      ),
    );
  return out;
}

const tenantAlerts = (rt: Runtime<SqliteEventStore>): string[] =>
  rt.store
    .query({ type: 'budget.alert' })
    .map((e) => (e.type === 'budget.alert' ? `${e.payload.scope}@${e.payload.threshold}` : e.type));

describeRedis('idle tenant mirrors of a shared budget', () => {
  it('serving 60 tenants keeps at most idleTenantActors of their mirrors (rt.stats().budgetActors)', async () => {
    const rt = process_(redisPrefix(), 5);
    await rt.ready();
    let peak = 0;
    for (let i = 0; i < 60; i++) {
      expect(await calls(rt, [`t${i}`])).toEqual(['ok']);
      peak = Math.max(peak, rt.stats().budgetActors);
    }
    // global + the 5 tenants served last, + the last call's if its settle script is still out: a
    // run resolves once its events commit, not once Redis answered the settle (CI saw 7 here).
    expect(rt.stats().budgetActors).toBeLessThanOrEqual(7);
    expect(rt.stats().budgetActors).toBeGreaterThanOrEqual(6);
    expect(peak).toBeLessThanOrEqual(7);
    // An evicted tenant is served again from Redis's figures: t0 has $1 of 5, so 4 more fit.
    expect(await calls(rt, Array<string>(5).fill('t0'))).toEqual(['ok', 'ok', 'ok', 'ok', 'over:tenant:t0']);
    expect(rt.stats().budgetActors).toBeLessThanOrEqual(7);
  });

  it('a tenant evicted, spent for by another process, then served again: 80% and 100% hold over the fleet, alerted once', async () => {
    const prefix = redisPrefix();
    const a = process_(prefix, 1);
    const b = process_(prefix, 1);
    await Promise.all([a.ready(), b.ready()]);
    expect(await calls(a, ['acme', 'acme', 'globex', 'initech'])).toEqual(Array(4).fill('ok'));
    expect(a.stats().budgetActors).toBe(2); // global + initech: acme's mirror is gone
    expect(await calls(b, ['acme'])).toEqual(['ok']); // $3 of 5, spent in the other process
    await b.close(); // its settle reached Redis
    runtimes.splice(runtimes.indexOf(b), 1);
    // Back in the first process: $4 = 80% (alerted now, from the fleet's spend), $5 = 100%, then refused.
    expect(await calls(a, ['acme', 'acme', 'acme'])).toEqual(['ok', 'ok', 'over:tenant:acme']);
    await vi.waitFor(() => expect(tenantAlerts(a)).toEqual(['tenant:acme@0.8', 'tenant:acme@1']));
    expect(a.stats().budgetActors).toBe(2);
  });
});

describeRedis('a shared tenant mirror re-created after eviction', () => {
  it('reads exactly what Redis holds for the tenant: spend, level and thresholds passed', async () => {
    const prefix = redisPrefix();
    const config: BudgetConfig = { dailyUsd: 100, perTenant: { default: 1 }, idleTenantActors: 0 };
    const alerts: EventPayloads['budget.alert'][] = [];
    const [a, b] = [member(prefix, config, alerts), member(prefix, config, alerts)];
    const spend = async (m: SharedBudgets, tenant: string, usd: number) => {
      const r = await m.reserve({ model: 'gpt-4', taskType: 'fraud', estimateUsd: usd, tenant });
      if (!r.ok) throw r.error;
      r.reservation.settle(usd);
      await m.flush();
    };
    await spend(a, 'acme', 0.5);
    expect(a.liveActors()).toBe(1); // idle at once: evicted (0 kept)
    expect(a.state('tenant:acme')).toBeUndefined();
    expect(a.scopes()).toEqual(['global']);
    await spend(b, 'acme', 0.35); // $0.85: past 80%, alerted by b
    const r = await a.reserve({ model: 'gpt-4', taskType: 'fraud', estimateUsd: 0.1, tenant: 'acme' });
    if (!r.ok) throw r.error;
    // While the reservation is open, the new mirror shows the fleet's figures.
    expect(a.state('tenant:acme')).toMatchObject({
      scope: 'tenant:acme',
      level: 'warning',
      limitUsd: 1,
      alerted: [0.8],
    });
    expect(a.state('tenant:acme')?.spentUsd).toBeCloseTo(0.85, 9);
    expect(a.state('tenant:acme')?.reservedUsd).toBeCloseTo(0.1, 9);
    expect(a.liveActors()).toBe(2);
    r.reservation.settle(0.15); // $1.00: 100%
    await a.flush();
    expect(a.liveActors()).toBe(1);
    const refused = await a.reserve({ model: 'gpt-4', taskType: 'fraud', estimateUsd: 0.01, tenant: 'acme' });
    expect(!refused.ok && refused.scope).toBe('tenant:acme');
    expect(alerts.map((x) => `${x.tenant}@${x.threshold}`)).toEqual(['acme@0.8', 'acme@1']);
  });
});
