import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCache, type LocalCache } from '../../src/cache/cache.js';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { tempDir } from './helpers.js';

describe.each(['memory', 'sqlite'] as const)('stale-if-error (%s)', (kind) => {
  let clock: SimulatedClock;
  let cache: LocalCache;
  let dir: ReturnType<typeof tempDir>;

  beforeEach(() => {
    clock = simulatedClock();
    dir = tempDir();
    cache = createCache({
      clock,
      maxStaleMs: 3_600_000,
      path: kind === 'sqlite' ? dir.path('c.db') : undefined,
    });
  });
  afterEach(() => {
    cache.close();
    dir.cleanup();
  });

  it('returns an expired value marked stale when allowStale is set, and a miss otherwise', () => {
    cache.set('k', 'vendor', { vendor: 'Acme' }, 60_000);
    clock.advance(90_000);
    expect(cache.get('k')).toBeUndefined();
    expect(cache.get('k', { allowStale: true })).toEqual({
      value: { vendor: 'Acme' },
      ageMs: 90_000,
      stale: true,
    });
  });

  it('marks a fresh value as not stale even with allowStale', () => {
    cache.set('k', 'vendor', 1, 60_000);
    expect(cache.get('k', { allowStale: true })?.stale).toBe(false);
  });

  it('forgets the value once maxStaleMs has passed after expiry', () => {
    cache.set('k', 'vendor', 1, 60_000);
    clock.advance(60_000 + 3_600_000 - 1);
    expect(cache.get('k', { allowStale: true })?.stale).toBe(true);
    clock.advance(1);
    expect(cache.get('k', { allowStale: true })).toBeUndefined();
  });

  it('with maxStaleMs 0, serves nothing after expiry', () => {
    const strict = createCache({ clock, maxStaleMs: 0 });
    strict.set('k', 'vendor', 1, 60_000);
    clock.advance(60_000);
    expect(strict.get('k', { allowStale: true })).toBeUndefined();
    strict.close();
  });
});
