import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import {
  isSignalValidationError,
  isUnknownWorkflowError,
  isWaitTimedOutError,
  isWorkflowFinishedError,
  isWorkflowNotWaitingError,
  isWorkflowWaitingError,
} from '../../src/durable/errors.js';
import { waitFor } from '../../src/durable/wait.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { seq } from '../../src/supervisor/sequential.js';
import { named, type AnyTopology } from '../../src/supervisor/topology.js';
import { PRICING, cleanupDirs, counting, tempDb } from './helpers.js';

const T0 = Date.UTC(2026, 5, 1);
const HOUR = 3_600_000;
const runtimes: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close();
  cleanupDirs();
});

function open(db: string, clock: SimulatedClock): Runtime<SqliteEventStore> {
  const rt = createRuntime<SqliteEventStore>({ db, clock, seed: 3, pricing: PRICING, cache: false });
  runtimes.push(rt);
  return rt;
}

function approvalFlow() {
  const extract = counting('extract', (i) => ({ amount: (i as { amount: number }).amount }));
  const book = counting('book', (i) => ({ booked: i }));
  const topology = named(
    'invoice',
    seq(
      extract.agent,
      waitFor('approval', { timeoutMs: HOUR, schema: z.object({ approved: z.boolean() }) }),
      book.agent,
    ),
  ) as unknown as AnyTopology;
  return { extract, book, topology };
}

/** Starts a workflow that suspends at its wait; returns its id and the file. */
async function suspended(): Promise<{ file: string; clock: SimulatedClock; workflowId: string }> {
  const file = tempDb();
  const clock = simulatedClock(T0);
  const rt1 = open(file, clock);
  const flow = approvalFlow();
  const error: unknown = await rt1
    .run(flow.topology as never, { amount: 12_000 }, { workflowId: 'inv-1' })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(isWorkflowWaitingError(error)).toBe(true);
  expect((error as Error).message).toMatch(/rt\.signal\('inv-1', 'approval', value\)/);
  // Suspended durably: the event is the only trace; nothing waits in memory or on the clock.
  const waiting = rt1.store.query({ workflowId: 'inv-1', type: 'workflow.waiting' });
  expect(waiting.map((e) => e.payload)).toEqual([
    { name: 'approval', path: 'invoice/approval[1]', timeoutAt: T0 + HOUR },
  ]);
  expect(clock.pendingTimers()).toBe(0);
  await expect(rt1.result('inv-1')).rejects.toSatisfy(isWorkflowWaitingError);
  return { file, clock, workflowId: 'inv-1' };
}

describe('waitFor: a workflow waits for a signal, durably', () => {
  it('survives a restart between the wait and the signal; the new process continues it', async () => {
    const { file, workflowId } = await suspended();
    await runtimes.splice(0)[0]?.close();

    const flow = approvalFlow();
    const rt2 = open(file, simulatedClock(T0 + 10 * 60_000));
    rt2.register('invoice', flow.topology);
    const { seq: signalSeq } = await rt2.signal(workflowId, 'approval', { approved: true });
    expect(signalSeq).toBeGreaterThan(0);

    const result = await rt2.result(workflowId);
    expect(result.value).toEqual({ booked: { approved: true } });
    expect(flow.extract.calls()).toBe(0); // replayed from the log
    expect(flow.book.calls()).toBe(1);
    const types = rt2.store.query({ workflowId }).map((e) => e.type);
    expect(types.filter((t) => t.startsWith('workflow.'))).toEqual([
      'workflow.started',
      'workflow.waiting',
      'workflow.signalled',
      'workflow.resumed',
      'workflow.completed',
    ]);
    expect(rt2.store.verify().ok).toBe(true);
    // Replay of the finished run reads the signalled value from the record.
    const [replay] = await rt2.replay(workflowId);
    expect(replay?.divergences).toEqual([]);
  });

  it('refuses a value that fails the schema, and the workflow keeps waiting', async () => {
    const { file, workflowId } = await suspended();
    const rt2 = open(file, simulatedClock(T0 + 60_000));
    rt2.register('invoice', approvalFlow().topology);
    const bad = await rt2.signal(workflowId, 'approval', { approved: 'yes' }).catch((e: unknown) => e);
    expect(isSignalValidationError(bad)).toBe(true);
    expect((bad as Error).message).toMatch(/approved/);
    expect(rt2.store.query({ workflowId, type: 'workflow.signalled' })).toEqual([]);
    await expect(rt2.result(workflowId)).rejects.toSatisfy(isWorkflowWaitingError);
  });

  it('names the problem: unknown workflow, wrong signal name, finished workflow', async () => {
    const { file, workflowId } = await suspended();
    const rt2 = open(file, simulatedClock(T0 + 60_000));
    rt2.register('invoice', approvalFlow().topology);
    await expect(rt2.signal('no-such-id', 'approval', {})).rejects.toSatisfy(isUnknownWorkflowError);
    const wrong = await rt2.signal(workflowId, 'payment', {}).catch((e: unknown) => e);
    expect(isWorkflowNotWaitingError(wrong)).toBe(true);
    expect((wrong as Error).message).toMatch(/waits for "approval", not "payment"/);
    await rt2.signal(workflowId, 'approval', { approved: false });
    await rt2.result(workflowId);
    await expect(rt2.signal(workflowId, 'approval', { approved: true })).rejects.toSatisfy(
      isWorkflowFinishedError,
    );
  });

  it('honours the recorded timeout: a late signal is refused, and resume fails it with category timeout', async () => {
    const { file, workflowId } = await suspended();
    const rt2 = open(file, simulatedClock(T0 + HOUR + 1));
    const flow = approvalFlow();
    rt2.register('invoice', flow.topology);
    await expect(rt2.signal(workflowId, 'approval', { approved: true })).rejects.toSatisfy(
      isWaitTimedOutError,
    );

    const report = await rt2.resume();
    expect(report.resumed).toMatchObject([{ workflowId, reason: 'timed_out', outcome: 'failed' }]);
    const failed = rt2.store.query({ workflowId, type: 'workflow.failed' });
    expect(failed.map((e) => e.payload)).toMatchObject([{ category: 'timeout' }]);
    expect(JSON.stringify(failed[0]?.payload)).toMatch(/waitFor\('approval'\)/);
    expect(flow.book.calls()).toBe(0);
  });

  it('a wait not yet timed out is not resumed; rt.run under its id reports it as not finished', async () => {
    const { file, workflowId } = await suspended();
    const rt2 = open(file, simulatedClock(T0 + 60_000));
    const flow = approvalFlow();
    rt2.register('invoice', flow.topology);
    expect(await rt2.resume()).toEqual({ resumed: [], refused: [] });
    await expect(rt2.run(flow.topology as never, { amount: 1 }, { workflowId })).rejects.toThrow(
      /has not ended/,
    );
  });

  it('refuses bad waitFor options with the field and a fix', () => {
    expect(() => waitFor('')).toThrow(/waitFor\(name\).*"approval"/);
    expect(() => waitFor('a', { timeoutMs: -1 })).toThrow(/waitFor.timeoutMs/);
    expect(() => waitFor('a', { schema: {} as never })).toThrow(/zod schema/);
  });
});
