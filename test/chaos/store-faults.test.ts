/**
 * Chaos on the event log: another process holding the write lock, a full disk (the database's
 * page cap), and a read-only file. Each time new work is refused cleanly — the run rejects with
 * the named error — and no committed event is lost or altered: every (seq, hash) committed before
 * the fault is still there afterwards, and the chain verifies.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { DatabaseLockedError, DiskFullError, ReadOnlyDatabaseError } from '../../src/eventlog/errors.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { simulated } from '../../src/providers/simulated.js';
import { createRuntime, type Runtime, type RuntimeConfig } from '../../src/runtime.js';
import { PRICING, drive, logHealth, modelAgent, recording, type RecordingProvider } from './harness.js';
import { chaosSummary } from './summary.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';

const scenario = chaosSummary('store-faults');

const dirs: string[] = [];
const runtimes: Runtime<SqliteEventStore>[] = [];
const lockers: Database.Database[] = [];
afterEach(async () => {
  for (const l of lockers.splice(0)) {
    if (l.inTransaction) l.exec('ROLLBACK');
    l.close();
  }
  for (const rt of runtimes.splice(0)) await rt.close();
  for (const d of dirs.splice(0)) {
    for (const f of fs.readdirSync(d)) fs.chmodSync(path.join(d, f), 0o644);
    fs.rmSync(d, { recursive: true, force: true });
  }
});

function tempDb(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-chaos-store-'));
  dirs.push(d);
  return path.join(d, 'keel.db');
}

interface Setup {
  clock: SimulatedClock;
  provider: RecordingProvider;
  rt: Runtime<SqliteEventStore>;
  /** Runs `n` workflows with inputs of `inputBytes` characters and returns their outcomes. */
  runMany: (n: number, inputBytes?: number) => Promise<PromiseSettledResult<unknown>[]>;
}

function setup(
  config: Omit<RuntimeConfig, 'store'> & { store?: SqliteEventStore },
  clock = simulatedClock(),
): Setup {
  const provider = recording(simulated({ seed: 3, latencyMs: { p50: 5, p95: 10 } }), clock);
  const rt = createRuntime({
    clock,
    seed: 3,
    pricing: PRICING,
    cache: false,
    metrics: false,
    tracing: false,
    ...config,
  });
  runtimes.push(rt);
  const extract = modelAgent('extract', provider);
  let n = 0;
  const runMany = (count: number, inputBytes = 0) =>
    drive(
      clock,
      Array.from({ length: count }, () => rt.run(extract, { n: n++, text: 'x'.repeat(inputBytes) })),
    );
  return { clock, provider, rt, runMany };
}

/** seq → hash of every committed event: what must survive a fault unchanged. */
function chainOf(store: SqliteEventStore): Map<number, string> {
  const out = new Map<number, string>();
  for (const c of store.iterateChained()) out.set(c.event.seq, c.hash);
  return out;
}

/** Entries of `before` that are missing or different in `after`. */
function lostOrAltered(before: Map<number, string>, after: Map<number, string>): number {
  let n = 0;
  for (const [seq, hash] of before) if (after.get(seq) !== hash) n++;
  return n;
}

const fulfilled = (r: PromiseSettledResult<unknown>[]) => r.filter((x) => x.status === 'fulfilled').length;
const rejectedWith = (r: PromiseSettledResult<unknown>[], type: abstract new (...args: never[]) => Error) =>
  r.filter((x) => x.status === 'rejected' && x.reason instanceof type).length;

describe('chaos: the event log under fault', () => {
  it('locked by another process: runs reject with DatabaseLockedError, committed events intact, then recovers', async () => {
    const s = scenario('SQLite locked by another connection (BEGIN EXCLUSIVE)');
    const file = tempDb();
    const clock = simulatedClock();
    const store = openSqliteStore({ path: file, busyTimeoutMs: 25, clock });
    const { provider, rt, runMany } = setup({ store }, clock);
    expect(fulfilled(await runMany(5))).toBe(5);
    const before = chainOf(rt.store);

    const locker = new Database(file, { timeout: 0 });
    lockers.push(locker);
    locker.exec('BEGIN EXCLUSIVE');
    const calls = provider.calls.length;
    const refused = await runMany(5);
    s.inject(5);
    s.hold('new work is refused with DatabaseLockedError', () => {
      expect(rejectedWith(refused, DatabaseLockedError)).toBe(5);
    });
    console.log(`while locked, the 5 refused runs still made ${provider.calls.length - calls} model call(s)`);
    locker.exec('ROLLBACK');

    const after = chainOf(rt.store);
    s.lost(lostOrAltered(before, after));
    s.hold('every event committed before the lock is still there, unchanged; the chain verifies', () => {
      expect(lostOrAltered(before, after)).toBe(0);
      expect(rt.store.verify()).toMatchObject({ ok: true });
    });
    const again = await runMany(5);
    s.hold('once the lock is gone, new runs commit again', () => expect(fulfilled(again)).toBe(5));
    s.hold('no open or half-written workflow in the log', () =>
      expect(logHealth(rt.store)).toMatchObject({ open: [], orphans: [], verified: true }),
    );
  });

  it('disk full (page cap): runs reject with DiskFullError, committed events intact, then recovers', async () => {
    const s = scenario('disk full (maxPageCount)');
    const file = tempDb();
    const clock = simulatedClock();
    const store = openSqliteStore({ path: file, clock, maxPageCount: 100_000 });
    const { rt, runMany, provider } = setup({ store }, clock);
    expect(fulfilled(await runMany(5))).toBe(5);
    const before = chainOf(rt.store);

    // SQLite never sets the cap below the current size: asking for 1 page freezes the file as it is.
    const pages = store.setMaxPageCount(1);
    expect(pages).toBeGreaterThan(1);
    const calls = provider.calls.length;
    const refused = await runMany(5, 20_000);
    console.log(`disk full: the 5 refused runs still made ${provider.calls.length - calls} model call(s)`);
    s.inject(5);
    s.hold('new work is refused with DiskFullError', () => {
      expect(rejectedWith(refused, DiskFullError)).toBe(5);
    });
    const after = chainOf(rt.store);
    s.lost(lostOrAltered(before, after));
    s.hold(
      'every event committed before the disk filled is still there, unchanged; the chain verifies',
      () => {
        expect(lostOrAltered(before, after)).toBe(0);
        expect(rt.store.verify()).toMatchObject({ ok: true });
      },
    );

    store.setMaxPageCount(100_000);
    expect(fulfilled(await runMany(5, 20_000))).toBe(5);
    s.hold('with space again, new runs commit; the chain still verifies', () => {
      expect(rt.store.verify()).toMatchObject({ ok: true });
    });
    s.hold('no open or half-written workflow in the log', () =>
      expect(logHealth(rt.store)).toMatchObject({ open: [], orphans: [], verified: true }),
    );
  });

  it('read-only file (chmod 0444): runs reject with ReadOnlyDatabaseError, the file is untouched', async () => {
    const s = scenario('read-only file (chmod 0444)');
    const file = tempDb();
    const clock = simulatedClock();
    const first = setup({ db: file }, clock);
    expect(fulfilled(await first.runMany(5))).toBe(5);
    const before = chainOf(first.rt.store);
    await first.rt.close();

    fs.chmodSync(file, 0o444);
    const { rt, runMany, provider } = setup({ db: file }, clock);
    expect(rt.store.readonly).toBe(true);
    const refused = await runMany(5);
    console.log(`read-only log: the 5 refused runs still made ${provider.calls.length} model call(s)`);
    s.inject(5);
    s.hold('new work is refused with ReadOnlyDatabaseError', () => {
      expect(rejectedWith(refused, ReadOnlyDatabaseError)).toBe(5);
    });
    const after = chainOf(rt.store);
    s.lost(lostOrAltered(before, after));
    s.hold('the log is exactly what it was; the chain verifies', () => {
      expect(after).toEqual(before);
      expect(rt.store.verify()).toMatchObject({ ok: true });
    });
  });

  it('a read-only log refuses new work before any model call', async () => {
    const file = tempDb();
    const clock = simulatedClock();
    const first = setup({ db: file }, clock);
    expect(fulfilled(await first.runMany(1))).toBe(1);
    await first.rt.close();
    fs.chmodSync(file, 0o444);
    const { runMany, provider } = setup({ db: file }, clock);
    const refused = await runMany(3);
    expect(rejectedWith(refused, ReadOnlyDatabaseError)).toBe(3);
    expect(provider.calls).toHaveLength(0);
  });
});
