import { afterEach, describe, expect, it } from 'vitest';
import { createActor, createMachine } from 'xstate';
import { simulatedClock, type Clock, type SimulatedClock } from '../../src/core/clock.js';
import { isConfigError } from '../../src/core/errors.js';
import { createBudgets, type BudgetConfig, type Budgets } from '../../src/cost/budget.js';
import { BudgetsClosedError, isBudgetExceededError, isUnknownModelError } from '../../src/cost/errors.js';
import { createPricing } from '../../src/cost/pricing.js';
import type { EventPayloads, KeelEvent } from '../../src/eventlog/events.js';
import { completed, ev, incurred, started } from './events.js';

type Alert = EventPayloads['budget.alert'];

const pricing = createPricing();
let open: Budgets[] = [];

function budgets(config: BudgetConfig, clock: Clock = simulatedClock()) {
  const alerts: Alert[] = [];
  const b = createBudgets(config, { clock, pricing, onAlert: (a) => alerts.push(a) });
  open.push(b);
  return { b, alerts };
}

/** Reserves and settles `usd` (one call that cost exactly its estimate). */
function spend(b: Budgets, usd: number, model = 'gpt-4', taskType = 'vendor') {
  const r = b.reserve({ model, taskType, estimateUsd: usd });
  if (!r.ok) throw r.error;
  r.reservation.settle(usd);
}

const sleep = (clock: Clock, ms: number) => new Promise<void>((resolve) => clock.setTimeout(resolve, ms));

function configErrorOf(fn: () => unknown): { field: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (isConfigError(e)) return { field: e.field, message: e.message };
    throw e;
  }
  throw new Error('expected a ConfigError');
}

afterEach(() => {
  for (const b of open) b.stop();
  open = [];
});

describe('budgets', () => {
  it('alerts at exactly 80% (not at 79.99%) once, then at 100% once', () => {
    const { b, alerts } = budgets({ dailyUsd: 100 });
    spend(b, 79.99);
    expect(alerts).toEqual([]);
    expect(b.state()?.level).toBe('within');
    spend(b, 0.01);
    expect(alerts).toEqual([
      { scope: 'global', threshold: 0.8, spentUsd: 80, limitUsd: 100, day: '2026-01-01' },
    ]);
    spend(b, 5);
    spend(b, 5);
    expect(alerts).toHaveLength(1);
    spend(b, 10);
    expect(alerts.map((a) => a.threshold)).toEqual([0.8, 1]);
    expect(alerts[1]).toMatchObject({ spentUsd: 100, limitUsd: 100 });
    expect(b.state()?.level).toBe('exhausted');

    const r = b.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 0.03 });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.scope).toBe('global');
    expect(isBudgetExceededError(r.error)).toBe(true);
    expect(r.error).toMatchObject({
      category: 'budget_exceeded',
      scope: 'global',
      limitUsd: 100,
      spentUsd: 100,
    });
    expect(r.error.message).toContain('Budget "global"');
    expect(alerts).toHaveLength(2);
  });

  it('100 concurrent calls against a nearly spent budget admit exactly what fits and never overshoot', async () => {
    const clock = simulatedClock();
    const { b } = budgets({ dailyUsd: 100 }, clock);
    spend(b, 99);
    let maxSpent = 0;
    const caller = async (i: number): Promise<'settled' | 'rejected'> => {
      const r = b.reserve({ model: 'gpt-4', taskType: 'fraud', estimateUsd: 0.03 });
      if (!r.ok) {
        expect(isBudgetExceededError(r.error)).toBe(true);
        return 'rejected';
      }
      await sleep(clock, 1_000 + i * 7); // the model call, in virtual time
      r.reservation.settle(0.03);
      maxSpent = Math.max(maxSpent, b.spent());
      return 'settled';
    };
    const all = Promise.all(Array.from({ length: 100 }, (_, i) => caller(i)));
    expect(b.state()?.reservedUsd).toBeCloseTo(33 * 0.03, 9); // all reserved before any settled
    await clock.advanceAsync(5_000);
    const outcomes = await all;

    expect(outcomes.filter((o) => o === 'settled')).toHaveLength(33); // floor($1.00 / $0.03)
    expect(outcomes.filter((o) => o === 'rejected')).toHaveLength(67);
    expect(maxSpent).toBeLessThanOrEqual(100);
    expect(b.spent()).toBeCloseTo(99.99, 9);
    expect(b.state()?.reservedUsd).toBe(0);
  });

  it('a reservation touches every scope it belongs to, and one refusal releases the others', () => {
    const { b } = budgets({ dailyUsd: 100, perModel: { 'gpt-4': 10 }, perTaskType: { fraud: 1 } });
    expect(b.scopes().sort()).toEqual(['global', 'model:gpt-4', 'taskType:fraud']);
    spend(b, 0.9, 'gpt-4', 'fraud');
    const r = b.reserve({ model: 'gpt-4', taskType: 'fraud', estimateUsd: 0.2 });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.scope).toBe('taskType:fraud');
    expect(b.state('global')?.reservedUsd).toBe(0);
    expect(b.state('model:gpt-4')?.reservedUsd).toBe(0);
    expect(b.spent('model:gpt-4')).toBeCloseTo(0.9, 12);
    // Another task type is not limited by the fraud budget.
    expect(b.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 0.2 }).ok).toBe(true);
    expect(b.state('nope')).toBeUndefined();
  });

  it('a reservation settles or releases once; later calls are ignored', () => {
    const { b } = budgets({ dailyUsd: 100 });
    const r = b.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 1 });
    if (!r.ok) throw r.error;
    r.reservation.settle(2);
    r.reservation.settle(2);
    r.reservation.release();
    expect(b.spent()).toBe(2);
    expect(b.state()?.reservedUsd).toBe(0);
  });

  it('resets at midnight UTC under a simulated clock', () => {
    const clock = simulatedClock(Date.UTC(2026, 0, 1));
    const { b, alerts } = budgets({ dailyUsd: 10 }, clock);
    spend(b, 10);
    expect(b.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 0.03 }).ok).toBe(false);
    clock.set(Date.UTC(2026, 0, 1, 23, 59, 59, 999));
    expect(b.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 0.03 }).ok).toBe(false);
    clock.advance(1);
    expect(b.state()).toMatchObject({ level: 'within', day: '2026-01-02', spentUsd: 0 });
    expect(b.today()).toEqual({
      day: '2026-01-02',
      startMs: Date.UTC(2026, 0, 2),
      endMs: Date.UTC(2026, 0, 3),
    });
    spend(b, 8);
    expect(alerts.map((a) => [a.day, a.threshold])).toEqual([
      ['2026-01-01', 0.8],
      ['2026-01-01', 1],
      ['2026-01-02', 0.8],
    ]);
  });

  it("resets at the configured time zone's midnight, not UTC's", () => {
    const clock = simulatedClock(Date.UTC(2026, 0, 1, 12)); // 07:00 in New York
    const { b } = budgets({ dailyUsd: 10, timeZone: 'America/New_York' }, clock);
    spend(b, 10);
    clock.set(Date.UTC(2026, 0, 2)); // midnight UTC = 19:00 in New York
    expect(b.state()).toMatchObject({ level: 'exhausted', day: '2026-01-01' });
    clock.set(Date.UTC(2026, 0, 2, 5) - 1); // 23:59:59.999 in New York
    expect(b.state()?.level).toBe('exhausted');
    clock.advance(1);
    expect(b.state()).toMatchObject({ level: 'within', day: '2026-01-02', spentUsd: 0 });
    expect(b.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 1 }).ok).toBe(true);
  });

  it("onExhausted: 'downgrade' moves an exhausted model to its cheaper model", () => {
    const { b } = budgets({
      dailyUsd: 100,
      perModel: { 'gpt-4': 1 },
      onExhausted: 'downgrade',
      downgradeTo: { 'gpt-4': 'gpt-4o-mini' },
    });
    spend(b, 1, 'gpt-4');
    const usage = { inputTokens: 1_000, outputTokens: 500 };
    const r = b.reserve({
      model: 'gpt-4',
      taskType: 'vendor',
      estimateUsd: pricing.price('gpt-4', usage),
      usage,
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.model).toBe('gpt-4o-mini');
    expect(r.reservation.model).toBe('gpt-4o-mini');
    expect(r.downgradedFrom).toBe('gpt-4');
    expect(r.downgradeScope).toBe('model:gpt-4');
    expect(r.estimateUsd).toBeCloseTo(pricing.price('gpt-4o-mini', usage), 12);
    expect(b.state('model:gpt-4')?.reservedUsd).toBe(0);
    expect(b.state('global')?.reservedUsd).toBeCloseTo(r.estimateUsd, 12);
    // A model with no cheaper entry is refused.
    const other = b.reserve({ model: 'gpt-4o', taskType: 'vendor', estimateUsd: 200 });
    expect(other.ok).toBe(false);
  });

  it('downgrades along a chain until a model fits the global budget, scaling the estimate by price', () => {
    const { b } = budgets({
      dailyUsd: 1,
      onExhausted: 'downgrade',
      downgradeTo: { 'gpt-4': 'gpt-4o', 'gpt-4o': 'gpt-4o-mini' },
    });
    spend(b, 0.999);
    const nominal = { inputTokens: 1_000, outputTokens: 500 };
    const ratio = pricing.price('gpt-4o-mini', nominal) / pricing.price('gpt-4', nominal);
    const r = b.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 0.06 });
    expect(r.ok && r.model).toBe('gpt-4o-mini');
    if (r.ok) {
      expect(r.estimateUsd).toBeCloseTo(0.06 * ratio, 12);
      expect(r.downgradeScope).toBe('global');
    }
    // Even the cheapest model does not fit a bigger call: refused, naming the scope.
    const big = b.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 10 });
    expect(big.ok).toBe(false);
    if (!big.ok) expect(big.scope).toBe('global');
  });

  it("restores today's spend from the log and does not re-alert", () => {
    const clock = simulatedClock(Date.UTC(2026, 0, 2, 15));
    const today = Date.UTC(2026, 0, 2, 9);
    const yesterday = Date.UTC(2026, 0, 1, 9);
    const events: KeelEvent[] = [
      incurred(yesterday, 'w0', { model: 'gpt-4', costUsd: 50, taskType: 'fraud' }),
      ev('budget.alert', yesterday, '_system', {
        scope: 'global',
        threshold: 1,
        spentUsd: 100,
        limitUsd: 100,
        day: '2026-01-01',
      }),
      incurred(today, 'w1', { model: 'gpt-4', costUsd: 60, taskType: 'vendor' }),
      incurred(today, 'w2', { model: 'gpt-4o', costUsd: 25, taskType: 'fraud' }),
      ev('budget.alert', today, '_system', {
        scope: 'global',
        threshold: 0.8,
        spentUsd: 85,
        limitUsd: 100,
        day: '2026-01-02',
      }),
    ];
    const { b, alerts } = budgets(
      { dailyUsd: 100, perModel: { 'gpt-4': 200 }, perTaskType: { fraud: 30 } },
      clock,
    );
    b.restore(events);
    expect(b.state()).toMatchObject({ level: 'warning', spentUsd: 85, day: '2026-01-02', alerted: [0.8] });
    expect(b.spent('model:gpt-4')).toBe(60);
    expect(b.spent('taskType:fraud')).toBe(25);
    // Global 0.8 was already raised today. The fraud scope crossed 80% but its alert never reached
    // the log (a crash in between), so it is raised now: alerts are at-least-once.
    expect(alerts).toEqual([
      { scope: 'taskType:fraud', threshold: 0.8, spentUsd: 25, limitUsd: 30, day: '2026-01-02' },
    ]);
    spend(b, 15, 'gpt-4', 'vendor');
    expect(alerts.slice(1)).toEqual([
      { scope: 'global', threshold: 1, spentUsd: 100, limitUsd: 100, day: '2026-01-02' },
    ]);
  });

  it('round trip: budgets rebuilt from the events a live run wrote match the live state', () => {
    const clock = simulatedClock(Date.UTC(2026, 0, 3, 8));
    const log: KeelEvent[] = [];
    const live = createBudgets(
      { dailyUsd: 40, perModel: { 'gpt-4': 30 } },
      {
        clock,
        pricing,
        onAlert: (a) => log.push(ev('budget.alert', clock.now(), '_system', a)),
      },
    );
    open.push(live);
    for (let i = 0; i < 1_000; i++) {
      const model = i % 3 === 0 ? 'gpt-4' : 'gpt-4o-mini';
      const r = live.reserve({ model, taskType: 'vendor', estimateUsd: 0.1 });
      if (!r.ok) continue;
      const costUsd = model === 'gpt-4' ? 0.09 : 0.004;
      r.reservation.settle(costUsd);
      log.push(incurred(clock.now(), `w${i}`, { model, costUsd, taskType: 'vendor' }));
      clock.advance(10_000);
    }
    const restoredAlerts: Alert[] = [];
    const restored = createBudgets(
      { dailyUsd: 40, perModel: { 'gpt-4': 30 } },
      { clock, pricing, onAlert: (a) => restoredAlerts.push(a) },
    );
    open.push(restored);
    restored.restore(log);
    for (const scope of ['global', 'model:gpt-4']) {
      const want = live.state(scope);
      const got = restored.state(scope);
      expect(got?.spentUsd).toBeCloseTo(want?.spentUsd ?? Number.NaN, 9);
      expect(got?.level).toBe(want?.level);
      expect(got?.alerted).toEqual(want?.alerted);
    }
    // The live run crossed 80% in both scopes (gpt-4 stops at $29.97: one more $0.10 estimate won't fit).
    expect(restored.state('model:gpt-4')).toMatchObject({ level: 'warning', alerted: [0.8] });
    expect(restored.state('global')?.alerted).toEqual([0.8]);
    expect(restoredAlerts).toEqual([]);
  });

  it('joins the parent actor system under budget:<scope> system ids', () => {
    const root = createActor(createMachine({ id: 'runtime' }));
    root.start();
    const b = createBudgets(
      { dailyUsd: 10, perModel: { 'gpt-4': 5 }, perTaskType: { vendor: 2 } },
      { clock: simulatedClock(), pricing, parent: root, onAlert: () => {} },
    );
    open.push(b);
    expect(root.system.get('budget:global')).toBeDefined();
    expect(root.system.get('budget:model:gpt-4')).toBeDefined();
    expect(root.system.get('budget:taskType:vendor')).toBeDefined();
    b.stop();
    expect(root.system.get('budget:global')).toBeUndefined();
    expect(b.state()?.level).toBe('stopped');
    expect(() => b.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 1 })).toThrow(
      BudgetsClosedError,
    );
    root.stop();
  });

  it('an unknown model in the budget config fails with its name and the field', () => {
    let caught: unknown;
    try {
      budgets({ dailyUsd: 10, perModel: { 'gpt-9000': 5 } });
    } catch (e) {
      caught = e;
    }
    expect(isUnknownModelError(caught)).toBe(true);
    expect(caught).toMatchObject({ field: 'budget.perModel.gpt-9000', model: 'gpt-9000' });
    expect((caught as Error).message).toContain('"gpt-9000"');
  });

  it('config errors name the field', () => {
    const cases: [unknown, string][] = [
      [{ dailyUsd: -1 }, 'budget.dailyUsd'],
      [{}, 'budget.dailyUsd'],
      [{ dailyUsd: 10, alertAt: 1.5 }, 'budget.alertAt'],
      [{ dailyUsd: 10, alertAt: 0 }, 'budget.alertAt'],
      [{ dailyUsd: 10, onExhausted: 'panic' }, 'budget.onExhausted'],
      [{ dailyUsd: 10, timeZone: 'Mars/Olympus_Mons' }, 'budget.timeZone'],
      [{ dailyUsd: 10, perTaskType: { fraud: 0 } }, 'budget.perTaskType.fraud'],
      [{ dailyUsd: 10, dailyUSD: 10 }, 'budget.dailyUSD'],
      [{ dailyUsd: 10, onExhausted: 'downgrade' }, 'budget.downgradeTo'],
      [{ dailyUsd: 10, downgradeTo: { 'gpt-4': 'gpt-4o' } }, 'budget.onExhausted'],
      [
        { dailyUsd: 10, onExhausted: 'downgrade', downgradeTo: { 'gpt-4o-mini': 'gpt-4' } },
        'budget.downgradeTo.gpt-4o-mini',
      ],
      [
        { dailyUsd: 10, onExhausted: 'downgrade', downgradeTo: { 'gpt-4': 'gpt-9000' } },
        'budget.downgradeTo.gpt-4',
      ],
    ];
    for (const [config, field] of cases) {
      const err = configErrorOf(() => budgets(config as BudgetConfig));
      expect(err.field, JSON.stringify(config)).toBe(field);
    }
    expect(configErrorOf(() => budgets({ dailyUsd: 10, alertAt: 2 })).message).toContain(
      'fraction in (0, 1]',
    );
    expect(
      configErrorOf(() =>
        budgets({ dailyUsd: 10, onExhausted: 'downgrade', downgradeTo: { 'gpt-4o-mini': 'gpt-4' } }),
      ).message,
    ).toContain('not cheaper');
  });

  it('a bad estimate or actual cost is refused with the field named', () => {
    const { b } = budgets({ dailyUsd: 10 });
    expect(
      configErrorOf(() => b.reserve({ model: 'gpt-4', taskType: 't', estimateUsd: Number.NaN })).field,
    ).toBe('reserve.estimateUsd');
    const r = b.reserve({ model: 'gpt-4', taskType: 't', estimateUsd: 1 });
    if (!r.ok) throw r.error;
    expect(configErrorOf(() => r.reservation.settle(-1)).field).toBe('reservation.settle(actualUsd)');
    r.reservation.settle(1); // still open after the refused settle
    expect(b.spent()).toBe(1);
  });

  it('refuses an unknown onExhausted at compile time and at run time', () => {
    const clock: SimulatedClock = simulatedClock();
    const make = () =>
      // @ts-expect-error onExhausted accepts only 'reject' | 'downgrade'
      createBudgets({ dailyUsd: 1, onExhausted: 'panic' }, { clock, pricing, onAlert: () => {} });
    expect(configErrorOf(make).field).toBe('budget.onExhausted');
  });
  it('a resumed workflow: the call cut off by the crash stays charged after the workflow ends', () => {
    const clock = simulatedClock(Date.UTC(2026, 0, 3, 8));
    const t = clock.now();
    const reserved = (attempt: number, step?: number) =>
      ev('cost.reserved', t, 'w1', {
        path: 'w1/support',
        agent: 'support',
        model: 'gpt-4',
        taskType: 'vendor',
        estimateUsd: 1,
        attempt,
        ...(step !== undefined ? { step } : {}),
      });
    const resumed = ev('workflow.resumed', t, 'w1', {
      owner: 'b',
      startedSeq: 1,
      lastSeq: 3,
      reason: 'orphaned',
      rerun: ['w1/support'],
    });
    // A tool loop: turn 1 charged, turn 2 in flight at the crash (reserved, never charged); the
    // resume re-runs the loop under the same attempt number (turns 1..3 charged) and completes.
    const log: KeelEvent[] = [
      started(t, 'w1', 'support'),
      reserved(1),
      incurred(t, 'w1', { model: 'gpt-4', costUsd: 1, taskType: 'vendor', agent: 'support' }),
      reserved(1, 2),
      resumed,
      reserved(1),
      incurred(t, 'w1', { model: 'gpt-4', costUsd: 1, taskType: 'vendor', agent: 'support' }),
      reserved(1, 2),
      incurred(t, 'w1', { model: 'gpt-4', costUsd: 1, taskType: 'vendor', agent: 'support' }),
      reserved(1, 3),
      incurred(t, 'w1', { model: 'gpt-4', costUsd: 1, taskType: 'vendor', agent: 'support' }),
      completed(t, 'w1', 4),
    ];
    const { b } = budgets({ dailyUsd: 100 }, clock);
    b.restore(log);
    // 4 answered turns + the one in flight at the crash (before: its charge was dropped at the end).
    expect(b.spent()).toBe(5);
    // Restored before the resume ran (the log as the crash left it): the same in-flight charge.
    const { b: early } = budgets({ dailyUsd: 100 }, clock);
    early.restore(log.slice(0, 4));
    expect(early.spent()).toBe(2);
  });
});
