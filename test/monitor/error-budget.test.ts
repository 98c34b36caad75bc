import { describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/core/errors.js';
import { DEFAULT_ERROR_TARGETS, errorBudget, severityForRate } from '../../src/monitor/error-budget.js';

describe('errorBudget', () => {
  it("gives the tutorial's vendor budget: 10,000 a week at 5% → 500 acceptable, alert at 400", () => {
    expect(errorBudget('vendor', 10_000)).toEqual({
      targetRate: 0.05,
      acceptableFailures: 500,
      alertThreshold: 400,
    });
  });

  it('uses the seed defaults for payment, routing and fraud', () => {
    expect(errorBudget('payment', 10_000)).toEqual({
      targetRate: 0.001,
      acceptableFailures: 10,
      alertThreshold: 8,
    });
    expect(errorBudget('routing', 10_000).acceptableFailures).toBe(1_000);
    expect(errorBudget('fraud', 10_000).alertThreshold).toBe(1_200);
    expect(DEFAULT_ERROR_TARGETS).toEqual({ payment: 0.001, vendor: 0.05, routing: 0.1, fraud: 0.15 });
  });

  it('floors like the seed but is not fooled by binary rounding (0.29 × 100 = 29, not 28)', () => {
    expect(errorBudget('x', 100, { x: 0.29 }).acceptableFailures).toBe(29);
    expect(errorBudget('vendor', 99).acceptableFailures).toBe(4);
  });

  it('takes custom targets and an alert share', () => {
    expect(errorBudget('ocr', 2_000, { ocr: { rate: 0.02 } }, 0.5)).toEqual({
      targetRate: 0.02,
      acceptableFailures: 40,
      alertThreshold: 20,
    });
  });

  it('refuses an unknown task type with a ConfigError naming it', () => {
    let caught: unknown;
    try {
      errorBudget('shipping', 1_000);
    } catch (e) {
      caught = e;
    }
    expect(isConfigError(caught)).toBe(true);
    expect((caught as Error).message).toContain('shipping');
    expect((caught as { field: string }).field).toBe('targets.shipping');
  });

  it('refuses out-of-range numbers', () => {
    expect(() => errorBudget('vendor', -1)).toThrow(/volume/);
    expect(() => errorBudget('x', 10, { x: 1.5 })).toThrow(/targets\.x/);
  });

  it("derives severities that match the seed's routing", () => {
    expect(severityForRate(0.001)).toBe('critical');
    expect(severityForRate(0.05)).toBe('medium');
    expect(severityForRate(0.1)).toBe('low');
  });
});
