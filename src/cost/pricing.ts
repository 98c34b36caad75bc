/**
 * Model prices. A table maps each model id to its USD price per 1,000 input and output tokens (and
 * an optional flat fee per call). Keel never guesses: pricing an unknown model throws an
 * {@link UnknownModelError} naming the model and how to add it.
 */
import { z } from 'zod';
import type { Usage } from '../eventlog/events.js';
import { InvalidUsageError, UnknownModelError } from './errors.js';
import { parseConfig } from './validate.js';

/** The price of one model, in USD. */
export interface ModelPrice {
  /** USD per 1,000 input (prompt) tokens. */
  inputPer1K: number;
  /** USD per 1,000 output (completion) tokens. */
  outputPer1K: number;
  /** Flat USD charged per call on top of tokens (default 0). */
  perCall?: number;
}

/** Prices by model id. */
export type PricingTable = Readonly<Record<string, ModelPrice>>;

/** The date the built-in {@link DEFAULT_PRICING} list prices were taken (vendors' public pages). */
export const PRICING_AS_OF = '2026-03-01';

const per1M = (input: number, output: number): ModelPrice => ({
  inputPer1K: input / 1000,
  outputPer1K: output / 1000,
});

/**
 * Vendors' list prices (standard tier, no batch or cached-input discounts) as of
 * {@link PRICING_AS_OF}. Check them against your contract and override what differs.
 */
export const DEFAULT_PRICING: PricingTable = Object.freeze({
  // OpenAI
  'gpt-4': per1M(30, 60),
  'gpt-4-turbo': per1M(10, 30),
  'gpt-4o': per1M(2.5, 10),
  'gpt-4o-mini': per1M(0.15, 0.6),
  'gpt-4.1': per1M(2, 8),
  'gpt-4.1-mini': per1M(0.4, 1.6),
  'gpt-4.1-nano': per1M(0.1, 0.4),
  'gpt-3.5-turbo': per1M(0.5, 1.5),
  'gpt-5': per1M(1.25, 10),
  'gpt-5-mini': per1M(0.25, 2),
  'gpt-5-nano': per1M(0.05, 0.4),
  o3: per1M(2, 8),
  'o4-mini': per1M(1.1, 4.4),
  // Anthropic
  'claude-opus-4-5': per1M(5, 25),
  'claude-sonnet-4-5': per1M(3, 15),
  'claude-haiku-4-5': per1M(1, 5),
  'claude-opus-4-1': per1M(15, 75),
  'claude-sonnet-4': per1M(3, 15),
  'claude-3-7-sonnet': per1M(3, 15),
  'claude-3-5-haiku': per1M(0.8, 4),
  'claude-3-haiku': per1M(0.25, 1.25),
});

/**
 * The tutorial's flat rates (per 1K tokens, input and output alike): a ~1,000-token GPT-4 call costs
 * $0.03 and a GPT-3.5 call $0.002. Pass it as overrides to reproduce the tutorial's numbers.
 *
 * @example
 * const pricing = createPricing(SEED_PRICING);
 * pricing.price('gpt-4', { inputTokens: 800, outputTokens: 200 }); // 0.03
 */
export const SEED_PRICING: PricingTable = Object.freeze({
  'gpt-4': { inputPer1K: 0.03, outputPer1K: 0.03 },
  'gpt-4-turbo': { inputPer1K: 0.03, outputPer1K: 0.03 },
  'gpt-3.5-turbo': { inputPer1K: 0.002, outputPer1K: 0.002 },
});

/** Prices calls; built by {@link createPricing}. */
export interface Pricing {
  /** Date of the built-in list prices ({@link PRICING_AS_OF}). */
  readonly asOf: string;
  /**
   * USD cost of one call: tokens at the model's per-1K rates plus its per-call fee.
   * @throws UnknownModelError when the model has no price; InvalidUsageError on bad token counts.
   */
  price(model: string, usage: Usage): number;
  /** True when the model has a price. */
  has(model: string): boolean;
  /** The model's price. @throws UnknownModelError when it has none. */
  get(model: string): Readonly<Required<ModelPrice>>;
  /**
   * Config-time check that every model has a price, so a typo fails at startup rather than on the
   * first call. `field` names where the models came from (default `pricing.<model>`).
   * @throws UnknownModelError for the first unknown model.
   */
  assertKnown(models: Iterable<string>, field?: (model: string) => string): void;
  /** Every priced model id, sorted. */
  models(): string[];
}

/** Options of {@link createPricing}. */
export interface PricingOptions {
  /** Start from {@link DEFAULT_PRICING} (default true); false prices only the overrides. */
  defaults?: boolean;
  /** Dotted config path used in error messages (default `pricing`). */
  field?: string;
}

const PRICE_ERROR = { error: 'must be a number >= 0 (USD per 1,000 tokens)' };
const modelPriceSchema = z.strictObject(
  {
    inputPer1K: z.number(PRICE_ERROR).min(0, PRICE_ERROR),
    outputPer1K: z.number(PRICE_ERROR).min(0, PRICE_ERROR),
    perCall: z
      .number({ error: 'must be a number >= 0 (USD per call)' })
      .min(0, { error: 'must be a number >= 0 (USD per call)' })
      .optional(),
  },
  { error: 'must be an object { inputPer1K, outputPer1K, perCall? } (USD)' },
);
const tableSchema = z.record(
  z.string().min(1, { error: 'model ids must be non-empty strings' }),
  modelPriceSchema,
  {
    error: "must be an object of model id → price, e.g. { 'gpt-4': { inputPer1K: 0.03, outputPer1K: 0.06 } }",
  },
);

/**
 * Builds a pricing table: the built-in defaults, replaced or extended model by model by
 * `overrides`. Every override is validated; a bad one throws a ConfigError naming the field
 * (`pricing.gpt-4.inputPer1K must be a number >= 0`).
 *
 * @example
 * const pricing = createPricing({ 'my-finetune': { inputPer1K: 0.003, outputPer1K: 0.006 } });
 * pricing.price('gpt-4o-mini', { inputTokens: 1_000, outputTokens: 500 }); // ≈ 0.00045 USD
 * pricing.assertKnown(['gpt-4', 'my-finetune']);
 */
export function createPricing(
  overrides: Record<string, ModelPrice> = {},
  options: PricingOptions = {},
): Pricing {
  const root = options.field ?? 'pricing';
  const entries = parseConfig(tableSchema, overrides, root);
  const table = new Map<string, Required<ModelPrice>>();
  const put = (model: string, p: ModelPrice): void => {
    table.set(
      model,
      Object.freeze({ inputPer1K: p.inputPer1K, outputPer1K: p.outputPer1K, perCall: p.perCall ?? 0 }),
    );
  };
  if (options.defaults !== false) for (const [model, p] of Object.entries(DEFAULT_PRICING)) put(model, p);
  for (const [model, p] of Object.entries(entries)) put(model, p);
  const sorted = [...table.keys()].sort();
  const unknown = (model: string, field?: string): UnknownModelError =>
    new UnknownModelError(model, sorted, field ?? `${root}.${model}`);

  return {
    asOf: PRICING_AS_OF,
    price(model, usage) {
      const p = table.get(model);
      if (p === undefined) throw unknown(model);
      const { inputTokens, outputTokens } = usage;
      if (!(inputTokens >= 0) || inputTokens === Infinity)
        throw new InvalidUsageError(model, 'inputTokens', inputTokens);
      if (!(outputTokens >= 0) || outputTokens === Infinity)
        throw new InvalidUsageError(model, 'outputTokens', outputTokens);
      return (inputTokens * p.inputPer1K + outputTokens * p.outputPer1K) / 1000 + p.perCall;
    },
    has: (model) => table.has(model),
    get(model) {
      const p = table.get(model);
      if (p === undefined) throw unknown(model);
      return p;
    },
    assertKnown(models, field) {
      for (const model of models) if (!table.has(model)) throw unknown(model, field?.(model));
    },
    models: () => [...sorted],
  };
}
