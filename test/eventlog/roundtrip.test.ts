import { describe, expect, it } from 'vitest';
import {
  DEFAULT_EVENT_CLASS,
  EVENT_VERSIONS,
  type KeelEvent,
  type NewEvent,
} from '../../src/eventlog/events.js';
import { T0, auditEvent, mixedEvents, open, opEvent, tempDb } from './helpers.js';

/** What the store should hand back for `e` at `seq`. */
function committed(e: NewEvent, seq: number): KeelEvent {
  return {
    seq,
    ts: e.ts,
    workflowId: e.workflowId,
    type: e.type,
    v: e.v ?? EVENT_VERSIONS[e.type],
    class: e.class ?? DEFAULT_EVENT_CLASS[e.type],
    payload: e.payload,
  } as KeelEvent;
}

describe('SqliteEventStore round trip', () => {
  it('returns appended events with seq, v and class filled in, and reads back exactly those', async () => {
    const store = open({ path: ':memory:' });
    const input: NewEvent[] = [
      auditEvent(0),
      opEvent(1),
      { ...auditEvent(2), class: 'operational', v: 3 },
      {
        ts: T0 + 3,
        workflowId: 'wf-3',
        type: 'agent.succeeded',
        payload: {
          path: 'invoice/par[0]/vendor',
          agent: 'vendor',
          taskType: 'vendor',
          model: 'gpt-4',
          output: { vendor: 'Zürich AG "quoted"\n', lines: [1, 2.5, null, { z: 1, a: [] }] },
          confidence: 0.95,
          attempts: 1,
          latencyMs: 812,
          usage: { inputTokens: 800, outputTokens: 200 },
          costUsd: 0.03,
        },
      },
    ];
    const expected = input.map((e, i) => committed(e, i + 1));

    const result = await store.append(input);

    expect(result).toEqual(expected);
    expect(result[2]?.class).toBe('operational');
    expect(result[2]?.v).toBe(3);
    expect(result[0]?.class).toBe(DEFAULT_EVENT_CLASS['feedback.recorded']);
    expect(store.query()).toEqual(expected);
    expect([...store.iterate()]).toEqual(expected);
    expect([...store.iterateChained()].map((c) => c.event)).toEqual(expected);
    expect(store.lastSeq()).toBe(4);
  });

  it('reads the same events from a reopened file', async () => {
    const path = tempDb();
    const input = mixedEvents(50);
    const first = open({ path });
    await first.append(input.slice(0, 20));
    await first.append(input.slice(20));
    const headsBefore = first.heads();
    await first.close();

    const reopened = open({ path });

    expect(reopened.query()).toEqual(input.map((e, i) => committed(e, i + 1)));
    expect(reopened.heads()).toEqual(headsBefore);
    expect(reopened.lastSeq()).toBe(50);
    const [next] = await reopened.append([auditEvent(50)]);
    expect(next?.seq).toBe(51);
    expect(reopened.verify()).toMatchObject({ ok: true, events: 51 });
  });

  it('filters by workflow, type(s), class, time range, afterSeq and limit, in seq order', async () => {
    const store = open({ path: ':memory:' });
    const input: NewEvent[] = [];
    for (let i = 0; i < 30; i++) {
      const wf = `wf-${i % 3}`;
      input.push(i % 3 === 0 ? auditEvent(i, wf) : opEvent(i, wf));
      if (i % 5 === 0) {
        input.push({
          ts: T0 + i,
          workflowId: wf,
          type: 'vote.cast',
          payload: { path: 'v', agent: 'a', value: i, weight: 1, index: i },
        });
      }
    }
    const all = await store.append(input);
    const pick = (pred: (e: KeelEvent) => boolean): KeelEvent[] => all.filter(pred);

    const cases: [string, Parameters<typeof store.query>[0], KeelEvent[]][] = [
      ['workflowId', { workflowId: 'wf-1' }, pick((e) => e.workflowId === 'wf-1')],
      ['one type', { type: 'vote.cast' }, pick((e) => e.type === 'vote.cast')],
      [
        'type list',
        { type: ['vote.cast', 'feedback.recorded', 'vote.cast'] },
        pick((e) => e.type === 'vote.cast' || e.type === 'feedback.recorded'),
      ],
      ['empty type list', { type: [] }, []],
      ['class', { class: 'operational' }, pick((e) => e.class === 'operational')],
      ['time range', { fromTs: T0 + 10, toTs: T0 + 20 }, pick((e) => e.ts >= T0 + 10 && e.ts < T0 + 20)],
      ['time range, no match', { fromTs: T0 + 1000 }, []],
      ['afterSeq', { afterSeq: 30 }, pick((e) => e.seq > 30)],
      ['limit', { limit: 7 }, all.slice(0, 7)],
      [
        'combined',
        {
          workflowId: 'wf-0',
          type: ['vote.cast', 'feedback.recorded'],
          fromTs: T0 + 5,
          afterSeq: 3,
          limit: 4,
        },
        pick((e) => e.workflowId === 'wf-0' && e.ts >= T0 + 5 && e.seq > 3).slice(0, 4),
      ],
    ];
    for (const [name, filter, want] of cases) {
      expect(want.length, name).toBeLessThan(all.length);
      expect(store.query(filter), `query ${name}`).toEqual(want);
      expect([...store.iterate(filter)], `iterate ${name}`).toEqual(want);
      expect(
        [...store.iterateChained(filter)].map((c) => c.event),
        `iterateChained ${name}`,
      ).toEqual(want);
    }
  });

  it('iterates across keyset pages and lets appends interleave between pages', async () => {
    const store = open({ path: tempDb() });
    await store.append(mixedEvents(2_500));
    const seen: number[] = [];
    for (const e of store.iterate({ type: ['feedback.recorded', 'cache.miss'] })) {
      seen.push(e.seq);
      if (e.seq === 1_500) await store.append([auditEvent(9_999)]); // a write mid-iteration
    }
    expect(seen).toEqual(Array.from({ length: 2_501 }, (_, i) => i + 1));
    const chained = [...store.iterateChained({ afterSeq: 998, limit: 4 })];
    expect(chained.map((c) => c.event.seq)).toEqual([999, 1000, 1001, 1002]);
    expect(chained[2]?.prevHash).toBe(chained[0]?.hash); // seq 1001 (audit) follows seq 999 (audit)
  });

  it('links each event to the previous event of its class', async () => {
    const store = open({ path: ':memory:' });
    await store.append(mixedEvents(6));
    const chained = [...store.iterateChained()];
    const genesis = '0'.repeat(64);
    expect(chained[0]?.prevHash).toBe(genesis); // first audit
    expect(chained[1]?.prevHash).toBe(genesis); // first operational
    expect(chained[2]?.prevHash).toBe(chained[0]?.hash);
    expect(chained[3]?.prevHash).toBe(chained[1]?.hash);
    expect(store.heads()).toEqual({
      audit: { seq: 5, hash: chained[4]?.hash },
      operational: { seq: 6, hash: chained[5]?.hash },
    });
  });
});
