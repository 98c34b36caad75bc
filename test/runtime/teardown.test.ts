/**
 * One teardown stack for `rt.close()` and a failed `createRuntime`: last built, first closed; a
 * failed constructor releases what it had opened, connections of the backends it was given
 * included, and `rt.close()` closes the cache before the log and the backend after its cache.
 */
import { describe, expect, it } from 'vitest';
import type { CacheBackend } from '../../src/backends.js';
import { createCache } from '../../src/cache/cache.js';
import { simulatedClock } from '../../src/core/clock.js';
import { isConfigError } from '../../src/core/errors.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import type { EventStore } from '../../src/eventlog/store.js';
import { Teardown } from '../../src/runtime/teardown.js';
import { createRuntime } from '../../src/runtime.js';

/** A shared-cache backend that keeps a memory cache and writes down what is closed, in order. */
function recordingBackend(closed: string[]): CacheBackend {
  return {
    description: 'recording backend',
    openCache: ({ clock }) => {
      const cache = createCache({ clock });
      const close = cache.close.bind(cache);
      return Object.assign(cache, {
        close: () => {
          closed.push('cache');
          close();
        },
      });
    },
    close: () => {
      closed.push('cache connection');
      return Promise.resolve();
    },
  };
}

/** A store whose `close` is written down too. */
function recordingStore(closed: string[]): EventStore {
  const store = openSqliteStore({ path: ':memory:' });
  const close = store.close.bind(store);
  return Object.assign(store, {
    close: () => {
      closed.push('log');
      return close();
    },
  });
}

const hmacKey = 'a-32-byte-secret-for-the-tests!!';

describe('Teardown', () => {
  it('close() runs the closes last pushed first, each awaited before the next', async () => {
    const order: string[] = [];
    const teardown = new Teardown();
    teardown.push(() => order.push('first built'));
    teardown.push(async () => {
      await Promise.resolve();
      order.push('second built (async)');
    });
    expect(teardown.add({ part: 42, close: (reason) => order.push(`third built: ${reason}`) })).toBe(42);
    await teardown.close();
    expect(order).toEqual(['third built: close', 'second built (async)', 'first built']);
    await teardown.close(); // nothing left to close
    expect(order).toHaveLength(3);
  });

  it('abandon() runs every close at once, past a throw and a rejection, with reason "failed"', () => {
    const order: string[] = [];
    const teardown = new Teardown();
    teardown.push((reason) => order.push(`a: ${reason}`));
    teardown.push(() => Promise.reject(new Error('rejects')));
    teardown.push(() => {
      throw new Error('throws');
    });
    teardown.abandon();
    expect(order).toEqual(['a: failed']);
  });
});

describe('createRuntime teardown', () => {
  it('a constructor failing after the shared cache opened closes the cache and its connection', async () => {
    const closed: string[] = [];
    let error: unknown;
    try {
      createRuntime({
        db: ':memory:',
        clock: simulatedClock(0),
        cache: recordingBackend(closed),
        redact: { hmacKey },
        budget: { dailyUsd: -5 },
      });
    } catch (e) {
      error = e;
    }
    expect(isConfigError(error) && error.field).toMatch(/budget/);
    // The connection closes once the cache's close settled (a turn of the event loop).
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toEqual(['cache', 'cache connection']);
  });

  it('a failed constructor leaves a store it was given open; rt.close() closes the cache, then the log', async () => {
    const closed: string[] = [];
    const given = recordingStore(closed);
    expect(() => createRuntime({ store: given, budget: { dailyUsd: -5 }, cache: false })).toThrow(/budget/);
    expect(closed).toEqual([]);

    const rt = createRuntime({
      store: recordingStore(closed),
      clock: simulatedClock(0),
      cache: recordingBackend(closed),
      redact: { hmacKey },
    });
    await rt.close();
    await rt.close(); // idempotent
    expect(closed).toEqual(['cache', 'cache connection', 'log']);
    await given.close();
  });
});
