/**
 * Issue 18's "done when": `llmAgent` + `openaiCompatible` against a loopback server speaking the
 * chat-completions wire format. A dated model id in the answer is priced at its base rates; a
 * malformed body fails the workflow cleanly with `malformed_output`, logged, and the process lives
 * (no unhandled rejection). The AI SDK adapter does the same for the equivalent answers of the
 * `ai` package's mock model.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { APICallError, JSONParseError, TypeValidationError } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { llmAgent } from '../../agents/llm.js';
import { simulatedClock } from '../../src/core/clock.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { aiSdk } from '../../src/providers/ai-sdk.js';
import { openaiCompatible } from '../../src/providers/openai.js';
import type { ModelProvider } from '../../src/providers/types.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';

/** What the server answers: status, content type and raw body text. */
interface Reply {
  status?: number;
  contentType?: string;
  body: string;
}

let server: Server;
let baseURL: string;
let reply: Reply;

beforeEach(async () => {
  server = createServer((req, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(reply.status ?? 200, { 'content-type': reply.contentType ?? 'application/json' });
      res.end(reply.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});

afterEach(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

// The process must survive every answer: record any unhandled rejection and fail on it.
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(() => process.off('unhandledRejection', onUnhandled));

let rt: Runtime<SqliteEventStore> | undefined;
afterEach(async () => {
  await rt?.close();
  rt = undefined;
});

const completion = (fields: Record<string, unknown>): string =>
  JSON.stringify({
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1_767_225_600,
    model: 'gpt-4o-2024-08-06',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: '{"value":{"vendor":"Acme"},"confidence":0.9}' },
        finish_reason: 'stop',
      },
    ],
    usage: { prompt_tokens: 1_000, completion_tokens: 100, total_tokens: 1_100 },
    ...fields,
  });

const vendor = (provider: ModelProvider) =>
  llmAgent({
    name: 'vendor_extraction',
    taskType: 'vendor',
    model: 'gpt-4o',
    provider,
    prompt: (input: { text: string }) => `Who issued this invoice?\n${input.text}`,
    schema: z.object({ vendor: z.string().min(1) }),
  });

function runtime(): Runtime<SqliteEventStore> {
  rt = createRuntime({ db: ':memory:', clock: simulatedClock(Date.UTC(2026, 0, 1, 12)), seed: 1 });
  return rt;
}

const local = (): ModelProvider => openaiCompatible({ baseURL, apiKey: 'sk-test', name: 'local' });

describe('llmAgent + openaiCompatible against a chat-completions server', () => {
  it('a dated model id in the answer (gpt-4o-2024-08-06 for gpt-4o) completes, priced at gpt-4o rates', async () => {
    reply = { body: completion({}) };
    const rt = runtime();
    const result = await rt.run(vendor(local()), { text: 'ACME Corp invoice #42' });
    expect(result.value).toEqual({ vendor: 'Acme' });
    // gpt-4o: $2.50 / $10 per 1M tokens → 1,000 in + 100 out = $0.0025 + $0.001.
    expect(result.costUsd).toBeCloseTo(0.0035, 12);
    expect(rt.store.query({ type: 'cost.incurred' })[0]?.payload).toMatchObject({
      model: 'gpt-4o-2024-08-06',
      costUsd: expect.closeTo(0.0035, 12) as number,
    });
    expect(rt.store.query({ type: 'pricing.unknown_model' })).toEqual([]);
    expect(rt.store.query({ type: 'workflow.completed' })).toHaveLength(1);
    expect(unhandled).toEqual([]);
  });

  it.each<[string, Reply]>([
    ['a body that is not JSON', { body: 'upstream says: <html>oops</html>' }],
    ['a text/plain body', { contentType: 'text/plain', body: 'not a completion' }],
    ['a JSON null body', { body: 'null' }],
    [
      'JSON without choices',
      { body: JSON.stringify({ id: 'x', object: 'chat.completion', model: 'gpt-4o' }) },
    ],
    ['empty choices', { body: completion({ choices: [] }) }],
    [
      'content: null',
      {
        body: completion({
          choices: [{ index: 0, message: { role: 'assistant', content: null }, finish_reason: 'stop' }],
        }),
      },
    ],
    ['negative prompt_tokens', { body: completion({ usage: { prompt_tokens: -5, completion_tokens: 10 } }) }],
    [
      'NaN completion_tokens (as a string)',
      { body: completion({ usage: { prompt_tokens: 5, completion_tokens: 'NaN' } }) },
    ],
    [
      'an overflowing token count (1e999 → Infinity)',
      { body: completion({}).replace('"prompt_tokens":1000', '"prompt_tokens":1e999') },
    ],
    ['a non-string model id', { body: completion({ model: 42 }) }],
  ])('%s fails the workflow with malformed_output, logged, and the process lives', async (_what, r) => {
    reply = r;
    const rt = runtime();
    const error: unknown = await rt
      .run(vendor(local()), { text: 'ACME Corp invoice #42' })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ category: 'malformed_output' });
    expect(rt.store.query({ type: 'agent.failed' })[0]?.payload).toMatchObject({
      agent: 'vendor_extraction',
      category: 'malformed_output',
    });
    expect(rt.store.query({ type: 'workflow.failed' })[0]?.payload).toMatchObject({
      category: 'malformed_output',
    });
    // The runtime still serves the next, good answer.
    reply = { body: completion({}) };
    await expect(rt.run(vendor(local()), { text: 'again' })).resolves.toMatchObject({
      value: { vendor: 'Acme' },
    });
    expect(unhandled).toEqual([]);
  });
});

type MockOptions = NonNullable<ConstructorParameters<typeof MockLanguageModelV3>[0]>;
type DoGenerate = Extract<NonNullable<MockOptions['doGenerate']>, (...args: never[]) => unknown>;
type GenerateResult = Awaited<ReturnType<DoGenerate>>;

const mockAnswer = (
  inputTokens: number,
  outputTokens: number,
  modelId = 'gpt-4o-2024-08-06',
): GenerateResult => ({
  content: [{ type: 'text', text: '{"value":{"vendor":"Acme"},"confidence":0.9}' }],
  finishReason: { unified: 'stop', raw: 'stop' },
  usage: {
    inputTokens: { total: inputTokens, noCache: inputTokens, cacheRead: undefined, cacheWrite: undefined },
    outputTokens: { total: outputTokens, text: outputTokens, reasoning: undefined },
  },
  response: { modelId },
  warnings: [],
});

describe('llmAgent + aiSdk on the ai package mock model', () => {
  it('a dated model id is priced at its base rates', async () => {
    const model = new MockLanguageModelV3({ doGenerate: () => Promise.resolve(mockAnswer(1_000, 100)) });
    const rt = runtime();
    const result = await rt.run(vendor(aiSdk(model)), { text: 'ACME' });
    expect(result.costUsd).toBeCloseTo(0.0035, 12);
  });

  it.each([
    ['negative input tokens', -1, 10],
    ['NaN output tokens', 10, Number.NaN],
    ['infinite input tokens', Number.POSITIVE_INFINITY, 10],
  ])('%s fail the workflow with malformed_output and the process lives', async (_what, input, output) => {
    const model = new MockLanguageModelV3({ doGenerate: () => Promise.resolve(mockAnswer(input, output)) });
    const rt = runtime();
    const error: unknown = await rt.run(vendor(aiSdk(model)), { text: 'ACME' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ category: 'malformed_output' });
    expect(rt.store.query({ type: 'workflow.failed' })[0]?.payload).toMatchObject({
      category: 'malformed_output',
    });
    expect(unhandled).toEqual([]);
  });

  /** What the AI SDK's providers throw when a 200 response's body is not a valid answer. */
  const invalidResponse = (cause: Error, statusCode = 200): APICallError =>
    new APICallError({
      message: 'Invalid JSON response',
      cause,
      statusCode,
      url: 'http://127.0.0.1/v1/chat/completions',
      requestBodyValues: {},
      responseBody: '<html>oops</html>',
    });

  it.each([
    [
      'a body that is not JSON',
      invalidResponse(
        new JSONParseError({ text: '<html>oops</html>', cause: new SyntaxError('Unexpected token <') }),
      ),
    ],
    [
      'JSON that is not a completion',
      invalidResponse(new TypeValidationError({ value: { id: 'x' }, cause: new Error('choices: Required') })),
    ],
  ])('%s (a 200 the SDK could not read) fails the workflow with malformed_output', async (_what, thrown) => {
    const model = new MockLanguageModelV3({ doGenerate: () => Promise.reject(thrown) });
    const rt = runtime();
    const error: unknown = await rt.run(vendor(aiSdk(model)), { text: 'ACME' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ category: 'malformed_output' });
    expect(rt.store.query({ type: 'agent.failed' })[0]?.payload).toMatchObject({
      category: 'malformed_output',
    });
    expect(unhandled).toEqual([]);
  });

  it('a 503 whose error body is not JSON stays provider_error', async () => {
    const thrown = invalidResponse(new JSONParseError({ text: '<html>', cause: new SyntaxError('x') }), 503);
    const model = new MockLanguageModelV3({ doGenerate: () => Promise.reject(thrown) });
    const error: unknown = await runtime()
      .run(vendor(aiSdk(model)), { text: 'ACME' })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ category: 'provider_error' });
  });
});
