/**
 * The AI SDK provider with tools and streams, against the AI SDK's own mock model (`ai/test`):
 * tool calls out of `generateText`, tool messages in the prompt, `streamText` text deltas in order,
 * streamed tool calls, and a stream that breaks mid-way.
 */
import { APICallError } from 'ai';
import { MockLanguageModelV3, simulateReadableStream } from 'ai/test';
import { describe, expect, it } from 'vitest';
import { aiSdk } from '../../src/providers/ai-sdk.js';
import { isProviderError, type ProviderError, type ToolSpec } from '../../src/providers/types.js';

type MockOptions = NonNullable<ConstructorParameters<typeof MockLanguageModelV3>[0]>;
type DoGenerate = Extract<NonNullable<MockOptions['doGenerate']>, (...args: never[]) => unknown>;
type GenerateResult = Awaited<ReturnType<DoGenerate>>;
type DoStream = Extract<NonNullable<MockOptions['doStream']>, (...args: never[]) => unknown>;
type StreamPart = Awaited<ReturnType<DoStream>>['stream'] extends ReadableStream<infer P> ? P : never;

const USAGE = (input: number, output: number) => ({
  inputTokens: { total: input, noCache: input, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: output, text: output, reasoning: undefined },
});

const LOOKUP: ToolSpec = {
  name: 'order_lookup',
  description: 'Looks an order up by id',
  parameters: { type: 'object', properties: { orderId: { type: 'string' } }, required: ['orderId'] },
};

function toolTurn(): GenerateResult {
  return {
    content: [
      { type: 'tool-call', toolCallId: 'call_1', toolName: 'order_lookup', input: '{"orderId":"A-1"}' },
      { type: 'tool-call', toolCallId: 'call_2', toolName: 'order_lookup', input: '{"orderId":"A-2"}' },
    ],
    finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
    usage: USAGE(90, 40),
    response: { modelId: 'gpt-4o-2024-08-06' },
    warnings: [],
  };
}

const stream = (chunks: StreamPart[]) => ({ stream: simulateReadableStream({ chunks }) });

const textChunks = (...texts: string[]): StreamPart[] => [
  { type: 'stream-start', warnings: [] },
  { type: 'response-metadata', id: 'r1', modelId: 'gpt-4o-mini-2024-07-18' },
  { type: 'text-start', id: 't' },
  ...texts.map((delta): StreamPart => ({ type: 'text-delta', id: 't', delta })),
  { type: 'text-end', id: 't' },
  { type: 'finish', finishReason: { unified: 'stop', raw: 'stop' }, usage: USAGE(41, 7) },
];

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

describe('aiSdk provider with tools', () => {
  it('offers the tools without execute and returns the calls the model made, parallel ones included', async () => {
    const model = new MockLanguageModelV3({ doGenerate: toolTurn() });
    const res = await aiSdk(model).call(
      { model: 'gpt-4o', messages: [{ role: 'user', content: 'A-1 and A-2?' }], tools: [LOOKUP] },
      { signal: signal() },
    );
    const offered = model.doGenerateCalls[0]?.tools;
    expect(offered).toEqual([
      expect.objectContaining({ type: 'function', name: 'order_lookup', inputSchema: LOOKUP.parameters }),
    ]);
    expect(res.toolCalls).toEqual([
      { id: 'call_1', name: 'order_lookup', args: { orderId: 'A-1' } },
      { id: 'call_2', name: 'order_lookup', args: { orderId: 'A-2' } },
    ]);
    expect(res.finishReason).toBe('tool_calls');
    expect(res.usage).toEqual({ inputTokens: 90, outputTokens: 40 });
    expect(model.doGenerateCalls).toHaveLength(1); // one turn: Keel runs the loop, not the SDK
  });

  it('sends tool calls and tool results back as tool-call and tool-result parts', async () => {
    const model = new MockLanguageModelV3({
      doGenerate: {
        content: [{ type: 'text', text: '{"value":"shipped","confidence":0.9}' }],
        finishReason: { unified: 'stop', raw: 'stop' },
        usage: USAGE(120, 10),
        warnings: [],
      },
    });
    const res = await aiSdk(model).call(
      {
        model: 'gpt-4o',
        json: true,
        tools: [LOOKUP],
        messages: [
          { role: 'system', content: 'Answer in JSON.' },
          { role: 'user', content: 'Where is A-1?' },
          {
            role: 'assistant',
            content: '',
            toolCalls: [{ id: 'call_1', name: 'order_lookup', args: { orderId: 'A-1' } }],
          },
          { role: 'tool', toolCallId: 'call_1', toolName: 'order_lookup', content: '{"status":"shipped"}' },
        ],
      },
      { signal: signal() },
    );
    expect(res.output).toEqual({ value: 'shipped', confidence: 0.9 });
    expect(res.confidence).toBe(0.9);
    const prompt = model.doGenerateCalls[0]?.prompt ?? [];
    expect(prompt.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool']);
    expect(prompt[2]?.content).toEqual([
      expect.objectContaining({
        type: 'tool-call',
        toolCallId: 'call_1',
        toolName: 'order_lookup',
        input: { orderId: 'A-1' },
      }),
    ]);
    expect(prompt[3]?.content).toEqual([
      expect.objectContaining({
        type: 'tool-result',
        toolCallId: 'call_1',
        toolName: 'order_lookup',
        output: { type: 'text', value: '{"status":"shipped"}' },
      }),
    ]);
  });
});

describe('aiSdk provider streaming (streamText)', () => {
  it('hands text deltas over in order and resolves with the whole text and usage', async () => {
    const model = new MockLanguageModelV3({
      doStream: stream(textChunks('Your order', ' A-1', ' ships today.')),
    });
    const deltas: string[] = [];
    const res = await aiSdk(model).call(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Where is A-1?' }] },
      { signal: signal(), onDelta: (t) => deltas.push(t) },
    );
    expect(deltas).toEqual(['Your order', ' A-1', ' ships today.']);
    expect(res).toEqual({
      output: 'Your order A-1 ships today.',
      model: 'gpt-4o-mini-2024-07-18',
      usage: { inputTokens: 41, outputTokens: 7 },
      finishReason: 'stop',
    });
    expect(model.doGenerateCalls).toHaveLength(0);
    expect(model.doStreamCalls).toHaveLength(1);
  });

  it('streams tool calls as parts and returns them once the stream finishes', async () => {
    const model = new MockLanguageModelV3({
      doStream: stream([
        { type: 'stream-start', warnings: [] },
        { type: 'tool-input-start', id: 'call_1', toolName: 'order_lookup' },
        { type: 'tool-input-delta', id: 'call_1', delta: '{"orderId":' },
        { type: 'tool-input-delta', id: 'call_1', delta: '"A-1"}' },
        { type: 'tool-input-end', id: 'call_1' },
        { type: 'tool-call', toolCallId: 'call_1', toolName: 'order_lookup', input: '{"orderId":"A-1"}' },
        { type: 'finish', finishReason: { unified: 'tool-calls', raw: 'tool_calls' }, usage: USAGE(95, 20) },
      ]),
    });
    const res = await aiSdk(model).call(
      { model: 'gpt-4o', input: 'A-1?', tools: [LOOKUP] },
      { signal: signal(), onDelta: () => undefined },
    );
    expect(res.toolCalls).toEqual([{ id: 'call_1', name: 'order_lookup', args: { orderId: 'A-1' } }]);
    expect(res.finishReason).toBe('tool_calls');
    expect(res.usage).toEqual({ inputTokens: 95, outputTokens: 20 });
  });

  it('a stream that breaks mid-way fails with its category after the deltas that arrived', async () => {
    const parts = textChunks('Your order', ' A-1', ' ships today.').slice(0, 4);
    const model = new MockLanguageModelV3({
      doStream: {
        stream: new ReadableStream<StreamPart>({
          pull(controller) {
            const next = parts.shift();
            if (next) controller.enqueue(next);
            else controller.error(Object.assign(new Error('other side closed'), { code: 'ECONNRESET' }));
          },
        }),
      },
    });
    const deltas: string[] = [];
    const e = await failure(
      aiSdk(model).call(
        { model: 'gpt-4o-mini', input: 'x' },
        { signal: signal(), onDelta: (t) => deltas.push(t) },
      ),
    );
    expect(e.category).toBe('provider_error');
    expect(deltas).toEqual(['Your order']);
  });

  it('an error part in the stream (a 429 from the API) is rate_limited with its retry-after', async () => {
    const model = new MockLanguageModelV3({
      doStream: stream([
        { type: 'stream-start', warnings: [] },
        {
          type: 'error',
          error: new APICallError({
            message: 'HTTP 429',
            url: 'https://api.example.test/v1/chat/completions',
            requestBodyValues: {},
            statusCode: 429,
            responseHeaders: { 'retry-after': '3' },
            isRetryable: true,
          }),
        },
      ]),
    });
    const e = await failure(
      aiSdk(model).call({ model: 'gpt-4o-mini', input: 'x' }, { signal: signal(), onDelta: () => undefined }),
    );
    expect(e.category).toBe('rate_limited');
    expect(e.retryAfterMs).toBe(3_000);
  });
});
