import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import { T0, auditEvent, mixedEvents, open, opEvent, tempDb } from './helpers.js';
import { editPayload, insertRow } from './raw-rows.js';

/** 40 events, ts = T0 + index: odd seqs audit, even seqs operational. */
async function setup(clockMs = T0 + 10_000) {
  const path = tempDb();
  const clock = simulatedClock(clockMs);
  const store = open({ path, clock });
  const events = await store.append(mixedEvents(40));
  return { path, clock, store, events };
}

const ofClass = (events: readonly KeelEvent[], cls: string) => events.filter((e) => e.class === cls);

describe('retention (prune)', () => {
  it('removes an old operational prefix, anchors it, and leaves audit untouched', async () => {
    const { store, events, path } = await setup();
    const auditBefore = [...store.iterateChained({ class: 'audit' })];
    const seq20 = [...store.iterateChained({ afterSeq: 19, limit: 1 })][0];
    const committed: KeelEvent[][] = [];
    store.onCommit((batch) => committed.push([...batch]));

    const result = await store.prune({ olderThan: T0 + 20, class: 'operational' });

    // operational events have ts T0+1, T0+3, ... T0+19 below the cut: seqs 2, 4, ... 20
    expect(result).toEqual({
      class: 'operational',
      pruned: 10,
      throughSeq: 20,
      anchorSeq: 41,
      // The pruned workflows' ids and the strings only their payloads used (schema 5).
      strings: { deleted: 20 },
    });
    expect(store.query({ class: 'operational' })).toEqual(ofClass(events, 'operational').slice(10));
    expect([...store.iterateChained({ class: 'audit', toTs: T0 + 40 })]).toEqual(auditBefore);
    const [anchor] = store.query({ type: 'log.anchor' });
    expect(anchor).toMatchObject({
      seq: 41,
      ts: T0 + 10_000,
      workflowId: '_system',
      class: 'audit',
      payload: {
        prunedClass: 'operational',
        prunedThroughSeq: 20,
        prunedCount: 10,
        olderThanTs: T0 + 20,
        lastPrunedHash: seq20?.hash,
      },
    });
    expect(committed).toEqual([[anchor]]);
    expect(store.verify()).toMatchObject({ ok: true, events: 31 });

    await store.append([opEvent(100), auditEvent(101)]);
    expect(store.verify()).toMatchObject({ ok: true, events: 33 });
    await store.close();
    expect(open({ path, readonly: true }).verify()).toMatchObject({ ok: true, events: 33 });
  });

  it('removes an old audit prefix and verify still passes', async () => {
    const { store, events } = await setup();
    const opBefore = [...store.iterateChained({ class: 'operational' })];

    const result = await store.prune({ olderThan: T0 + 11, class: 'audit' });

    expect(result).toMatchObject({ class: 'audit', pruned: 6, throughSeq: 11, anchorSeq: 41 });
    expect(result.strings !== undefined && 'deleted' in result.strings).toBe(true);
    expect(store.query({ class: 'audit', toTs: T0 + 40 })).toEqual(ofClass(events, 'audit').slice(6));
    expect([...store.iterateChained({ class: 'operational' })]).toEqual(opBefore);
    expect(store.verify()).toMatchObject({ ok: true });
  });

  it('keeps the operational chain verifiable when audit retention removes its anchor', async () => {
    const { store, clock } = await setup(T0 + 50);
    await store.prune({ olderThan: T0 + 20, class: 'operational' }); // anchor at seq 41, ts T0+50
    clock.advance(100);
    await store.append([auditEvent(60, 'wf-60', T0 + 200)]); // seq 42
    const result = await store.prune({ olderThan: T0 + 100, class: 'audit' }); // removes seq 41 too

    expect(result.throughSeq).toBe(41);
    const anchors = store.query({ type: 'log.anchor' });
    expect(anchors.map((a) => a.payload)).toEqual([
      expect.objectContaining({ prunedClass: 'audit', prunedThroughSeq: 41 }),
      expect.objectContaining({ prunedClass: 'operational', prunedThroughSeq: 20 }),
    ]);
    expect(store.verify()).toMatchObject({ ok: true });

    // and again: each audit prune carries the operational anchor forward
    clock.advance(1_000);
    await store.append([auditEvent(70, 'wf-70', T0 + 5_000)]);
    await store.prune({ olderThan: T0 + 1_000, class: 'audit' });
    expect(store.verify()).toMatchObject({ ok: true });
  });

  it('prunes only a prefix: an old event after a newer one of its class stays', async () => {
    const store = open({ path: ':memory:' });
    await store.append([opEvent(1, 'a', T0 + 1), opEvent(2, 'b', T0 + 50), opEvent(3, 'c', T0 + 2)]);
    const result = await store.prune({ olderThan: T0 + 10, class: 'operational' });
    expect(result).toMatchObject({ pruned: 1, throughSeq: 1 });
    expect(store.query({ class: 'operational' }).map((e) => e.workflowId)).toEqual(['b', 'c']);
    expect(store.verify()).toMatchObject({ ok: true });
  });

  it('does nothing, and writes no anchor, when nothing is old enough', async () => {
    const { store } = await setup();
    const result = await store.prune({ olderThan: T0, class: 'operational' });
    expect(result).toEqual({ class: 'operational', pruned: 0, throughSeq: 0 });
    expect(store.lastSeq()).toBe(40);
    expect(store.query({ type: 'log.anchor' })).toEqual([]);
  });

  it('continues a fully pruned class from its last pruned hash, also after reopening', async () => {
    const { store, path } = await setup();
    const headsBefore = store.heads();
    await store.prune({ olderThan: T0 + 1_000, class: 'operational' });
    expect(store.query({ class: 'operational' })).toEqual([]);
    expect(store.heads().operational).toEqual(headsBefore.operational);
    await store.close();

    const reopened = open({ path });
    expect(reopened.heads().operational).toEqual(headsBefore.operational);
    const [e] = await reopened.append([opEvent(99)]);
    const [chained] = [...reopened.iterateChained({ afterSeq: (e?.seq ?? 0) - 1 })];
    expect(chained?.prevHash).toBe(headsBefore.operational.hash);
    expect(reopened.verify()).toMatchObject({ ok: true });
  });

  it('flags an altered anchor, a pruned event put back, and events removed after the anchor', async () => {
    const { store, path } = await setup();
    const [, seq2] = [...store.iterateChained({ limit: 2 })];
    const { anchorSeq } = await store.prune({ olderThan: T0 + 20, class: 'operational' });
    const raw = new Database(path);
    raw.exec('DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;');

    if (anchorSeq === undefined) throw new Error('the prune wrote no anchor');
    editPayload(raw, anchorSeq, (p) => ({ ...p, prunedCount: 9 }));
    expect(store.verify()).toMatchObject({ ok: false, reason: 'anchor_mismatch', seq: 22 });
    editPayload(raw, anchorSeq, (p) => ({ ...p, prunedCount: 10 }));
    expect(store.verify()).toMatchObject({ ok: false, reason: 'schema' }); // the chains are whole again

    const e = seq2?.event;
    if (e === undefined || seq2 === undefined) throw new Error('seq 2 was read before pruning');
    insertRow(raw, e, seq2.hash);
    expect(store.verify()).toMatchObject({ ok: false, reason: 'anchor_mismatch', seq: 2 });
    raw.prepare('DELETE FROM events WHERE seq = 2').run();

    raw.prepare('DELETE FROM events WHERE seq = 22').run(); // first remaining operational event
    raw.close();
    expect(store.verify()).toMatchObject({ ok: false, reason: 'missing', seq: 22 });
  });

  it('refuses a bad class or time', async () => {
    const store = open({ path: ':memory:' });
    await expect(store.prune({ olderThan: Number.NaN, class: 'audit' })).rejects.toThrow(/prune\.olderThan/);
    // @ts-expect-error: not a retention class
    await expect(store.prune({ olderThan: T0, class: 'debug' })).rejects.toThrow(/prune\.class/);
  });
});
