/**
 * The behaviour every `EventStore` must show, written against the asynchronous face of the
 * interface (`await`, `for await`, `collectEvents`) so the synchronous SQLite store and the
 * asynchronous Postgres store run the same tests. `contract-sqlite.test.ts` and
 * `contract-postgres.test.ts` call {@link storeContract} with a factory each.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/core/json.js';
import { GENESIS_HASH } from '../../src/eventlog/chain.js';
import { EventValidationError, StoreClosedError } from '../../src/eventlog/errors.js';
import {
  DEFAULT_EVENT_CLASS,
  EVENT_VERSIONS,
  SYSTEM_WORKFLOW_ID,
  type EventPayloads,
  type KeelEvent,
  type KeelEventType,
  type NewEvent,
} from '../../src/eventlog/events.js';
import { collectEvents, type EventFilter, type EventStore } from '../../src/eventlog/store.js';

/** 2026-01-01T00:00:00Z: event timestamps in the suite are `T0 + i`. */
export const T0 = Date.UTC(2026, 0, 1);
/** The clock factories give their stores: `simulatedClock(CONTRACT_NOW)` (anchors carry this ts). */
export const CONTRACT_NOW = T0 + 1_000_000;

/** A store under test, and raw access to its storage for what the API must not allow. */
export interface ContractSubject {
  store: EventStore;
  /** Closes the current store and opens the same log again (closed by `cleanup`). */
  reopen: () => Promise<EventStore>;
  /** Alters the payload of the row at `seq` with raw SQL, bypassing the append-only triggers. */
  tamper: (seq: number) => Promise<void>;
  /** A raw `UPDATE` or `DELETE` of the row at `seq` with the triggers in force: rejects when refused. */
  rawWrite: (kind: 'update' | 'delete', seq: number) => Promise<void>;
  /** Closes whatever is open and removes temporary storage. */
  cleanup: () => Promise<void>;
}

/** Runs the store contract against stores from `open` (one fresh, empty log per call). */
export function storeContract(name: string, open: () => Promise<ContractSubject>): void {
  describe(`${name}: the EventStore contract`, () => {
    const subjects: ContractSubject[] = [];
    afterEach(async () => {
      for (const s of subjects.splice(0)) await s.cleanup();
    });
    const fresh = async (): Promise<ContractSubject> => {
      const s = await open();
      subjects.push(s);
      return s;
    };

    it('round-trips one event of every type, payload edge cases included, also after reopening', async () => {
      const { store, reopen } = await fresh();
      const input = everyType();
      const expected = input.map((e, i) => committed(e, i + 1));

      const result = await store.append(input);

      expect(result.map((e) => e.seq)).toEqual(expected.map((e) => e.seq));
      expect(await store.query()).toEqual(expected);
      expect(await collectEvents(store.iterate())).toEqual(expected);
      expect((await collectEvents(store.iterateChained())).map((c) => c.event)).toEqual(expected);
      const reopened = await reopen();
      expect(await reopened.query()).toEqual(expected);
      expect(await reopened.verify()).toMatchObject({ ok: true, events: expected.length });
    });

    it('assigns gap-free seqs in append order and reports lastSeq', async () => {
      const { store } = await fresh();
      expect(await store.lastSeq()).toBe(0);
      const sizes = [1, 5, 2, 17, 1];
      let next = 1;
      for (const n of sizes) {
        const got = await store.append(mixedEvents(n, next));
        expect(got.map((e) => e.seq)).toEqual(range(next, next + n));
        next += n;
      }
      expect((await store.query()).map((e) => e.seq)).toEqual(range(1, next));
      expect(await store.lastSeq()).toBe(next - 1);
    });

    it('filters by workflow, type(s), class, time range, afterSeq and limit, in seq order', async () => {
      const { store } = await fresh();
      const all = await store.append(filterFixture());
      const pick = (pred: (e: KeelEvent) => boolean): KeelEvent[] => all.filter(pred);
      const cases: [string, EventFilter, KeelEvent[]][] = [
        ['workflowId', { workflowId: 'wf-1' }, pick((e) => e.workflowId === 'wf-1')],
        ['one type', { type: 'vote.cast' }, pick((e) => e.type === 'vote.cast')],
        ['one-type list', { type: ['cache.miss'] }, pick((e) => e.type === 'cache.miss')],
        [
          'type list with a repeat',
          { type: ['vote.cast', 'feedback.recorded', 'vote.cast'] },
          pick((e) => e.type === 'vote.cast' || e.type === 'feedback.recorded'),
        ],
        ['empty type list', { type: [] }, []],
        ['class', { class: 'operational' }, pick((e) => e.class === 'operational')],
        ['fromTs is inclusive', { fromTs: T0 + 10 }, pick((e) => e.ts >= T0 + 10)],
        ['toTs is exclusive', { toTs: T0 + 10 }, pick((e) => e.ts < T0 + 10)],
        ['time range', { fromTs: T0 + 10, toTs: T0 + 20 }, pick((e) => e.ts >= T0 + 10 && e.ts < T0 + 20)],
        ['time range, no match', { fromTs: T0 + 1000 }, []],
        [
          'time range and class',
          { fromTs: T0 + 5, class: 'audit' },
          pick((e) => e.ts >= T0 + 5 && e.class === 'audit'),
        ],
        ['afterSeq', { afterSeq: 30 }, pick((e) => e.seq > 30)],
        ['afterSeq past the end', { afterSeq: 10_000 }, []],
        ['limit', { limit: 7 }, all.slice(0, 7)],
        ['limit 0', { limit: 0 }, []],
        [
          'everything at once',
          {
            workflowId: 'wf-0',
            type: ['vote.cast', 'feedback.recorded'],
            fromTs: T0 + 5,
            afterSeq: 3,
            limit: 4,
          },
          pick(
            (e) =>
              e.workflowId === 'wf-0' &&
              (e.type === 'vote.cast' || e.type === 'feedback.recorded') &&
              e.ts >= T0 + 5 &&
              e.seq > 3,
          ).slice(0, 4),
        ],
      ];
      for (const [label, filter, want] of cases) {
        expect(want.length, label).toBeLessThan(all.length);
        expect(await store.query(filter), `query ${label}`).toEqual(want);
        expect(await collectEvents(store.iterate(filter)), `iterate ${label}`).toEqual(want);
        const chained = await collectEvents(store.iterateChained(filter));
        expect(
          chained.map((c) => c.event),
          `iterateChained ${label}`,
        ).toEqual(want);
      }
    });

    it('iterates across keyset pages, with appends interleaving between pages', async () => {
      const { store } = await fresh();
      await store.append(mixedEvents(2_500));
      const seen: number[] = [];
      for await (const e of store.iterate({ type: ['feedback.recorded', 'cache.miss'] })) {
        seen.push(e.seq);
        if (e.seq === 1_500) await store.append([auditEvent(9_999)]); // a write mid-iteration
      }
      expect(seen).toEqual(range(1, 2_502));
      expect((await collectEvents(store.iterate({ class: 'operational' }))).length).toBe(1_250);
      expect((await collectEvents(store.iterate({ limit: 1_500 }))).map((e) => e.seq)).toEqual(
        range(1, 1_501),
      );
      expect(
        (await collectEvents(store.iterate({ afterSeq: 1_200, limit: 1_100 }))).map((e) => e.seq),
      ).toEqual(range(1_201, 2_301));
      const chained = await collectEvents(store.iterateChained({ afterSeq: 998, limit: 4 }));
      expect(chained.map((c) => c.event.seq)).toEqual([999, 1000, 1001, 1002]);
      expect(chained[2]?.prevHash).toBe(chained[0]?.hash); // seq 1001 (audit) follows seq 999 (audit)
    });

    it('links each event to the previous event of its class, and heads name the last of each', async () => {
      const { store } = await fresh();
      expect(await store.heads()).toEqual({
        audit: { seq: 0, hash: GENESIS_HASH },
        operational: { seq: 0, hash: GENESIS_HASH },
      });
      await store.append(mixedEvents(1_201));
      const chained = await collectEvents(store.iterateChained());
      const last: Record<string, { seq: number; hash: string }> = {
        audit: { seq: 0, hash: GENESIS_HASH },
        operational: { seq: 0, hash: GENESIS_HASH },
      };
      for (const c of chained) {
        expect(c.prevHash, `seq ${c.event.seq}`).toBe(last[c.event.class]?.hash);
        expect(c.hash).toMatch(/^[0-9a-f]{64}$/);
        last[c.event.class] = { seq: c.event.seq, hash: c.hash };
      }
      expect(await store.heads()).toEqual({ audit: last.audit, operational: last.operational });
      expect(last.audit?.seq).toBe(1_201);
      expect(await store.lastSeq()).toBe(1_201);
    });

    it('commits concurrent appends together, tells listeners before resolving, in seq order', async () => {
      const { store } = await fresh();
      const batches: number[][] = [];
      const order: string[] = [];
      store.onCommit((events) => {
        batches.push(events.map((e) => e.seq));
        order.push(`commit ${events.length}`);
      });
      const sizes = Array.from({ length: 40 }, (_, i) => 1 + (i % 3));
      let from = 0;
      const pending = sizes.map((n) => {
        const p = store.append(mixedEvents(n, from));
        from += n;
        return p.then((events) => {
          order.push('resolved');
          return events;
        });
      });

      const results = await Promise.all(pending);

      const total = from;
      expect(batches.length).toBeLessThan(sizes.length);
      expect(batches.flat()).toEqual(range(1, total + 1));
      let expectSeq = 1;
      for (const [i, r] of results.entries()) {
        expect(
          r.map((e) => e.seq),
          `append ${i}`,
        ).toEqual(range(expectSeq, expectSeq + (sizes[i] ?? 0)));
        expect(r.map((e) => e.workflowId)).toEqual(
          mixedEvents(sizes[i] ?? 0, expectSeq - 1).map((e) => e.workflowId),
        );
        expectSeq += sizes[i] ?? 0;
      }
      expect(order[0]).toMatch(/^commit/);
      expect(await store.verify()).toMatchObject({ ok: true, events: total });
    });

    it('passes verify on an untouched log and reports the heads', async () => {
      const { store } = await fresh();
      await store.append(mixedEvents(1_500));
      expect(await store.verify()).toEqual({ ok: true, events: 1_500, heads: await store.heads() });
    });

    it('detects a row altered behind its back, at its seq', async () => {
      const { store, tamper } = await fresh();
      await store.append(mixedEvents(1_500));
      await tamper(1_202);
      expect(await store.verify()).toMatchObject({
        ok: false,
        reason: 'modified',
        seq: 1_202,
        events: 1_201,
      });
    });

    it('refuses UPDATE and DELETE of events through SQL while its triggers stand', async () => {
      const { store, rawWrite } = await fresh();
      await store.append(mixedEvents(5));
      await expect(rawWrite('update', 2)).rejects.toThrow(/append-only/);
      await expect(rawWrite('delete', 2)).rejects.toThrow(/append-only/);
      expect(await store.verify()).toMatchObject({ ok: true, events: 5 });
    });

    it('prunes a class through the sanctioned path, leaving an anchor that verify accepts', async () => {
      const { store } = await fresh();
      const anchors: KeelEvent[] = [];
      store.onCommit((events) => anchors.push(...events.filter((e) => e.type === 'log.anchor')));
      await store.append(mixedEvents(40)); // audit at odd seqs (even i), operational at even seqs

      const nothing = await store.prune({ class: 'operational', olderThan: T0 });
      expect(nothing).toEqual({ class: 'operational', pruned: 0, throughSeq: 0 });

      const op = await store.prune({ class: 'operational', olderThan: T0 + 20 });
      expect(op).toMatchObject({ class: 'operational', pruned: 10, throughSeq: 20, anchorSeq: 41 });
      const operational = await store.query({ class: 'operational' });
      expect(operational.map((e) => e.seq)).toEqual(range(22, 41, 2));
      const [anchor] = await store.query({ type: 'log.anchor' });
      expect(anchor).toMatchObject({
        seq: 41,
        ts: CONTRACT_NOW,
        workflowId: SYSTEM_WORKFLOW_ID,
        class: 'audit',
        payload: { prunedClass: 'operational', prunedThroughSeq: 20, prunedCount: 10, olderThanTs: T0 + 20 },
      });
      expect(anchors.map((e) => e.seq)).toEqual([41]);
      expect(await store.verify()).toMatchObject({ ok: true, events: 31 });

      // Audit retention removes the operational anchor too, so it is carried forward.
      const audit = await store.prune({ class: 'audit', olderThan: CONTRACT_NOW + 1 });
      expect(audit).toMatchObject({ class: 'audit', pruned: 21, throughSeq: 41, anchorSeq: 42 });
      expect((await store.query({ type: 'log.anchor' })).map((e) => e.payload)).toEqual([
        expect.objectContaining({ prunedClass: 'audit', prunedThroughSeq: 41 }),
        expect.objectContaining({ prunedClass: 'operational', prunedThroughSeq: 20 }),
      ]);
      const verified = await store.verify();
      expect(verified).toMatchObject({ ok: true, events: 12 });
      expect(await store.heads()).toMatchObject({ audit: { seq: 43 }, operational: { seq: 40 } });

      await store.append(mixedEvents(4, 100));
      expect(await store.verify()).toMatchObject({ ok: true, events: 16 });
    });

    it('keeps the chain across a reopen: same heads, appends continue it', async () => {
      const subject = await fresh();
      await subject.store.append(mixedEvents(50));
      const heads = await subject.store.heads();
      const before = await subject.store.query();

      const reopened = await subject.reopen();

      expect(await reopened.heads()).toEqual(heads);
      expect(await reopened.query()).toEqual(before);
      const [next] = await reopened.append([auditEvent(50)]);
      expect(next?.seq).toBe(51);
      const [chained] = await collectEvents(reopened.iterateChained({ afterSeq: 50 }));
      expect(chained?.prevHash).toBe(heads.audit.hash);
      expect(await reopened.verify()).toMatchObject({ ok: true, events: 51 });
    });

    it('refuses an invalid batch whole, writing nothing', async () => {
      const { store } = await fresh();
      await store.append(mixedEvents(3));
      const bad = [auditEvent(3), { ...auditEvent(4), type: 'no.such.type' }] as unknown as NewEvent[];
      await expect(store.append(bad)).rejects.toBeInstanceOf(EventValidationError);
      expect(await store.lastSeq()).toBe(3);
    });

    it('rejects appends and reads after close, which is idempotent; pending appends commit first', async () => {
      const { store, reopen } = await fresh();
      const pending = store.append(mixedEvents(3));
      await store.close();
      await store.close();
      expect((await pending).map((e) => e.seq)).toEqual([1, 2, 3]);
      await expect(store.append(mixedEvents(1))).rejects.toBeInstanceOf(StoreClosedError);
      await expect(Promise.resolve().then(() => store.query())).rejects.toBeInstanceOf(StoreClosedError);
      expect(await (await reopen()).lastSeq()).toBe(3);
    });
  });
}

// ── fixtures ──────────────────────────────────────────────────────────────────────────────────

/** `[from, to)`, step `step`. */
function range(from: number, to: number, step = 1): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i += step) out.push(i);
  return out;
}

/** An audit event (`feedback.recorded`). */
export function auditEvent(i: number, workflowId = `wf-${i}`, ts = T0 + i): NewEvent<'feedback.recorded'> {
  return { ts, workflowId, type: 'feedback.recorded', payload: { correct: i % 2 === 0, expected: { i } } };
}

/** An operational event (`cache.miss`). */
export function opEvent(i: number, workflowId = `wf-${i}`, ts = T0 + i): NewEvent<'cache.miss'> {
  return { ts, workflowId, type: 'cache.miss', payload: { path: `p/${i}`, agent: 'vendor', key: `k-${i}` } };
}

/** `n` events alternating audit / operational from index `from` (even indexes audit), ts = T0 + index. */
export function mixedEvents(n: number, from = 0): NewEvent[] {
  const out: NewEvent[] = [];
  for (let i = from; i < from + n; i++) out.push(i % 2 === 0 ? auditEvent(i) : opEvent(i));
  return out;
}

/** 36 events over three workflows and three types, for the filter cases. */
function filterFixture(): NewEvent[] {
  const out: NewEvent[] = [];
  for (let i = 0; i < 30; i++) {
    const wf = `wf-${i % 3}`;
    out.push(i % 3 === 0 ? auditEvent(i, wf) : opEvent(i, wf));
    if (i % 5 === 0) {
      out.push({
        ts: T0 + i,
        workflowId: wf,
        type: 'vote.cast',
        payload: { path: 'v', agent: 'a', value: i, weight: 1, index: i },
      });
    }
  }
  return out;
}

/** What the store should hand back for `e` at `seq`: defaults filled in, payload as JSON reads it. */
function committed(e: NewEvent, seq: number): KeelEvent {
  return {
    seq,
    ts: e.ts,
    workflowId: e.workflowId,
    type: e.type,
    v: e.v ?? EVENT_VERSIONS[e.type],
    class: e.class ?? DEFAULT_EVENT_CLASS[e.type],
    payload: JSON.parse(canonicalJson(e.payload)) as unknown,
  } as KeelEvent;
}

/** Strings that trip up escaping, encodings and text columns. */
const AWKWARD = {
  quotes: `"double" 'single' \`back\` \\backslash\\ {braces} [brackets]`,
  controls: 'tab\tnewline\ncr\rnul\u0000bell\u0007',
  unicode: 'Zürich — 東京 — مرحبا — 🧾💶 (astral)',
  arrayish: '{1,2,"3"}',
  sqlish: "'); DROP TABLE events; --",
  empty: '',
};

const USAGE = { inputTokens: 800, outputTokens: 200 };

/** One payload per event type, the odd ones stressing serialisation (checked complete by the type). */
export const PAYLOADS: { [K in KeelEventType]: EventPayloads[K] } = {
  'workflow.started': {
    name: 'invoice',
    topology: {
      kind: 'seq',
      children: [
        { kind: 'par', children: [] },
        { kind: 'agent', name: 'route' },
      ],
    },
    input: { invoice: AWKWARD.unicode, nested: { deep: [[[]], {}, [null]] }, big: 'x'.repeat(65_536) },
    inputHash: 'a'.repeat(64),
  },
  'workflow.completed': {
    output: { total: 1234.5, lines: [] },
    latencyMs: 812.25,
    costUsd: 0.0301,
    agentsCalled: 4,
  },
  'workflow.failed': {
    category: 'timeout',
    message: AWKWARD.controls,
    path: 'invoice/par[0]/vendor',
    latencyMs: 10_000,
    costUsd: 0,
    agentsCalled: 1,
  },
  'workflow.cancelled': { reason: AWKWARD.quotes, latencyMs: 1, costUsd: 0 },
  'workflow.interrupted': { reason: AWKWARD.unicode, startedSeq: 1, lastSeq: 2, markedBy: AWKWARD.sqlish },
  'workflow.waiting': { name: AWKWARD.quotes, path: 'invoice/approval', timeoutAt: 1_700_000_000_000.5 },
  'workflow.signalled': {
    name: 'approval',
    path: 'invoice/approval',
    value: { approved: true, note: AWKWARD.controls },
    owner: AWKWARD.sqlish,
  },
  'workflow.resumed': {
    owner: 'host:1:abcd',
    previousOwner: AWKWARD.unicode,
    startedSeq: 1,
    lastSeq: 9,
    reason: 'orphaned',
    rerun: ['invoice/par[1]/c'],
  },
  'agent.invoked': {
    path: 'p',
    agent: 'vendor',
    taskType: 'vendor',
    model: 'gpt-4',
    agentVersion: undefined,
  },
  'agent.succeeded': {
    path: 'invoice/par[0]/vendor',
    agent: 'vendor',
    taskType: 'vendor',
    model: 'gpt-4',
    output: {
      max: Number.MAX_SAFE_INTEGER,
      min: -Number.MAX_SAFE_INTEGER,
      tiny: 1e-7,
      huge: -1.5e300,
      tenth: 0.1,
      zero: 0,
      t: true,
      f: false,
      n: null,
      u: undefined,
    },
    confidence: 0.95,
    attempts: 1,
    latencyMs: 812,
    usage: USAGE,
    costUsd: 0.03,
    cached: false,
  },
  'agent.failed': {
    path: 'p',
    agent: 'a',
    taskType: 't',
    model: 'm',
    category: 'malformed_output',
    message: AWKWARD.sqlish,
    attempts: 3,
    latencyMs: 5,
    costUsd: 0.001,
    output: AWKWARD.arrayish,
  },
  'agent.retried': {
    path: 'p',
    agent: 'a',
    attempt: 1,
    category: 'rate_limited',
    message: AWKWARD.empty,
    delayMs: 250,
    retryAfterMs: 1000,
  },
  'agent.timed_out': { path: 'p', agent: 'a', attempt: 2, timeoutMs: 10_000 },
  'agent.rejected': {
    path: 'p',
    agent: 'a',
    taskType: 't',
    category: 'circuit_open',
    reason: 'breaker open',
  },
  'agent.first_token': { path: 'support/llm', agent: 'support', model: 'gpt-4o', attempt: 1, ttftMs: 312.5 },
  'tool.called': {
    path: 'support/llm',
    agent: 'support',
    tool: 'order_lookup',
    callId: 'call_\u0000' + AWKWARD.unicode,
    step: 2,
    args: { orderId: AWKWARD.sqlish, note: AWKWARD.controls },
  },
  'tool.succeeded': {
    path: 'support/llm',
    agent: 'support',
    tool: 'order_lookup',
    callId: 'call_1',
    step: 2,
    result: { status: AWKWARD.quotes, items: [[]] },
    latencyMs: 12.5,
    attempts: 2,
  },
  'tool.failed': {
    path: 'support/llm',
    agent: 'support',
    tool: 'refund',
    callId: 'call_2',
    step: 3,
    category: 'timeout',
    message: AWKWARD.arrayish,
    latencyMs: 5_000,
    attempts: 1,
  },
  'cost.reserved': { path: 'p', agent: 'a', model: 'gpt-4', taskType: 't', estimateUsd: 0.05 },
  'cost.incurred': {
    path: 'p',
    agent: 'a',
    model: 'gpt-4',
    taskType: 't',
    attempt: 1,
    usage: USAGE,
    costUsd: 0.03,
    estimateUsd: 0.05,
    estimated: true,
  },
  'budget.alert': { scope: 'daily', threshold: 0.8, spentUsd: 80.01, limitUsd: 100, day: '2026-01-01' },
  'budget.overrun': {
    path: 'p',
    agent: 'a',
    model: 'gpt-4',
    taskType: 't',
    attempt: 1,
    reservedUsd: 0.06,
    actualUsd: 0.6,
    overrunUsd: 0.54,
    capped: false,
  },
  'budget.downgraded': {
    path: 'p',
    agent: 'a',
    fromModel: 'gpt-4',
    toModel: 'gpt-3.5-turbo',
    scope: 'daily',
  },
  'pricing.unknown_model': {
    model: 'my-finetune-2026-01-01',
    requestedModel: 'gpt-4o',
    answeredModel: 'my-finetune-2026-01-01',
    pricedAs: 'gpt-4o',
    agent: 'a',
  },
  'cache.hit': { path: 'p', agent: 'a', key: AWKWARD.unicode, ageMs: 12, savedUsd: 0.03 },
  'cache.miss': { path: 'p', agent: 'a', key: 'k' },
  'cache.stale_served': { path: 'p', agent: 'a', key: 'k', ageMs: 90_000, reason: 'provider_error' },
  'breaker.transitioned': {
    breaker: 'openai',
    from: 'closed',
    to: 'open',
    reason: 'failures',
    failures: 5,
    resetTimeoutMs: 60_000,
  },
  'ratelimit.waited': { path: 'p', agent: 'a', key: AWKWARD.unicode, waitedMs: 1_250, tenant: 'acme' },
  'ratelimit.shed': { path: 'p', agent: 'a', key: 'gpt-4', reason: 'queue_timeout', waitedMs: 30_000 },
  'bulkhead.rejected': { path: 'p', agent: 'a', reason: 'queue_full', waitedMs: 0, tenant: 'acme' },
  'vote.cast': { path: 'v', agent: 'a', value: { label: 'fraud', score: [0.9, 0.1] }, weight: 1.5, index: 0 },
  'vote.early_stop': { path: 'v', cast: 3, total: 5, leader: 'fraud', skipped: 2 },
  'vote.decided': { path: 'v', value: 'fraud', confidence: 1, agentsUsed: 3, total: 5, savedUsd: 0.06 },
  'cascade.escalated': {
    path: 'c',
    fromStage: 0,
    toStage: 1,
    fromAgent: 'cheap',
    toAgent: 'expensive',
    confidence: 0.4,
    reason: 'low confidence',
  },
  'cascade.accepted': { path: 'c', stage: 0, agent: 'cheap', confidence: 0.97, savedUsd: 0.029 },
  'alert.raised': { id: 'a-1', kind: 'budget', severity: 'high', title: AWKWARD.quotes, data: { spent: 80 } },
  'alert.resolved': { id: 'a-1', kind: 'budget', title: 't', data: null },
  'canary.rolled_back': { canary: 'v2', reason: 'error rate', data: [1, 'two', { three: 3 }] },
  'canary.promoted': { canary: 'v2' },
  'canary.observed': {
    canary: 'v2',
    path: 'w/canary',
    arm: 'candidate',
    success: false,
    latencyMs: 1_200,
    costUsd: 0.03,
  },
  'feedback.recorded': { correct: true, expected: { z: 1, a: 2, m: { y: [], b: {} } } },
  'redaction.applied': { counts: { email: 2, phone: 0, 'name with space': 1 } },
  'log.anchor': {
    prunedClass: 'operational',
    prunedThroughSeq: 0,
    lastPrunedHash: GENESIS_HASH,
    prunedCount: 0,
    olderThanTs: T0,
  },
  'log.maintained': { action: 'triggers_restored', details: ['trigger events_no_update is missing'] },
};

/**
 * One event of every type. Workflow ids and timestamps are awkward too (free text with newlines and
 * astral characters; fractional, negative and far-future ms); class and version are overridden on two.
 */
function everyType(): NewEvent[] {
  const types = Object.keys(PAYLOADS) as KeelEventType[];
  const workflowIds = ['wf-1', 'wf with spaces', 'wf\nnewline', 'wf-🧾-東京', SYSTEM_WORKFLOW_ID];
  const times = [T0, T0 + 0.25, -1, 0, 8_640_000_000_000_000, T0 + 1e-3];
  return types.map((type, i) => {
    const e = {
      ts: times[i % times.length] as number,
      workflowId: workflowIds[i % workflowIds.length] as string,
      type,
      payload: PAYLOADS[type],
    } as NewEvent;
    if (i === 3) return { ...e, class: 'operational', v: 7 };
    if (i === 4) return { ...e, class: 'audit' };
    return e;
  });
}
