/**
 * Durable execution inside a tool loop: a workflow cut off by a crash after the loop's first tool
 * call succeeded resumes (`rt.resume()`) with that call answered from the log — the tool is not
 * executed again — while the model turns are made again, and the idempotency key each `execute`
 * sees is the one the uncrashed run used. And what resuming costs: the model turns made before the
 * crash are made again (their answers are not in the log), so the provider bills them again — each
 * model call made is charged exactly once: the log's charges match the provider's answered calls.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { llmAgent } from '../../agents/llm.js';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { simulated } from '../../src/providers/simulated.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent, type AgentContext } from '../../src/supervisor/agent.js';
import { named, type AnyTopology } from '../../src/supervisor/topology.js';
import { tool, type ToolContext } from '../../src/tools/tool.js';
import { cleanupDirs, crashedLog, tempDb } from '../durable/helpers.js';

const T0 = Date.UTC(2026, 5, 1);
const runtimes: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close();
  cleanupDirs();
});

function open(db: string, clock: SimulatedClock): Runtime<SqliteEventStore> {
  const rt = createRuntime({
    db,
    clock,
    seed: 7,
    pricing: { 'gpt-4o': { inputPer1K: 0.0025, outputPer1K: 0.01 } },
    cache: false,
    budget: { dailyUsd: 100 },
  });
  runtimes.push(rt);
  return rt;
}

/** A support workflow (lookup, then refund, then the answer), counting tool executions and keys. */
function supportFlow() {
  const executions: string[] = [];
  const keys: Record<string, string> = {};
  const provider = simulated({
    seed: 7,
    latencyMs: { p50: 400, p95: 400 },
    toolTurn: (_request, step) =>
      step === 1
        ? [{ name: 'order_lookup', args: { orderId: 'A-1001' } }]
        : step === 2
          ? [{ name: 'refund', args: { orderId: 'A-1001', amountUsd: 19.5 } }]
          : undefined,
    respond: () => ({ value: { reply: 'Refunded $19.50 for A-1001.' }, confidence: 0.9 }),
  });
  const record = (name: string, ctx: ToolContext): void => {
    executions.push(name);
    keys[name] = ctx.idempotencyKey;
  };
  const support = llmAgent({
    name: 'support',
    model: 'gpt-4o',
    provider,
    prompt: (q: string) => q,
    schema: z.object({ reply: z.string() }),
    tools: {
      order_lookup: tool({
        description: 'Looks an order up by id',
        schema: z.object({ orderId: z.string() }),
        execute: ({ orderId }: { orderId: string }, ctx: ToolContext) => {
          record('order_lookup', ctx);
          return { orderId, status: 'delivered', totalUsd: 19.5 };
        },
      }),
      refund: tool({
        description: 'Refunds an order',
        schema: z.object({ orderId: z.string(), amountUsd: z.number() }),
        execute: ({ orderId, amountUsd }: { orderId: string; amountUsd: number }, ctx: ToolContext) => {
          record('refund', ctx);
          return { refundId: `R-${orderId}`, amountUsd };
        },
      }),
    },
  });
  const topology = named('support', support) as unknown as AnyTopology;
  return { topology, provider, executions, keys };
}

async function advancing<T>(clock: SimulatedClock, p: Promise<T>): Promise<T> {
  const settled = p.then(
    (v) => ({ ok: true as const, v }),
    (e: unknown) => ({ ok: false as const, e }),
  );
  await clock.advanceAsync(60_000);
  const r = await settled;
  if (!r.ok) throw r.e;
  return r.v;
}

describe('resuming a workflow cut off inside its tool loop', () => {
  it('feeds the recorded tool result back (not executed again), re-runs the model turns, keeps the key', async () => {
    // The uncrashed run, on a file as a process writes it.
    const whole = supportFlow();
    const clock1 = simulatedClock(T0);
    const rt1 = open(tempDb(), clock1);
    const expected = await advancing(
      clock1,
      rt1.run(whole.topology, 'Refund A-1001', { workflowId: 'wf-1' }),
    );
    expect(whole.executions).toEqual(['order_lookup', 'refund']);
    const all = rt1.store.query();

    // The crash: the log up to the first tool.succeeded (step 1's lookup), as a killed process left it.
    const cut = all.findIndex((e) => e.type === 'tool.succeeded') + 1;
    expect(cut).toBeGreaterThan(0);
    const kept: KeelEvent[] = all.slice(0, cut);
    expect(kept.some((e) => e.type === 'agent.succeeded')).toBe(false);
    const file = await crashedLog(kept);

    const again = supportFlow();
    const clock2 = simulatedClock(T0 + 120_000);
    const rt2 = open(file, clock2);
    rt2.register('support', again.topology);
    const report = await advancing(clock2, rt2.resume());
    expect(report.refused).toEqual([]);
    expect(report.resumed).toMatchObject([{ workflowId: 'wf-1', outcome: 'completed' }]);

    // The lookup that succeeded before the crash is not executed again; the refund runs once.
    expect(again.executions).toEqual(['refund']);
    // The model turns are made again (the model's answers are not in the log: 3 turns).
    expect(again.provider.calls()).toBe(3);
    // The refund's idempotency key is the one the uncrashed run used.
    expect(again.keys.refund).toBe(whole.keys.refund);
    expect(again.keys.refund).toMatch(/^wf-1\/.+\/2\/0$/);

    const result = await rt2.result('wf-1');
    expect(result.value).toEqual(expected.value);
    const events = rt2.store.query({ workflowId: 'wf-1' });
    // The log holds the lookup once (before the crash) and the refund once (after it).
    const called = events.filter((e) => e.type === 'tool.called').map((e) => e.payload.tool);
    expect(called).toEqual(['order_lookup', 'refund']);
    expect(rt2.store.verify().ok).toBe(true);
  });

  it('runs a call again when the resumed model asks for different arguments at that position', async () => {
    const whole = supportFlow();
    const clock1 = simulatedClock(T0);
    const rt1 = open(tempDb(), clock1);
    await advancing(clock1, rt1.run(whole.topology, 'Refund A-1001', { workflowId: 'wf-2' }));
    const all = rt1.store.query();
    const cut = all.findIndex((e) => e.type === 'tool.succeeded') + 1;
    // The log says the lookup was of another order: the resumed model's call does not match it.
    const kept = all
      .slice(0, cut)
      .map((e) =>
        e.type === 'tool.called' ? { ...e, payload: { ...e.payload, args: { orderId: 'B-2' } } } : e,
      );
    const file = await crashedLog(kept);
    const again = supportFlow();
    const clock2 = simulatedClock(T0 + 120_000);
    const rt2 = open(file, clock2);
    rt2.register('support', again.topology);
    await advancing(clock2, rt2.resume());
    expect(again.executions).toEqual(['order_lookup', 'refund']);
    expect(again.keys.order_lookup).toBe(whole.keys.order_lookup);
  });
});

/** A three-turn loop (two lookups, then the answer) on the simulated provider, counting its calls. */
function loop() {
  const provider = simulated({
    seed: 7,
    latencyMs: { p50: 400, p95: 400 },
    toolTurn: (_request, step) =>
      step === 1
        ? [{ name: 'lookup', args: { id: 'A' } }]
        : step === 2
          ? [{ name: 'lookup', args: { id: 'B' } }]
          : undefined,
    respond: () => ({ value: { reply: 'ok' }, confidence: 0.9 }),
  });
  const support = llmAgent({
    name: 'support',
    model: 'gpt-4o',
    provider,
    prompt: (q: string) => q,
    schema: z.object({ reply: z.string() }),
    tools: {
      lookup: tool({
        description: 'Looks a record up',
        schema: z.object({ id: z.string() }),
        execute: ({ id }: { id: string }) => ({ id }),
      }),
    },
  });
  return { topology: named('support', support) as unknown as AnyTopology, provider };
}

const charges = (events: readonly KeelEvent[]) =>
  events.filter((e): e is KeelEvent<'cost.incurred'> => e.type === 'cost.incurred');

describe('resuming a tool loop: each model call charged once', () => {
  it("crash with turn 2 in flight: the resumed loop's 3 calls charged once each, beside turn 1's charge before the crash", async () => {
    const first = loop();
    const clock1 = simulatedClock(T0);
    const rt1 = open(tempDb(), clock1);
    const run = rt1.run(first.topology, 'q', { workflowId: 'wf' });
    await clock1.advanceAsync(60_000);
    await run;
    const all = rt1.store.query();
    // The crash: turn 2's reservation is committed (its call was made), its answer never came.
    const cut = all.findIndex((e) => e.type === 'cost.reserved' && e.payload.step === 2) + 1;
    expect(cut).toBeGreaterThan(0);
    const kept = all.slice(0, cut);
    const file = await crashedLog(kept);

    const again = loop();
    const clock2 = simulatedClock(T0 + 120_000);
    const rt2 = open(file, clock2);
    rt2.register('support', again.topology);
    const resumed = rt2.resume();
    await clock2.advanceAsync(60_000);
    expect((await resumed).resumed).toMatchObject([{ workflowId: 'wf', outcome: 'completed' }]);
    // Every turn is made again: the provider is called 3 times (and bills them).
    expect(again.provider.calls()).toBe(3);
    const logged = charges(rt2.store.query({ workflowId: 'wf' }));
    // Turn 1 before the crash, then the resumed loop's 3 turns: one charge per answered call.
    expect(logged.map((e) => e.payload.step)).toEqual([1, 1, 2, 3]);
    // The resumed loop is attempt 2: no (path, attempt, step) twice.
    expect(logged.map((e) => e.payload.attempt)).toEqual([1, 2, 2, 2]);
    // Each charge is one call the provider answered and billed: none twice, none missing. Turn 2 of
    // the crashed run (in flight, never answered) is the budget's to charge at its reservation on
    // restart (see test/durable: interrupted calls), not a `cost.incurred`.
    expect(logged).toHaveLength(1 + again.provider.calls());
    expect(logged.every((e) => e.payload.costUsd > 0 && e.payload.estimated === undefined)).toBe(true);
  });
});

/**
 * A tool loop of the user's own (`agent({ run })`, metering its model turns with `ctx.turn`, calling
 * its own tool): turn 1 asks the model, which asks for an order lookup; turn 2 answers with it.
 */
function ownLoop() {
  const attempts: number[] = [];
  const lookups: string[] = [];
  const support = agent({
    name: 'support',
    model: 'gpt-4o',
    estimate: { inputTokens: 200, outputTokens: 50 },
    run: async (question: string, ctx: AgentContext) => {
      attempts.push(ctx.attempt);
      const turn = ctx.turn;
      if (turn === undefined) throw new Error('expected a metered turn (live run)');
      const first = await turn(1, (model) =>
        Promise.resolve({ usage: { inputTokens: 180, outputTokens: 30 }, model, wants: 'A-1001' }),
      );
      lookups.push(first.wants);
      const order = { orderId: first.wants, status: 'delivered' };
      const second = await turn(2, (model) =>
        Promise.resolve({
          usage: { inputTokens: 260, outputTokens: 40 },
          model,
          reply: `${question}: ${order.orderId} is ${order.status}`,
        }),
      );
      return { value: { reply: second.reply }, confidence: 0.9 };
    },
  });
  return { topology: named('support', support) as unknown as AnyTopology, attempts, lookups };
}

/** (path, attempt, step) of every metered call event of `events`, as `path#attempt#step`. */
const callKeys = (events: readonly KeelEvent[], type: 'cost.reserved' | 'cost.incurred') =>
  events
    .filter((e) => e.type === type)
    .map((e) => {
      const p = e.payload as { path: string; attempt?: number; step?: number };
      return `${p.path}#${p.attempt}#${p.step ?? 1}`;
    });

/** The log up to (and with) the reservation of `step` of the `n`-th attempt that reserved one. */
function cutAtTurn(events: readonly KeelEvent[], step: number, n = 1): KeelEvent[] {
  let seen = 0;
  const at = events.findIndex((e) => e.type === 'cost.reserved' && e.payload.step === step && ++seen === n);
  expect(at).toBeGreaterThan(0);
  return events.slice(0, at + 1);
}

describe('a resumed tool loop is a new attempt, numbered after the crashed one', () => {
  it("a user's own run(): attempt 2 after one crash, 3 after a second; every (path, attempt, step) once; replay exact", async () => {
    // The first process: its log as a crash with turn 2 in flight left it.
    const one = ownLoop();
    const clock1 = simulatedClock(T0);
    const rt1 = open(tempDb(), clock1);
    const expected = await advancing(
      clock1,
      rt1.run(one.topology, 'Where is A-1001', { workflowId: 'wf-own' }),
    );
    const crashed1 = cutAtTurn(rt1.store.query({ workflowId: 'wf-own' }), 2);

    // The restart: a new runtime on that file resumes the loop, and crashes again at its turn 2.
    const two = ownLoop();
    const clock2 = simulatedClock(T0 + 120_000);
    const rt2 = open(await crashedLog(crashed1), clock2);
    rt2.register('support', two.topology);
    expect((await advancing(clock2, rt2.resume())).resumed).toMatchObject([{ outcome: 'completed' }]);
    expect(two.attempts).toEqual([2]);
    const log2 = rt2.store.query({ workflowId: 'wf-own' });
    expect(log2.filter((e) => e.type === 'agent.invoked').map((e) => e.payload)).toMatchObject([
      { path: 'support', agent: 'support' },
      { path: 'support', agent: 'support', firstAttempt: 2 },
    ]);
    expect(log2.find((e) => e.type === 'agent.invoked')?.payload).not.toHaveProperty('firstAttempt');
    expect(callKeys(log2, 'cost.reserved')).toEqual([
      'support#1#1',
      'support#1#2',
      'support#2#1',
      'support#2#2',
    ]);
    expect(callKeys(log2, 'cost.incurred')).toEqual(['support#1#1', 'support#2#1', 'support#2#2']);
    expect((await rt2.result('wf-own')).value).toEqual(expected.value);

    // A second crash, in the resumed attempt's turn 2: the next restart makes attempt 3.
    const three = ownLoop();
    const clock3 = simulatedClock(T0 + 240_000);
    const rt3 = open(await crashedLog(cutAtTurn(log2, 2, 2)), clock3);
    rt3.register('support', three.topology);
    await advancing(clock3, rt3.resume());
    expect(three.attempts).toEqual([3]);
    const log3 = rt3.store.query({ workflowId: 'wf-own' });
    for (const type of ['cost.reserved', 'cost.incurred'] as const) {
      const keys = callKeys(log3, type);
      expect(new Set(keys).size, `${type}: ${keys.join(', ')}`).toBe(keys.length);
    }
    expect(callKeys(log3, 'cost.incurred')).toEqual([
      'support#1#1',
      'support#2#1',
      'support#3#1',
      'support#3#2',
    ]);
    // The replay of the whole story answers from the log, with no model call and no divergence.
    const [replayed] = await rt3.replay('wf-own');
    expect(replayed).toMatchObject({ ok: true, divergences: [], modelCalls: 0 });
  });

  it("an old log whose resumed attempt repeats the crashed one's number still replays exactly and folds the same", async () => {
    const one = ownLoop();
    const clock1 = simulatedClock(T0);
    const rt1 = open(tempDb(), clock1);
    await advancing(clock1, rt1.run(one.topology, 'Where is A-1001', { workflowId: 'wf-old' }));
    const two = ownLoop();
    const clock2 = simulatedClock(T0 + 120_000);
    const rt2 = open(await crashedLog(cutAtTurn(rt1.store.query({ workflowId: 'wf-old' }), 2)), clock2);
    rt2.register('support', two.topology);
    await advancing(clock2, rt2.resume());
    const now = rt2.store.query();
    // What Keel wrote before: the resumed attempt logged as attempt 1 again, no `firstAttempt`.
    const before = now.map((e): KeelEvent => {
      const p = e.payload as { attempt?: number; firstAttempt?: number };
      if (e.type === 'agent.invoked' && p.firstAttempt !== undefined) {
        const { firstAttempt: _, ...rest } = p;
        return { ...e, payload: rest } as KeelEvent;
      }
      if (p.attempt === 2) return { ...e, payload: { ...p, attempt: 1 } } as KeelEvent;
      return e;
    });
    const old = callKeys(before, 'cost.incurred');
    expect(old).toEqual(['support#1#1', 'support#1#1', 'support#1#2']); // the repeated key
    const clock3 = simulatedClock(T0 + 240_000);
    const rtOld = open(await crashedLog(before), clock3);
    rtOld.register('support', ownLoop().topology);
    for (const rt of [rt2, rtOld]) {
      const [r] = await rt.replay('wf-old');
      expect(r).toMatchObject({ ok: true, divergences: [], modelCalls: 0 });
    }
    // The folds read both the same: every charge counted once, the same spend and calls.
    expect(rtOld.stats().cost).toEqual(rt2.stats().cost);
    expect(rtOld.stats().cost.actualUsd).toBeGreaterThan(0);
  });
});
