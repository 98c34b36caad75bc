/**
 * Model ids as providers really return them: dated and versioned ids price as their base entry, an
 * exact entry always wins, a call is priced by the model that answered (else the one requested),
 * and an id with no price is a `pricing.unknown_model` event once per id — never a throw after the
 * money is spent.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import { isUnknownModelError } from '../../src/cost/errors.js';
import {
  DEFAULT_PRICING,
  createCallPricer,
  createPricing,
  resolveModelId,
  type UnknownModelSeen,
} from '../../src/cost/pricing.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';

const priced = (id: string): boolean => Object.hasOwn(DEFAULT_PRICING, id);
const usage = { inputTokens: 1_000, outputTokens: 100 };

describe('resolveModelId', () => {
  it.each([
    ['gpt-4o-2024-08-06', 'gpt-4o'],
    ['gpt-4o-mini-2024-07-18', 'gpt-4o-mini'],
    ['gpt-4o-mini', 'gpt-4o-mini'],
    ['claude-sonnet-4-5-20250929', 'claude-sonnet-4-5'],
    ['claude-3-7-sonnet-20250219', 'claude-3-7-sonnet'],
    ['claude-3-5-haiku@20241022', 'claude-3-5-haiku'],
    ['gpt-4-0613', 'gpt-4'],
    ['gpt-4-turbo-preview', 'gpt-4-turbo'],
    ['gpt-4-turbo-2024-04-09', 'gpt-4-turbo'],
    ['gpt-4o:latest', 'gpt-4o'],
    ['gpt-4o-latest', 'gpt-4o'],
    ['o3-2025-04-16', 'o3'],
    ['gpt-4.1-2025-04-14', 'gpt-4.1'],
    ['gpt-4-0125-preview', 'gpt-4'],
  ])('%s → %s', (id, base) => {
    expect(resolveModelId(id, priced)).toBe(base);
  });

  it.each([
    'my-finetune',
    'gpt-4o-mini-audio', // a different model, not a version of gpt-4o-mini
    'gpt-4-32k-0613', // its base gpt-4-32k has no price; gpt-4 is not guessed
    '2024-08-06',
    '-0613',
    '',
    '\ud800-2024-08-06',
    'gpt-4o\u0000-2024-08-06',
  ])('%j resolves to nothing', (id) => {
    expect(resolveModelId(id, priced)).toBeUndefined();
  });

  it('an exact entry always wins over a resolved base', () => {
    const pricing = createPricing({ 'gpt-4o-2024-05-13': { inputPer1K: 0.005, outputPer1K: 0.015 } });
    expect(pricing.resolve('gpt-4o-2024-05-13')).toBe('gpt-4o-2024-05-13');
    expect(pricing.price('gpt-4o-2024-05-13', usage)).toBeCloseTo(0.005 + 0.0015, 12);
    expect(pricing.price('gpt-4o-2024-08-06', usage)).toBeCloseTo(0.0025 + 0.001, 12);
  });

  it('createPricing prices, knows and validates dated ids by their base; unknown configured ids still throw', () => {
    const pricing = createPricing();
    expect(pricing.has('gpt-4o-2024-08-06')).toBe(true);
    expect(pricing.get('claude-sonnet-4-5-20250929')).toEqual(pricing.get('claude-sonnet-4-5'));
    expect(() => pricing.assertKnown(['gpt-4o-2024-08-06', 'gpt-4-0613'])).not.toThrow();
    let caught: unknown;
    try {
      pricing.assertKnown(['gpt-4o', 'gtp-4o-2024-08-06']);
    } catch (e) {
      caught = e;
    }
    expect(isUnknownModelError(caught)).toBe(true);
    expect((caught as Error).message).toContain('gtp-4o-2024-08-06');
  });
});

describe('createCallPricer', () => {
  it('prices by the answered model when it has a price, else by the requested one, reporting each unknown id once', () => {
    const seen: UnknownModelSeen[] = [];
    const pricing = createPricing({ cheap: { inputPer1K: 0.001, outputPer1K: 0.001 } });
    const priceCall = createCallPricer(pricing, { onUnknownModel: (s) => seen.push(s) });

    // gpt-4o answered as a dated id: gpt-4o rates.
    expect(priceCall('gpt-4o', 'gpt-4o-2024-08-06', usage, 'a')).toBeCloseTo(0.0035, 12);
    // The answering model wins over the requested one when both are priced.
    expect(priceCall('gpt-4o', 'cheap', usage, 'a')).toBeCloseTo(0.0011, 12);
    // An answered id with no price: the requested model's rates, and one report however often.
    expect(priceCall('gpt-4o', 'my-proxy-model', usage, 'a')).toBeCloseTo(0.0035, 12);
    expect(priceCall('gpt-4o', 'my-proxy-model', usage, 'b')).toBeCloseTo(0.0035, 12);
    expect(seen).toEqual([
      {
        model: 'my-proxy-model',
        requestedModel: 'gpt-4o',
        answeredModel: 'my-proxy-model',
        pricedAs: 'gpt-4o',
        agent: 'a',
      },
    ]);
    // Neither priced: $0, both ids reported, no throw.
    expect(priceCall('unpriced-a', 'unpriced-b', usage, 'c')).toBe(0);
    expect(seen.slice(1).map((s) => s.model)).toEqual(['unpriced-b', 'unpriced-a']);
  });

  it('stops reporting new ids after maxReportedIds, still without throwing', () => {
    const seen: string[] = [];
    const priceCall = createCallPricer(createPricing(), {
      onUnknownModel: (s) => seen.push(s.model),
      maxReportedIds: 2,
    });
    for (let i = 0; i < 5; i++) expect(priceCall('gpt-4', `random-${i}`, usage, 'a')).toBeGreaterThan(0);
    expect(seen).toEqual(['random-0', 'random-1']);
  });
});

describe('the runtime prices a call by the model that answered', () => {
  let rt: Runtime<SqliteEventStore> | undefined;
  afterEach(async () => {
    await rt?.close();
    rt = undefined;
  });

  const answering = (model: string) =>
    agent({
      name: 'vendor_extraction',
      model: 'gpt-4o',
      run: () => Promise.resolve({ value: 'Acme', usage, model }),
    });

  it('a dated answered id is priced at its base rates', async () => {
    rt = createRuntime({ db: ':memory:', clock: simulatedClock(), seed: 1 });
    const result = await rt.run(answering('gpt-4o-2024-08-06'), {});
    expect(result.costUsd).toBeCloseTo(0.0035, 12);
    const [cost] = rt.store.query({ type: 'cost.incurred' });
    expect(cost?.payload).toMatchObject({
      model: 'gpt-4o-2024-08-06',
      costUsd: expect.closeTo(0.0035, 12) as number,
    });
    expect(rt.store.query({ type: 'pricing.unknown_model' })).toHaveLength(0);
  });

  it('an answered id with no price completes priced by the requested model, with one warning event per id', async () => {
    rt = createRuntime({ db: ':memory:', clock: simulatedClock(), seed: 1 });
    const odd = answering('acme-gateway/gpt-4o-custom');
    const first = await rt.run(odd, {});
    const second = await rt.run(odd, {});
    expect(first.costUsd).toBeCloseTo(0.0035, 12);
    expect(second.costUsd).toBeCloseTo(0.0035, 12);
    const warnings = rt.store.query({ type: 'pricing.unknown_model' });
    expect(warnings.map((e) => e.payload)).toEqual([
      {
        model: 'acme-gateway/gpt-4o-custom',
        requestedModel: 'gpt-4o',
        answeredModel: 'acme-gateway/gpt-4o-custom',
        pricedAs: 'gpt-4o',
        agent: 'vendor_extraction',
      },
    ]);
    expect(warnings[0]?.class).toBe('operational');
    expect(rt.store.query({ type: 'workflow.completed' })).toHaveLength(2);
  });
});
