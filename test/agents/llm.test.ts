import { MockLanguageModelV3 } from 'ai/test';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { llmAgent } from '../../agents/llm.js';
import { simulatedClock } from '../../src/core/clock.js';
import { isConfigError } from '../../src/core/errors.js';
import { seededRandom } from '../../src/core/random.js';
import { aiSdk } from '../../src/providers/ai-sdk.js';
import { simulated } from '../../src/providers/simulated.js';
import type { ModelRequest } from '../../src/providers/types.js';
import type { AgentContext } from '../../src/supervisor/agent.js';

const Invoice = z.object({ vendor: z.string().min(1), total: z.number().positive() });
type Invoice = z.infer<typeof Invoice>;

const context = (model = 'gpt-4'): AgentContext => ({
  signal: new AbortController().signal,
  attempt: 1,
  model,
  workflowId: 'wf-1',
  path: '0',
  clock: simulatedClock(),
  rng: seededRandom(1),
});

/** The rejection of `p` (fails the test if it resolves). */
async function rejection(
  p: Promise<unknown>,
): Promise<{ code?: string; category?: string; message: string; usage?: unknown }> {
  try {
    await p;
  } catch (e) {
    return e as { code?: string; category?: string; message: string; usage?: unknown };
  }
  throw new Error('expected a failure');
}

function answering(output: unknown, usage = { inputTokens: 400, outputTokens: 50 }) {
  const seen: ModelRequest[] = [];
  const provider = simulated({
    seed: 1,
    latencyMs: { p50: 0, p95: 0 },
    usage: { input: { mean: usage.inputTokens, stddev: 0 }, output: { mean: usage.outputTokens, stddev: 0 } },
    respond: (request) => {
      seen.push(request);
      return output;
    },
  });
  return { provider, seen };
}

const extract = (provider: Parameters<typeof llmAgent>[0]['provider']) =>
  llmAgent({
    name: 'vendor_extraction',
    taskType: 'vendor',
    model: 'gpt-4',
    timeoutMs: 10_000,
    retry: { attempts: 2 },
    provider,
    prompt: (input: { text: string }) => `Extract vendor and total:\n${input.text}`,
    schema: Invoice,
  });

describe('llmAgent with the simulated provider', () => {
  it('asks for JSON on the attempt model and returns the validated value, confidence, usage and model', async () => {
    const { provider, seen } = answering({ value: { vendor: 'Acme', total: 12.5 }, confidence: 0.93 });
    const vendor = extract(provider);
    const out = await vendor.run({ text: 'ACME invoice, total 12.50' }, context('gpt-3.5-turbo'));
    expect(out).toEqual({
      value: { vendor: 'Acme', total: 12.5 },
      confidence: 0.93,
      usage: { inputTokens: 400, outputTokens: 50 },
      model: 'gpt-3.5-turbo',
    });
    const request = seen[0];
    expect(request?.json).toBe(true);
    expect(request?.model).toBe('gpt-3.5-turbo'); // the attempt's model, not the configured one
    expect(request?.input).toEqual({ text: 'ACME invoice, total 12.50' });
    expect(request?.messages?.[0]?.role).toBe('system');
    expect(request?.messages?.[0]?.content).toContain('"confidence"');
    expect(request?.messages?.[0]?.content).toContain('"vendor"'); // the schema, as JSON Schema
    expect(request?.messages?.[1]).toEqual({
      role: 'user',
      content: 'Extract vendor and total:\nACME invoice, total 12.50',
    });
  });

  it("keeps the agent's policies", () => {
    const vendor = extract(answering({ value: null }).provider);
    expect(vendor).toMatchObject({
      kind: 'agent',
      name: 'vendor_extraction',
      taskType: 'vendor',
      timeoutMs: 10_000,
    });
    expect(vendor.retry).toEqual({ attempts: 2 });
  });

  it("falls back to the provider's confidence when the answer carries none", async () => {
    const provider = simulated({
      seed: 3,
      latencyMs: { p50: 0, p95: 0 },
      confidence: { mean: 0.42, stddev: 0 },
    });
    const echo = llmAgent({
      name: 'echo',
      model: 'gpt-4',
      provider,
      prompt: (input: Invoice) => JSON.stringify(input),
      schema: Invoice,
    });
    // the simulated default answer is { value: input }
    const out = await echo.run({ vendor: 'Acme', total: 3 }, context());
    expect(out.value).toEqual({ vendor: 'Acme', total: 3 });
    expect(out.confidence).toBe(0.42);
  });

  it('fails with validation_error naming the field when value breaks the schema, keeping usage', async () => {
    const vendor = extract(answering({ value: { vendor: 'Acme', total: -4 }, confidence: 0.9 }).provider);
    const e = await rejection(vendor.run({ text: 't' }, context()));
    expect(e.code).toBe('AGENT_VALIDATION_ERROR');
    expect(e.category).toBe('validation_error');
    expect(e.message).toContain('value.total');
    expect(e.usage).toEqual({ inputTokens: 400, outputTokens: 50 });
  });

  it('fails with validation_error when value is missing or confidence is out of range', async () => {
    const missing = await rejection(
      extract(answering({ vendor: 'Acme', total: 1 }).provider).run({ text: 't' }, context()),
    );
    expect(missing.category).toBe('validation_error');
    expect(missing.message).toContain('"value"');

    const overconfident = await rejection(
      extract(answering({ value: { vendor: 'Acme', total: 1 }, confidence: 1.7 }).provider).run(
        { text: 't' },
        context(),
      ),
    );
    expect(overconfident.category).toBe('validation_error');
    expect(overconfident.message).toContain('"confidence"');
  });

  it('lets provider failures through as they are', async () => {
    const limited = simulated({
      seed: 1,
      latencyMs: { p50: 0, p95: 0 },
      rates: { rate_limited: 1 },
      retryAfterMs: 900,
    });
    const e = await rejection(extract(limited).run({ text: 't' }, context()));
    expect(e.code).toBe('PROVIDER_RATE_LIMITED');
  });

  it('rejects a config without a provider or schema, naming the field', () => {
    const field = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isConfigError(e) ? e.field : 'not a ConfigError';
      }
      return 'no error';
    };
    const base = { name: 'x', model: 'gpt-4', prompt: () => 'p', schema: Invoice, provider: simulated() };
    expect(field(() => llmAgent({ ...base, provider: undefined as never }))).toBe('llmAgent "x".provider');
    expect(field(() => llmAgent({ ...base, schema: {} as never }))).toBe('llmAgent "x".schema');
    expect(field(() => llmAgent({ ...base, model: '' }))).toBe('agent "x".model');
  });
});

describe('llmAgent with an AI SDK model', () => {
  const mock = (text: string) =>
    new MockLanguageModelV3({
      doGenerate: {
        content: [{ type: 'text', text }],
        finishReason: { unified: 'stop', raw: 'stop' },
        usage: {
          inputTokens: { total: 700, noCache: 700, cacheRead: undefined, cacheWrite: undefined },
          outputTokens: { total: 40, text: 40, reasoning: undefined },
        },
        response: { modelId: 'gpt-4o-2024-08-06' },
        warnings: [],
      },
    });

  it('returns the parsed, validated value from the JSON answer', async () => {
    const model = mock('{"value":{"vendor":"Acme","total":99},"confidence":0.97}');
    const out = await extract(aiSdk(model)).run({ text: 'ACME 99' }, context());
    expect(out).toEqual({
      value: { vendor: 'Acme', total: 99 },
      confidence: 0.97,
      usage: { inputTokens: 700, outputTokens: 40 },
      model: 'gpt-4o-2024-08-06',
    });
    expect(model.doGenerateCalls[0]?.responseFormat).toMatchObject({ type: 'json' });
  });

  it('passes malformed_output through when the answer is not JSON', async () => {
    const e = await rejection(extract(aiSdk(mock('The vendor is Acme.'))).run({ text: 't' }, context()));
    expect(e.code).toBe('PROVIDER_MALFORMED_OUTPUT');
    expect(e.category).toBe('malformed_output');
  });
});
