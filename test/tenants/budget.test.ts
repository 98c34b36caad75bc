/**
 * Per-tenant budgets (issue 24): `budget.perTenant: { default, <tenant>: usd }` holds each tenant to
 * its own daily limit at reserve time — alert at `alertAt`, refuse at 100% — while other tenants
 * and untenanted workflows go on; a restart reads each tenant's spend back from the log.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { isConfigError } from '../../src/core/errors.js';
import { isIdentifierPiiError } from '../../src/compliance/identifiers.js';
import { isBudgetExceededError } from '../../src/cost/errors.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import type { Alert } from '../../src/monitor/alert.js';
import { createRuntime, type Runtime, type RuntimeConfig } from '../../src/runtime.js';
import { agent, type AgentContext } from '../../src/supervisor/agent.js';

/** $1 a call, whatever its tokens. */
const PRICING = { flat: { inputPer1K: 0, outputPer1K: 0, perCall: 1 } };
const T0 = Date.UTC(2026, 0, 1, 12);
let dir: string | undefined;
const open: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function runtime(clock: SimulatedClock, db = ':memory:', extra: Partial<RuntimeConfig> = {}) {
  const rt = createRuntime({
    db,
    clock,
    seed: 1,
    pricing: PRICING,
    cache: false,
    budget: { dailyUsd: 1_000, alertAt: 0.8, perTenant: { default: 3, acme: 5 } },
    ...extra,
  }) as Runtime<SqliteEventStore>;
  open.push(rt);
  return rt;
}

/** One $1 call taking 10 ms; a plain Error never thrown: every refusal is the budget's. */
const call = (clock: SimulatedClock) =>
  agent({
    name: 'call',
    model: 'flat',
    estimate: { inputTokens: 0, outputTokens: 0 },
    run: (_i: unknown, _ctx: AgentContext) =>
      new Promise<{ value: string }>((resolve) => clock.setTimeout(() => resolve({ value: 'ok' }), 10)),
  });

/** Runs one workflow per tenant given (undefined: no tenant), concurrently; 'ok' or the error category. */
async function wave(
  rt: Runtime<SqliteEventStore>,
  clock: SimulatedClock,
  tenants: (string | undefined)[],
): Promise<string[]> {
  const a = call(clock);
  const runs = tenants.map((tenant) =>
    rt.run(a, {}, tenant === undefined ? {} : { tenant }).then(
      () => 'ok',
      (e: unknown) => (isBudgetExceededError(e) ? `over:${e.scope}` : `other:${String(e)}`),
    ),
  );
  await clock.advanceAsync(10);
  return Promise.all(runs);
}

describe('budget.perTenant', () => {
  it('refuses the tenant that exhausted its limit (budget_exceeded) while the other tenant continues', async () => {
    const clock = simulatedClock(T0);
    const rt = runtime(clock);
    const alerts: Alert[] = [];
    rt.on('alert', (a) => alerts.push(a));
    // acme (limit 5) bursts 8 concurrent calls; globex (default 3) makes 2; no tenant makes 6.
    const outcomes = await wave(rt, clock, [
      ...Array<string>(8).fill('acme'),
      ...Array<string>(2).fill('globex'),
      ...Array<undefined>(6).fill(undefined),
    ]);
    expect(outcomes.slice(0, 8).filter((o) => o === 'ok')).toHaveLength(5);
    expect(outcomes.slice(0, 8).filter((o) => o === 'over:tenant:acme')).toHaveLength(3);
    expect(outcomes.slice(8)).toEqual(Array(8).fill('ok'));
    // The refusals are recorded as rejected agents of acme's workflows, with the budget category.
    const rejected = rt.store.query({ type: 'agent.rejected' });
    expect(rejected).toHaveLength(3);
    for (const e of rejected) {
      expect(e.payload.tenant).toBe('acme');
      expect(e.type === 'agent.rejected' && e.payload.category).toBe('budget_exceeded');
    }
    // globex goes on to its own limit, then stops too; acme stays stopped; untenanted work goes on.
    expect(await wave(rt, clock, ['globex', 'globex', 'acme', undefined])).toEqual([
      'ok',
      'over:tenant:globex',
      'over:tenant:acme',
      'ok',
    ]);
    // The cost tracker (rt.stats(), the fold keel report runs) breaks the spend down by tenant.
    expect(rt.stats().cost.byTenant).toEqual([
      { tenant: 'acme', runs: 9, calls: 5, usd: 5, sharePct: (5 / 15) * 100 },
      { tenant: 'globex', runs: 4, calls: 3, usd: 3, sharePct: (3 / 15) * 100 },
    ]);
    await rt.ready();
    const budgetAlerts = rt.store.query({ type: 'budget.alert' }).map((e) => e.payload);
    expect(budgetAlerts).toEqual([
      expect.objectContaining({ scope: 'tenant:acme', tenant: 'acme', threshold: 0.8, limitUsd: 5 }),
      expect.objectContaining({ scope: 'tenant:acme', tenant: 'acme', threshold: 1, limitUsd: 5 }),
      expect.objectContaining({ scope: 'tenant:globex', tenant: 'globex', threshold: 0.8, limitUsd: 3 }),
      expect.objectContaining({ scope: 'tenant:globex', tenant: 'globex', threshold: 1, limitUsd: 3 }),
    ]);
    expect(alerts.map((a) => `${a.kind}:${a.severity}`)).toEqual([
      'budget:high',
      'budget:critical',
      'budget:high',
      'budget:critical',
    ]);
  });

  it("keeps a tenant's spend across a restart: the second half is refused where the first left off", async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-tenant-budget-'));
    const db = join(dir, 'k.db');
    const clock = simulatedClock(T0);
    const first = runtime(clock, db);
    expect(await wave(first, clock, ['acme', 'acme', 'acme', 'acme', 'globex'])).toEqual(Array(5).fill('ok'));
    await first.close();
    open.splice(open.indexOf(first), 1);

    const second = runtime(clock, db);
    const alerts: Alert[] = [];
    second.on('alert', (a) => alerts.push(a));
    // acme had 4 of 5: one more fits; globex had 1 of 3: two more fit.
    expect(await wave(second, clock, ['acme', 'acme', 'globex', 'globex', 'globex'])).toEqual([
      'ok',
      'over:tenant:acme',
      'ok',
      'ok',
      'over:tenant:globex',
    ]);
    await second.ready();
    // acme's 80% alert came before the restart and is not raised again; its 100% one is new.
    const raised = second.store
      .query({ type: 'budget.alert' })
      .map((e) => (e.type === 'budget.alert' ? `${e.payload.scope}@${e.payload.threshold}` : e.type));
    expect(raised).toEqual(['tenant:acme@0.8', 'tenant:acme@1', 'tenant:globex@0.8', 'tenant:globex@1']);
    expect(alerts.map((a) => a.severity)).toEqual(['critical', 'high', 'critical']);
  });

  it('without a default, tenants not listed are not limited', async () => {
    const clock = simulatedClock(T0);
    const rt = runtime(clock, ':memory:', { budget: { dailyUsd: 1_000, perTenant: { acme: 1 } } });
    expect(await wave(rt, clock, ['acme', 'acme', 'initech', 'initech', 'initech'])).toEqual([
      'ok',
      'over:tenant:acme',
      'ok',
      'ok',
      'ok',
    ]);
  });

  it('resets each tenant at midnight in the budget time zone', async () => {
    const clock = simulatedClock(T0);
    const rt = runtime(clock);
    expect(await wave(rt, clock, Array<string>(4).fill('globex'))).toEqual([
      'ok',
      'ok',
      'ok',
      'over:tenant:globex',
    ]);
    await clock.advanceAsync(12 * 3_600_000);
    expect(await wave(rt, clock, ['globex'])).toEqual(['ok']);
  });

  it.each<[string, Record<string, unknown>, (e: unknown) => boolean, RegExp]>([
    ['a key with a space', { 'acme corp': 5 }, isConfigError, /budget\.perTenant\.acme corp.*U\+0020/],
    ['an email address as key', { 'bob@example.com': 5 }, isConfigError, /budget\.perTenant/],
    ['a phone number as key', { '4155552671': 5 }, isIdentifierPiiError, /budget\.perTenant.*phone/],
    ['a negative limit', { acme: -1 }, isConfigError, /budget\.perTenant\.acme.*USD > 0/],
    ['a string limit', { default: '20' }, isConfigError, /budget\.perTenant\.default/],
  ])('refuses %s in budget.perTenant naming the field', (_, perTenant, guard, message) => {
    const clock = simulatedClock(T0);
    let error: unknown;
    try {
      runtime(clock, ':memory:', {
        budget: { dailyUsd: 10, perTenant: perTenant as Record<string, number> },
      });
    } catch (e) {
      error = e;
    }
    expect(guard(error)).toBe(true);
    expect((error as Error).message).toMatch(message);
  });
});
