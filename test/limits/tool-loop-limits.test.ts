/**
 * Rate limits per model turn of a tool loop: each turn after the first asks the limiter of its
 * model's key for a permit (the first goes out on the attempt's), waits for it like a single call,
 * is shed past `maxQueueMs` (the loop ends `rate_limited`, turns already made stay charged, the shed
 * turn never reaches the provider), and settles its tokens to what it reported — with a user's own
 * tool-calling model, not the simulator.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { llmAgent } from '../../agents/llm.js';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import type { EventPayloads, KeelEvent, KeelEventType } from '../../src/eventlog/events.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import type { ModelProvider, ModelResponse, ToolCall } from '../../src/providers/types.js';
import { createRuntime, type Runtime, type RuntimeConfig } from '../../src/runtime.js';
import { tool } from '../../src/tools/tool.js';

let runtimes: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const rt of runtimes) await rt.close();
  runtimes = [];
});

function open(limits: RuntimeConfig['limits']): { rt: Runtime<SqliteEventStore>; clock: SimulatedClock } {
  const clock = simulatedClock();
  const rt = createRuntime({
    db: ':memory:',
    clock,
    seed: 1,
    pricing: { 'gpt-4o': { inputPer1K: 0.0025, outputPer1K: 0.01 } },
    budget: { dailyUsd: 10 },
    limits,
  });
  runtimes.push(rt);
  return { rt, clock };
}

async function settle<T>(clock: SimulatedClock, p: Promise<T>, ms = 120_000): Promise<T | Error> {
  const settled = p.catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
  await clock.advanceAsync(ms);
  return settled;
}

const payloads = <T extends KeelEventType>(events: KeelEvent[], type: T): EventPayloads[T][] =>
  events.filter((e) => e.type === type).map((e) => e.payload as EventPayloads[T]);

const FINAL = { value: { reply: 'Refunded.' }, confidence: 0.9 };
const script = (step: number): ToolCall[] | undefined =>
  step < 3 ? [{ id: `c${step}`, name: 'lookup', args: { orderId: `A-${step}` } }] : undefined;

/** A hand-written tool-calling model: answers each turn 100 ms after it is called, dated model id. */
function ownModel(): ModelProvider & { at: number[] } {
  const provider = {
    name: 'in-house',
    at: [] as number[],
    call: (request: Parameters<ModelProvider['call']>[0], context: Parameters<ModelProvider['call']>[1]) => {
      const clock = context.clock;
      provider.at.push(clock?.now() ?? -1);
      const step = (request.messages ?? []).filter((m) => m.role === 'assistant').length + 1;
      const toolCalls = script(step);
      const response = {
        output: toolCalls ? '' : JSON.stringify(FINAL),
        model: 'gpt-4o-2024-08-06',
        usage: { inputTokens: 10, outputTokens: 1 },
        ...(toolCalls ? { toolCalls } : {}),
      } as ModelResponse;
      return new Promise<ModelResponse>((resolve) => clock?.setTimeout(() => resolve(response), 100));
    },
  };
  return provider;
}

const support = (provider: ModelProvider) =>
  llmAgent({
    name: 'support',
    model: 'gpt-4o',
    provider,
    prompt: (q: string) => q,
    schema: z.object({ reply: z.string() }),
    tools: {
      lookup: tool({
        description: 'Looks an order up',
        schema: z.object({ orderId: z.string() }),
        execute: ({ orderId }: { orderId: string }) => ({ orderId, status: 'shipped' }),
      }),
    },
    estimate: { inputTokens: 1_000, outputTokens: 500 },
    retry: { attempts: 1 },
  });

describe('rate limits per model turn of a tool loop', () => {
  it('a turn beyond the request bucket waits for its permit (ratelimit.waited), then the loop goes on', async () => {
    // rpm 120: a burst of 2 requests, then one every ~508 ms.
    const { rt, clock } = open({ 'gpt-4o': { rpm: 120 } });
    const model = ownModel();
    const result = await settle(clock, rt.run(support(model), 'where are A-1 and A-2?'));
    if (result instanceof Error) throw result;
    expect(model.at).toHaveLength(3);
    expect(model.at[2]! - model.at[0]!).toBeGreaterThanOrEqual(500);
    const waited = payloads(rt.store.query({ workflowId: result.workflowId }), 'ratelimit.waited');
    expect(waited).toHaveLength(1);
    expect(waited[0]).toMatchObject({ agent: 'support', key: 'gpt-4o' });
    expect(waited[0]!.waitedMs).toBeGreaterThan(0);
  });

  it('a turn that waits past maxQueueMs is shed: the loop ends rate_limited, made turns stay charged, the shed one never reaches the model', async () => {
    const { rt, clock } = open({ 'gpt-4o': { rpm: 120, maxQueueMs: 50 } });
    const model = ownModel();
    const error = await settle(clock, rt.run(support(model), 'where are A-1 and A-2?'));
    expect(error).toMatchObject({ category: 'rate_limited' });
    expect(model.at).toHaveLength(2);
    const events = rt.store.query({});
    expect(payloads(events, 'ratelimit.shed')).toEqual([
      expect.objectContaining({ key: 'gpt-4o', reason: 'queue_timeout', waitedMs: 50 }),
    ]);
    expect(payloads(events, 'cost.incurred').map((c) => c.step)).toEqual([1, 2]);
    expect(payloads(events, 'agent.failed')[0]).toMatchObject({ category: 'rate_limited' });
    // Spend is exactly the two turns made: the shed turn was charged nothing.
    const charged = payloads(events, 'cost.incurred').reduce((s, c) => s + c.costUsd, 0);
    expect(rt.stats().cost.actualUsd).toBeCloseTo(charged, 12);
    expect(rt.stats().cost.calls).toBe(2);
  });

  it('each turn settles its tokens to what it reported, so a tpm bucket is not held by the estimate', async () => {
    // tpm 3,000: each turn reserves its 1,500-token estimate (borrowing past the 50-token burst) and
    // reports 11 — settled per turn, the next turn waits well under a second, not the ~30 s the
    // estimate alone would take to refill.
    const { rt, clock } = open({ 'gpt-4o': { tpm: 3_000 } });
    const model = ownModel();
    const result = await settle(clock, rt.run(support(model), 'where are A-1 and A-2?'));
    if (result instanceof Error) throw result;
    expect(model.at).toHaveLength(3);
    expect(model.at[2]! - model.at[0]!).toBeLessThan(2_000);
  });
});
