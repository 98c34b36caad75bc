import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/core/json.js';
import { EventValidationError, StoreClosedError } from '../../src/eventlog/errors.js';
import type { NewEvent } from '../../src/eventlog/events.js';
import { canonicalPayloadJson } from '../../src/eventlog/validate.js';
import { T0, auditEvent, open, opEvent } from './helpers.js';

/** Builds an append whose event at `index` is `bad`, the others valid. */
function batchWith(index: number, bad: unknown): NewEvent[] {
  const events: unknown[] = [auditEvent(0), opEvent(1), auditEvent(2), opEvent(3)];
  events[index] = bad;
  return events as NewEvent[];
}

const valid = auditEvent(9);
class Money {
  constructor(readonly cents: number) {}
}
const circular: Record<string, unknown> = { a: 1 };
circular.self = { back: circular };

const cases: [string, number, unknown, string][] = [
  ['unknown type', 1, { ...valid, type: 'agent.exploded' }, 'events[1].type'],
  ['NaN ts', 0, { ...valid, ts: Number.NaN }, 'events[0].ts'],
  ['infinite ts', 2, { ...valid, ts: Number.POSITIVE_INFINITY }, 'events[2].ts'],
  ['string ts', 0, { ...valid, ts: '2026-01-01' }, 'events[0].ts'],
  ['empty workflowId', 3, { ...valid, workflowId: '' }, 'events[3].workflowId'],
  ['bad class', 0, { ...valid, class: 'debug' }, 'events[0].class'],
  ['bad version', 0, { ...valid, v: 0 }, 'events[0].v'],
  ['array payload', 0, { ...valid, payload: [1, 2] }, 'events[0].payload'],
  ['null payload', 0, { ...valid, payload: null }, 'events[0].payload'],
  ['class-instance payload', 0, { ...valid, payload: new Money(5) }, 'events[0].payload'],
  ['bigint in payload', 3, { ...valid, payload: { amount: 10n } }, 'events[3].payload.amount'],
  [
    'NaN deep in payload',
    1,
    { ...valid, payload: { lines: [1, 2, { x: Number.NaN }] } },
    'events[1].payload.lines[2].x',
  ],
  ['circular payload', 0, { ...valid, payload: circular }, 'events[0].payload.self.back'],
  ['not an object', 2, 'feedback', 'events[2]'],
  ['numeric tenant stamp', 1, { ...valid, payload: { tenant: 42 } }, 'events[1].payload.tenant'],
  ['email as tenant stamp', 0, { ...valid, payload: { tenant: 'a@b.co' } }, 'events[0].payload.tenant'],
  ['NUL in tenant stamp', 2, { ...valid, payload: { tenant: 'ac\u0000me' } }, 'events[2].payload.tenant'],
  [
    'payload that serialises to a non-object',
    0,
    { ...valid, payload: { toJSON: () => 5 } },
    'events[0].payload',
  ],
];

describe('event validation', () => {
  it.each(cases)(
    'refuses %s, naming the field, and writes nothing of the append',
    async (_, index, bad, field) => {
      const store = open({ path: ':memory:' });
      const good = store.append([auditEvent(100)]); // same tick: must still commit

      const error = await store.append(batchWith(index, bad)).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(EventValidationError);
      expect(error).toMatchObject({ field, code: 'EVENT_INVALID' });
      expect((error as Error).message).toContain(field);
      await expect(good).resolves.toHaveLength(1);
      expect(store.query().map((e) => e.workflowId)).toEqual(['wf-100']);
    },
  );

  it('refuses a non-array', async () => {
    const store = open({ path: ':memory:' });
    // @ts-expect-error: append takes an array
    await expect(store.append(auditEvent(0))).rejects.toMatchObject({ field: 'events' });
  });

  it('stores payloads in canonical JSON: the same text canonicalJson writes', () => {
    const key = fc.string({ unit: 'binary' });
    const leaf = fc.jsonValue({ stringUnit: 'binary' });
    const json = fc.oneof(
      leaf,
      fc.dictionary(key, fc.oneof(fc.constant(undefined), leaf, fc.date({ noInvalidDate: true }))),
    );
    fc.assert(
      fc.property(fc.dictionary(key, json), (payload) => {
        expect(canonicalPayloadJson(payload)).toBe(canonicalJson(payload));
      }),
      { numRuns: 500 },
    );
    expect(canonicalPayloadJson({ b: 'é\u2028"\n', a: -0, c: [undefined, () => 1], d: undefined })).toBe(
      canonicalJson({ b: 'é\u2028"\n', a: -0, c: [undefined, () => 1], d: undefined }),
    );
  });

  it('refuses appends after close, and reads too', async () => {
    const store = open({ path: ':memory:' });
    await store.append([{ ts: T0, workflowId: 'w', type: 'feedback.recorded', payload: { correct: true } }]);
    await store.close();
    await expect(store.append([auditEvent(1)])).rejects.toThrow(StoreClosedError);
    await expect(store.prune({ olderThan: T0, class: 'audit' })).rejects.toThrow(StoreClosedError);
    expect(() => store.query()).toThrow(StoreClosedError);
    expect(() => store.verify()).toThrow(StoreClosedError);
  });
});
