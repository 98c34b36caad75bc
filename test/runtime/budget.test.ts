import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { isBudgetExceededError } from '../../src/cost/errors.js';
import type { Alert } from '../../src/monitor/alert.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent, type AgentContext } from '../../src/supervisor/agent.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';

const PRICING = {
  flat: { inputPer1K: 0, outputPer1K: 0, perCall: 1 },
  tiny: { inputPer1K: 0, outputPer1K: 0, perCall: 0.1 },
};
let dir: string | undefined;
const open: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function runtime(
  db: string,
  clock: SimulatedClock,
  onExhausted: 'reject' | 'downgrade' = 'reject',
  dailyUsd = 10,
): Runtime<SqliteEventStore> {
  const rt = createRuntime({
    db,
    clock,
    seed: 1,
    pricing: PRICING,
    budget: {
      dailyUsd,
      alertAt: 0.8,
      onExhausted,
      ...(onExhausted === 'downgrade' ? { downgradeTo: { flat: 'tiny' } } : {}),
    },
  });
  open.push(rt);
  return rt;
}

const call = (clock: SimulatedClock) =>
  agent({
    name: 'call',
    model: 'flat',
    estimate: { inputTokens: 0, outputTokens: 0 },
    run: (_i: unknown, ctx: AgentContext) =>
      new Promise<{ value: string; model: string }>((resolve) =>
        clock.setTimeout(() => resolve({ value: ctx.model, model: ctx.model }), 10),
      ),
  });

describe('budgets in the runtime', () => {
  it('alerts once at 80%, rejects past 100% even under 100 concurrent calls, and resets at midnight', async () => {
    const clock = simulatedClock(Date.UTC(2026, 0, 1, 12));
    const rt = runtime(':memory:', clock);
    const alerts: Alert[] = [];
    rt.on('alert', (a) => alerts.push(a));
    const a = call(clock);
    const runs = Array.from({ length: 100 }, () =>
      rt.run(a, {}).then(
        () => 'ok',
        (e: unknown) => (isBudgetExceededError(e) ? 'over' : 'other'),
      ),
    );
    await clock.advanceAsync(10);
    const outcomes = await Promise.all(runs);
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(10);
    expect(outcomes.filter((o) => o === 'over')).toHaveLength(90);
    const spent = rt.store
      .query({ type: 'cost.incurred' })
      .reduce((s, e) => s + (e.type === 'cost.incurred' ? e.payload.costUsd : 0), 0);
    expect(spent).toBeCloseTo(10, 10);
    await rt.ready(); // alerts are delivered once their `alert.raised` is committed
    expect(alerts.map((x) => x.severity)).toEqual(['high', 'critical']);
    expect(rt.store.query({ type: 'budget.alert' })).toHaveLength(2);
    await clock.advanceAsync(12 * 3_600_000);
    const next = rt.run(a, {});
    await clock.advanceAsync(10);
    await expect(next).resolves.toMatchObject({ costUsd: 1 });
  });

  it('downgrades to the cheaper model when exhausted', async () => {
    const clock = simulatedClock(Date.UTC(2026, 0, 1, 12));
    const rt = runtime(':memory:', clock, 'downgrade', 9.5);
    const a = call(clock);
    for (let i = 0; i < 9; i++) {
      const p = rt.run(a, {});
      await clock.advanceAsync(10);
      await p;
    }
    const p = rt.run(a, {});
    await clock.advanceAsync(10);
    const r = await p;
    expect(r.value).toBe('tiny');
    expect(r.costUsd).toBeCloseTo(0.1, 10);
    expect(rt.store.query({ type: 'budget.downgraded' })).toHaveLength(1);
  });

  it("a restarted runtime resumes today's spend from the log and does not re-alert", async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-budget-'));
    const db = join(dir, 'k.db');
    const clock = simulatedClock(Date.UTC(2026, 0, 1, 12));
    const first = runtime(db, clock);
    for (let i = 0; i < 9; i++) {
      const p = first.run(call(clock), {});
      await clock.advanceAsync(10);
      await p;
    }
    await first.close();
    open.splice(open.indexOf(first), 1);
    const second = runtime(db, clock);
    const alerts: Alert[] = [];
    second.on('alert', (a) => alerts.push(a));
    const ok = second.run(call(clock), {});
    await clock.advanceAsync(10);
    await ok;
    await expect(second.run(call(clock), {})).rejects.toMatchObject({ category: 'budget_exceeded' });
    expect(alerts.map((a) => a.severity)).toEqual(['critical']);
  });
});

describe('retention from config', () => {
  it('prunes operational events after operationalDays and keeps the chain verifiable', async () => {
    const clock = simulatedClock(Date.UTC(2026, 0, 1, 12));
    const rt = createRuntime({
      db: ':memory:',
      clock,
      seed: 1,
      pricing: PRICING,
      budget: { dailyUsd: 100 },
      retention: { operationalDays: 1 },
    });
    open.push(rt);
    const p = rt.run(call(clock), {});
    await clock.advanceAsync(10);
    await p;
    expect(rt.store.query({ class: 'operational' }).length).toBeGreaterThan(0);
    clock.advance(2 * 86_400_000);
    const [operational, audit] = await rt.applyRetention();
    expect(operational?.pruned).toBeGreaterThan(0);
    expect(audit?.pruned).toBe(0);
    expect(rt.store.query({ class: 'operational', type: 'cost.reserved' })).toHaveLength(0);
    expect(rt.store.verify().ok).toBe(true);
  });
});
