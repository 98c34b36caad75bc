/**
 * `gen_ai.provider.name` is REQUIRED on GenAI spans: under the default config every `invoke_agent`
 * and `chat` span carries it, named from the provider the agent's calls go to (issue 25).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { MockLanguageModelV3 } from 'ai/test';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { llmAgent } from '../../agents/llm.js';
import { simulatedClock } from '../../src/core/clock.js';
import { isConfigError } from '../../src/core/errors.js';
import { ATTR_GEN_AI_PROVIDER_NAME, genAiProviderName } from '../../src/observability/genai.js';
import { aiSdk } from '../../src/providers/ai-sdk.js';
import { openaiCompatible } from '../../src/providers/openai.js';
import { simulated } from '../../src/providers/simulated.js';
import type { ModelProvider } from '../../src/providers/types.js';
import { createRuntime, type Runtime, type RuntimeConfig } from '../../src/runtime.js';
import { agent, type Agent } from '../../src/supervisor/agent.js';

const exporter = new InMemorySpanExporter();
const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer(
  'keel-test',
);
const PRICING = { 'gpt-4': { inputPer1K: 0.03, outputPer1K: 0.06 } };
const ANSWER = JSON.stringify({ value: { vendor: 'Acme Corp' }, confidence: 0.9 });

let server: Server | undefined;
let rt: Runtime | undefined;
beforeEach(() => exporter.reset());
afterEach(async () => {
  await rt?.close();
  rt = undefined;
  if (server) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    server = undefined;
  }
});

/** Runs `a` once under the default tracing config (only the tracer given) and returns its spans. */
async function spansOf(a: Agent<never, unknown>, config: RuntimeConfig = {}): Promise<ReadableSpan[]> {
  rt = createRuntime({
    db: ':memory:',
    clock: simulatedClock(),
    seed: 1,
    pricing: PRICING,
    cache: false,
    tracing: { tracer },
    ...config,
  });
  await rt.run(a, { text: 'INVOICE 1\nVendor: Acme Corp' } as never);
  await rt.close();
  rt = undefined;
  return exporter.getFinishedSpans().filter((s) => /^(invoke_agent|chat) /.test(s.name));
}

/** The simulated provider, answering at once (latency 0, no injected failures). */
const sim = (): ModelProvider =>
  simulated({
    seed: 1,
    latencyMs: { p50: 0, p95: 0 },
    rates: {},
    respond: () => ({ value: { vendor: 'Acme Corp' }, confidence: 0.9 }),
  });

const extraction = (provider: ModelProvider): Agent<never, unknown> =>
  llmAgent({
    name: 'vendor_extraction',
    model: 'gpt-4',
    provider,
    prompt: (invoice: { text: string }) => `Who issued this invoice?\n${invoice.text}`,
    schema: z.object({ vendor: z.string() }),
  });

/** The provider name on every agent and chat span (one of each at least). */
function providerNames(spans: ReadableSpan[]): unknown[] {
  expect(spans.some((s) => s.name.startsWith('invoke_agent '))).toBe(true);
  expect(spans.some((s) => s.name.startsWith('chat '))).toBe(true);
  return [...new Set(spans.map((s) => s.attributes[ATTR_GEN_AI_PROVIDER_NAME]))];
}

async function openaiServer(): Promise<string> {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'chatcmpl-1',
          object: 'chat.completion',
          created: 1_767_225_600,
          model: 'gpt-4',
          choices: [{ index: 0, message: { role: 'assistant', content: ANSWER }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 80, completion_tokens: 12, total_tokens: 92 },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
}

function mockModel(provider?: string): MockLanguageModelV3 {
  return new MockLanguageModelV3({
    ...(provider !== undefined ? { provider } : {}),
    doGenerate: {
      content: [{ type: 'text', text: ANSWER }],
      finishReason: { unified: 'stop', raw: 'stop' },
      usage: {
        inputTokens: { total: 80, noCache: 80, cacheRead: undefined, cacheWrite: undefined },
        outputTokens: { total: 12, text: 12, reasoning: undefined },
      },
      warnings: [],
    },
  });
}

describe('gen_ai.provider.name under the default config', () => {
  it('the simulated provider: "simulated" on the agent and chat spans, recorded on agent.invoked', async () => {
    const spans = await spansOf(extraction(sim()));
    expect(providerNames(spans)).toEqual(['simulated']);
  });

  it('an OpenAI-compatible API: "openai" (its default name), a named one by its name', async () => {
    const baseURL = await openaiServer();
    expect(
      providerNames(await spansOf(extraction(openaiCompatible({ baseURL, apiKey: 'sk-test' })))),
    ).toEqual(['openai']);
    exporter.reset();
    const named = openaiCompatible({ baseURL, apiKey: 'sk-test', name: 'azure.ai.openai' });
    expect(providerNames(await spansOf(extraction(named)))).toEqual(['azure.ai.openai']);
  });

  it('an AI SDK model: its provider id as the GenAI registry name, or the mock id as is', async () => {
    expect(providerNames(await spansOf(extraction(aiSdk(mockModel('anthropic.messages')))))).toEqual([
      'anthropic',
    ]);
    exporter.reset();
    expect(providerNames(await spansOf(extraction(aiSdk(mockModel()))))).toEqual(['mock-provider']);
  });

  it("a run() of the user's own: _OTHER without providerName, the declared name with it", async () => {
    const own = (providerName?: string): Agent<never, unknown> =>
      agent({
        name: 'own',
        model: 'gpt-4',
        ...(providerName !== undefined ? { providerName } : {}),
        run: () => Promise.resolve({ value: 'ok', usage: { inputTokens: 10, outputTokens: 2 } }),
      });
    expect(providerNames(await spansOf(own()))).toEqual(['_OTHER']);
    exporter.reset();
    expect(providerNames(await spansOf(own('aws.bedrock')))).toEqual(['aws.bedrock']);
  });

  it('tracing.providerName still overrides what the agent declared', async () => {
    const spans = await spansOf(extraction(sim()), {
      tracing: { tracer, providerName: 'gcp.gemini' },
    });
    expect(providerNames(spans)).toEqual(['gcp.gemini']);
  });

  it('the log records the provider on agent.invoked (and nothing for an agent that declares none)', async () => {
    rt = createRuntime({ db: ':memory:', clock: simulatedClock(), seed: 1, pricing: PRICING, cache: false });
    await rt.run(extraction(sim()), { text: 'Vendor: Acme Corp' } as never);
    const plain = agent({ name: 'plain', model: 'gpt-4', run: () => Promise.resolve({ value: 1 }) });
    await rt.run(plain, 1);
    const invoked = (await rt.store.query({ type: 'agent.invoked' })).map((e) => e.payload);
    expect(invoked).toMatchObject([
      { agent: 'vendor_extraction', provider: 'simulated' },
      { agent: 'plain' },
    ]);
    expect(invoked[1]).not.toHaveProperty('provider');
  });

  it('a bad providerName is refused naming the field and the fix', () => {
    for (const bad of ['', 'has space', 'x'.repeat(129), 42]) {
      let error: unknown;
      try {
        agent({
          name: 'a',
          model: 'gpt-4',
          providerName: bad as string,
          run: () => Promise.resolve({ value: 1 }),
        });
      } catch (e) {
        error = e;
      }
      expect(isConfigError(error)).toBe(true);
      expect((error as Error).message).toContain('agent "a".providerName');
      expect((error as Error).message).toContain('"openai"');
    }
  });
});

describe('genAiProviderName', () => {
  it.each([
    ['openai.chat', 'openai'],
    ['openai.responses', 'openai'],
    ['anthropic.messages', 'anthropic'],
    ['amazon-bedrock', 'aws.bedrock'],
    ['azure-openai.chat', 'azure.ai.openai'],
    ['google.generative-ai', 'gcp.gemini'],
    ['google.vertex.chat', 'gcp.vertex_ai'],
    ['mistral.chat', 'mistral_ai'],
    ['xai.chat', 'x_ai'],
    ['aws.bedrock', 'aws.bedrock'],
    ['azure.ai.inference', 'azure.ai.inference'],
    ['gcp.gemini', 'gcp.gemini'],
    ['simulated', 'simulated'],
    ['my-gateway.v2', 'my-gateway.v2'],
    ['constructor', 'constructor'],
  ])('%s → %s', (name, expected) => {
    expect(genAiProviderName(name)).toBe(expected);
  });
});
