import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCache, type LocalCache } from '../../src/cache/cache.js';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { tempDir } from './helpers.js';

const TTL = 60_000;

describe.each(['memory', 'sqlite'] as const)('invalidate (%s)', (kind) => {
  let clock: SimulatedClock;
  let cache: LocalCache;
  let dir: ReturnType<typeof tempDir>;
  // With a file, a tiny LRU makes invalidation reach entries that live only in SQLite.
  const open = () =>
    kind === 'sqlite'
      ? createCache({ clock, path: dir.path('c.db'), maxEntries: 2 })
      : createCache({ clock });

  beforeEach(() => {
    clock = simulatedClock();
    dir = tempDir();
    cache = open();
    cache.set('v1', 'vendor', 1, TTL);
    cache.set('v2', 'vendor', 2, TTL);
    cache.set('a1', 'amount', 3, TTL);
  });
  afterEach(() => {
    cache.close();
    dir.cleanup();
  });

  const present = () => ['v1', 'v2', 'a1'].filter((k) => cache.get(k) !== undefined);

  it('removes one key', () => {
    expect(cache.invalidate({ key: 'v1' })).toBe(1);
    expect(present()).toEqual(['v2', 'a1']);
    expect(cache.invalidate({ key: 'v1' })).toBe(0);
  });

  it('removes every entry of one agent', () => {
    expect(cache.invalidate({ agent: 'vendor' })).toBe(2);
    expect(present()).toEqual(['a1']);
  });

  it('removes everything', () => {
    expect(cache.invalidate({ all: true })).toBe(3);
    expect(present()).toEqual([]);
  });

  if (kind === 'sqlite') {
    it('stays invalidated after a restart', () => {
      cache.invalidate({ agent: 'vendor' });
      cache.close();
      cache = open();
      expect(present()).toEqual(['a1']);
    });
  }
});
