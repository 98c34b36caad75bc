import { beforeAll, describe, expect, it } from 'vitest';
import { runFraudDemo, type FraudDemoResult } from '../../demos/fraud.js';
import { simulatedClock } from '../../src/index.js';
import { tmpDb } from './helpers.js';

describe('fraud demo (virtual time)', () => {
  let r: FraudDemoResult;
  beforeAll(async () => {
    r = await runFraudDemo({ db: tmpDb(), count: 80, seed: 11, clock: simulatedClock() });
  }, 120_000);

  it('hears all five screeners in the full vote, at $0.03 each', () => {
    expect(r.full.transactions).toBe(80);
    expect(r.full.agentsUsed).toEqual({ '5': 80 });
    expect(r.full.costPerTransactionUsd).toBeCloseTo(0.15, 2);
  });

  it('stops early in the adaptive vote: fewer screeners, lower cost, identical decisions', () => {
    expect(r.adaptive.transactions).toBe(80);
    expect(r.adaptive.agentsPerTransaction).toBeGreaterThanOrEqual(3);
    expect(r.adaptive.agentsPerTransaction).toBeLessThan(4);
    expect(r.adaptive.costPerTransactionUsd).toBeLessThan(r.full.costPerTransactionUsd);
    expect(r.decisions).toEqual({ compared: 80, same: 80 });
    expect(r.adaptive.fraudShare).toBe(r.full.fraudShare);
    expect(r.savingRatio).toBeGreaterThan(0.2);
  });

  it('pays for the savings in latency: one screener at a time is slower than five at once', () => {
    expect(r.adaptive.latency.p50Ms).toBeGreaterThan(r.full.latency.p50Ms);
  });
});
