import Database from 'better-sqlite3';
import { describe, expect, it, vi } from 'vitest';
import { DatabaseLockedError } from '../../src/eventlog/errors.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import { auditEvent, open, opEvent, tempDb } from './helpers.js';

describe('group commit', () => {
  it('commits 1,000 concurrent appends in call order, in far fewer transactions', async () => {
    const store = open({ path: tempDb() });
    const appends = Array.from({ length: 1_000 }, (_, i) =>
      store.append(i % 3 === 0 ? [auditEvent(i), opEvent(i)] : [opEvent(i)]),
    );

    const results = await Promise.all(appends);

    let seq = 0;
    results.forEach((events, i) => {
      expect(events.map((e) => e.workflowId)).toEqual(i % 3 === 0 ? [`wf-${i}`, `wf-${i}`] : [`wf-${i}`]);
      for (const e of events) expect(e.seq).toBe(++seq);
    });
    expect(store.lastSeq()).toBe(seq);
    expect(store.query().map((e) => e.seq)).toEqual(Array.from({ length: seq }, (_, i) => i + 1));
    const { transactions, events } = store.stats();
    expect(events).toBe(seq);
    expect(transactions).toBeGreaterThan(0);
    expect(transactions).toBeLessThanOrEqual(5); // 1,334 events, maxBatch 1024: one or two commits
    expect(store.verify()).toMatchObject({ ok: true, events: seq });
  });

  it('commits as soon as maxBatch events are pending', async () => {
    const store = open({ path: ':memory:', maxBatch: 10 });
    const appends = Array.from({ length: 25 }, (_, i) => store.append([auditEvent(i)]));
    // Two batches of 10 committed synchronously, before the next tick.
    expect(store.stats()).toMatchObject({ transactions: 2, threadTransactions: 0, events: 20 });
    await Promise.all(appends);
    expect(store.stats()).toMatchObject({ transactions: 3, threadTransactions: 0, events: 25 });
  });

  it('tells onCommit listeners about each batch, in seq order, before any append of it resolves', async () => {
    const store = open({ path: ':memory:' });
    const batches: number[][] = [];
    const order: string[] = [];
    store.onCommit((events) => {
      batches.push(events.map((e) => e.seq));
      order.push(`commit ${events.length}`);
    });

    const a = store.append([auditEvent(0), opEvent(1)]).then(() => order.push('a resolved'));
    const b = store.append([auditEvent(2)]).then(() => order.push('b resolved'));
    await Promise.all([a, b]);
    await store.append([opEvent(3)]);

    expect(batches).toEqual([[1, 2, 3], [4]]);
    expect(order.slice(0, 3)).toEqual(['commit 3', 'a resolved', 'b resolved']);
  });

  it('keeps committing when a listener throws, and reports the error', async () => {
    const reported: unknown[] = [];
    const store = open({ path: ':memory:', onListenerError: (e) => reported.push(e) });
    const seen: KeelEvent[] = [];
    store.onCommit(() => {
      throw new Error('projection bug');
    });
    store.onCommit((events) => seen.push(...events));

    const [e] = await store.append([auditEvent(0)]);

    expect(e?.seq).toBe(1);
    expect(seen.map((x) => x.seq)).toEqual([1]);
    expect(reported).toHaveLength(1);
    expect((reported[0] as Error).message).toBe('projection bug');
    expect(store.query()).toHaveLength(1);
  });

  it('reports listener errors to console.error by default', async () => {
    const spy = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const store = open({ path: ':memory:' });
      store.onCommit(() => {
        throw new Error('boom');
      });
      await store.append([auditEvent(0)]);
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
  });

  it('stops calling a listener once unsubscribed', async () => {
    const store = open({ path: ':memory:' });
    const calls: number[] = [];
    const off = store.onCommit((events) => calls.push(events.length));
    await store.append([auditEvent(0)]);
    off();
    await store.append([auditEvent(1)]);
    expect(calls).toEqual([1]);
  });

  it('resolves an empty append without a transaction', async () => {
    const store = open({ path: ':memory:' });
    await expect(store.append([])).resolves.toEqual([]);
    expect(store.stats().transactions).toBe(0);
  });

  it('close() commits pending appends first and is idempotent', async () => {
    const path = tempDb();
    const store = open({ path });
    const pending = store.append([auditEvent(0), auditEvent(1)]);
    await store.close();
    await store.close();
    await expect(pending).resolves.toHaveLength(2);

    const reopened = open({ path });
    expect(reopened.lastSeq()).toBe(2);
  });
});

describe.each(['inline', 'thread'] as const)('appendOne (writer %s)', (writer) => {
  it('commits single events with appends in call order; one promise per transaction', async () => {
    const store = open({ path: tempDb(), writer });
    const seen: number[] = [];
    store.onCommit((events) => seen.push(...events.map((e) => e.seq)));
    const ones = [store.appendOne(auditEvent(0)), store.appendOne(opEvent(1))];
    const many = store.append([auditEvent(2), opEvent(3)]);
    ones.push(store.appendOne(auditEvent(4)));

    expect(ones[1]).toBe(ones[0]);
    expect(ones[2]).toBe(ones[0]);
    await expect(ones[0]).resolves.toBeUndefined();
    expect((await many).map((e) => [e.seq, e.workflowId])).toEqual([
      [3, 'wf-2'],
      [4, 'wf-3'],
    ]);
    expect(store.query().map((e) => e.workflowId)).toEqual(['wf-0', 'wf-1', 'wf-2', 'wf-3', 'wf-4']);
    expect(seen).toEqual([1, 2, 3, 4, 5]);

    const later = store.appendOne(auditEvent(5));
    expect(later).not.toBe(ones[0]);
    await later;
    expect(store.verify()).toMatchObject({ ok: true, events: 6 });
    await store.close();
  });

  it('refuses a bad event alone, naming the field; the rest of its transaction commits', async () => {
    const store = open({ path: tempDb(), writer });
    const good = store.appendOne(auditEvent(0));
    const bad = store.appendOne({ ...auditEvent(1), ts: Number.NaN });
    const alsoGood = store.append([auditEvent(2)]);

    await expect(bad).rejects.toThrow(/events\[0\]\.ts/);
    await good;
    expect((await alsoGood).map((e) => e.seq)).toEqual([2]);
    expect(store.query().map((e) => e.workflowId)).toEqual(['wf-0', 'wf-2']);
    await store.close();
    await expect(store.appendOne(auditEvent(3))).rejects.toThrow(/closed/);
  });

  it('rejects every event of a transaction the log refuses', async () => {
    const path = tempDb();
    const store = open({ path, writer, busyTimeoutMs: 0 });
    await store.append([auditEvent(0)]);
    const other = new Database(path);
    other.exec('BEGIN EXCLUSIVE');
    const first = store.appendOne(auditEvent(1));
    const second = store.appendOne(auditEvent(2));
    expect(second).toBe(first);
    await expect(first).rejects.toBeInstanceOf(DatabaseLockedError);
    other.exec('ROLLBACK');
    other.close();
    await store.appendOne(auditEvent(3));
    expect(store.query().map((e) => e.workflowId)).toEqual(['wf-0', 'wf-3']);
    expect(store.verify()).toMatchObject({ ok: true, events: 2 });
    await store.close();
  });
});
