import { describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import type { Alert } from '../../src/monitor/alert.js';
import {
  createErrorRateProjection,
  type ErrorRateProjection,
} from '../../src/monitor/error-rate-projection.js';
import { failed, rejected, succeeded } from './fixtures.js';

const feed = (p: ErrorRateProjection, events: Iterable<KeelEvent>): Alert[] => {
  const out: Alert[] = [];
  for (const e of events) out.push(...p.apply(e));
  return out;
};

function* outcomes(pattern: string, opts: { taskType?: string; startTs?: number; stepMs?: number } = {}) {
  const { taskType = 'vendor', startTs = 0, stepMs = 1 } = opts;
  let ts = startTs;
  for (const c of pattern) {
    yield c === 'x' ? failed('ocr_error', { taskType, ts }) : succeeded({ taskType, ts });
    ts += stepMs;
  }
}

const rep = (c: string, n: number): string => c.repeat(n);

describe('createErrorRateProjection', () => {
  it('stays silent with insufficient data, even when every outcome fails', () => {
    const p = createErrorRateProjection({ targets: { vendor: 0.05 }, windowSize: 100 });
    expect(feed(p, outcomes(rep('x', 99)))).toEqual([]);
    const alerts = feed(p, outcomes('x'));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.status).toBe('firing');
  });

  it('raises ONE alert per breach, resolves below 0.8 × target, and alerts again on a second breach', () => {
    const p = createErrorRateProjection({ targets: { vendor: 0.05 }, windowSize: 100 });
    expect(feed(p, outcomes(rep('o', 100)))).toEqual([]);

    // five failures: 5 % is not above the target; the sixth is
    expect(feed(p, outcomes(rep('x', 5)))).toEqual([]);
    const raised = feed(p, outcomes('x'));
    expect(raised).toHaveLength(1);
    const first = raised[0] as Alert;
    expect(first).toMatchObject({ kind: 'error_rate', severity: 'medium', status: 'firing' });
    expect(first.title).toContain('vendor: Error rate 6.0% exceeds threshold 5.0% over last 100 tasks');
    expect(first.title).toContain('primary cause: OCR errors');

    // twenty more failures: still one open alert, no repeats (the seed's pitfall 3)
    expect(feed(p, outcomes(rep('x', 20)))).toEqual([]);

    // successes push the 26 failures out; 5 % and 4 % are not below 4 %: no resolve yet
    expect(feed(p, outcomes(rep('o', 74 + 21)))).toEqual([]); // window: 5 failures, 95 successes
    expect(p.snapshot()[0]).toMatchObject({ failures: 5, alerting: true });
    expect(feed(p, outcomes('o'))).toEqual([]); // 4 failures = 4 %, not below 0.8 × 5 %
    const resolved = feed(p, outcomes('o')); // 3 failures = 3 %
    expect(resolved).toHaveLength(1);
    expect(resolved[0]).toMatchObject({ id: first.id, status: 'resolved', kind: 'error_rate' });

    // a second breach is a new alert with a new id
    feed(p, outcomes(rep('o', 3))); // the last 3 failures leave the window
    const again = feed(p, outcomes(rep('x', 6)));
    expect(again).toHaveLength(1);
    expect(again[0]?.status).toBe('firing');
    expect(again[0]?.id).not.toBe(first.id);
  });

  it('does not flap while the rate hovers between the resolve level and the target', () => {
    const p = createErrorRateProjection({ targets: { vendor: 0.05 }, windowSize: 100 });
    expect(feed(p, outcomes(rep('o', 94) + rep('x', 6)))).toHaveLength(1);
    // two failures every 40 outcomes: once settled, the rate moves between 4 % and 6 %
    const rates: number[] = [];
    const extra: Alert[] = [];
    for (const e of outcomes(rep(rep('o', 15) + 'x' + rep('o', 23) + 'x', 10))) {
      extra.push(...p.apply(e));
      rates.push(p.snapshot()[0]?.errorRate ?? NaN);
    }
    const settled = rates.slice(100);
    expect(Math.min(...settled)).toBeCloseTo(0.04, 10); // below the target …
    expect(Math.max(...settled)).toBeCloseTo(0.06, 10); // … and above it again
    expect(extra).toEqual([]); // … without a resolve or a second alert
  });

  it('keeps task types apart, with their own targets and severities', () => {
    const p = createErrorRateProjection({ targets: { payment: 0.001, vendor: 0.05 }, windowSize: 100 });
    const alerts = feed(p, [
      ...outcomes(rep('o', 99) + 'x', { taskType: 'payment' }),
      ...outcomes(rep('o', 97) + rep('x', 3), { taskType: 'vendor' }),
    ]);
    expect(alerts.map((a) => [a.kind, a.severity, (a.data as { taskType: string }).taskType])).toEqual([
      ['error_rate', 'critical', 'payment'],
    ]);
  });

  it('counts rejections as failures and ignores cancellations and untargeted task types', () => {
    const p = createErrorRateProjection({ targets: { vendor: 0.5 }, windowSize: 2 });
    expect(
      feed(p, [rejected('circuit_open'), rejected('cancelled'), failed('timeout', { taskType: 'other' })]),
    ).toEqual([]);
    const alerts = feed(p, [rejected('circuit_open')]);
    expect(alerts).toHaveLength(1);
    expect((alerts[0]?.data as { causes: object }).causes).toEqual({ circuit_open: 2 });
    expect(p.snapshot().find((s) => s.taskType === 'other')).toMatchObject({
      target: undefined,
      failures: 1,
    });
  });

  it('uses a default target for unlisted task types when given one', () => {
    const p = createErrorRateProjection({ targets: {}, defaultTarget: 0.1, windowSize: 10 });
    expect(feed(p, outcomes(rep('o', 8) + rep('x', 2), { taskType: 'shipping' }))).toHaveLength(1);
  });

  it('forgets old outcomes in a time window, and resolves when the failures age out', () => {
    const clock = simulatedClock(0);
    const HOUR = 3_600_000;
    const p = createErrorRateProjection({ targets: { vendor: 0.05 }, windowMs: HOUR, minSamples: 20, clock });
    const raised = feed(p, outcomes(rep('o', 15) + rep('x', 5), { stepMs: 1_000 })); // 0 s … 19 s
    expect(raised).toHaveLength(1);
    // 20 successes an hour later: the old outcomes are gone, the rate is 0
    const resolved = feed(p, outcomes(rep('o', 20), { startTs: HOUR + 20_000, stepMs: 1_000 }));
    expect(resolved).toEqual([expect.objectContaining({ id: raised[0]?.id, status: 'resolved' })]);
    clock.set(HOUR + 20_000);
    expect(p.snapshot()[0]).toMatchObject({ samples: 20, failures: 0, errorRate: 0, alerting: false });
    clock.set(3 * HOUR);
    expect(p.snapshot()[0]).toMatchObject({ samples: 0 });
  });

  describe('error budget', () => {
    it('counts per ISO week in the configured zone: Sunday 23:59 is last week, Monday 00:00 resets', () => {
      const volumes = { vendor: 10_000 }; // 500 acceptable, alert at 400
      // Monday 2026-01-12 00:00 in Tokyo (UTC+9) is Sunday 15:00 UTC: a UTC week would not reset here.
      const mondayTokyo = Date.UTC(2026, 0, 11, 15);
      const budgetAlerts = (alerts: Alert[]) => alerts.filter((a) => a.kind === 'error_budget');
      const lateSunday = createErrorRateProjection({
        targets: { vendor: 0.05 },
        budget: { volumes, timeZone: 'Asia/Tokyo' },
      });
      expect(
        feed(lateSunday, outcomes(rep('x', 399), { startTs: mondayTokyo - 3_600_000 })),
      ).not.toContainEqual(expect.objectContaining({ kind: 'error_budget' }));
      // Sunday 23:59 in Tokyo: the 400th failure of the same week alerts.
      const sunday = budgetAlerts(feed(lateSunday, outcomes('x', { startTs: mondayTokyo - 60_000 })));
      expect(sunday).toHaveLength(1);
      expect(sunday[0]?.data).toMatchObject({
        periodStartMs: mondayTokyo - 7 * 86_400_000,
        periodEndMs: mondayTokyo,
        timeZone: 'Asia/Tokyo',
      });

      const monday = createErrorRateProjection({
        targets: { vendor: 0.05 },
        budget: { volumes, timeZone: 'Asia/Tokyo' },
      });
      feed(monday, outcomes(rep('x', 399), { startTs: mondayTokyo - 3_600_000 }));
      // Monday 00:00 in Tokyo: a new week, counting from 1.
      expect(budgetAlerts(feed(monday, outcomes('x', { startTs: mondayTokyo })))).toEqual([]);
      expect(monday.snapshot(mondayTokyo)[0]?.budget).toMatchObject({
        failures: 1,
        periodStartMs: mondayTokyo,
      });
    });

    it('refuses an unknown zone, naming budget.timeZone', () => {
      expect(() =>
        createErrorRateProjection({
          targets: { vendor: 0.05 },
          budget: { volumes: { vendor: 100 }, timeZone: 'Nowhere/Null\u0000' },
        }),
      ).toThrow(/budget\.timeZone/);
    });

    const WEEK = 7 * 24 * 3_600_000;
    const budgetAlerts = (alerts: Alert[]) => alerts.filter((a) => a.kind === 'error_budget');

    it('alerts once at 80 % (400 of 500) and once when exhausted, per period', () => {
      const p = createErrorRateProjection({
        targets: { vendor: 0.05 },
        windowSize: 100,
        budget: { volumes: { vendor: 10_000 } },
      });
      const start = Date.UTC(2026, 0, 5); // Monday 00:00 UTC: an ISO week starts
      expect(budgetAlerts(feed(p, outcomes(rep('xo', 399), { startTs: start })))).toEqual([]);
      const at400 = budgetAlerts(feed(p, outcomes('x', { startTs: start + 1_000 })));
      expect(at400).toHaveLength(1);
      expect(at400[0]).toMatchObject({ kind: 'error_budget', status: 'firing', severity: 'medium' });
      expect(at400[0]?.title).toContain('80% of the error budget used: 400 of 500 acceptable failures');
      expect(at400[0]?.data).toMatchObject({ failures: 400, acceptableFailures: 500, alertThreshold: 400 });
      const budget = p.snapshot(start + 2_000)[0]?.budget;
      expect(budget).toMatchObject({ failures: 400, acceptableFailures: 500, periodStartMs: start });
      expect(budget?.remainingRatio).toBeCloseTo(0.2, 10);

      expect(budgetAlerts(feed(p, outcomes(rep('x', 99), { startTs: start + 2_000 })))).toEqual([]);
      const exhausted = budgetAlerts(feed(p, outcomes('x', { startTs: start + 3_000 })));
      expect(exhausted).toHaveLength(1);
      expect(exhausted[0]?.title).toContain('error budget exhausted: 500 of 500');
      expect(budgetAlerts(feed(p, outcomes(rep('x', 50), { startTs: start + 4_000 })))).toEqual([]);

      // the next period starts fresh: both budget alerts resolve, counting restarts
      const next = budgetAlerts(feed(p, outcomes('o', { startTs: start + WEEK })));
      expect(next.map((a) => [a.id, a.status])).toEqual([
        [at400[0]?.id, 'resolved'],
        [exhausted[0]?.id, 'resolved'],
      ]);
      expect(budgetAlerts(feed(p, outcomes(rep('x', 399), { startTs: start + WEEK + 1 })))).toEqual([]);
      expect(budgetAlerts(feed(p, outcomes('x', { startTs: start + WEEK + 1_000 })))).toHaveLength(1);
    });

    it('refuses a volume without a target', () => {
      expect(() =>
        createErrorRateProjection({ targets: { vendor: 0.05 }, budget: { volumes: { shipping: 100 } } }),
      ).toThrow(/budget\.volumes\.shipping/);
    });
  });

  it('names the offending field in config errors', () => {
    expect(() => createErrorRateProjection({ targets: { vendor: 2 } })).toThrow(/targets\.vendor/);
    expect(() => createErrorRateProjection({ targets: {}, windowSize: 0 })).toThrow(/windowSize/);
    expect(() => createErrorRateProjection({ targets: {}, resolveRatio: 1.2 })).toThrow(/resolveRatio/);
  });
});
