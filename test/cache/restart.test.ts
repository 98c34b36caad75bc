import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCache } from '../../src/cache/cache.js';
import { simulatedClock } from '../../src/core/clock.js';
import { tempDir } from './helpers.js';

describe('restart survival', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => dir.cleanup());

  it('a new cache on the same file sees the unexpired entries, and not the expired ones', () => {
    const clock = simulatedClock();
    const before = createCache({ clock, path: dir.path('c.db') });
    before.set('long', 'vendor', { vendor: 'Acme', lines: [1, 2] }, 86_400_000);
    before.set('short', 'vendor', 'gone soon', 1_000);
    before.close();

    clock.advance(5_000);
    const after = createCache({ clock, path: dir.path('c.db') });
    expect(after.get('long')).toEqual({
      value: { vendor: 'Acme', lines: [1, 2] },
      ageMs: 5_000,
      stale: false,
    });
    expect(after.get('short')).toBeUndefined();
    expect(after.get('short', { allowStale: true })).toEqual({
      value: 'gone soon',
      ageMs: 5_000,
      stale: true,
    });
    after.close();
  });

  it('a memory-only cache starts empty', () => {
    const clock = simulatedClock();
    const first = createCache({ clock, path: ':memory:' });
    first.set('k', 'vendor', 1, 60_000);
    first.close();
    const second = createCache({ clock, path: ':memory:' });
    expect(second.get('k')).toBeUndefined();
    second.close();
  });
});
