import { afterEach, describe, expect, it } from 'vitest';
import { lastValueFrom, toArray } from 'rxjs';
import { simulatedClock } from '../../src/core/clock.js';
import { EventValidationError } from '../../src/eventlog/errors.js';
import type { KeelEvent, NewEvent } from '../../src/eventlog/events.js';
import { openSqliteStore, type SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { isUnstorableInputError, isUnstorableOutputError } from '../../src/runtime/errors.js';
import { createRuntime, type Runtime, type RuntimeConfig } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';
import { categoryOf } from '../../src/supervisor/errors.js';
import { seq } from '../../src/supervisor/sequential.js';

const PRICING = { sim: { inputPer1K: 0.01, outputPer1K: 0.02 } };
const runtimes: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close();
});

function open(config: RuntimeConfig = {}): Runtime<SqliteEventStore> {
  const rt = createRuntime({
    db: ':memory:',
    clock: simulatedClock(),
    seed: 1,
    pricing: PRICING,
    cache: false,
    ...config,
  }) as Runtime<SqliteEventStore>;
  runtimes.push(rt);
  return rt;
}

/** An agent answering `value` (anything: the user's run() is not type-checked at runtime). */
function answering(
  name: string,
  value: () => unknown,
): { agent: ReturnType<typeof agent>; calls: () => number } {
  let calls = 0;
  return {
    agent: agent({
      name,
      model: 'sim',
      run: () => {
        calls++;
        return Promise.resolve({ value: value(), usage: { inputTokens: 10, outputTokens: 5 } });
      },
    }),
    calls: () => calls,
  };
}

const END_TYPES = new Set([
  'workflow.completed',
  'workflow.failed',
  'workflow.cancelled',
  'workflow.interrupted',
]);

/** Every `workflow.started` of the log has exactly one end event, and the chain verifies. */
function expectEveryWorkflowEnded(rt: Runtime<SqliteEventStore>): KeelEvent[] {
  const events = rt.store.query({});
  const started = events.filter((e) => e.type === 'workflow.started').map((e) => e.workflowId);
  const ended = events.filter((e) => END_TYPES.has(e.type)).map((e) => e.workflowId);
  expect(ended.sort()).toEqual(started.sort());
  expect(rt.store.verify().ok).toBe(true);
  return events;
}

const circular = (): unknown => {
  const o: Record<string, unknown> = { a: 1 };
  o.self = o;
  return o;
};

const UNSTORABLE: [string, () => unknown, string][] = [
  ['NaN', () => NaN, 'output is NaN'],
  ['Infinity', () => ({ total: Infinity }), '.total is Infinity'],
  ['-Infinity in an array', () => [1, -Infinity], '[1] is -Infinity'],
  ['a BigInt', () => ({ id: 12n }), '.id is a bigint'],
  ['a function', () => ({ format: () => 'x' }), '$.format is a function'],
  ['a circular object', circular, '.self is a circular reference'],
  [
    'a toJSON() that throws',
    () => ({
      toJSON(): never {
        throw new Error('nope');
      },
    }),
    'toJSON() that threw',
  ],
];

describe('an output the log cannot store fails the workflow with workflow.failed (malformed_output)', () => {
  it.each(UNSTORABLE)('%s as the workflow output', async (_, value, where) => {
    const rt = open();
    const a = answering('producer', value);
    const error: unknown = await rt.run(a.agent, { n: 1 }).catch((e: unknown) => e);
    expect(isUnstorableOutputError(error)).toBe(true);
    expect(categoryOf(error)).toBe('malformed_output');
    expect((error as Error).message).toContain(where);
    const events = expectEveryWorkflowEnded(rt);
    const end = events.at(-1);
    expect(end?.type).toBe('workflow.failed');
    expect(end?.payload).toMatchObject({ category: 'malformed_output' });
  });

  it.each(UNSTORABLE)(
    '%s through run$: the stream errors after the workflow.failed event',
    async (_, value) => {
      const rt = open();
      const error: unknown = await lastValueFrom(
        rt.run$(answering('producer', value).agent, 1).pipe(toArray()),
      ).catch((e: unknown) => e);
      expect(isUnstorableOutputError(error)).toBe(true);
      expectEveryWorkflowEnded(rt);
    },
  );

  it('an agent output the log refuses mid-workflow fails it there: the next step is never called', async () => {
    const rt = open();
    const bad = answering('bad', () => ({ score: NaN }));
    const next = answering('next', () => 'clean');
    const error: unknown = await rt.run(seq(bad.agent, next.agent), 1).catch((e: unknown) => e);
    expect(isUnstorableOutputError(error)).toBe(true);
    expect((error as Error).message).toContain('agent.succeeded payload.output.score is NaN');
    expect(next.calls()).toBe(0);
    const events = expectEveryWorkflowEnded(rt);
    expect(events.at(-1)).toMatchObject({
      type: 'workflow.failed',
      payload: { category: 'malformed_output' },
    });
    // The runtime and its log stay usable.
    const ok = await rt.run(next.agent, 2);
    expect(ok.value).toBe('clean');
    expectEveryWorkflowEnded(rt);
  });

  it('a workflow.completed the log refuses is replaced by a workflow.failed, and run() rejects', async () => {
    const inner = openSqliteStore({ path: ':memory:', clock: simulatedClock() });
    const refuseCompleted = (e: NewEvent): Promise<never> | undefined =>
      e.type === 'workflow.completed'
        ? Promise.reject(new EventValidationError('events[0].payload.output', 'is refused by this store'))
        : undefined;
    const store = new Proxy(inner, {
      get(target, key, receiver) {
        if (key === 'appendOne') return (e: NewEvent) => refuseCompleted(e) ?? target.appendOne(e);
        if (key === 'append') {
          return (events: NewEvent[]) =>
            events.map(refuseCompleted).find((p) => p !== undefined) ?? target.append(events);
        }
        const v: unknown = Reflect.get(target, key, receiver);
        return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(target) : v;
      },
    });
    const rt = open({ store, db: undefined });
    const error: unknown = await rt.run(answering('fine', () => 'ok').agent, 1).catch((e: unknown) => e);
    expect(isUnstorableOutputError(error)).toBe(true);
    expect((error as Error).message).toContain('workflow.completed payload.output is refused by this store');
    const events = expectEveryWorkflowEnded(rt);
    expect(events.at(-1)).toMatchObject({
      type: 'workflow.failed',
      payload: { category: 'malformed_output' },
    });
  });
});

describe('end events are always storable', () => {
  it("a user's error message or abort reason with a lone surrogate is recorded well-formed", async () => {
    const rt = open();
    const thrower = agent({
      name: 'thrower',
      model: 'sim',
      run: () => Promise.reject(new Error('upstream said \ud800 then stopped')),
    });
    await expect(rt.run(thrower, 1)).rejects.toThrow('upstream said');
    const controller = new AbortController();
    controller.abort('client \udc00 gone');
    await expect(rt.run(answering('x', () => 1).agent, 1, { signal: controller.signal })).rejects.toThrow();
    const events = expectEveryWorkflowEnded(rt);
    const failed = events.find((e) => e.type === 'workflow.failed');
    const cancelled = events.find((e) => e.type === 'workflow.cancelled');
    expect(failed?.payload).toMatchObject({
      message: expect.stringContaining('upstream said \ufffd then') as unknown,
    });
    expect(cancelled?.payload).toMatchObject({ reason: 'client \ufffd gone' });
  });
});

describe('an input the log cannot store is refused before anything is written', () => {
  it.each([
    ['a circular input', circular, '$.self is a circular reference'],
    ['a BigInt input', () => ({ amount: 10n }), '$.amount is a bigint'],
    ['a NaN input', () => ({ qty: NaN }), '$.qty is NaN'],
    ['a toJSON() that throws', UNSTORABLE[6]?.[1] ?? circular, 'toJSON() that threw'],
  ])('%s: UnstorableInputError naming the path (run and run$)', async (_, input, where) => {
    const rt = open();
    const a = answering('consumer', () => 1);
    const error: unknown = await rt.run(a.agent, input()).catch((e: unknown) => e);
    expect(isUnstorableInputError(error)).toBe(true);
    expect((error as Error).message).toContain(where);
    expect((error as Error).message).toContain('Nothing was written');
    const error$: unknown = await lastValueFrom(rt.run$(a.agent, input())).catch((e: unknown) => e);
    expect(isUnstorableInputError(error$)).toBe(true);
    expect(a.calls()).toBe(0);
    expect(rt.store.query({})).toEqual([]);
  });
});
