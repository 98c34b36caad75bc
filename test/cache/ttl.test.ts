import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCache, type LocalCache } from '../../src/cache/cache.js';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { tempDir } from './helpers.js';

const TTL = 86_400_000;

describe.each(['memory', 'sqlite'] as const)('TTL expiry (%s)', (kind) => {
  let clock: SimulatedClock;
  let cache: LocalCache;
  let dir: ReturnType<typeof tempDir>;

  beforeEach(() => {
    clock = simulatedClock();
    dir = tempDir();
    cache = createCache({ clock, path: kind === 'sqlite' ? dir.path('cache.db') : undefined });
  });
  afterEach(() => {
    cache.close();
    dir.cleanup();
  });

  it('serves the value until ttlMs has passed, and misses from exactly ttlMs on', () => {
    cache.set('k', 'vendor', { vendor: 'Acme' }, TTL);
    clock.advance(TTL - 1);
    expect(cache.get('k')).toEqual({ value: { vendor: 'Acme' }, ageMs: TTL - 1, stale: false });
    clock.advance(1);
    expect(cache.get('k')).toBeUndefined();
  });

  it('reports the age of the entry', () => {
    cache.set('k', 'vendor', 1, TTL);
    clock.advance(1_234);
    expect(cache.get('k')?.ageMs).toBe(1_234);
  });

  it('misses an unknown key', () => {
    expect(cache.get('nope')).toBeUndefined();
  });

  it('replaces an entry and restarts its TTL on set', () => {
    cache.set('k', 'vendor', 'old', 1_000);
    clock.advance(900);
    cache.set('k', 'vendor', 'new', 1_000);
    clock.advance(900);
    expect(cache.get('k')).toEqual({ value: 'new', ageMs: 900, stale: false });
  });

  it('returns a copy: changing what get returned does not change the cache', () => {
    cache.set('k', 'vendor', { lines: [1, 2] }, TTL);
    const first = cache.get('k')?.value as { lines: number[] };
    first.lines.push(3);
    expect(cache.get('k')?.value).toEqual({ lines: [1, 2] });
  });

  it('rejects a ttlMs that is not a positive number', () => {
    expect(() => cache.set('k', 'vendor', 1, 0)).toThrow(/cache\.ttlMs/);
    expect(() => cache.set('k', 'vendor', 1, Number.NaN)).toThrow(/cache\.ttlMs/);
    expect(cache.get('k')).toBeUndefined();
  });
});
