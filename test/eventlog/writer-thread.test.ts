/**
 * The writer thread (`writer: 'thread'`): what it changes for users beyond the store contract
 * (which contract-sqlite.test.ts runs on both writers): a lock held elsewhere waits on the thread,
 * not on the event loop; a full disk and its recovery reach the thread; an idle thread does not keep
 * the process alive; the runtime runs and replays on it.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { simulatedClock } from '../../src/core/clock.js';
import { DatabaseLockedError, DiskFullError } from '../../src/eventlog/errors.js';
import { openSqliteStore, type SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { createRuntime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';
import { auditEvent, mixedEvents, open, tempDb } from './helpers.js';

const CHILD = fileURLToPath(new URL('./writer-thread-child.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));

describe("writer: 'thread'", () => {
  it('lets this thread release a lock while the writer waits on it; inline, the wait blocks it', async () => {
    for (const writer of ['thread', 'inline'] as const) {
      const file = tempDb();
      const store = open({ path: file, writer, busyTimeoutMs: 1_500 });
      await store.append(mixedEvents(4));
      const locker = new Database(file);
      locker.exec('BEGIN EXCLUSIVE');
      const pending = store.append([auditEvent(10)]);
      // Queued after the store's flush: runs at once if the event loop is free, only after the
      // busy wait if the wait holds this thread.
      setImmediate(() => {
        if (locker.open && locker.inTransaction) locker.exec('ROLLBACK');
      });
      const outcome = await pending.then(
        (events) => events[0]?.seq,
        (e: unknown) => e,
      );
      if (locker.inTransaction) locker.exec('ROLLBACK');
      locker.close();
      if (writer === 'thread') expect(outcome).toBe(5);
      else expect(outcome).toBeInstanceOf(DatabaseLockedError);
      expect(store.verify()).toMatchObject({ ok: true, events: writer === 'thread' ? 5 : 4 });
    }
  });

  it('reports a full disk from the thread as DiskFullError, keeps what was committed, resumes when raised', async () => {
    const store = open({ path: tempDb(), writer: 'thread', maxPageCount: 100_000 });
    await store.append(mixedEvents(10));
    const before = [...store.iterateChained()].map((c) => c.hash);
    expect(store.setMaxPageCount(1)).toBeGreaterThan(1);
    const big = { ...auditEvent(11), payload: { correct: true, expected: 'x'.repeat(200_000) } };
    await expect(store.append([big])).rejects.toBeInstanceOf(DiskFullError);
    expect([...store.iterateChained()].map((c) => c.hash)).toEqual(before);
    store.setMaxPageCount(100_000);
    const [e] = await store.append([big]);
    expect(e?.seq).toBe(11);
    expect(store.verify()).toMatchObject({ ok: true, events: 11 });
  });

  it('groups appends made while a batch is in flight into the next transaction', async () => {
    const store = open({ path: tempDb(), writer: 'thread' });
    await store.append([auditEvent(0)]); // the thread is up
    const base = store.stats();
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.append([auditEvent(i + 1)])));
    const { transactions, events } = store.stats();
    expect(events - base.events).toBe(200);
    expect(transactions - base.transactions).toBeLessThan(200);
    expect(store.query().map((e) => e.seq)).toEqual(Array.from({ length: 201 }, (_, i) => i + 1));
  });

  it('sends full batches without waiting for the one in flight, and commits them in order', async () => {
    const store = open({ path: tempDb(), writer: 'thread', maxBatch: 8 });
    await store.append([auditEvent(0)]);
    const base = store.stats().transactions;
    const committed: number[] = [];
    store.onCommit((events) => committed.push(...events.map((e) => e.seq)));
    const results = await Promise.all(
      Array.from({ length: 64 }, (_, i) => store.append([auditEvent(i + 1)])),
    );
    // Four full batches of 8 go out at once (then the rest as answers come back), not one and a remainder.
    expect(store.stats().transactions - base).toBeGreaterThanOrEqual(4);
    expect(results.map((r) => r[0]?.seq)).toEqual(Array.from({ length: 64 }, (_, i) => i + 2));
    expect(committed).toEqual(Array.from({ length: 64 }, (_, i) => i + 2));
    expect(store.verify()).toMatchObject({ ok: true, events: 65 });
  });

  it('makes every close() wait until the appends made before it are committed', async () => {
    const store = open({ path: tempDb(), writer: 'thread' });
    let committed = 0;
    const appends = Array.from({ length: 20 }, (_, i) =>
      store.append([auditEvent(i)]).then(() => committed++),
    );
    void store.close();
    await store.close(); // the second call too
    expect(committed).toBe(20);
    await Promise.all(appends);
    const reopened = open({ path: store.path, readonly: true });
    expect(reopened.verify()).toMatchObject({ ok: true, events: 20 });
  });

  it('does not keep the process alive once idle, even when the store is never closed', async () => {
    const file = tempDb();
    const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, file], {
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
      child.on('error', reject);
      child.on('exit', (code) => {
        clearTimeout(guard);
        resolve({ code, out });
      });
    });
    expect(code).toBe(0); // not killed by the guard
    expect(out.trim()).toBe('20');
    const store = open({ path: file, readonly: true });
    expect(store.verify()).toMatchObject({ ok: true, events: 20 });
  });

  it('runs and replays workflows through createRuntime({ writer })', async () => {
    const rt = createRuntime({ db: tempDb(), writer: 'thread', clock: simulatedClock(), seed: 1 });
    try {
      const a = agent({
        name: 'echo',
        model: 'gpt-4',
        run: (input: string) => Promise.resolve({ value: input.toUpperCase() }),
      });
      const results = await Promise.all(['a', 'b', 'c'].map((x) => rt.run(a, x)));
      expect(results.map((r) => r.value)).toEqual(['A', 'B', 'C']);
      expect(rt.store.query({ type: 'workflow.completed' })).toHaveLength(3);
      const reports = await rt.replay('all', { topologies: { echo: a } });
      expect(reports.map((r) => r.ok)).toEqual([true, true, true]);
      expect(rt.store.verify()).toMatchObject({ ok: true });
    } finally {
      await rt.close();
    }
  });

  it('replaces a writer thread that dies: what was in flight is refused or committed, never lost from the chain', async () => {
    const store = open({ path: tempDb(), writer: 'thread' });
    await store.append([auditEvent(0)]);
    /** Fault injection: the thread is killed from outside, as a crash of it would; the store sees it stop. */
    const kill = async (): Promise<void> => {
      await (store as unknown as { thread: { worker: Worker } }).thread.worker.terminate();
      const deadline = Date.now() + 10_000;
      while (store.stats().writerThread !== 'stopped') {
        if (Date.now() > deadline) throw new Error('the store never saw its writer thread stop');
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    let next = 1;
    for (let round = 1; round <= 3; round++) {
      const inFlight = store.append([auditEvent(next++)]);
      await kill();
      const [outcome] = await Promise.allSettled([inFlight]);
      if (outcome?.status === 'rejected') {
        expect(outcome.reason).toMatchObject({ code: 'EVENTLOG_WRITER_STOPPED' });
        expect(String(outcome.reason)).toMatch(/may or may not have been committed/);
      }
      // The next append goes to a new thread.
      const [e] = await store.append([auditEvent(next++)]);
      expect(e?.seq).toBe(store.lastSeq());
      expect(store.stats()).toMatchObject({ threadRestarts: round, writerThread: 'up' });
    }
    // A fourth death is one too many: writes are refused until the store is reopened.
    await kill();
    await expect(store.append([auditEvent(next++)])).rejects.toMatchObject({
      code: 'EVENTLOG_WRITER_STOPPED',
    });
    expect(store.stats()).toMatchObject({ threadRestarts: 3, writerThread: 'stopped' });
    const events = store.verify();
    expect(events).toMatchObject({ ok: true });
    await store.close();
    const reopened = open({ path: store.path, writer: 'thread' });
    const [after] = await reopened.append([auditEvent(next++)]);
    expect(after?.seq).toBe(reopened.lastSeq());
    expect(reopened.verify()).toMatchObject({ ok: true });
    await reopened.close();
  });

  it('needs a file: an in-memory store with a thread is a ConfigError naming the fix', () => {
    expect(() => openSqliteStore({ path: ':memory:', writer: 'thread' })).toThrow(ConfigError);
    expect(() => openSqliteStore({ path: ':memory:', writer: 'thread' })).toThrow(/writer: 'inline'/);
    expect(() => openSqliteStore({ path: tempDb(), writer: 'fast' as never })).toThrow(
      /'inline', 'thread' or 'auto'/,
    );
  });
});

/** Appends `n` events in one flush (one tick) and waits for their commit. */
async function flushOf(store: SqliteEventStore, n: number, from: number): Promise<number[]> {
  const pending = Array.from({ length: n }, (_, i) => store.appendOne(auditEvent(from + i)));
  await Promise.all(pending);
  return pending.map(() => from++);
}

/** Waits (bounded) until the store has committed through its writer thread. */
async function untilThreadCommits(store: SqliteEventStore, next: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (store.stats().threadTransactions === 0) {
    if (Date.now() > deadline) throw new Error('the writer thread never committed');
    await next();
    // A turn of the event loop, where the thread's "ready" arrives (a full batch commits at once).
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe("writer: 'auto'", () => {
  it('moves to its thread after two full batches in a row, stays there, and comes back after 8 small flushes', async () => {
    const store = open({ path: tempDb(), writer: 'auto', maxBatch: 300 });
    const committed: number[] = [];
    store.onCommit((events) => committed.push(...events.map((e) => e.seq)));
    const thread = (): number => store.stats().threadTransactions;
    let n = 0;
    const flush = async (size: number): Promise<void> => {
      n += (await flushOf(store, size, n)).length;
    };
    for (let i = 0; i < 20; i++) await flush(5);
    // One short of a full batch, and full batches that are not in a row: inline, no thread started.
    await flush(299);
    for (const size of [300, 5, 300, 299, 300]) await flush(size);
    expect(store.stats()).toMatchObject({ transactions: 26, threadTransactions: 0, writerThread: 'none' });

    // Full batches in a row start the thread; they commit inline until it is up.
    await untilThreadCommits(store, () => flush(300));
    let viaThread = thread();
    // On the thread it stays: a quarter batch or more, and small flushes up to 7 in a row.
    await flush(75);
    for (let i = 0; i < 7; i++) await flush(5);
    await flush(100);
    for (let i = 0; i < 7; i++) await flush(5);
    expect(thread()).toBe(viaThread + 16);
    viaThread = thread();
    // The 8th small flush in a row commits inline, and so does what follows until two full in a row.
    await flush(5);
    await flush(300);
    await flush(5);
    expect(thread()).toBe(viaThread);
    await flush(300);
    await flush(300);
    expect(thread()).toBe(viaThread + 1);

    expect(committed).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(store.query().map((e) => e.workflowId)).toEqual(Array.from({ length: n }, (_, i) => `wf-${i}`));
    expect(store.verify()).toMatchObject({ ok: true, events: n });
    await store.close();
  });

  it('keeps a small commit behind the large batches in flight on the thread', async () => {
    const store = open({ path: tempDb(), writer: 'auto', maxBatch: 300 });
    let n = 0;
    await untilThreadCommits(store, async () => {
      n += (await flushOf(store, 300, n)).length;
    });
    const seen: number[] = [];
    store.onCommit((events) => seen.push(...events.map((e) => e.seq)));
    const large = Array.from({ length: 900 }, (_, i) => store.appendOne(auditEvent(n + i)));
    const small = store.append([auditEvent(n + 900)]);
    await Promise.all([...large, small]);
    expect(seen).toEqual(Array.from({ length: 901 }, (_, i) => n + 1 + i));
    expect((await small)[0]?.seq).toBe(n + 901);
    expect(store.verify()).toMatchObject({ ok: true, events: n + 901 });
    await store.close();
  });

  it('goes inline when its thread dies and starts a new one when the load calls for it again', async () => {
    const store = open({ path: tempDb(), writer: 'auto', maxBatch: 300 });
    let n = 0;
    await untilThreadCommits(store, async () => {
      n += (await flushOf(store, 300, n)).length;
    });
    await (store as unknown as { thread: { worker: Worker } }).thread.worker.terminate();
    const deadline = Date.now() + 10_000;
    while (store.stats().writerThread !== 'stopped') {
      if (Date.now() > deadline) throw new Error('the store never saw its writer thread stop');
      await new Promise((resolve) => setImmediate(resolve));
    }
    const before = store.stats().threadTransactions;
    n += (await flushOf(store, 5, n)).length; // inline: the dead thread is replaced by none yet
    expect(store.stats()).toMatchObject({
      threadRestarts: 1,
      writerThread: 'none',
      threadTransactions: before,
    });
    while (store.stats().threadTransactions === before) {
      if (Date.now() > deadline) throw new Error('no new writer thread committed');
      n += (await flushOf(store, 300, n)).length;
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(store.stats()).toMatchObject({ threadRestarts: 1, writerThread: 'up', events: n });
    expect(store.verify()).toMatchObject({ ok: true, events: n });
    await store.close();
  });

  it('goes on inline when its thread cannot start, losing nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keel-auto-'));
    const file = join(dir, 'keel.db');
    const store = open({ path: file, writer: 'auto', maxBatch: 300 });
    await flushOf(store, 5, 0);
    // The thread opens the file by path: with the directory gone it cannot.
    rmSync(dir, { recursive: true, force: true });
    let n = 5;
    const deadline = Date.now() + 20_000;
    // Each thread it starts fails; it is replaced 3 times, then 'auto' gives the thread up.
    while (!(store.stats().threadRestarts === 3 && store.stats().writerThread === 'stopped')) {
      if (Date.now() > deadline) throw new Error('the writer thread never reported its failures');
      n += (await flushOf(store, 300, n)).length;
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (let i = 0; i < 3; i++) n += (await flushOf(store, 300, n)).length;
    expect(store.stats()).toMatchObject({
      threadTransactions: 0,
      threadRestarts: 3,
      events: n,
      writerThread: 'stopped',
    });
    expect(store.verify()).toMatchObject({ ok: true, events: n });
    await store.close();
  });

  it('is the default, with or without a runtime, and reports its thread in stats()', async () => {
    const store = open({ path: tempDb(), maxBatch: 300 });
    expect(store.stats().writerThread).toBe('none');
    let n = (await flushOf(store, 300, 0)).length;
    n += (await flushOf(store, 300, n)).length;
    expect(store.stats().writerThread).toMatch(/^(starting|up)$/);
    await untilThreadCommits(store, async () => {
      n += (await flushOf(store, 300, n)).length;
    });
    expect(store.stats().writerThread).toBe('up');
    expect(store.verify()).toMatchObject({ ok: true, events: n });
    await store.close();
    const rt = createRuntime({ db: tempDb(), clock: simulatedClock(0) });
    expect(rt.store.stats().writerThread).toBe('none');
    await rt.close();
  });

  it('is inline in memory; the runtime takes it as an option', async () => {
    const store = open({ path: ':memory:', writer: 'auto' });
    await flushOf(store, 600, 0);
    expect(store.stats()).toMatchObject({ threadTransactions: 0, events: 600 });
    const rt = createRuntime({ db: ':memory:', writer: 'auto', clock: simulatedClock(0) });
    await expect(rt.close()).resolves.toBeUndefined();
    expect(() => createRuntime({ db: ':memory:', writer: 'fast' as never })).toThrow(/writer/);
  });
});
