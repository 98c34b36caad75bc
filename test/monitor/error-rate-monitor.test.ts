import { describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/core/errors.js';
import { ErrorRateMonitor } from '../../src/monitor/error-rate-monitor.js';
import { TimeWindowErrorRateMonitor } from '../../src/monitor/time-window-error-rate-monitor.js';

describe('ErrorRateMonitor (rolling count window)', () => {
  it('reports insufficient_data until the window is full', () => {
    const mon = new ErrorRateMonitor({ windowSize: 100, threshold: 0.05 });
    for (let i = 0; i < 99; i++) {
      expect(mon.record(false)).toEqual({ alert: false, reason: 'insufficient_data' });
    }
    const full = mon.record(true);
    expect(full).toMatchObject({ alert: true, failures: 99, windowSize: 100 });
  });

  it('with a window of 100 at 5% alerts at 6 failures, not at 5', () => {
    const mon = new ErrorRateMonitor({ windowSize: 100, threshold: 0.05 });
    for (let i = 0; i < 95; i++) mon.record(true);
    let last = mon.record(false);
    for (let i = 0; i < 4; i++) last = mon.record(false);
    expect(last).toMatchObject({ alert: false, errorRate: 0.05, failures: 5 });
    // the sixth failure pushes the oldest success out: 6 of 100
    expect(mon.record(false)).toMatchObject({ alert: true, errorRate: 0.06, failures: 6, windowSize: 100 });
  });

  it("writes the tutorial's alert line with rate, threshold and window", () => {
    const mon = new ErrorRateMonitor({ windowSize: 1_000, threshold: 0.05 });
    for (let i = 0; i < 928; i++) mon.record(true);
    let check = mon.record(false);
    for (let i = 0; i < 71; i++) check = mon.record(false);
    expect(check.alert).toBe(true);
    if (!('message' in check)) throw new Error('expected a reading');
    expect(check.errorRate).toBeCloseTo(0.072, 10);
    expect(check.message).toBe('Error rate 7.2% exceeds threshold 5.0% over last 1,000 tasks');
  });

  it('rolls: old failures leave the window as new successes arrive', () => {
    const mon = new ErrorRateMonitor({ windowSize: 10, threshold: 0.1 });
    for (let i = 0; i < 5; i++) mon.record(false);
    for (let i = 0; i < 5; i++) mon.record(true);
    expect(mon.record(true)).toMatchObject({ failures: 4, alert: true });
    for (let i = 0; i < 4; i++) mon.record(true);
    expect(mon.record(true)).toMatchObject({ failures: 0, errorRate: 0, alert: false });
  });

  it('uses the seed defaults (100, 5%) and validates config', () => {
    const mon = new ErrorRateMonitor();
    expect([mon.windowSize, mon.threshold]).toEqual([100, 0.05]);
    expect(() => new ErrorRateMonitor({ windowSize: 0 })).toThrow(/windowSize/);
    let caught: unknown;
    try {
      new ErrorRateMonitor({ threshold: 5 });
    } catch (e) {
      caught = e;
    }
    expect(isConfigError(caught)).toBe(true);
    expect((caught as Error).message).toMatch(/threshold/);
  });
});

describe('TimeWindowErrorRateMonitor (rolling time window)', () => {
  const HOUR = 3_600_000;

  it('forgets outcomes older than the window', () => {
    const mon = new TimeWindowErrorRateMonitor({ windowMs: HOUR, threshold: 0.05, minSamples: 5 });
    for (let i = 0; i < 10; i++) mon.record(false, i * 1_000); // failures at 0 s … 9 s
    expect(mon.check(10_000)).toMatchObject({ alert: true, failures: 10, windowSize: 10 });
    // one hour and 4.5 s later: the failures at 0 … 4 s have aged out, 5 … 9 s remain
    expect(mon.record(true, HOUR + 4_500)).toMatchObject({ failures: 5, windowSize: 6 });
    // later still every failure is gone; one success is not enough to judge
    expect(mon.check(HOUR + 20_000)).toEqual({ alert: false, reason: 'insufficient_data' });
    let last = mon.record(true, HOUR + 20_000);
    for (let i = 1; i < 4; i++) last = mon.record(true, HOUR + 20_000 + i);
    expect(last).toMatchObject({ alert: false, errorRate: 0, failures: 0, windowSize: 5, windowMs: HOUR });
  });

  it('keeps outcomes inside the window and names the span in its message', () => {
    const mon = new TimeWindowErrorRateMonitor({ windowMs: 2 * HOUR, threshold: 0.05, minSamples: 20 });
    let last = mon.record(false, 0);
    for (let i = 1; i < 20; i++) last = mon.record(i >= 2, i * 60_000);
    expect(last).toMatchObject({ alert: true, failures: 2, windowSize: 20 });
    if (!('message' in last)) throw new Error('expected a reading');
    expect(last.message).toBe('Error rate 10.0% exceeds threshold 5.0% over last 20 tasks in 2 hours');
  });

  it('reports insufficient_data below minSamples, also after the window empties', () => {
    const mon = new TimeWindowErrorRateMonitor({ windowMs: 1_000, minSamples: 3 });
    expect(mon.record(false, 0)).toEqual({ alert: false, reason: 'insufficient_data' });
    mon.record(false, 10);
    expect(mon.record(false, 20).alert).toBe(true);
    expect(mon.check(5_000)).toEqual({ alert: false, reason: 'insufficient_data' });
  });
});
