import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCache, type LocalCache } from '../../src/cache/cache.js';
import { simulatedClock } from '../../src/core/clock.js';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('singleFlight', () => {
  let cache: LocalCache;
  beforeEach(() => {
    cache = createCache({ clock: simulatedClock() });
  });
  afterEach(() => cache.close());

  it('makes one compute for 50 concurrent callers of the same key, and all get its result', async () => {
    const gate = deferred<{ vendor: string }>();
    let calls = 0;
    const compute = () => {
      calls++;
      return gate.promise;
    };
    const callers = Array.from({ length: 50 }, () => cache.singleFlight('k', compute));
    gate.resolve({ vendor: 'Acme' });
    const results = await Promise.all(callers);
    expect(calls).toBe(1);
    expect(results).toHaveLength(50);
    for (const r of results) expect(r).toEqual({ vendor: 'Acme' });
  });

  it('runs different keys independently', async () => {
    let calls = 0;
    const compute = (v: number) => () => {
      calls++;
      return Promise.resolve(v);
    };
    const [a, b] = await Promise.all([
      cache.singleFlight('a', compute(1)),
      cache.singleFlight('b', compute(2)),
    ]);
    expect([a, b, calls]).toEqual([1, 2, 2]);
  });

  it('shares a failure with every waiting caller, and does not remember it', async () => {
    const gate = deferred<number>();
    let calls = 0;
    const failing = () => {
      calls++;
      return gate.promise;
    };
    const callers = Array.from({ length: 5 }, () => cache.singleFlight('k', failing));
    gate.reject(new Error('provider timeout'));
    const settled = await Promise.allSettled(callers);
    expect(
      settled.every((s) => s.status === 'rejected' && (s.reason as Error).message === 'provider timeout'),
    ).toBe(true);
    expect(calls).toBe(1);

    const next = await cache.singleFlight('k', () => {
      calls++;
      return Promise.resolve(42);
    });
    expect(next).toBe(42);
    expect(calls).toBe(2);
    expect(cache.get('k')).toBeUndefined(); // nothing was cached by singleFlight itself
  });

  it('shares a compute that throws synchronously, then computes again', async () => {
    const boom = (): Promise<number> => {
      throw new Error('sync failure');
    };
    await expect(Promise.all([cache.singleFlight('k', boom), cache.singleFlight('k', boom)])).rejects.toThrow(
      'sync failure',
    );
    await expect(cache.singleFlight('k', () => Promise.resolve(7))).resolves.toBe(7);
  });

  it('computes again once the previous flight has landed', async () => {
    let calls = 0;
    const compute = () => Promise.resolve(++calls);
    expect(await cache.singleFlight('k', compute)).toBe(1);
    expect(await cache.singleFlight('k', compute)).toBe(2);
  });
});
