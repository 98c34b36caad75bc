/**
 * A simulated model that reads invoices: the seeded `simulated()` provider with latency, failure,
 * confidence and usage profiles for GPT-4 and GPT-3.5, answering the invoice agents' questions
 * from the OCR text the way a model would — copying what is printed, garbling included, and now
 * and then making an answer up.
 */
import {
  hashSeed,
  simulated,
  type ErrorRates,
  type FaultWindow,
  type ModelRequest,
  type Random,
  type SimulatedModelProfile,
  type SimulatedProvider,
} from '../src/index.js';
import { APPROVERS, type ApprovalTier } from './approvers.js';

/** Options of {@link simulatedInvoiceModel}; every field is optional. */
export interface InvoiceModelOptions {
  /** PRNG seed (default 0): the same seed and calls give the same answers, latencies and failures. */
  seed?: number | string;
  /** Provider failures per call for every model (default `{ provider_error: 0.01, rate_limited: 0.005 }`). */
  rates?: ErrorRates;
  /** Chance that an answer is made up rather than read from the input (default 0.005). */
  hallucinationRate?: number;
  /** Outages and latency spikes on the clock's absolute time (default: none). */
  faults?: readonly FaultWindow[];
  /** Per-model profiles, merged over the built-in `gpt-4` and `gpt-3.5-turbo` ones. */
  models?: Record<string, SimulatedModelProfile>;
}

/**
 * Built-in profiles: GPT-4 is slow and sure, GPT-3.5 fast and sure only of the easy 70 % of
 * inputs (the tutorial's cascade mix). About 1,000 tokens a call: $0.03 on GPT-4 and $0.002 on
 * GPT-3.5 at the tutorial's flat rates.
 */
const MODELS: Readonly<Record<string, SimulatedModelProfile>> = {
  'gpt-4': {
    latencyMs: { p50: 1_800, p95: 4_000 },
    confidence: { easyShare: 0.7, easy: { mean: 0.97, stddev: 0.015 }, hard: { mean: 0.9, stddev: 0.04 } },
  },
  'gpt-3.5-turbo': {
    latencyMs: { p50: 700, p95: 1_600 },
    confidence: { easyShare: 0.7, easy: { mean: 0.95, stddev: 0.02 }, hard: { mean: 0.72, stddev: 0.1 } },
  },
};

const USAGE = { input: { mean: 800, stddev: 60 }, output: { mean: 200, stddev: 15 } };
/** Vendor names a confused model invents (never among the demo's vendors). */
const MADE_UP_VENDORS = ['Globex Corporation', 'Initech LLC', 'Umbrella Supplies', 'Hooli Services'];
const MADE_UP_APPROVER = 'approvals@example.invalid';

/** The text after `Label:` on its own line, or null when the invoice has no such line. */
function printed(text: string, label: string): string | null {
  const start = text.indexOf(`\n${label}:`);
  if (start < 0) return null;
  const from = start + label.length + 2;
  const end = text.indexOf('\n', from);
  const value = (end < 0 ? text.slice(from) : text.slice(from, end)).trim();
  return value === '' ? null : value;
}

function field(input: Record<string, unknown>, key: string): string {
  const v = input[key];
  return typeof v === 'string' ? v : '';
}

/**
 * A seeded simulated provider for the invoice agents. It answers their JSON questions —
 * `vendor`, `amount`, `date` (read from `input.text`), `validate_vendor` and `route` — as
 * `{ value }`, with each model's confidence, latency and ~1,000 tokens of usage.
 *
 * @example
 * const clock = simulatedClock();
 * const model = simulatedInvoiceModel({
 *   seed: 7,
 *   faults: [{ fromMs: clock.now() + 60_000, toMs: clock.now() + 105_000, kind: 'provider_error' }], // an outage
 * });
 * const vendor = vendorExtraction({ provider: model });
 */
export function simulatedInvoiceModel(options: InvoiceModelOptions = {}): SimulatedProvider {
  const seed = String(options.seed ?? 0);
  const hallucinationRate = options.hallucinationRate ?? 0.005;
  const models: Record<string, SimulatedModelProfile> = { ...MODELS };
  for (const [model, profile] of Object.entries(options.models ?? {}))
    models[model] = { ...models[model], ...profile };

  const respond = (request: ModelRequest, rng: Random): unknown => {
    const input = (
      typeof request.input === 'object' && request.input !== null ? request.input : {}
    ) as Record<string, unknown>;
    const madeUp = rng.chance(hallucinationRate);
    const text = `\n${field(input, 'text')}`;
    switch (input.task) {
      case 'vendor':
        return { value: madeUp ? rng.pick(MADE_UP_VENDORS) : printed(text, 'Vendor') };
      case 'amount':
        return { value: printed(text, 'Total') };
      case 'date':
        return { value: printed(text, 'Date') };
      case 'validate_vendor': {
        const vendor = field(input, 'vendor');
        const id = 10_000 + (hashSeed(`${seed}\u0000vendor\u0000${vendor}`) % 90_000);
        return { value: { vendorId: `V-${id}`, status: 'approved' } };
      }
      case 'route': {
        const tier = field(input, 'tier') as ApprovalTier;
        const list = APPROVERS[tier] ?? [];
        if (madeUp || list.length === 0) return { value: { approver: MADE_UP_APPROVER } };
        const i = hashSeed(`${seed}\u0000route\u0000${field(input, 'vendor')}\u0000${tier}`) % list.length;
        return { value: { approver: list[i] } };
      }
      default:
        return { value: null };
    }
  };

  return simulated({
    seed,
    name: 'simulated-invoice-model',
    latencyMs: { p50: 1_200, p95: 3_000 },
    rates: options.rates ?? { provider_error: 0.01, rate_limited: 0.005 },
    usage: USAGE,
    models,
    ...(options.faults ? { faults: options.faults } : {}),
    respond,
  });
}
