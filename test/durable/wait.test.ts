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
import { agent, type AgentContext, type AgentOutput } from '../../src/supervisor/agent.js';
import { par } from '../../src/supervisor/parallel.js';
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

  it('a sibling the wait cancelled mid-call runs again as a new attempt: no (path, attempt) twice in the log', async () => {
    // par(screen, seq(extract, approval)): screen's call is in flight when the wait suspends the run.
    const seen: number[] = [];
    const screen = agent({
      name: 'screen',
      model: 'sim',
      timeoutMs: 86_400_000,
      estimate: { inputTokens: 100, outputTokens: 10 },
      run: (_input: unknown, ctx: AgentContext) => {
        seen.push(ctx.attempt);
        if (seen.length > 1)
          return Promise.resolve({ value: 'clear', usage: { inputTokens: 90, outputTokens: 5 } });
        return new Promise<AgentOutput<unknown>>((_, reject) => {
          ctx.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
        });
      },
    });
    const extract = agent({
      name: 'extract',
      model: 'sim',
      estimate: { inputTokens: 100, outputTokens: 10 },
      run: (_input: unknown, ctx: AgentContext) =>
        new Promise<AgentOutput<unknown>>((resolve) => {
          ctx.clock.setTimeout(
            () => resolve({ value: 12_000, usage: { inputTokens: 80, outputTokens: 5 } }),
            100,
          );
        }),
    });
    const topology = named(
      'screened',
      par(screen, seq(extract, waitFor('approval', { schema: z.object({ approved: z.boolean() }) }))),
    ) as unknown as AnyTopology;
    const budgeted = (db: string, clock: SimulatedClock) => {
      const rt = createRuntime<SqliteEventStore>({
        db,
        clock,
        seed: 3,
        pricing: PRICING,
        cache: false,
        budget: { dailyUsd: 10 },
      });
      runtimes.push(rt);
      rt.register('screened', topology);
      return rt;
    };
    const file = tempDb();
    const clock1 = simulatedClock(T0);
    const rt1 = budgeted(file, clock1);
    const first = rt1.run(topology as never, {}, { workflowId: 'scr-1' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await clock1.advanceAsync(1_000);
    expect(isWorkflowWaitingError(await first)).toBe(true);
    await runtimes.splice(0)[0]?.close();

    // Another process delivers the signal: the workflow resumes there, screen runs again.
    const clock2 = simulatedClock(T0 + HOUR);
    const rt2 = budgeted(file, clock2);
    const signalled = rt2.signal('scr-1', 'approval', { approved: true });
    await clock2.advanceAsync(1_000);
    await signalled;
    const result = rt2.result('scr-1');
    await clock2.advanceAsync(60_000);
    await result;
    expect(seen).toEqual([1, 2]);
    const events = rt2.store.query({ workflowId: 'scr-1' });
    const keys = (type: string) =>
      events
        .filter((e) => e.type === type && (e.payload as { path: string }).path === 'screened/screen')
        .map((e) => (e.payload as { attempt?: number }).attempt);
    expect(keys('cost.reserved')).toEqual([1, 2]);
    expect(keys('cost.incurred')).toEqual([1, 2]); // the cancelled call's estimate, then the re-run's charge
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
