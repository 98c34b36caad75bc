import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCache } from '../../src/cache/cache.js';
import { simulatedClock } from '../../src/core/clock.js';
import { tempDir } from './helpers.js';

describe.each(['memory', 'sqlite'] as const)('purging expired entries (%s)', (kind) => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => dir.cleanup());
  const path = () => (kind === 'sqlite' ? dir.path('c.db') : undefined);

  it('removes at most purgeBatch entries per purge, and only those past the stale window', () => {
    const clock = simulatedClock();
    const cache = createCache({ clock, path: path(), maxStaleMs: 0, purgeBatch: 100 });
    for (let i = 0; i < 250; i++) cache.set(`old-${i}`, 'vendor', i, 1_000);
    cache.set('fresh', 'vendor', 'kept', 60_000);
    clock.advance(1_000);

    expect([cache.purgeExpired(), cache.purgeExpired(), cache.purgeExpired(), cache.purgeExpired()]).toEqual([
      100, 100, 50, 0,
    ]);
    expect(cache.get('fresh')?.value).toBe('kept');
    cache.close();
  });

  it('purges by itself during ordinary calls once purgeIntervalMs has passed', () => {
    const clock = simulatedClock();
    const cache = createCache({
      clock,
      path: path(),
      maxStaleMs: 0,
      purgeIntervalMs: 60_000,
      purgeBatch: 1_000,
    });
    for (let i = 0; i < 20; i++) cache.set(`old-${i}`, 'vendor', i, 1_000);
    clock.advance(30_000);
    cache.set('trigger', 'vendor', 1, 60_000); // too soon after the last purge: nothing removed
    expect(cache.purgeExpired()).toBe(20);

    for (let i = 0; i < 20; i++) cache.set(`again-${i}`, 'vendor', i, 1_000);
    clock.advance(60_000);
    cache.get('trigger'); // interval passed: this call purged them
    expect(cache.purgeExpired()).toBe(0);
    cache.close();
  });
});
