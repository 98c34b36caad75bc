/**
 * Idle tenant budget actors are evicted (least recently used past `budget.idleTenantActors`), so
 * memory does not grow with the number of distinct tenants; an evicted tenant gets its actor back
 * where it was — today's spend and alerted thresholds — exactly as after a restart, so the 80% and
 * 100% lines hold over the spend before and after the eviction. Virtual time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { isConfigError } from '../../src/core/errors.js';
import { isBudgetExceededError } from '../../src/cost/errors.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { createRuntime, type Runtime, type RuntimeConfig } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';

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

function runtime(
  clock: SimulatedClock,
  budget: Partial<NonNullable<RuntimeConfig['budget']>>,
  db = ':memory:',
) {
  const rt = createRuntime<SqliteEventStore>({
    db,
    clock,
    seed: 1,
    pricing: PRICING,
    cache: false,
    budget: { dailyUsd: 1_000_000, alertAt: 0.8, perTenant: { default: 5 }, ...budget },
  });
  open.push(rt);
  return rt;
}

/** One $1 call, answered at once (a plain function, no simulator). */
const call = agent({
  name: 'call',
  model: 'flat',
  estimate: { inputTokens: 0, outputTokens: 0 },
  run: () => Promise.resolve({ value: 'ok', usage: { inputTokens: 1, outputTokens: 1 } }),
});

/** Runs one workflow per tenant given, concurrently: 'ok' or `over:<scope>`. */
function wave(rt: Runtime<SqliteEventStore>, tenants: string[]): Promise<string[]> {
  return Promise.all(
    tenants.map((tenant) =>
      rt.run(call, {}, { tenant }).then(
        () => 'ok',
        (e: unknown) => (isBudgetExceededError(e) ? `over:${e.scope}` : `other:${String(e)}`),
      ),
    ),
  );
}

/** One call each, one after another. */
async function oneByOne(rt: Runtime<SqliteEventStore>, tenants: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const t of tenants) out.push(...(await wave(rt, [t])));
  return out;
}

const alertsOf = async (rt: Runtime<SqliteEventStore>): Promise<string[]> => {
  await rt.ready();
  return rt.store
    .query({ type: 'budget.alert' })
    .map((e) => (e.type === 'budget.alert' ? `${e.payload.scope}@${e.payload.threshold}` : e.type));
};

describe('idle tenant budget actors', () => {
  it('10,000 distinct tenants: the budget actors in memory stay within the bound', async () => {
    const clock = simulatedClock(T0);
    const rt = runtime(clock, { idleTenantActors: 100 });
    let peak = 0;
    for (let batch = 0; batch < 20; batch++) {
      const tenants = Array.from({ length: 500 }, (_, i) => `t${batch * 500 + i}`);
      expect(new Set(await wave(rt, tenants))).toEqual(new Set(['ok']));
      peak = Math.max(peak, rt.stats().budgetActors);
    }
    // global + 100 idle tenants (none has a reservation open between waves).
    expect(rt.stats().budgetActors).toBe(101);
    expect(peak).toBeLessThanOrEqual(101);
    // Every one of them still has its spend: one more call each fits ($2 of 5), for the first and the last.
    expect(await wave(rt, ['t0', 't9999'])).toEqual(['ok', 'ok']);
  }, 120_000);

  it('the default bound is 1,000 idle tenants', async () => {
    const clock = simulatedClock(T0);
    const rt = runtime(clock, {});
    for (let batch = 0; batch < 3; batch++)
      await wave(
        rt,
        Array.from({ length: 500 }, (_, i) => `t${batch * 500 + i}`),
      );
    expect(rt.stats().budgetActors).toBe(1_001);
  });

  it('spend, evicted, spend more: the 80% and 100% lines hold over the sum, each alerted once', async () => {
    const clock = simulatedClock(T0);
    const rt = runtime(clock, { idleTenantActors: 1 });
    // acme spends $3 of 5, then two other tenants push its idle actor out.
    expect(await oneByOne(rt, ['acme', 'acme', 'acme', 'globex', 'initech'])).toEqual(Array(5).fill('ok'));
    expect(rt.stats().budgetActors).toBe(2); // global + initech
    // $4 = 80%: alerted now (not at $1 after eviction); $5 = 100%; the 6th is refused.
    expect(await oneByOne(rt, ['acme', 'acme', 'acme'])).toEqual(['ok', 'ok', 'over:tenant:acme']);
    expect(await alertsOf(rt)).toEqual(['tenant:acme@0.8', 'tenant:acme@1']);
  });

  it('an alert raised before the eviction is not raised again after it', async () => {
    const clock = simulatedClock(T0);
    const rt = runtime(clock, { idleTenantActors: 0 });
    expect(await oneByOne(rt, ['acme', 'acme', 'acme', 'acme'])).toEqual(Array(4).fill('ok'));
    expect(rt.stats().budgetActors).toBe(1); // evicted as soon as idle
    expect(await oneByOne(rt, ['acme', 'acme'])).toEqual(['ok', 'over:tenant:acme']);
    expect(await alertsOf(rt)).toEqual(['tenant:acme@0.8', 'tenant:acme@1']);
  });

  it('spend, evicted, restart, spend more: the same lines, and a restart starts no actor per tenant', async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-tenant-evict-'));
    const db = join(dir, 'k.db');
    const clock = simulatedClock(T0);
    const first = runtime(clock, { idleTenantActors: 0 }, db);
    expect(await oneByOne(first, ['acme', 'acme', 'globex', 'initech'])).toEqual(Array(4).fill('ok'));
    await first.close();
    open.splice(open.indexOf(first), 1);

    const second = runtime(clock, { idleTenantActors: 0 }, db);
    await second.ready();
    expect(second.stats().budgetActors).toBe(1); // only global: tenants' figures wait for their calls
    expect(await oneByOne(second, ['acme', 'acme', 'acme', 'acme'])).toEqual([
      'ok',
      'ok',
      'ok',
      'over:tenant:acme',
    ]);
    expect(await alertsOf(second)).toEqual(['tenant:acme@0.8', 'tenant:acme@1']);
  });

  it("an evicted tenant's spend ends with its day", async () => {
    const clock = simulatedClock(T0);
    const rt = runtime(clock, { idleTenantActors: 0 });
    expect(await oneByOne(rt, Array<string>(6).fill('acme'))).toEqual([
      ...Array<string>(5).fill('ok'),
      'over:tenant:acme',
    ]);
    await clock.advanceAsync(12 * 3_600_000);
    expect(await oneByOne(rt, Array<string>(6).fill('acme'))).toEqual([
      ...Array<string>(5).fill('ok'),
      'over:tenant:acme',
    ]);
  });

  it.each([-1, 1.5, '10'])('refuses budget.idleTenantActors: %s naming the field', (value) => {
    let error: unknown;
    try {
      runtime(simulatedClock(T0), { idleTenantActors: value as number });
    } catch (e) {
      error = e;
    }
    expect(isConfigError(error)).toBe(true);
    expect((error as Error).message).toMatch(/budget\.idleTenantActors.*whole number >= 0/);
  });
});
