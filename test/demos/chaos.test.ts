import { beforeAll, describe, expect, it } from 'vitest';
import { CHAOS_OUTAGE, runChaosDemo, type ChaosDemoResult } from '../../demos/chaos.js';
import { simulatedClock } from '../../src/index.js';
import { tmpDb } from './helpers.js';

describe('chaos demo (virtual time)', () => {
  let r: ChaosDemoResult;
  beforeAll(async () => {
    r = await runChaosDemo({ db: tmpDb(), count: 480, seed: 9, clock: simulatedClock() });
  }, 120_000);

  it('logs closed → open during the outage, one half-open probe after the reset timeout, then closed', () => {
    expect(r.breaker.transitions.map((t) => `${t.from}→${t.to}`)).toEqual([
      'closed→open',
      'open→halfOpen',
      'halfOpen→closed',
    ]);
    const [opened, halfOpen, closed] = r.breaker.transitions;
    expect(opened?.atMs).toBeGreaterThanOrEqual(CHAOS_OUTAGE.fromMs);
    expect(opened?.atMs).toBeLessThan(CHAOS_OUTAGE.toMs);
    expect((halfOpen?.atMs ?? 0) - (opened?.atMs ?? 0)).toBe(60_000);
    expect(r.breaker.probes).toBe(1);
    expect(r.breaker.recoveredAtMs).toBe(closed?.atMs);
    expect(r.breaker.recoveredAtMs).toBeGreaterThan(CHAOS_OUTAGE.toMs);
  });

  it('fails fast while open: most outage requests never reach the model and take 0 ms', () => {
    const during = r.phases.during;
    expect(during.requests).toBeGreaterThan(50);
    expect(during.errorRate).toBeGreaterThan(0.9);
    expect(during.fastFails).toBeGreaterThan(during.requests / 2);
    expect(during.modelCalls).toBeLessThan(during.requests / 2);
    expect(during.p50Ms).toBe(0);
  });

  it('serves normally before the outage and again once the breaker has closed', () => {
    expect(r.phases.before.errorRate).toBeLessThan(0.05);
    expect(r.phases.before.fastFails).toBe(0);
    expect(r.phases.before.p50Ms).toBeGreaterThan(0);
    expect(r.phases.after.requests).toBeGreaterThan(0);
    expect(r.phases.after.errorRate).toBeLessThan(0.5);
  });
});
