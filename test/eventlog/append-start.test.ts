/**
 * `appendStart` (SQLite): a `workflow.started` written only if the log holds none for its id,
 * decided inside the transaction that would write it — what lets two processes (or two runtimes on
 * one file) start the same caller-chosen id without claiming it first.
 */
import { describe, expect, it } from 'vitest';
import type { KeelEvent, NewEvent } from '../../src/eventlog/events.js';
import { isWorkflowAlreadyStartedError } from '../../src/eventlog/errors.js';
import { T0, auditEvent, open, tempDb } from './helpers.js';

function started(workflowId: string, ts = T0): NewEvent<'workflow.started'> {
  return {
    ts,
    workflowId,
    type: 'workflow.started',
    payload: {
      name: 'invoice',
      topology: { kind: 'agent', name: 'a' },
      input: { id: workflowId },
      inputHash: 'ab'.repeat(32),
    },
  };
}

const HOSTILE_IDS = [
  'ord-1',
  'jane.doe@example.com',
  'a\u0000b',
  'https://x.test/o?id=1&a=b',
  'x'.repeat(2048),
  '😀-\u2028',
];

describe('appendStart (SQLite)', () => {
  it('writes a start for a new id, refuses one the file holds, and writes the rest of the batch', async () => {
    const store = open({ path: tempDb() });
    for (const id of HOSTILE_IDS) await store.appendStart(started(id));
    const committed: KeelEvent[] = [];
    store.onCommit((events) => committed.push(...events));
    // One batch: a refused start between two ordinary appends, and a fresh start.
    const results = await Promise.allSettled([
      store.append([auditEvent(1)]),
      ...HOSTILE_IDS.map((id) => store.appendStart(started(id, T0 + 5))),
      store.appendStart(started('fresh')),
      store.append([auditEvent(2)]),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      ...HOSTILE_IDS.map(() => 'rejected'),
      'fulfilled',
      'fulfilled',
    ]);
    for (const r of results.slice(1, 1 + HOSTILE_IDS.length)) {
      const reason = (r as PromiseRejectedResult).reason as Error;
      expect(isWorkflowAlreadyStartedError(reason)).toBe(true);
      expect(reason.message).toMatch(/already started in this log.*start it under another id/);
    }
    const starts = store.query({ type: 'workflow.started' }).map((e) => e.workflowId);
    expect(starts.sort()).toEqual([...HOSTILE_IDS, 'fresh'].sort());
    // Listeners saw what was written, seqs gap-free.
    expect(committed.map((e) => e.type)).toEqual([
      'feedback.recorded',
      'workflow.started',
      'feedback.recorded',
    ]);
    const seqs = store.query().map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    expect(store.verify().ok).toBe(true);
  });

  it('refuses the second of two starts of one id in the same batch', async () => {
    const store = open({ path: tempDb() });
    const [a, b] = await Promise.allSettled([
      store.appendStart(started('dup')),
      store.appendStart(started('dup')),
    ]);
    expect(a.status).toBe('fulfilled');
    expect(b.status).toBe('rejected');
    expect(store.query({ workflowId: 'dup' })).toHaveLength(1);
  });

  it('sees a start another connection committed after this one last read the file', async () => {
    const path = tempDb();
    const mine = open({ path });
    const theirs = open({ path });
    await mine.appendStart(started('warm')); // this connection has cached the file's strings
    await theirs.appendStart(started('ord-7'));
    await expect(mine.appendStart(started('ord-7'))).rejects.toSatisfy(isWorkflowAlreadyStartedError);
    // A start for an id neither has seen goes through on either.
    await mine.appendStart(started('ord-8'));
    expect(theirs.query({ type: 'workflow.started' }).map((e) => e.workflowId)).toEqual([
      'warm',
      'ord-7',
      'ord-8',
    ]);
    expect(theirs.verify().ok).toBe(true);
  });

  it("commits on the store's connection, after the writer thread's batches in flight", async () => {
    const store = open({ path: tempDb(), writer: 'thread' });
    const ordinary = Array.from({ length: 300 }, (_, i) => store.append([auditEvent(i)]));
    await new Promise((resolve) => setImmediate(resolve)); // that batch is posted to the thread
    const starts = [store.appendStart(started('t-1')), store.appendStart(started('t-1'))];
    const more = store.append([auditEvent(1000)]);
    await Promise.all(ordinary);
    expect((await Promise.allSettled(starts)).map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
    await more;
    const all = store.query();
    expect(all).toHaveLength(302);
    expect(store.stats().threadTransactions).toBe(1);
    expect(all.find((e) => e.type === 'workflow.started')?.seq).toBe(301);
    expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1));
    expect(store.verify().ok).toBe(true);
  });

  it('takes only workflow.started, and refuses on a read-only store', async () => {
    const path = tempDb();
    const store = open({ path });
    await expect(store.appendStart(auditEvent(1) as unknown as NewEvent)).rejects.toThrow(
      /appendStart takes a workflow.started event, not feedback.recorded/,
    );
    await store.close();
    const ro = open({ path, readonly: true });
    await expect(ro.appendStart(started('x'))).rejects.toThrow(/read-only/i);
    expect(ro.query()).toHaveLength(0);
  });
});
