import { describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/core/errors.js';
import { isInvalidUsageError, isUnknownModelError } from '../../src/cost/errors.js';
import { DEFAULT_PRICING, PRICING_AS_OF, SEED_PRICING, createPricing } from '../../src/cost/pricing.js';

const call = { inputTokens: 800, outputTokens: 200 };

function configErrorOf(fn: () => unknown): { field: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (isConfigError(e)) return { field: e.field, message: e.message };
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('pricing', () => {
  it('ships dated list prices for the common models', () => {
    expect(PRICING_AS_OF).toMatch(/^2026-\d\d-\d\d$/);
    for (const model of [
      'gpt-4',
      'gpt-4-turbo',
      'gpt-4o',
      'gpt-4o-mini',
      'gpt-3.5-turbo',
      'claude-sonnet-4-5',
    ]) {
      expect(DEFAULT_PRICING[model], model).toBeDefined();
    }
    const pricing = createPricing();
    expect(pricing.asOf).toBe(PRICING_AS_OF);
    // GPT-4 at $0.03 in / $0.06 out per 1K: a typical 1,000-token call is ~$0.03–0.04.
    expect(pricing.price('gpt-4', call)).toBeCloseTo(0.036, 12);
    expect(pricing.price('gpt-4o-mini', { inputTokens: 1_000, outputTokens: 500 })).toBeCloseTo(0.00045, 12);
  });

  it("prices the seed's calls with its flat rates: GPT-4 $0.03, GPT-3.5 $0.002", () => {
    const pricing = createPricing(SEED_PRICING);
    expect(pricing.price('gpt-4', call)).toBeCloseTo(0.03, 12);
    expect(pricing.price('gpt-3.5-turbo', call)).toBeCloseTo(0.002, 12);
  });

  it('overrides replace a model and extend the table; perCall is added to every call', () => {
    const pricing = createPricing({
      'gpt-4': { inputPer1K: 0.01, outputPer1K: 0.02 },
      'acme-ocr': { inputPer1K: 0, outputPer1K: 0, perCall: 0.005 },
    });
    expect(pricing.price('gpt-4', call)).toBeCloseTo(0.012, 12);
    expect(pricing.price('acme-ocr', call)).toBeCloseTo(0.005, 12);
    expect(pricing.models()).toContain('acme-ocr');
    expect(pricing.get('acme-ocr')).toEqual({ inputPer1K: 0, outputPer1K: 0, perCall: 0.005 });
  });

  it('never prices an unknown model: the error names it and how to add it', () => {
    const pricing = createPricing();
    let caught: unknown;
    try {
      pricing.price('gpt-9000', call);
    } catch (e) {
      caught = e;
    }
    expect(isUnknownModelError(caught)).toBe(true);
    expect(isConfigError(caught)).toBe(true);
    const err = caught as Error & { field: string; model: string };
    expect(err.model).toBe('gpt-9000');
    expect(err.field).toBe('pricing.gpt-9000');
    expect(err.message).toContain('"gpt-9000"');
    expect(err.message).toContain("pricing: { 'gpt-9000': { inputPer1K");
  });

  it('assertKnown fails at config time on the first unknown model, with the caller’s field', () => {
    const pricing = createPricing({}, { defaults: false });
    expect(pricing.models()).toEqual([]);
    const withModel = createPricing({ mine: { inputPer1K: 1, outputPer1K: 1 } }, { defaults: false });
    expect(() => withModel.assertKnown(['mine'])).not.toThrow();
    const err = configErrorOf(() =>
      withModel.assertKnown(['mine', 'gpt-4'], (m) => `agents.vendor.model(${m})`),
    );
    expect(err.field).toBe('agents.vendor.model(gpt-4)');
    expect(err.message).toContain('"gpt-4"');
  });

  it('validates overrides and names the field', () => {
    expect(configErrorOf(() => createPricing({ 'gpt-4': { inputPer1K: -1, outputPer1K: 0.06 } }))).toEqual({
      field: 'pricing.gpt-4.inputPer1K',
      message: expect.stringContaining('must be a number >= 0') as string,
    });
    const typo = { 'gpt-4': { inputPer1k: 0.03, inputPer1K: 0.03, outputPer1K: 0.06 } };
    expect(configErrorOf(() => createPricing(typo)).field).toBe('pricing.gpt-4.inputPer1k');
    expect(configErrorOf(() => createPricing({ m: 3 } as never)).field).toBe('pricing.m');
    expect(configErrorOf(() => createPricing({ m: { inputPer1K: 1 } } as never)).field).toBe(
      'pricing.m.outputPer1K',
    );
    expect(
      configErrorOf(() => createPricing({ m: { inputPer1K: 1, outputPer1K: 1, perCall: Number.NaN } })).field,
    ).toBe('pricing.m.perCall');
    expect(configErrorOf(() => createPricing({ m: 1 } as never, { field: 'runtime.pricing' })).field).toBe(
      'runtime.pricing.m',
    );
  });

  it('refuses usage that is not a finite count', () => {
    const pricing = createPricing();
    let caught: unknown;
    try {
      pricing.price('gpt-4', { inputTokens: Number.NaN, outputTokens: 1 });
    } catch (e) {
      caught = e;
    }
    expect(isInvalidUsageError(caught)).toBe(true);
    expect((caught as Error).message).toContain('usage.inputTokens is NaN');
  });
});
