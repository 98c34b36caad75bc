import { describe, expect, it } from 'vitest';
import { runChaosDemo } from '../../demos/chaos.js';
import { runFraudDemo } from '../../demos/fraud.js';
import { runInvoiceDemo } from '../../demos/invoice.js';
import { openSqliteStore } from '../../src/index.js';
import { tmpDb } from './helpers.js';

/** A result without the file it was written to. */
function numbers<T extends { db: string }>(result: T): Omit<T, 'db'> {
  const { db: _db, ...rest } = result;
  return rest;
}

describe('demos are deterministic by seed (default virtual time, fresh files)', () => {
  it(
    'gives identical invoice results for the same seed, and different ones for another seed',
    { timeout: 120_000 },
    async () => {
      const a = await runInvoiceDemo({ db: tmpDb(), count: 60, seed: 21 });
      const b = await runInvoiceDemo({ db: tmpDb(), count: 60, seed: 21 });
      const c = await runInvoiceDemo({ db: tmpDb(), count: 60, seed: 22 });
      expect(numbers(b)).toEqual(numbers(a));
      expect(numbers(c)).not.toEqual(numbers(a));
    },
  );

  it(
    'gives identical chaos timelines (breaker transitions to the ms) for the same seed',
    { timeout: 120_000 },
    async () => {
      const a = await runChaosDemo({ db: tmpDb(), count: 240, seed: 4 });
      const b = await runChaosDemo({ db: tmpDb(), count: 240, seed: 4 });
      expect(numbers(b)).toEqual(numbers(a));
      expect(a.breaker.transitions.length).toBeGreaterThan(0);
    },
  );

  it('gives identical fraud votes for the same seed', { timeout: 120_000 }, async () => {
    const a = await runFraudDemo({ db: tmpDb(), count: 30, seed: 8 });
    const b = await runFraudDemo({ db: tmpDb(), count: 30, seed: 8 });
    expect(numbers(b)).toEqual(numbers(a));
  });
});

describe('a demo run on an existing log', () => {
  it('appends after the last event and reports only its own workflows', { timeout: 120_000 }, async () => {
    const db = tmpDb();
    await runFraudDemo({ db, count: 10, seed: 8 });
    const store = openSqliteStore({ path: db, readonly: true });
    const firstEnd = store.query({ afterSeq: store.lastSeq() - 1 })[0]?.ts ?? 0;
    const firstSeq = store.lastSeq();
    await store.close();

    const again = await runFraudDemo({ db, count: 10, seed: 8 });
    expect(again.full.transactions).toBe(10);
    expect(again.decisions).toEqual({ compared: 10, same: 10 });
    const after = openSqliteStore({ path: db, readonly: true });
    try {
      const appended = after.query({ afterSeq: firstSeq });
      expect(appended.length).toBeGreaterThan(0);
      expect(Math.min(...appended.map((e) => e.ts))).toBeGreaterThan(firstEnd);
      expect(after.verify().ok).toBe(true);
    } finally {
      await after.close();
    }
  });
});
