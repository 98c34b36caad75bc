/**
 * Each model turn of a tool loop is a priced, budgeted, breaker-guarded call: it reserves before it
 * is made (a turn the budget refuses ends the loop with `budget_exceeded`, turns already made stay
 * charged), is charged its own usage (`cost.incurred` with `step`), and counts against the agent's
 * breaker (an open breaker mid-loop ends it with `circuit_open`). Also for a user's own
 * tool-calling model that reports no usage, or more than it reserved.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { llmAgent } from '../../agents/llm.js';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import type { EventPayloads, KeelEvent, KeelEventType } from '../../src/eventlog/events.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { simulated } from '../../src/providers/simulated.js';
import { buildReport } from '../../src/report/build.js';
import type { ModelProvider, ModelResponse, ToolCall } from '../../src/providers/types.js';
import { createRuntime, type Runtime, type RuntimeConfig } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';
import { tool } from '../../src/tools/tool.js';

let runtimes: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const rt of runtimes) await rt.close();
  runtimes = [];
});

/** $0.0025 / 1K input, $0.01 / 1K output. */
const PRICING = { 'gpt-4o': { inputPer1K: 0.0025, outputPer1K: 0.01 } };
/** What one simulated turn of 300 in / 40 out costs, USD. */
const TURN_USD = 0.3 * 0.0025 + 0.04 * 0.01;
/** What each turn reserves: the agent's estimate of 1,000 in / 500 out, USD. */
const RESERVED_USD = 1 * 0.0025 + 0.5 * 0.01;

function open(extra: { budget?: RuntimeConfig['budget'] } = {}): {
  rt: Runtime<SqliteEventStore>;
  clock: SimulatedClock;
} {
  const clock = simulatedClock();
  const rt = createRuntime({ db: ':memory:', clock, seed: 1, pricing: PRICING, ...extra });
  runtimes.push(rt);
  return { rt, clock };
}

/** Runs `p` to its end while advancing virtual time; resolves with its value or its error. */
async function settle<T>(clock: SimulatedClock, p: Promise<T>, ms = 120_000): Promise<T | Error> {
  const settled = p.catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
  await clock.advanceAsync(ms);
  return settled;
}

const payloads = <T extends KeelEventType>(events: KeelEvent[], type: T): EventPayloads[T][] =>
  events.filter((e) => e.type === type).map((e) => e.payload as EventPayloads[T]);

const Answer = z.object({ reply: z.string() });
const FINAL = { value: { reply: 'Refunded $19.50 for A-1001.' }, confidence: 0.9 };

/** Step 1 looks the order up, step 2 refunds it, step 3 answers. */
const script = (step: number): ToolCall[] | undefined =>
  step === 1
    ? [{ id: `c${step}`, name: 'order_lookup', args: { orderId: 'A-1001' } }]
    : step === 2
      ? [{ id: `c${step}`, name: 'refund', args: { orderId: 'A-1001', amountUsd: 19.5 } }]
      : undefined;

function supportTools(executions: string[]) {
  return {
    order_lookup: tool({
      description: 'Looks an order up by id',
      schema: z.object({ orderId: z.string() }),
      execute: ({ orderId }: { orderId: string }) => {
        executions.push(`lookup:${orderId}`);
        return { orderId, totalUsd: 19.5 };
      },
    }),
    refund: tool({
      description: 'Refunds an order',
      schema: z.object({ orderId: z.string(), amountUsd: z.number() }),
      execute: ({ orderId }: { orderId: string }) => {
        executions.push(`refund:${orderId}`);
        return { refundId: `R-${orderId}` };
      },
    }),
  };
}

const simulatedSupport = () =>
  simulated({
    seed: 7,
    latencyMs: { p50: 400, p95: 400 },
    usage: { input: { mean: 300, stddev: 0 }, output: { mean: 40, stddev: 0 } },
    toolTurn: (_request, step) => script(step),
    respond: () => FINAL,
  });

/**
 * A user's own tool-calling model (not one of Keel's providers): answers each turn after 100 ms on
 * the clock, with the usage `usageOf(step)` says — `undefined` reports none at all.
 */
function ownModel(usageOf: (step: number) => unknown): ModelProvider & { calls: number } {
  const provider = {
    name: 'in-house',
    calls: 0,
    call: (request: Parameters<ModelProvider['call']>[0], context: Parameters<ModelProvider['call']>[1]) => {
      provider.calls++;
      const step = (request.messages ?? []).filter((m) => m.role === 'assistant').length + 1;
      const usage = usageOf(step);
      const toolCalls = script(step);
      const response = {
        output: toolCalls ? '' : JSON.stringify(FINAL),
        model: 'gpt-4o',
        ...(usage !== undefined ? { usage } : {}),
        ...(toolCalls ? { toolCalls } : {}),
      } as ModelResponse;
      return new Promise<ModelResponse>((resolve) => context.clock?.setTimeout(() => resolve(response), 100));
    },
  };
  return provider;
}

const support = (provider: ModelProvider, executions: string[], extra: Record<string, unknown> = {}) =>
  llmAgent({
    name: 'support',
    model: 'gpt-4o',
    provider,
    prompt: (q: string) => q,
    schema: Answer,
    tools: supportTools(executions),
    estimate: { inputTokens: 1000, outputTokens: 500 },
    ...extra,
  });

describe('each model turn of a tool loop is a metered call', () => {
  it('charges every turn its own usage, with its step, and reserves before each turn', async () => {
    const { rt, clock } = open({ budget: { dailyUsd: 10 } });
    const executions: string[] = [];
    const result = await settle(clock, rt.run(support(simulatedSupport(), executions), 'refund A-1001'));
    if (result instanceof Error) throw result;
    const events = rt.store.query({ workflowId: result.workflowId });
    const incurred = payloads(events, 'cost.incurred');
    expect(incurred.map((c) => [c.attempt, c.step, c.usage])).toEqual([
      [1, 1, { inputTokens: 300, outputTokens: 40 }],
      [1, 2, { inputTokens: 300, outputTokens: 40 }],
      [1, 3, { inputTokens: 300, outputTokens: 40 }],
    ]);
    for (const c of incurred) expect(c.costUsd).toBeCloseTo(TURN_USD, 12);
    // The first turn goes out on the attempt's reservation; turns 2 and 3 reserve their own,
    // each before its model call (the order of the log).
    expect(payloads(events, 'cost.reserved').map((r) => r.step)).toEqual([undefined, 2, 3]);
    const order = events
      .filter((e) => e.type === 'cost.reserved' || e.type === 'cost.incurred')
      .map((e) => `${e.type === 'cost.reserved' ? 'reserve' : 'charge'}:${String(e.payload.step ?? 1)}`);
    expect(order).toEqual(['reserve:1', 'charge:1', 'reserve:2', 'charge:2', 'reserve:3', 'charge:3']);
    // The workflow's cost, the agent's and the log's agree.
    const succeeded = payloads(events, 'agent.succeeded')[0];
    expect(succeeded?.usage).toEqual({ inputTokens: 900, outputTokens: 120 });
    expect(succeeded?.costUsd).toBeCloseTo(3 * TURN_USD, 12);
    expect(result.costUsd).toBeCloseTo(3 * TURN_USD, 12);
    // The report reads the same figures from the file.
    expect(buildReport(rt.store.query({})).cost.summary.actualUsd).toBeCloseTo(3 * TURN_USD, 12);
  });

  it('a turn the daily budget refuses ends the loop with budget_exceeded; the turn made stays charged', async () => {
    // Turn 1 fits ($0.0075 reserved of $0.008); after it cost $0.00115, turn 2's $0.0075 does not.
    const { rt, clock } = open({ budget: { dailyUsd: 0.008 } });
    const provider = simulatedSupport();
    const executions: string[] = [];
    const error = await settle(clock, rt.run(support(provider, executions), 'refund A-1001'));
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ category: 'budget_exceeded' });
    expect((error as Error).message).toMatch(/Budget "global".*would be exceeded/);
    expect(provider.calls()).toBe(1); // turn 2 was never made
    expect(executions).toEqual(['lookup:A-1001']); // the tools of turn 1 ran; no refund
    const events = rt.store.query({});
    const incurred = payloads(events, 'cost.incurred');
    expect(incurred).toHaveLength(1);
    expect(incurred[0]).toMatchObject({ step: 1, usage: { inputTokens: 300, outputTokens: 40 } });
    const failed = payloads(events, 'agent.failed')[0];
    expect(failed).toMatchObject({ category: 'budget_exceeded', attempts: 1 });
    expect(failed?.costUsd).toBeCloseTo(TURN_USD, 12);
    // The report (a fold of the log, as the budget is) counts the turn that was made.
    expect(buildReport(rt.store.query({})).cost.summary.actualUsd).toBeCloseTo(TURN_USD, 12);
    expect(RESERVED_USD).toBeLessThan(0.008);
    expect(TURN_USD + RESERVED_USD).toBeGreaterThan(0.008);
  });

  it("a user's own model that reports NO usage: each turn is charged its reservation, marked estimated", async () => {
    const { rt, clock } = open();
    const model = ownModel(() => undefined);
    const executions: string[] = [];
    const result = await settle(clock, rt.run(support(model, executions), 'refund A-1001'));
    if (result instanceof Error) throw result;
    expect(model.calls).toBe(3);
    const incurred = payloads(rt.store.query({ workflowId: result.workflowId }), 'cost.incurred');
    expect(incurred.map((c) => [c.step, c.estimated, c.usage.inputTokens])).toEqual([
      [1, true, 0],
      [2, true, 0],
      [3, true, 0],
    ]);
    for (const c of incurred) expect(c.costUsd).toBeCloseTo(RESERVED_USD, 12);
    expect(result.costUsd).toBeCloseTo(3 * RESERVED_USD, 12);
    expect(buildReport(rt.store.query({})).cost.summary.unreportedUsd).toBeCloseTo(3 * RESERVED_USD, 12);
  });

  it("onMissingUsage: 'fail' fails the attempt at the first turn without usage (malformed_output)", async () => {
    const { rt, clock } = open();
    const model = ownModel(() => undefined);
    const error = await settle(
      clock,
      rt.run(support(model, [], { onMissingUsage: 'fail' }), 'refund A-1001'),
    );
    expect(error).toMatchObject({ category: 'malformed_output' });
    expect((error as Error).message).toContain(
      "model turn 1 reported no usage, and the agent has onMissingUsage: 'fail'",
    );
    expect(model.calls).toBe(1);
  });

  it("a user's own model that reports malformed usage: charged its reservation, fails malformed_output", async () => {
    const { rt, clock } = open();
    const model = ownModel((step) =>
      step === 2 ? { inputTokens: -5, outputTokens: 'many' } : { inputTokens: 10, outputTokens: 1 },
    );
    const error = await settle(clock, rt.run(support(model, []), 'refund A-1001'));
    expect(error).toMatchObject({ category: 'malformed_output' });
    expect((error as Error).message).toContain(
      'model turn 2 reported usage {"inputTokens":-5,"outputTokens":"many"}',
    );
    const incurred = payloads(rt.store.query({}), 'cost.incurred');
    expect(incurred.map((c) => [c.step, c.estimated ?? false])).toEqual([
      [1, false],
      [2, true],
    ]);
  });

  it("a user's own model that reports MORE usage than reserved: each turn charged in full, a budget.overrun naming the step", async () => {
    const { rt, clock } = open({ budget: { dailyUsd: 10 } });
    // 4,000 in / 1,000 out per turn: $0.02, against $0.0075 reserved.
    const model = ownModel(() => ({ inputTokens: 4_000, outputTokens: 1_000 }));
    const result = await settle(clock, rt.run(support(model, []), 'refund A-1001'));
    if (result instanceof Error) throw result;
    const events = rt.store.query({ workflowId: result.workflowId });
    const incurred = payloads(events, 'cost.incurred');
    expect(incurred.map((c) => c.step)).toEqual([1, 2, 3]);
    for (const c of incurred) expect(c.costUsd).toBeCloseTo(0.02, 12);
    const overruns = payloads(events, 'budget.overrun');
    // Turns 1 and 2 overran; turn 3 reserved what the agent was seen to spend (learned).
    expect(overruns.map((o) => o.step)).toEqual([1, 2]);
    expect(payloads(events, 'cost.reserved').find((r) => r.step === 3)?.estimateUsd).toBeCloseTo(0.02, 12);
    for (const o of overruns) {
      expect(o.reservedUsd).toBeCloseTo(RESERVED_USD, 12);
      expect(o.overrunUsd).toBeCloseTo(0.02 - RESERVED_USD, 12);
    }
    expect(result.costUsd).toBeCloseTo(0.06, 12);
  });

  it('a turn that fails counts against the agent breaker', async () => {
    const { rt, clock } = open();
    const base = simulatedSupport();
    let turns = 0;
    const provider: ModelProvider = {
      name: 'flaky-model',
      call: (request, context) => {
        if (++turns === 2) return Promise.reject(Object.assign(new Error('503 upstream'), { status: 503 }));
        return base.call(request, context);
      },
    };
    const error = await settle(
      clock,
      rt.run(
        support(provider, [], { breaker: { name: 'llm', failureThreshold: 1, resetTimeoutMs: 600_000 } }),
        'refund A-1001',
      ),
    );
    expect(error).toMatchObject({ category: 'provider_error' });
    expect(rt.breaker('llm')?.state()).toBe('open');
    const incurred = payloads(rt.store.query({}), 'cost.incurred');
    expect(incurred.map((c) => [c.step, c.usage.inputTokens])).toEqual([
      [1, 300],
      [2, 0], // the failed turn reported no usage: charged nothing, its reservation settled
    ]);
  });

  it('a breaker that opens mid-loop stops it with circuit_open before the next turn', async () => {
    const { rt, clock } = open();
    const provider = simulatedSupport();
    const executions: string[] = [];
    const breaker = { name: 'llm', failureThreshold: 1, resetTimeoutMs: 60_000 };
    // Another agent on the same breaker fails with a plain Error at 100 ms, while turn 1 (400 ms)
    // is out: the breaker opens under the loop.
    const crasher = agent({
      name: 'crasher',
      model: 'gpt-4o',
      breaker,
      run: (_input: string, { clock: c }) =>
        new Promise<never>((_resolve, reject) => c.setTimeout(() => reject(new Error('boom')), 100)),
    });
    const loop = settle(clock, rt.run(support(provider, executions, { breaker }), 'refund A-1001'));
    const crashed = settle(clock, rt.run(crasher, 'x'));
    const [error] = await Promise.all([loop, crashed]);
    expect(error).toMatchObject({ category: 'circuit_open' });
    expect((error as Error).message).toContain('Circuit breaker "llm" is open');
    expect(provider.calls()).toBe(1);
    expect(executions).toEqual(['lookup:A-1001']); // turn 1's tools ran; turn 2 was never made
    const failed = payloads(rt.store.query({}), 'agent.failed').find((f) => f.agent === 'support');
    expect(failed).toMatchObject({ category: 'circuit_open' });
    expect(failed?.costUsd).toBeCloseTo(TURN_USD, 12);
  });

  it("an attempt that times out during a model turn is charged that turn's reservation; during its tools, nothing more", async () => {
    // Turn 2 never answers: the attempt times out while it is out.
    const { rt, clock } = open();
    let turns = 0;
    const hanging: ModelProvider = {
      name: 'in-house',
      call: (request, context) => {
        if (++turns === 1)
          return ownModel(() => ({ inputTokens: 100, outputTokens: 10 })).call(request, context);
        return new Promise<never>((_resolve, reject) =>
          context.signal.addEventListener('abort', () => reject(new Error('aborted'))),
        );
      },
    };
    const error = await settle(clock, rt.run(support(hanging, [], { timeoutMs: 1_000 }), 'refund A-1001'));
    expect(error).toMatchObject({ category: 'timeout' });
    const incurred = payloads(rt.store.query({}), 'cost.incurred');
    expect(incurred.map((c) => [c.step, c.estimated ?? false])).toEqual([
      [1, false],
      [2, true],
    ]);
    expect(incurred[1]?.costUsd).toBeCloseTo(RESERVED_USD, 12);

    // The lookup takes 5 s: the attempt times out between turns, with no model call out.
    const { rt: rt2, clock: clock2 } = open();
    const slow = llmAgent({
      name: 'support',
      model: 'gpt-4o',
      provider: ownModel(() => ({ inputTokens: 100, outputTokens: 10 })),
      prompt: (q: string) => q,
      schema: Answer,
      timeoutMs: 1_000,
      estimate: { inputTokens: 1000, outputTokens: 500 },
      tools: {
        order_lookup: tool({
          description: 'Looks an order up (slowly)',
          schema: z.object({ orderId: z.string() }),
          execute: (_a: { orderId: string }, ctx) =>
            new Promise((r) => ctx.clock.setTimeout(() => r('late'), 5_000)),
        }),
      },
    });
    const error2 = await settle(clock2, rt2.run(slow, 'refund A-1001'));
    expect(error2).toMatchObject({ category: 'timeout' });
    const incurred2 = payloads(rt2.store.query({}), 'cost.incurred');
    expect(incurred2.map((c) => [c.step, c.estimated ?? false])).toEqual([[1, false]]);
  });

  it('a tool loop replays with 0 calls, its figures matching the record', async () => {
    const { rt, clock } = open({ budget: { dailyUsd: 10 } });
    const executions: string[] = [];
    const live = await settle(clock, rt.run(support(simulatedSupport(), executions), 'refund A-1001'));
    if (live instanceof Error) throw live;
    const replayProvider = simulatedSupport();
    const replayExecutions: string[] = [];
    const [report] = await rt.replay(live.workflowId, {
      topologies: { support: support(replayProvider, replayExecutions) },
    });
    expect(report?.divergences).toEqual([]);
    expect(replayProvider.calls()).toBe(0);
    expect(replayExecutions).toEqual([]);
  });
});
