/**
 * `llmAgent({ tools, maxSteps })`: the tool loop through the runtime on virtual time — a 3-step loop,
 * parallel calls, a tool timeout and breaker, the step limit, the idempotency key, every step in
 * the log, and replay with 0 model calls and 0 tool executions.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MockLanguageModelV3 } from 'ai/test';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { llmAgent } from '../../agents/llm.js';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import type { EventPayloads, KeelEvent, KeelEventType } from '../../src/eventlog/events.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { aiSdk } from '../../src/providers/ai-sdk.js';
import { openaiCompatible } from '../../src/providers/openai.js';
import { simulated, type SimulatedToolCall } from '../../src/providers/simulated.js';
import type { ModelProvider, ModelRequest } from '../../src/providers/types.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { named } from '../../src/supervisor/topology.js';
import { tool, type ToolContext } from '../../src/tools/tool.js';

let runtimes: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const rt of runtimes) await rt.close();
  runtimes = [];
});

function open(db = ':memory:'): { rt: Runtime<SqliteEventStore>; clock: SimulatedClock } {
  const clock = simulatedClock();
  const rt = createRuntime({
    db,
    clock,
    seed: 1,
    pricing: { 'gpt-4o': { inputPer1K: 0.0025, outputPer1K: 0.01 } },
  });
  runtimes.push(rt);
  return { rt, clock };
}

/** Runs `p` to its end while advancing virtual time. */
async function settle<T>(clock: SimulatedClock, p: Promise<T>, ms = 120_000): Promise<T> {
  const settled = p.then(
    (v) => ({ ok: true as const, v }),
    (e: unknown) => ({ ok: false as const, e }),
  );
  await clock.advanceAsync(ms);
  const r = await settled;
  if (!r.ok) throw r.e;
  return r.v;
}

const Answer = z.object({ reply: z.string() });

/** A support model: step 1 looks the order up, step 2 refunds it, step 3 answers. */
function supportModel(
  script?: (request: ModelRequest, step: number) => readonly SimulatedToolCall[] | undefined,
) {
  const seen: ModelRequest[] = [];
  const provider = simulated({
    seed: 7,
    latencyMs: { p50: 400, p95: 400 },
    usage: { input: { mean: 300, stddev: 0 }, output: { mean: 40, stddev: 0 } },
    toolTurn: (request, step) => {
      seen.push(request);
      if (script) return script(request, step);
      if (step === 1) return [{ name: 'order_lookup', args: { orderId: 'A-1001' } }];
      if (step === 2) return [{ name: 'refund', args: { orderId: 'A-1001', amountUsd: 19.5 } }];
      return undefined;
    },
    respond: () => ({ value: { reply: 'Refunded $19.50 for A-1001.' }, confidence: 0.9 }),
  });
  return { provider, seen };
}

function tools(log: { executions: string[]; keys: string[] } = { executions: [], keys: [] }) {
  return {
    order_lookup: tool({
      description: 'Looks an order up by id',
      schema: z.object({ orderId: z.string() }),
      execute: ({ orderId }: { orderId: string }, ctx: ToolContext) => {
        log.executions.push(`lookup:${orderId}`);
        log.keys.push(ctx.idempotencyKey);
        return { orderId, status: 'delivered', totalUsd: 19.5 };
      },
    }),
    refund: tool({
      description: 'Refunds an order',
      schema: z.object({ orderId: z.string(), amountUsd: z.number().positive() }),
      execute: ({ orderId, amountUsd }: { orderId: string; amountUsd: number }, ctx: ToolContext) => {
        log.executions.push(`refund:${orderId}`);
        log.keys.push(ctx.idempotencyKey);
        return { refundId: `R-${orderId}`, amountUsd };
      },
    }),
  };
}

const support = (provider: ModelProvider, t: ReturnType<typeof tools>, extra: { maxSteps?: number } = {}) =>
  llmAgent({
    name: 'support',
    model: 'gpt-4o',
    provider,
    prompt: (q: { question: string }) => q.question,
    schema: Answer,
    tools: t,
    ...extra,
  });

const payloads = <T extends KeelEventType>(events: KeelEvent[], type: T): EventPayloads[T][] =>
  events.filter((e) => e.type === type).map((e) => e.payload as EventPayloads[T]);

describe('llmAgent with tools', () => {
  it('runs a 3-step loop (lookup → refund → answer), logging every tool step', async () => {
    const { rt, clock } = open();
    const { provider, seen } = supportModel();
    const log = { executions: [] as string[], keys: [] as string[] };
    const result = await settle(
      clock,
      rt.run(support(provider, tools(log)), { question: 'Refund A-1001 please' }),
    );
    expect(result.value).toEqual({ reply: 'Refunded $19.50 for A-1001.' });
    expect(provider.calls()).toBe(3);
    expect(log.executions).toEqual(['lookup:A-1001', 'refund:A-1001']);

    // The model saw each result as a tool message answering its call.
    const third = seen[2]?.messages ?? [];
    expect(third.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool', 'assistant', 'tool']);
    expect(third[3]?.toolCallId).toBe(third[2]?.toolCalls?.[0]?.id);
    expect(JSON.parse(third[5]?.content ?? 'null')).toEqual({ refundId: 'R-A-1001', amountUsd: 19.5 });

    const events = rt.store.query({ workflowId: result.workflowId });
    expect(events.map((e) => e.type).filter((t) => t.startsWith('tool.'))).toEqual([
      'tool.called',
      'tool.succeeded',
      'tool.called',
      'tool.succeeded',
    ]);
    const called = payloads(events, 'tool.called');
    expect(called.map((p) => [p.tool, p.step])).toEqual([
      ['order_lookup', 1],
      ['refund', 2],
    ]);
    expect(called[0]?.args).toEqual({ orderId: 'A-1001' });
    const succeeded = payloads(events, 'tool.succeeded');
    expect(succeeded[1]?.result).toEqual({ refundId: 'R-A-1001', amountUsd: 19.5 });
    expect(succeeded.every((p) => p.attempts === 1 && p.path === called[0]?.path)).toBe(true);
    // Three turns of usage are charged to the attempt.
    const cost = payloads(events, 'cost.incurred');
    expect(cost.reduce((n, c) => n + c.usage.inputTokens, 0)).toBe(900);
    // The idempotency key names workflow, path, step and position of the call.
    expect(log.keys).toEqual([
      `${result.workflowId}/${called[0]?.path}/1/0`,
      `${result.workflowId}/${called[0]?.path}/2/0`,
    ]);
  });

  it('runs the calls of one turn in parallel', async () => {
    const { rt, clock } = open();
    const { provider } = supportModel((_r, step) =>
      step === 1
        ? [
            { name: 'slow_lookup', args: { orderId: 'A-1' } },
            { name: 'slow_lookup', args: { orderId: 'A-2' } },
            { name: 'slow_lookup', args: { orderId: 'A-3' } },
          ]
        : undefined,
    );
    let inFlight = 0;
    let most = 0;
    const slow = tool({
      description: 'Looks an order up (slowly)',
      schema: z.object({ orderId: z.string() }),
      execute: ({ orderId }: { orderId: string }, ctx: ToolContext) =>
        new Promise<string>((resolve) => {
          most = Math.max(most, ++inFlight);
          ctx.clock.setTimeout(() => {
            inFlight--;
            resolve(orderId);
          }, 1_000);
        }),
    });
    const a = llmAgent({
      name: 'support',
      model: 'gpt-4o',
      provider,
      prompt: (q: string) => q,
      schema: Answer,
      tools: { slow_lookup: slow },
    });
    const result = await settle(clock, rt.run(a, 'where are A-1, A-2, A-3?'));
    expect(most).toBe(3);
    const succeeded = payloads(rt.store.query({ workflowId: result.workflowId }), 'tool.succeeded');
    expect(succeeded.map((p) => p.result).sort()).toEqual(['A-1', 'A-2', 'A-3']);
    expect(succeeded.every((p) => p.latencyMs === 1_000)).toBe(true);
    // 2 turns of 400 ms plus one round of tools of 1 s: the three calls overlapped.
    expect(result.latencyMs).toBe(1_800);
  });

  it('a tool that hangs times out (tool.failed timeout); the model is shown the error and still answers', async () => {
    const { rt, clock } = open();
    const { provider, seen } = supportModel((_r, step) =>
      step === 1 ? [{ name: 'hang', args: {} }] : undefined,
    );
    let aborted = false;
    const hang = tool({
      description: 'Never answers',
      schema: z.object({}),
      timeoutMs: 2_000,
      execute: (_a: Record<string, never>, ctx: ToolContext) =>
        new Promise<never>(() => ctx.signal.addEventListener('abort', () => (aborted = true))),
    });
    const a = llmAgent({
      name: 'support',
      model: 'gpt-4o',
      provider,
      prompt: (q: string) => q,
      schema: Answer,
      tools: { hang },
    });
    const result = await settle(clock, rt.run(a, 'hello'));
    expect(result.value.reply).toContain('Refunded');
    expect(aborted).toBe(true);
    const failed = payloads(rt.store.query({ workflowId: result.workflowId }), 'tool.failed');
    expect(failed).toEqual([
      expect.objectContaining({ tool: 'hang', category: 'timeout', latencyMs: 2_000, attempts: 1 }),
    ]);
    const shown = seen[1]?.messages?.find((m) => m.role === 'tool');
    expect(JSON.parse(shown?.content ?? '{}')).toEqual({
      error: { category: 'timeout', message: 'timed out after 2000 ms' },
    });
    expect(clock.pendingTimers()).toBe(0);
  });

  it("a flaky tool's breaker opens: later calls fail circuit_open without running it", async () => {
    const { rt, clock } = open();
    const { provider } = supportModel((_r, step) =>
      step <= 3 ? [{ name: 'flaky', args: { n: step } }] : undefined,
    );
    let runs = 0;
    const flaky = tool({
      description: 'Always fails (a plain Error)',
      schema: z.object({ n: z.number() }),
      breaker: { name: 'flaky-service', failureThreshold: 2, resetTimeoutMs: 60_000 },
      execute: () => {
        runs++;
        throw new Error('connection refused by the order service');
      },
    });
    const a = llmAgent({
      name: 'support',
      model: 'gpt-4o',
      provider,
      prompt: (q: string) => q,
      schema: Answer,
      tools: { flaky },
    });
    const result = await settle(clock, rt.run(a, 'hello'), 10_000);
    expect(runs).toBe(2);
    const failed = payloads(rt.store.query({ workflowId: result.workflowId }), 'tool.failed');
    expect(failed.map((f) => f.category)).toEqual(['unknown', 'unknown', 'circuit_open']);
    expect(failed[2]?.attempts).toBe(0);
    expect(failed[2]?.message).toContain('flaky-service');
  });

  it('fails with validation_error at the step limit, charged every turn', async () => {
    const { rt, clock } = open();
    const { provider } = supportModel(() => [{ name: 'order_lookup', args: { orderId: 'A-1' } }]);
    const result = await settle(
      clock,
      rt
        .run(support(provider, tools(), { maxSteps: 3 }), { question: 'loop forever' })
        .catch((e: unknown) => e),
    );
    expect(result).toMatchObject({ category: 'validation_error' });
    expect((result as Error).message).toContain('step limit reached');
    expect(provider.calls()).toBe(3);
    const events = rt.store.query({});
    expect(payloads(events, 'tool.called')).toHaveLength(2); // the 3rd turn's calls never ran
    // One charge per model turn, all three of them.
    expect(payloads(events, 'cost.incurred').map((c) => [c.step, c.usage.inputTokens])).toEqual([
      [1, 300],
      [2, 300],
      [3, 300],
    ]);
  });

  it('arguments that fail the schema and unknown tools are answered as errors without running anything', async () => {
    const { rt, clock } = open();
    const { provider, seen } = supportModel((_r, step) =>
      step === 1
        ? [
            { name: 'order_lookup', args: { orderId: 42 } },
            { name: 'delete_everything', args: {} },
          ]
        : undefined,
    );
    const log = { executions: [] as string[], keys: [] as string[] };
    const result = await settle(clock, rt.run(support(provider, tools(log)), { question: 'x' }));
    expect(log.executions).toEqual([]);
    const failed = payloads(rt.store.query({ workflowId: result.workflowId }), 'tool.failed');
    expect(failed.map((f) => [f.tool, f.category])).toEqual([
      ['order_lookup', 'validation_error'],
      ['delete_everything', 'validation_error'],
    ]);
    expect(failed[1]?.message).toContain('order_lookup, refund');
    expect(seen[1]?.messages?.filter((m) => m.role === 'tool')).toHaveLength(2);
  });

  it('keeps the idempotency key of a call across a retry of the whole agent', async () => {
    const { rt, clock } = open();
    let turns = 0;
    const base = supportModel().provider;
    // The 2nd model turn of the 1st attempt fails (a 503): the attempt is retried from step 1.
    const provider: ModelProvider = {
      name: 'flaky-model',
      call: (request, context) => {
        turns++;
        if (turns === 2)
          return Promise.reject(
            new (class extends Error {
              status = 503;
            })('503 upstream'),
          );
        return base.call(request, context);
      },
    };
    const log = { executions: [] as string[], keys: [] as string[] };
    const a = llmAgent({
      name: 'support',
      model: 'gpt-4o',
      provider,
      prompt: (q: string) => q,
      schema: Answer,
      tools: tools(log),
      retry: { attempts: 2, baseDelayMs: 10 },
    });
    const result = await settle(clock, rt.run(a, 'refund A-1001'));
    expect(result.value.reply).toContain('Refunded');
    expect(log.executions).toEqual(['lookup:A-1001', 'lookup:A-1001', 'refund:A-1001']);
    expect(log.keys[0]).toBe(log.keys[1]);
    expect(log.keys[0]).toMatch(new RegExp(`^${result.workflowId}/.+/1/0$`));
  });

  it('replays a tool-using workflow with 0 model calls and 0 tool executions', async () => {
    const { rt, clock } = open();
    const { provider } = supportModel();
    const log = { executions: [] as string[], keys: [] as string[] };
    const flow = named('support', support(provider, tools(log)));
    const live = await settle(clock, rt.run(flow, { question: 'Refund A-1001 please' }));
    const callsLive = provider.calls();
    const executionsLive = log.executions.length;

    const replayProvider = supportModel().provider;
    const replayLog = { executions: [] as string[], keys: [] as string[] };
    const [report] = await rt.replay(live.workflowId, {
      topologies: { support: named('support', support(replayProvider, tools(replayLog))) },
    });
    expect(report?.divergences).toEqual([]);
    expect(replayProvider.calls()).toBe(0);
    expect(replayLog.executions).toEqual([]);
    expect(provider.calls()).toBe(callsLive);
    expect(log.executions).toHaveLength(executionsLive);
  });

  it('rejects bad tool config naming the field', () => {
    const { provider } = supportModel();
    expect(() => tool({ description: '', schema: z.object({}), execute: () => 1 })).toThrow(
      /tool\.description/,
    );
    expect(() =>
      llmAgent({
        name: 'support',
        model: 'gpt-4o',
        provider,
        prompt: (q: string) => q,
        schema: Answer,
        tools: { 'bad name!': tools().refund },
      }),
    ).toThrow(/bad name!.*letters, digits/);
    expect(() =>
      llmAgent({
        name: 'support',
        model: 'gpt-4o',
        provider,
        prompt: (q: string) => q,
        schema: Answer,
        maxSteps: 3,
      }),
    ).toThrow(/maxSteps.*only applies with tools/);
    expect(() =>
      llmAgent({
        name: 'support',
        model: 'gpt-4o',
        provider,
        prompt: (q: string) => q,
        schema: Answer,
        tools: tools(),
        maxSteps: 0,
      }),
    ).toThrow(/maxSteps.*integer >= 1/);
  });
});

describe('the 3-step tool loop through the real providers', () => {
  const lookupThenRefund = (step: number): { name: string; args: unknown } | undefined =>
    step === 1
      ? { name: 'order_lookup', args: { orderId: 'A-1001' } }
      : step === 2
        ? { name: 'refund', args: { orderId: 'A-1001', amountUsd: 19.5 } }
        : undefined;
  const FINAL = '{"value":{"reply":"Refunded $19.50 for A-1001."},"confidence":0.9}';

  it('AI SDK (MockLanguageModelV3): tool-call turns, then the JSON answer', async () => {
    const { rt, clock } = open();
    const turn = (step: number) => {
      const call = lookupThenRefund(step);
      return {
        content: call
          ? [
              {
                type: 'tool-call' as const,
                toolCallId: `c${step}`,
                toolName: call.name,
                input: JSON.stringify(call.args),
              },
            ]
          : [{ type: 'text' as const, text: FINAL }],
        finishReason: call
          ? { unified: 'tool-calls' as const, raw: 'tool_calls' }
          : { unified: 'stop' as const, raw: 'stop' },
        usage: {
          inputTokens: { total: 300, noCache: 300, cacheRead: undefined, cacheWrite: undefined },
          outputTokens: { total: 40, text: 40, reasoning: undefined },
        },
        warnings: [],
      };
    };
    const model = new MockLanguageModelV3({ doGenerate: [turn(1), turn(2), turn(3)] });
    const log = { executions: [] as string[], keys: [] as string[] };
    const result = await settle(
      clock,
      rt.run(support(aiSdk(model), tools(log)), { question: 'Refund A-1001' }),
    );
    expect(result.value).toEqual({ reply: 'Refunded $19.50 for A-1001.' });
    expect(model.doGenerateCalls).toHaveLength(3);
    expect(log.executions).toEqual(['lookup:A-1001', 'refund:A-1001']);
    const last = model.doGenerateCalls[2]?.prompt.map((m) => m.role);
    expect(last).toEqual(['system', 'user', 'assistant', 'tool', 'assistant', 'tool']);
  });

  it('OpenAI-compatible (loopback server, chat-completions JSON)', async () => {
    const bodies: Record<string, unknown>[] = [];
    const server = createServer((req, res) => {
      let raw = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (raw += c));
      req.on('end', () => {
        bodies.push(JSON.parse(raw) as Record<string, unknown>);
        const call = lookupThenRefund(bodies.length);
        const message = call
          ? {
              role: 'assistant',
              content: null,
              tool_calls: [
                {
                  id: `call_${bodies.length}`,
                  type: 'function',
                  function: { name: call.name, arguments: JSON.stringify(call.args) },
                },
              ],
            }
          : { role: 'assistant', content: FINAL };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            id: `chatcmpl-${bodies.length}`,
            object: 'chat.completion',
            created: 1741570283,
            model: 'gpt-4o-2024-08-06',
            choices: [{ index: 0, message, finish_reason: call ? 'tool_calls' : 'stop', logprobs: null }],
            usage: { prompt_tokens: 300, completion_tokens: 40, total_tokens: 340 },
          }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
      const { rt } = open();
      const log = { executions: [] as string[], keys: [] as string[] };
      // Real sockets: the simulated clock has no timers to advance here.
      const result = await rt.run(support(openaiCompatible({ baseURL, apiKey: 'sk-test' }), tools(log)), {
        question: 'Refund A-1001',
      });
      expect(result.value).toEqual({ reply: 'Refunded $19.50 for A-1001.' });
      expect(bodies).toHaveLength(3);
      expect(log.executions).toEqual(['lookup:A-1001', 'refund:A-1001']);
      const third = bodies[2]?.messages as { role: string; tool_call_id?: string }[];
      expect(third.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool', 'assistant', 'tool']);
      expect(third[3]?.tool_call_id).toBe('call_1');
      expect((bodies[0]?.tools as unknown[]).length).toBe(2);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
