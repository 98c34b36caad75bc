import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCache } from '../../src/cache/cache.js';
import { simulatedClock } from '../../src/core/clock.js';
import { tempDir } from './helpers.js';

const TTL = 60_000;

describe('memory LRU in front of SQLite', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => dir.cleanup());

  it('serves entries evicted from memory from the SQLite file', () => {
    const cache = createCache({ clock: simulatedClock(), path: dir.path('c.db'), maxEntries: 2 });
    for (const k of ['a', 'b', 'c', 'd']) cache.set(k, 'agent', `value-${k}`, TTL);
    for (const k of ['a', 'b', 'c', 'd']) expect(cache.get(k)?.value).toBe(`value-${k}`);
    cache.close();
  });

  it('without a file, forgets the least recently used entry beyond maxEntries', () => {
    const cache = createCache({ clock: simulatedClock(), maxEntries: 2 });
    cache.set('a', 'agent', 1, TTL);
    cache.set('b', 'agent', 2, TTL);
    expect(cache.get('a')?.value).toBe(1); // a is now the most recently used
    cache.set('c', 'agent', 3, TTL); // evicts b
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')?.value).toBe(1);
    expect(cache.get('c')?.value).toBe(3);
    cache.close();
  });

  it('with maxEntries 0 and a file, reads every entry from SQLite', () => {
    const cache = createCache({ clock: simulatedClock(), path: dir.path('c.db'), maxEntries: 0 });
    cache.set('a', 'agent', { x: 1 }, TTL);
    expect(cache.get('a')?.value).toEqual({ x: 1 });
    cache.close();
  });
});
