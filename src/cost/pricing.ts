/**
 * Model prices. A table maps each model id to its USD price per 1,000 input and output tokens (and
 * an optional flat fee per call). Ids as providers really return them — dated or versioned
 * (`gpt-4o-2024-08-06`, `claude-sonnet-4-5-20250929`, `gpt-4-0613`, `llama3:latest`,
 * `claude-3-5-haiku@20241022`) — resolve to their base entry ({@link resolveModelId}); an exact
 * entry always wins. Beyond that Keel never guesses: pricing an unknown model throws an
 * {@link UnknownModelError} naming the model and how to add it, and a call already made is priced
 * by {@link createCallPricer}, which never throws for an unknown id.
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

/**
 * Version suffixes {@link resolveModelId} strips, one at a time from the end: `@<version>` (Vertex
 * AI), `:<tag>` (Ollama, Bedrock), `-latest`, `-preview`, `-YYYY-MM-DD`, `-YYYYMMDD` and `-MMDD`
 * (OpenAI's `gpt-4-0613`).
 */
const VERSION_SUFFIXES: readonly RegExp[] = [
  /@[^@/]+$/,
  /:[^:/]+$/,
  /-(?:latest|preview)$/,
  /-\d{4}-\d{2}-\d{2}$/,
  /-\d{8}$/,
  /-\d{4}$/,
];
/** Most suffixes one id can carry (`gpt-4-0125-preview:latest` has three). */
const MAX_SUFFIXES = 4;

/**
 * The table id whose price applies to `model`: `model` itself when `priced(model)`, else the id left
 * after stripping version suffixes one at a time from the end (see the list below) — the first that
 * is priced — or `undefined`. Only whole suffixes are stripped, so `gpt-4o-mini` never becomes
 * `gpt-4o`, and an exact entry (a dated id you priced yourself) always wins over its base.
 *
 * Suffixes: `@<version>` (Vertex AI), `:<tag>` (Ollama `:latest`, Bedrock `:0`), `-latest`,
 * `-preview`, `-YYYY-MM-DD`, `-YYYYMMDD`, `-MMDD`.
 *
 * @example
 * const priced = (id: string) => id in DEFAULT_PRICING;
 * resolveModelId('gpt-4o-2024-08-06', priced); // 'gpt-4o'
 * resolveModelId('claude-sonnet-4-5-20250929', priced); // 'claude-sonnet-4-5'
 * resolveModelId('gpt-4-0125-preview', priced); // 'gpt-4'
 * resolveModelId('my-finetune', priced); // undefined
 */
export function resolveModelId(model: string, priced: (id: string) => boolean): string | undefined {
  if (priced(model)) return model;
  let id = model;
  for (let i = 0; i < MAX_SUFFIXES; i++) {
    const suffix = VERSION_SUFFIXES.find((re) => re.test(id));
    if (suffix === undefined) return undefined;
    id = id.replace(suffix, '');
    if (id.length === 0) return undefined;
    if (priced(id)) return id;
  }
  return undefined;
}

/** Prices calls; built by {@link createPricing}. */
export interface Pricing {
  /** Date of the built-in list prices ({@link PRICING_AS_OF}). */
  readonly asOf: string;
  /**
   * USD cost of one call: tokens at the model's per-1K rates plus its per-call fee. A dated or
   * versioned id is priced as its base entry ({@link Pricing.resolve}).
   * @throws UnknownModelError when the model has no price; InvalidUsageError on bad token counts.
   */
  price(model: string, usage: Usage): number;
  /** True when the model has a price (itself, or its base id once version suffixes are stripped). */
  has(model: string): boolean;
  /** The table id whose price applies to `model` ({@link resolveModelId}), or `undefined`. */
  resolve(model: string): string | undefined;
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

  const priced = (id: string): boolean => table.has(id);
  const lookup = (model: string): Required<ModelPrice> | undefined => {
    const exact = table.get(model);
    if (exact !== undefined) return exact;
    const base = resolveModelId(model, priced);
    return base === undefined ? undefined : table.get(base);
  };

  return {
    asOf: PRICING_AS_OF,
    price(model, usage) {
      const p = lookup(model);
      if (p === undefined) throw unknown(model);
      const { inputTokens, outputTokens } = usage;
      if (!(inputTokens >= 0) || inputTokens === Infinity)
        throw new InvalidUsageError(model, 'inputTokens', inputTokens);
      if (!(outputTokens >= 0) || outputTokens === Infinity)
        throw new InvalidUsageError(model, 'outputTokens', outputTokens);
      return (inputTokens * p.inputPer1K + outputTokens * p.outputPer1K) / 1000 + p.perCall;
    },
    has: (model) => lookup(model) !== undefined,
    resolve: (model) => resolveModelId(model, priced),
    get(model) {
      const p = lookup(model);
      if (p === undefined) throw unknown(model);
      return p;
    },
    assertKnown(models, field) {
      for (const model of models) if (lookup(model) === undefined) throw unknown(model, field?.(model));
    },
    models: () => [...sorted],
  };
}

/** A model id a call could not be priced by, as handed to {@link CallPricerOptions.onUnknownModel}. */
export interface UnknownModelSeen {
  /** The id that resolved to no price. */
  model: string;
  /** The model the agent asked for. */
  requestedModel: string;
  /** The model the provider says answered. */
  answeredModel: string;
  /** The table id the call was priced by instead; absent when neither id has a price (priced $0). */
  pricedAs?: string;
  /** The agent that made the call. */
  agent: string;
}

/** Options of {@link createCallPricer}. */
export interface CallPricerOptions {
  /**
   * Called the first time each unknown id is seen (the runtime logs it as `pricing.unknown_model`).
   * Keep it quick and don't throw.
   */
  onUnknownModel?(seen: UnknownModelSeen): void;
  /** Distinct unknown ids reported at most (default 1_000); later new ones are priced silently. */
  maxReportedIds?: number;
}

/**
 * Prices one call already made, after the fact: never throws for a model id (the money is spent).
 * Arguments: the model the agent asked for, the one that answered, its usage and the agent's name.
 * @throws InvalidUsageError on token counts that are negative or not finite.
 */
export type CallPricer = (
  requestedModel: string,
  answeredModel: string,
  usage: Usage,
  agent: string,
) => number;

/**
 * Builds the runtime's call pricer: a call is priced by the model that actually answered when that
 * id resolves to a price (`gpt-4o-2024-08-06` → `gpt-4o`), by the requested model otherwise, and at
 * $0 when neither does. Each id that resolves to nothing is reported once to `onUnknownModel`.
 * A call whose answered id is the requested, exactly priced id costs one table lookup.
 *
 * @example
 * const priceCall = createCallPricer(createPricing(), { onUnknownModel: (s) => console.warn(`no price for ${s.model}`) });
 * priceCall('gpt-4o', 'gpt-4o-2024-08-06', { inputTokens: 1_000, outputTokens: 100 }, 'vendor'); // 0.0035 (gpt-4o rates)
 */
export function createCallPricer(pricing: Pricing, options: CallPricerOptions = {}): CallPricer {
  const reported = new Set<string>();
  const maxReported = options.maxReportedIds ?? 1_000;
  const report = (seen: UnknownModelSeen): void => {
    if (reported.has(seen.model) || reported.size >= maxReported) return;
    reported.add(seen.model);
    options.onUnknownModel?.(seen);
  };
  return (requestedModel, answeredModel, usage, agent) => {
    const answered = pricing.resolve(answeredModel);
    if (answered !== undefined) return pricing.price(answered, usage);
    const requested = answeredModel === requestedModel ? undefined : pricing.resolve(requestedModel);
    if (!reported.has(answeredModel))
      report({
        model: answeredModel,
        requestedModel,
        answeredModel,
        ...(requested !== undefined ? { pricedAs: requested } : {}),
        agent,
      });
    if (requested !== undefined) return pricing.price(requested, usage);
    if (answeredModel !== requestedModel)
      report({ model: requestedModel, requestedModel, answeredModel, agent });
    return 0;
  };
}
