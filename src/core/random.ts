/**
 * Seeded randomness. Everything in Keel that needs chance (retry jitter, the simulated provider,
 * demo data) draws from a {@link Random} made from a seed, so the same seed gives the same run.
 */

/** A deterministic pseudo-random source. */
export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max] inclusive. */
  int(min: number, max: number): number;
  /** True with probability `p`. */
  chance(p: number): boolean;
  /** A normally distributed float (Box–Muller). */
  normal(mean: number, stddev: number): number;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
  /** A new independent stream derived from this one and a label. */
  fork(label: string): Random;
}

/** 32-bit FNV-1a hash of a string: turns labels and inputs into seeds. */
export function hashSeed(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * A seeded PRNG (mulberry32): fast, 32-bit state, good enough for simulation and jitter; not for
 * cryptography.
 *
 * @param seed - a number or a string (hashed).
 * @example
 * const rng = seededRandom(42);
 * rng.int(1, 6); // the same roll every run
 */
export function seededRandom(seed: number | string): Random {
  let state = (typeof seed === 'string' ? hashSeed(seed) : seed) >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const rng: Random = {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    chance: (p) => next() < p,
    normal: (mean, stddev) => {
      const u = 1 - next();
      const v = next();
      return mean + stddev * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    pick: <T>(items: readonly T[]): T => {
      if (items.length === 0) throw new RangeError('Random.pick: items must not be empty');
      return items[Math.floor(next() * items.length)] as T;
    },
    fork: (label) => seededRandom((hashSeed(label) ^ Math.floor(next() * 4294967296)) >>> 0),
  };
  return rng;
}
