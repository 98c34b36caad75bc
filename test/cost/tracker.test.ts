import { describe, expect, it } from 'vitest';
import { formatCostDashboard } from '../../src/cost/dashboard.js';
import { UNKNOWN_WORKFLOW, createCostTracker } from '../../src/cost/tracker.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import { completed, ev, incurred, started } from './events.js';

const WEEK_START = Date.UTC(2026, 0, 5); // a Monday
const DAY_MS = 86_400_000;
const AGENTS = ['extract_vendor', 'validate_vendor', 'route_approval'] as const;

/** The seed's invoice workload: 10,000 invoices in a week, 3 GPT-4 calls at $0.03 each. */
function invoiceWeek(cacheHit: (i: number) => boolean): KeelEvent[] {
  const events: KeelEvent[] = [];
  const step = (7 * DAY_MS) / 10_000;
  for (let i = 0; i < 10_000; i++) {
    const ts = WEEK_START + Math.floor(i * step);
    const id = `wf-${i}`;
    events.push(started(ts, id, 'invoice_processing'));
    for (const agent of AGENTS) {
      if (cacheHit(i)) {
        events.push(
          ev('cache.hit', ts, id, {
            path: `invoice/${agent}`,
            agent,
            key: `k${i}`,
            ageMs: 5,
            savedUsd: 0.03,
          }),
        );
      } else {
        events.push(incurred(ts, id, { model: 'gpt-4', agent, taskType: 'invoice', costUsd: 0.03 }));
      }
    }
    events.push(completed(ts, id, cacheHit(i) ? 0 : 0.09));
  }
  return events;
}

describe('cost tracker (a fold over events)', () => {
  it("reproduces the seed's $900/week for 10,000 invoices × 3 calls × $0.03", () => {
    const tracker = createCostTracker();
    tracker.applyAll(invoiceWeek(() => false));
    const s = tracker.summary();
    expect(s.actualUsd).toBeCloseTo(900, 6);
    expect(s.calls).toBe(30_000);
    expect(s.byModel).toHaveLength(1);
    expect(s.byModel[0]).toMatchObject({ model: 'gpt-4', calls: 30_000 });
    expect(s.byModel[0]?.avgUsd).toBeCloseTo(0.03, 10);
    expect(s.byModel[0]?.sharePct).toBeCloseTo(100, 10);
    expect(s.byDay.map((d) => d.day)).toEqual([
      '2026-01-05',
      '2026-01-06',
      '2026-01-07',
      '2026-01-08',
      '2026-01-09',
      '2026-01-10',
      '2026-01-11',
    ]);
    expect(s.byDay.reduce((sum, d) => sum + d.usd, 0)).toBeCloseTo(900, 6);
    const top = s.topWorkflows[0];
    expect(top?.name).toBe('invoice_processing');
    expect(top?.runs).toBe(10_000);
    expect(top?.avgUsdPerRun).toBeCloseTo(0.09, 10);
    expect(s.byAgent.map((a) => a.name).sort()).toEqual([...AGENTS].sort());
    expect(s.savings.totalUsd).toBe(0);
  });

  it('with a 60% cache hit rate: $360 spent, $540 saved by the cache, $900 without it', () => {
    const tracker = createCostTracker();
    tracker.applyAll(invoiceWeek((i) => i % 5 < 3));
    const s = tracker.summary();
    expect(s.actualUsd).toBeCloseTo(360, 6);
    expect(s.calls).toBe(12_000);
    expect(s.savings.bySource.cache.usd).toBeCloseTo(540, 6);
    expect(s.savings.bySource.cache.events).toBe(18_000);
    expect(s.savings.bySource.vote.usd).toBe(0);
    expect(s.savings.bySource.cascade.usd).toBe(0);
    expect(s.savings.withoutSavingsUsd).toBeCloseTo(900, 6);
    expect(s.savings.reductionPct).toBeCloseTo(60, 6);
    const wf = s.topWorkflows[0];
    expect(wf?.usd).toBeCloseTo(360, 6);
    expect(wf?.savedUsd).toBeCloseTo(540, 6);
    expect(wf?.withoutSavingsUsd).toBeCloseTo(900, 6);
  });

  it("prints the seed's Daily Cost Dashboard from one day's summary", () => {
    const day = Date.UTC(2026, 0, 15, 9);
    const events: KeelEvent[] = [];
    let n = 0;
    const workflow = (name: string, calls: [model: string, count: number, usd: number][]): void => {
      const id = `wf-${n++}`;
      events.push(started(day, id, name));
      for (const [model, count, usd] of calls)
        for (let i = 0; i < count; i++)
          events.push(incurred(day + i, id, { model, costUsd: usd, taskType: name }));
      events.push(completed(day + 100_000, id, 0));
    };
    workflow('fraud_voting', [
      ['gpt-4', 2_000, 0.03],
      ['gpt-3.5-turbo', 4_000, 0.002],
    ]); // $68
    workflow('invoice_processing', [
      ['gpt-4', 1_200, 0.03],
      ['gpt-4-turbo', 350, 0.03],
    ]); // $46.50
    workflow('approval_routing', [['gpt-3.5-turbo', 14_000, 0.002]]); // $28
    // The day before does not belong on this dashboard.
    events.push(started(day - DAY_MS, 'wf-old', 'fraud_voting'));
    events.push(incurred(day - DAY_MS, 'wf-old', { model: 'gpt-4', costUsd: 5 }));

    const tracker = createCostTracker();
    tracker.applyAll(events);
    const s = tracker.summary({ day: '2026-01-15' });

    expect(s.actualUsd).toBeCloseTo(142.5, 6);
    expect(s.byModel.map((m) => [m.model, m.calls, Math.round(m.sharePct)])).toEqual([
      ['gpt-4', 3_200, 67],
      ['gpt-3.5-turbo', 18_000, 25],
      ['gpt-4-turbo', 350, 7],
    ]);
    expect(s.topWorkflows.map((w) => w.name)).toEqual([
      'fraud_voting',
      'invoice_processing',
      'approval_routing',
    ]);
    expect(s.topWorkflows[0]?.usd).toBeCloseTo(68, 6);
    expect(tracker.totalUsd()).toBeCloseTo(147.5, 6);
    expect(formatCostDashboard(s, { budgetUsd: 100 })).toEqual([
      'Daily Cost Dashboard (2026-01-15, UTC)',
      '- Total spend: $142.50 / $100.00 budget (ALERT!)',
      '- gpt-4 calls: 3,200 × $0.03 = $96.00 (67%)',
      '- gpt-3.5-turbo calls: 18,000 × $0.002 = $36.00 (25%)',
      '- gpt-4-turbo calls: 350 × $0.03 = $10.50 (7%)',
      '- Top expensive workflow: fraud_voting ($68.00/day)',
    ]);
  });

  it('costs every attempt (retries cost money) and keeps estimates apart from actuals', () => {
    const t0 = Date.UTC(2026, 0, 1);
    const tracker = createCostTracker();
    tracker.applyAll([
      started(t0, 'w', 'invoice'),
      ev('cost.reserved', t0, 'w', {
        path: 'p',
        agent: 'a',
        model: 'gpt-4',
        taskType: 'vendor',
        estimateUsd: 0.05,
      }),
      incurred(t0, 'w', { model: 'gpt-4', costUsd: 0.01, estimateUsd: 0.05, attempt: 1, taskType: 'vendor' }),
      ev('cost.reserved', t0, 'w', {
        path: 'p',
        agent: 'a',
        model: 'gpt-4',
        taskType: 'vendor',
        estimateUsd: 0.05,
      }),
      incurred(t0, 'w', { model: 'gpt-4', costUsd: 0.03, estimateUsd: 0.05, attempt: 2, taskType: 'vendor' }),
    ]);
    const s = tracker.summary();
    expect(s.calls).toBe(2);
    expect(s.actualUsd).toBeCloseTo(0.04, 12);
    expect(s.estimatedUsd).toBeCloseTo(0.1, 12);
    expect(s.reservedUsd).toBeCloseTo(0.1, 12);
    expect(s.reservations).toBe(2);
    expect(s.byTaskType).toEqual([{ name: 'vendor', calls: 2, usd: s.actualUsd, sharePct: 100 }]);
  });

  it('credits savings to early-stopped votes and accepted cascade stages, per workflow', () => {
    const t0 = Date.UTC(2026, 0, 1);
    const tracker = createCostTracker();
    tracker.applyAll([
      started(t0, 'v', 'fraud_voting'),
      incurred(t0, 'v', { model: 'gpt-4', costUsd: 0.09 }),
      ev('vote.decided', t0, 'v', {
        path: 'vote',
        value: true,
        confidence: 1,
        agentsUsed: 3,
        total: 5,
        savedUsd: 0.06,
      }),
      completed(t0, 'v', 0.09),
      started(t0, 'c', 'invoice_cascade'),
      incurred(t0, 'c', { model: 'gpt-3.5-turbo', costUsd: 0.002 }),
      ev('cascade.accepted', t0, 'c', {
        path: 'cascade',
        stage: 0,
        agent: 'cheap',
        confidence: 0.95,
        savedUsd: 0.03,
      }),
      completed(t0, 'c', 0.002),
    ]);
    const s = tracker.summary();
    expect(s.savings.bySource.vote).toEqual({ usd: 0.06, events: 1 });
    expect(s.savings.bySource.cascade).toEqual({ usd: 0.03, events: 1 });
    expect(s.savings.totalUsd).toBeCloseTo(0.09, 12);
    expect(s.savings.withoutSavingsUsd).toBeCloseTo(0.092 + 0.09, 12);
    const byName = new Map(s.topWorkflows.map((w) => [w.name, w]));
    expect(byName.get('fraud_voting')?.withoutSavingsUsd).toBeCloseTo(0.15, 12);
    expect(byName.get('invoice_cascade')?.withoutSavingsUsd).toBeCloseTo(0.032, 12);
  });

  it('attributes cost to days in the configured time zone', () => {
    const lateEveningInNewYork = Date.UTC(2026, 0, 2, 3); // 22:00 on Jan 1 in New York
    const events = [incurred(lateEveningInNewYork, 'w', { model: 'gpt-4', costUsd: 1 })];
    const ny = createCostTracker({ timeZone: 'America/New_York' });
    ny.applyAll(events);
    const utc = createCostTracker();
    utc.applyAll(events);
    expect(ny.days()).toEqual(['2026-01-01']);
    expect(utc.days()).toEqual(['2026-01-02']);
    expect(ny.totalUsd('2026-01-01')).toBe(1);
    expect(ny.totalUsd('2026-01-02')).toBe(0);
  });

  it('remembers workflow names only while they run, and at most maxOpenWorkflows at once', () => {
    const t0 = Date.UTC(2026, 0, 1);
    const tracker = createCostTracker({ maxOpenWorkflows: 2 });
    tracker.applyAll([
      started(t0, 'a', 'first'),
      started(t0, 'b', 'second'),
      started(t0, 'c', 'third'), // evicts "a"
      incurred(t0, 'a', { model: 'gpt-4', costUsd: 1 }),
      incurred(t0, 'b', { model: 'gpt-4', costUsd: 2 }),
      completed(t0, 'b', 2),
      incurred(t0, 'b', { model: 'gpt-4', costUsd: 4 }), // after completion: no longer remembered
    ]);
    const usd = Object.fromEntries(tracker.summary({ top: 10 }).topWorkflows.map((w) => [w.name, w.usd]));
    expect(usd).toEqual({ [UNKNOWN_WORKFLOW]: 5, second: 2 });
  });

  it('keeps budget alerts, filtered by day in a day summary', () => {
    const t0 = Date.UTC(2026, 0, 1);
    const tracker = createCostTracker();
    const alert = { scope: 'global', threshold: 0.8, spentUsd: 80, limitUsd: 100, day: '2026-01-01' };
    tracker.apply(ev('budget.alert', t0, '_system', alert));
    tracker.apply(ev('budget.alert', t0 + DAY_MS, '_system', { ...alert, day: '2026-01-02' }));
    expect(tracker.alerts()).toHaveLength(2);
    expect(tracker.summary({ day: '2026-01-01' }).alerts).toEqual([{ ...alert, ts: t0 }]);
  });
});
