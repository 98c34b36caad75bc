import { APICallError } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { describe, expect, it } from 'vitest';
import { aiSdk } from '../../src/providers/ai-sdk.js';
import { isProviderError, type ProviderError } from '../../src/providers/types.js';

type MockOptions = NonNullable<ConstructorParameters<typeof MockLanguageModelV3>[0]>;
type DoGenerate = Extract<NonNullable<MockOptions['doGenerate']>, (...args: never[]) => unknown>;
type GenerateResult = Awaited<ReturnType<DoGenerate>>;

function answer(text: string, inputTokens = 120, outputTokens = 30): GenerateResult {
  return {
    content: [{ type: 'text', text }],
    finishReason: { unified: 'stop', raw: 'stop' },
    usage: {
      inputTokens: { total: inputTokens, noCache: inputTokens, cacheRead: undefined, cacheWrite: undefined },
      outputTokens: { total: outputTokens, text: outputTokens, reasoning: undefined },
    },
    response: { modelId: 'gpt-4o-2024-08-06' },
    warnings: [],
  };
}

function apiError(statusCode: number, responseHeaders: Record<string, string> = {}): APICallError {
  return new APICallError({
    message: `HTTP ${statusCode}`,
    url: 'https://api.example.test/v1/chat/completions',
    requestBodyValues: {},
    statusCode,
    responseHeaders,
    isRetryable: statusCode === 429 || statusCode >= 500,
  });
}

const signal = () => new AbortController().signal;

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (e) {
    if (isProviderError(e)) return e;
    throw e;
  }
  throw new Error('expected the call to fail');
}

describe('aiSdk provider', () => {
  it('returns text output, the answering model and usage', async () => {
    const model = new MockLanguageModelV3({ provider: 'mock.chat', doGenerate: answer('Acme Corp') });
    const provider = aiSdk(model);
    const res = await provider.call(
      {
        model: 'gpt-4',
        messages: [
          { role: 'system', content: 'Extract the vendor.' },
          { role: 'user', content: 'Invoice from Acme Corp' },
        ],
        maxOutputTokens: 50,
      },
      { signal: signal() },
    );
    expect(provider.name).toBe('mock.chat');
    expect(res).toEqual({
      output: 'Acme Corp',
      model: 'gpt-4o-2024-08-06',
      usage: { inputTokens: 120, outputTokens: 30 },
      finishReason: 'stop',
    });
    const sent = model.doGenerateCalls[0];
    expect(sent?.prompt.map((m) => m.role)).toEqual(['system', 'user']);
    expect(sent?.maxOutputTokens).toBe(50);
  });

  it('asks for JSON when request.json is set, parses it and reads confidence', async () => {
    const model = new MockLanguageModelV3({
      doGenerate: answer('{"value":{"vendor":"Acme"},"confidence":0.93}'),
    });
    const res = await aiSdk(model).call(
      { model: 'gpt-4', input: { invoice: 'INV-1' }, json: true },
      { signal: signal() },
    );
    expect(res.output).toEqual({ value: { vendor: 'Acme' }, confidence: 0.93 });
    expect(res.confidence).toBe(0.93);
    expect(model.doGenerateCalls[0]?.responseFormat).toMatchObject({ type: 'json' });
    // no messages: the input is sent as canonical JSON
    expect(JSON.stringify(model.doGenerateCalls[0]?.prompt)).toContain('INV-1');
  });

  it('routes by request.model when given a model factory', async () => {
    const cheap = new MockLanguageModelV3({ modelId: 'cheap', doGenerate: answer('from cheap') });
    const strong = new MockLanguageModelV3({ modelId: 'strong', doGenerate: answer('from strong') });
    const provider = aiSdk((id) => (id === 'gpt-3.5-turbo' ? cheap : strong), { name: 'openai' });
    const res = await provider.call({ model: 'gpt-3.5-turbo', input: 'x' }, { signal: signal() });
    expect(res.output).toBe('from cheap');
    expect(strong.doGenerateCalls).toHaveLength(0);
    expect(provider.name).toBe('openai');
  });

  it('classifies a 429 as rate_limited with retry-after, without SDK retries', async () => {
    const model = new MockLanguageModelV3({
      doGenerate: () => Promise.reject(apiError(429, { 'retry-after': '3' })),
    });
    const e = await failure(aiSdk(model).call({ model: 'gpt-4', input: 'x' }, { signal: signal() }));
    expect(e.category).toBe('rate_limited');
    expect(e.status).toBe(429);
    expect(e.retryAfterMs).toBe(3_000);
    expect(model.doGenerateCalls).toHaveLength(1);

    const ms = new MockLanguageModelV3({
      doGenerate: () => Promise.reject(apiError(429, { 'Retry-After-Ms': '250' })),
    });
    expect(
      (await failure(aiSdk(ms).call({ model: 'gpt-4', input: 'x' }, { signal: signal() }))).retryAfterMs,
    ).toBe(250);
  });

  it('classifies 5xx as provider_error and other 4xx as unknown', async () => {
    const five = new MockLanguageModelV3({ doGenerate: () => Promise.reject(apiError(503)) });
    const e = await failure(aiSdk(five).call({ model: 'gpt-4', input: 'x' }, { signal: signal() }));
    expect(e.category).toBe('provider_error');
    expect(e.status).toBe(503);
    expect(five.doGenerateCalls).toHaveLength(1);

    const auth = new MockLanguageModelV3({ doGenerate: () => Promise.reject(apiError(401)) });
    expect(
      (await failure(aiSdk(auth).call({ model: 'gpt-4', input: 'x' }, { signal: signal() }))).category,
    ).toBe('unknown');
  });

  it('classifies unparseable JSON as malformed_output, keeping the usage it cost', async () => {
    const model = new MockLanguageModelV3({ doGenerate: answer('Sure! The vendor is Acme.', 200, 12) });
    const e = await failure(
      aiSdk(model).call({ model: 'gpt-4', input: 'x', json: true }, { signal: signal() }),
    );
    expect(e.category).toBe('malformed_output');
    expect(e.details.usage).toEqual({ inputTokens: 200, outputTokens: 12 });
  });

  it('passes the abort signal through and rejects with cancelled when it aborts', async () => {
    let started!: () => void;
    const reached = new Promise<void>((r) => (started = r));
    let modelSawAbort = false;
    const model = new MockLanguageModelV3({
      doGenerate: ({ abortSignal }) =>
        new Promise<GenerateResult>((_resolve, reject) => {
          abortSignal?.addEventListener('abort', () => {
            modelSawAbort = true;
            reject(new DOMException('aborted', 'AbortError'));
          });
          started();
        }),
    });
    const controller = new AbortController();
    const pending = aiSdk(model).call({ model: 'gpt-4', input: 'x' }, { signal: controller.signal });
    await reached;
    controller.abort();
    const e = await failure(pending);
    expect(e.category).toBe('cancelled');
    expect(modelSawAbort).toBe(true);
  });
});
