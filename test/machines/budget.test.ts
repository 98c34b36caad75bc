import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import {
  budgetMachine,
  type BudgetMachineEmitted,
  type BudgetMachineInput,
} from '../../machines/budget.machine.js';

function start(input: Partial<BudgetMachineInput> = {}) {
  const actor = createActor(budgetMachine, {
    input: { scope: 'global', limitUsd: 100, day: '2026-01-01', ...input },
  });
  const emitted: BudgetMachineEmitted[] = [];
  actor.on('*', (e) => emitted.push(e));
  actor.start();
  const alerts = () => emitted.filter((e) => e.type === 'alert');
  const admitted = (id: string) => actor.getSnapshot().context.reservations[id] !== undefined;
  const spend = (id: string, usd: number) => {
    actor.send({ type: 'RESERVE', id, usd });
    actor.send({ type: 'SETTLE', id, actualUsd: usd });
  };
  return { actor, emitted, alerts, admitted, spend };
}

describe('budget machine', () => {
  it('admits a reservation only while spent + reserved + estimate fits the limit', () => {
    const { actor, admitted, emitted } = start({ limitUsd: 1 });
    actor.send({ type: 'RESERVE', id: 'a', usd: 0.6 });
    actor.send({ type: 'RESERVE', id: 'b', usd: 0.4 });
    actor.send({ type: 'RESERVE', id: 'c', usd: 0.01 });
    expect([admitted('a'), admitted('b'), admitted('c')]).toEqual([true, true, false]);
    expect(actor.getSnapshot().context.reservedUsd).toBeCloseTo(1, 12);
    expect(emitted.at(-1)).toEqual({
      type: 'rejected',
      scope: 'global',
      id: 'c',
      usd: 0.01,
      spentUsd: 0,
      reservedUsd: 1,
      limitUsd: 1,
      day: '2026-01-01',
    });
    // Releasing one frees room; the rejected call can try again.
    actor.send({ type: 'RELEASE', id: 'b' });
    actor.send({ type: 'RESERVE', id: 'c', usd: 0.01 });
    expect(admitted('c')).toBe(true);
  });

  it('settling replaces the estimate by the actual cost', () => {
    const { actor } = start();
    actor.send({ type: 'RESERVE', id: 'a', usd: 5 });
    actor.send({ type: 'SETTLE', id: 'a', actualUsd: 3 });
    const ctx = actor.getSnapshot().context;
    expect(ctx.spentUsd).toBe(3);
    expect(ctx.reservedUsd).toBe(0);
    expect(ctx.reservations).toEqual({});
    // A settle without a reservation still costs money (charged, nothing released).
    actor.send({ type: 'SETTLE', id: 'unknown', actualUsd: 2 });
    expect(actor.getSnapshot().context.spentUsd).toBe(5);
  });

  it('goes within → warning at alertAt → exhausted at the limit, alerting once per threshold', () => {
    const { actor, alerts, spend } = start({ alertAt: 0.8 });
    spend('a', 79.99);
    expect(actor.getSnapshot().value).toBe('within');
    expect(alerts()).toEqual([]);
    spend('b', 0.01);
    expect(actor.getSnapshot().value).toBe('warning');
    expect(alerts()).toEqual([
      { type: 'alert', scope: 'global', threshold: 0.8, spentUsd: 80, limitUsd: 100, day: '2026-01-01' },
    ]);
    spend('c', 10);
    expect(alerts()).toHaveLength(1);
    spend('d', 10);
    expect(actor.getSnapshot().value).toBe('exhausted');
    expect(alerts().map((a) => a.type === 'alert' && a.threshold)).toEqual([0.8, 1]);
    // Exhausted: nothing is admitted, not even a zero estimate, and no alert repeats.
    actor.send({ type: 'RESERVE', id: 'e', usd: 0 });
    expect(actor.getSnapshot().context.reservations['e']).toBeUndefined();
    actor.send({ type: 'SETTLE', id: 'late', actualUsd: 1 });
    expect(alerts()).toHaveLength(2);
  });

  it('reaches 80% through float sums of small charges exactly at the 800th dime', () => {
    const { actor, alerts, spend } = start();
    for (let i = 0; i < 799; i++) spend(`r${i}`, 0.1);
    expect(alerts()).toEqual([]);
    spend('last', 0.1);
    // 800 × 0.1 sums to 79.99999999999973 in floating point: still 80% of $100.
    expect(actor.getSnapshot().context.spentUsd).toBeLessThan(80);
    expect(alerts()).toHaveLength(1);
    expect(actor.getSnapshot().value).toBe('warning');
  });

  it('one big charge crosses both thresholds and raises both alerts', () => {
    const { actor, alerts, spend } = start();
    spend('big', 150);
    expect(actor.getSnapshot().value).toBe('exhausted');
    expect(alerts().map((a) => a.type === 'alert' && a.threshold)).toEqual([0.8, 1]);
  });

  it('a new DAY resets spend and alerts; in-flight reservations carry over', () => {
    const { actor, alerts, spend } = start();
    actor.send({ type: 'RESERVE', id: 'inflight', usd: 5 });
    spend('a', 95);
    expect(actor.getSnapshot().value).toBe('warning');
    actor.send({ type: 'DAY', day: '2026-01-01' }); // same day: nothing changes
    expect(actor.getSnapshot().context.spentUsd).toBe(95);
    actor.send({ type: 'DAY', day: '2026-01-02' });
    const snap = actor.getSnapshot();
    expect(snap.value).toBe('within');
    expect(snap.context).toMatchObject({ day: '2026-01-02', spentUsd: 0, reservedUsd: 5, alerted: [] });
    actor.send({ type: 'SETTLE', id: 'inflight', actualUsd: 5 });
    spend('b', 75);
    expect(alerts().at(-1)).toMatchObject({ threshold: 0.8, day: '2026-01-02', spentUsd: 80 });
  });

  it('RESTORE resumes a day without repeating alerts already raised', () => {
    const { actor, alerts, spend } = start();
    actor.send({ type: 'RESTORE', day: '2026-01-01', spentUsd: 85, alerted: [0.8] });
    expect(actor.getSnapshot().value).toBe('warning');
    expect(alerts()).toEqual([]);
    spend('a', 15);
    expect(alerts().map((a) => a.type === 'alert' && a.threshold)).toEqual([1]);
  });

  it('with alertAt = 1 there is a single threshold', () => {
    const { actor, alerts, spend } = start({ alertAt: 1 });
    spend('a', 99);
    expect(actor.getSnapshot().value).toBe('within');
    spend('b', 1);
    expect(actor.getSnapshot().value).toBe('exhausted');
    expect(alerts().map((a) => a.type === 'alert' && a.threshold)).toEqual([1]);
  });
});
