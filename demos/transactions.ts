/**
 * Demo data: a seeded stream of card transactions with the tutorial's production mix — 40 % clear
 * non-fraud, 30 % clear fraud, 30 % borderline (where screeners disagree).
 */
import type { Transaction } from '../agents/fraud.js';
import { seededRandom, type Random } from '../src/index.js';

/** Shares of each kind of transaction; the rest are borderline. */
export interface TransactionMix {
  /** Clearly legitimate: home country, low velocity, small amounts (default 0.4). */
  clearLegit: number;
  /** Clearly fraudulent: foreign, high velocity, new device, large amounts (default 0.3). */
  clearFraud: number;
}

/** The tutorial's mix. */
export const TUTORIAL_TRANSACTION_MIX: Readonly<TransactionMix> = Object.freeze({
  clearLegit: 0.4,
  clearFraud: 0.3,
});

const COUNTRIES = ['US', 'GB', 'DE', 'FR', 'BR', 'IN', 'NG', 'RU'] as const;

function lognormal(rng: Random, median: number, spread: number): number {
  return Math.round(Math.exp(Math.log(median) + rng.normal(0, spread)) * 100) / 100;
}

function foreign(rng: Random, home: string): string {
  let c: string = rng.pick(COUNTRIES);
  while (c === home) c = rng.pick(COUNTRIES);
  return c;
}

/**
 * Yields `count` transactions, lazily, from `seed`.
 *
 * @example
 * for (const t of transactionStream({ seed: 42, count: 3 })) console.log(t.id, transactionRisk(t));
 */
export function* transactionStream(options: {
  seed: number;
  count: number;
  mix?: TransactionMix;
}): Generator<Transaction> {
  const rng = seededRandom(`${options.seed}:transactions`);
  const mix = options.mix ?? TUTORIAL_TRANSACTION_MIX;
  for (let i = 1; i <= options.count; i++) {
    const id = `TXN-${String(i).padStart(6, '0')}`;
    const cardCountry = rng.pick(COUNTRIES.slice(0, 4));
    const u = rng.next();
    if (u < mix.clearLegit) {
      yield {
        id,
        amountUsd: lognormal(rng, 60, 0.8),
        country: rng.chance(0.03) ? foreign(rng, cardCountry) : cardCountry,
        cardCountry,
        velocity1h: rng.int(0, 2),
        newDevice: rng.chance(0.1),
      };
    } else if (u < mix.clearLegit + mix.clearFraud) {
      yield {
        id,
        amountUsd: lognormal(rng, 1_500, 0.6),
        country: foreign(rng, cardCountry),
        cardCountry,
        velocity1h: rng.int(6, 15),
        newDevice: rng.chance(0.8),
      };
    } else {
      // Borderline (risk near 0.5): a foreign purchase with quiet signals, or a home one with loud ones.
      const abroad = rng.chance(0.5);
      yield {
        id,
        amountUsd: lognormal(rng, abroad ? 150 : 2_500, 0.3),
        country: abroad ? foreign(rng, cardCountry) : cardCountry,
        cardCountry,
        velocity1h: abroad ? rng.int(1, 3) : rng.int(3, 6),
        newDevice: !abroad,
      };
    }
  }
}
