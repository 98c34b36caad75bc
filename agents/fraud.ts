/**
 * Fraud screeners: five model-backed agents that each judge a card transaction `fraud` or `legit`,
 * for the tutorial's voting pattern (`vote(fraudScreeners(), { stop: 'decided' })`). Each screener
 * has its own seed and its own bias (strict to lenient), so they agree on clear cases and split on
 * borderline ones. Never cached: fraud needs real-time data.
 */
import {
  AgentError,
  agent,
  hashSeed,
  seededRandom,
  simulated,
  type Agent,
  type AgentContext,
  type ErrorRates,
  type ModelRequest,
  type SimulatedProvider,
} from '../src/index.js';
import { askModel } from './answer.js';
import { policiesOf, type ReadyAgentOptions } from './options.js';

/** A card transaction to screen. */
export interface Transaction {
  /** Transaction id, e.g. `TXN-000042`. */
  id: string;
  amountUsd: number;
  /** Where the purchase was made (ISO 3166-1 alpha-2). */
  country: string;
  /** Where the card was issued (ISO 3166-1 alpha-2). */
  cardCountry: string;
  /** Transactions on this card in the past hour. */
  velocity1h: number;
  /** True when the device was never seen on this account before. */
  newDevice: boolean;
}

/** A screener's vote. */
export type FraudVerdict = 'fraud' | 'legit';

/**
 * A transaction's risk in [0, 1] from its signals: a country mismatch (0.3), card velocity (up to
 * 0.3 at 10 an hour), amount (up to 0.25 at $10,000) and a new device (0.15). Above 0.5 is fraud.
 *
 * @example
 * transactionRisk({ id: 'TXN-1', amountUsd: 40, country: 'US', cardCountry: 'US', velocity1h: 1, newDevice: false }); // ≈ 0.13
 */
export function transactionRisk(t: Transaction): number {
  const geo = t.country !== t.cardCountry ? 0.3 : 0;
  const velocity = 0.3 * Math.min(1, Math.max(0, t.velocity1h) / 10);
  const amount = 0.25 * Math.min(1, Math.log10(Math.max(1, t.amountUsd)) / 4);
  const device = t.newDevice ? 0.15 : 0;
  return geo + velocity + amount + device;
}

/** Options of {@link simulatedFraudModel}; every field is optional. */
export interface FraudModelOptions {
  /** PRNG seed (default 0): a screener's judgement of a transaction depends on it and nothing else. */
  seed?: number | string;
  /** How much a screener's reading of a transaction wanders from its risk, as a stddev (default 0.1). */
  noise?: number;
  /** Provider failures per call (default `{ provider_error: 0.002 }`). */
  rates?: ErrorRates;
}

/**
 * A seeded simulated model for fraud screeners. A screener asked about a transaction answers
 * `fraud` when `transactionRisk + bias + noise >= 0.5`, where the noise is drawn from the seed, the
 * screener and the transaction id only — so the same screener gives the same verdict on every call,
 * retries included. Latency p50 1 s / p95 2 s; about 1,000 tokens a call ($0.03 on GPT-4 at the
 * tutorial's rates).
 *
 * @example
 * const screener = fraudScreener({ name: 'fraud_strict', bias: 0.05, provider: simulatedFraudModel({ seed: 7 }) });
 */
export function simulatedFraudModel(options: FraudModelOptions = {}): SimulatedProvider {
  const seed = String(options.seed ?? 0);
  const noise = options.noise ?? 0.1;
  const respond = (request: ModelRequest): unknown => {
    const input = request.input as
      { screener?: unknown; bias?: unknown; transaction?: Transaction } | undefined;
    const t = input?.transaction;
    if (!t || typeof t.id !== 'string') return { value: null };
    const screener = typeof input.screener === 'string' ? input.screener : '';
    const bias = typeof input.bias === 'number' ? input.bias : 0;
    const wander = seededRandom(hashSeed(`${seed}\u0000${screener}\u0000${t.id}`)).normal(0, noise);
    const score = transactionRisk(t) + bias + wander;
    const confidence = Math.min(0.99, 0.5 + Math.abs(score - 0.5) * 2.5);
    return { value: score >= 0.5 ? 'fraud' : 'legit', confidence };
  };
  return simulated({
    seed,
    name: 'simulated-fraud-model',
    latencyMs: { p50: 1_000, p95: 2_000 },
    rates: options.rates ?? { provider_error: 0.002 },
    usage: { input: { mean: 800, stddev: 60 }, output: { mean: 200, stddev: 15 } },
    respond,
  });
}

/** Options of {@link fraudScreener}: a ready-made agent's, plus the screener's bias. */
export interface FraudScreenerOptions extends Omit<ReadyAgentOptions, 'cache'> {
  /** Agent name, e.g. `fraud_screener_1` (required: each screener is its own agent). */
  name: string;
  /**
   * Added to the risk before the 0.5 cut, in risk units (default 0): positive is stricter (more
   * `fraud` votes), negative more lenient. Sent to the model as part of the question.
   */
  bias?: number;
}

/**
 * One fraud screener (`fraud` task type, the tutorial's < 15 % target). Fails with
 * `validation_error` when the answer is neither `fraud` nor `legit`. Not cached.
 *
 * @example
 * const strict = fraudScreener({ name: 'fraud_strict', bias: 0.05, seed: 42 });
 * const { value } = await rt.run(strict, transaction); // 'fraud' | 'legit'
 */
export function fraudScreener(options: FraudScreenerOptions): Agent<Transaction, FraudVerdict> {
  const policies = policiesOf({ ...options, cache: false }, options.name, false);
  const name = policies.name;
  const bias = options.bias ?? 0;
  const provider = options.provider ?? simulatedFraudModel({ seed: `${options.seed ?? 0}:${name}` });
  return agent<Transaction, FraudVerdict>({
    ...policies,
    providerName: provider.name,
    taskType: 'fraud',
    run: async (transaction: Transaction, context: AgentContext) => {
      const answer = await askModel(
        provider,
        name,
        context,
        { task: 'fraud', screener: name, bias, transaction },
        `Is this card transaction fraudulent? Answer "fraud" or "legit".\n${JSON.stringify(transaction)}`,
      );
      if (answer.value !== 'fraud' && answer.value !== 'legit')
        throw new AgentError(
          'validation_error',
          `${name}: expected "fraud" or "legit", got ${JSON.stringify(answer.value)}`,
          { usage: answer.usage },
        );
      return {
        value: answer.value,
        usage: answer.usage,
        model: answer.model,
        ...(answer.confidence !== undefined ? { confidence: answer.confidence } : {}),
      };
    },
  });
}

/** The five screeners' biases, strict to lenient. */
const BIASES = [0.05, 0.025, 0, -0.025, -0.05] as const;

/**
 * The tutorial's five fraud screeners, `fraud_screener_1` (strictest) to `fraud_screener_5`
 * (most lenient), each with its own seed (`<seed>:fraud_screener_<n>`) and bias.
 *
 * @example
 * const fraud = vote(fraudScreeners({ seed: 42 }), { stop: 'decided' }); // ≈ 3.4 screeners a transaction
 * const full = vote(fraudScreeners({ seed: 42 }), { stop: 'all', launch: 'parallel' }); // always 5
 */
export function fraudScreeners(
  options: Omit<FraudScreenerOptions, 'name' | 'bias'> = {},
): Agent<Transaction, FraudVerdict>[] {
  return BIASES.map((bias, i) => fraudScreener({ ...options, name: `fraud_screener_${i + 1}`, bias }));
}
