/**
 * The OpenAI-compatible provider against a loopback server speaking the chat-completions wire format
 * from fixtures (test/fixtures/openai-wire): tools and `tool_calls`, `tool` role messages, streamed
 * server-sent events with usage in the last chunk, a 429 with `retry-after`, a connection dropped
 * mid-stream, and an abort mid-stream that leaves no socket or timer behind.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openaiCompatible } from '../../src/providers/openai.js';
import {
  isProviderError,
  type ModelProvider,
  type ProviderError,
  type ToolSpec,
} from '../../src/providers/types.js';

const fixture = (name: string): string =>
  readFileSync(new URL(`../fixtures/openai-wire/${name}`, import.meta.url), 'utf8');

interface Received {
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

let server: Server;
let baseURL: string;
let received: Received[];
let handle: (req: Received, res: ServerResponse) => void;

beforeEach(async () => {
  received = [];
  server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (raw += chunk));
    req.on('end', () => {
      const r: Received = { headers: req.headers, body: JSON.parse(raw) as Record<string, unknown> };
      received.push(r);
      handle(r, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});

afterEach(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const provider = (): ModelProvider => openaiCompatible({ baseURL, apiKey: 'sk-test', name: 'local' });
const signal = () => new AbortController().signal;

/** The SSE events of a fixture body, each `data: …\n\n` block as written. */
const events = (body: string): string[] => body.split(/(?<=\n\n)/).filter((e) => e.trim() !== '');

function sse(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
}

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (e) {
    if (isProviderError(e)) return e;
    throw e;
  }
  throw new Error('expected the call to fail');
}

const LOOKUP: ToolSpec = {
  name: 'order_lookup',
  description: 'Looks an order up by id',
  parameters: { type: 'object', properties: { orderId: { type: 'string' } }, required: ['orderId'] },
};

describe('openaiCompatible on the wire: tools', () => {
  it('offers tools as functions and reads tool_calls (content null) with parsed arguments', async () => {
    handle = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(fixture('tool-calls.json'));
    };
    const res = await provider().call(
      {
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'Where are A-1001 and A-1002?' }],
        tools: [LOOKUP],
      },
      { signal: signal() },
    );
    expect(received[0]?.body.tools).toEqual([
      {
        type: 'function',
        function: { name: 'order_lookup', description: LOOKUP.description, parameters: LOOKUP.parameters },
      },
    ]);
    expect(res.toolCalls).toEqual([
      { id: 'call_62136354', name: 'order_lookup', args: { orderId: 'A-1001' } },
      { id: 'call_62136355', name: 'order_lookup', args: { orderId: 'A-1002' } },
    ]);
    expect(res.finishReason).toBe('tool_calls');
    expect(res.output).toBe('');
    expect(res.usage).toEqual({ inputTokens: 82, outputTokens: 51 });
  });

  it('sends the assistant turn back with tool_calls and each result as a tool message with tool_call_id', async () => {
    handle = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'chatcmpl-2',
          object: 'chat.completion',
          created: 1741570284,
          model: 'gpt-4o-2024-08-06',
          choices: [{ index: 0, message: { role: 'assistant', content: 'Shipped.' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 120, completion_tokens: 3, total_tokens: 123 },
        }),
      );
    };
    await provider().call(
      {
        model: 'gpt-4o',
        tools: [LOOKUP],
        messages: [
          { role: 'user', content: 'Where is A-1001?' },
          {
            role: 'assistant',
            content: '',
            toolCalls: [{ id: 'call_1', name: 'order_lookup', args: { orderId: 'A-1001' } }],
          },
          { role: 'tool', toolCallId: 'call_1', toolName: 'order_lookup', content: '{"status":"shipped"}' },
        ],
      },
      { signal: signal() },
    );
    expect(received[0]?.body.messages).toEqual([
      { role: 'user', content: 'Where is A-1001?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            id: 'call_1',
            type: 'function',
            function: { name: 'order_lookup', arguments: '{"orderId":"A-1001"}' },
          },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: '{"status":"shipped"}' },
    ]);
  });

  it('a tool call without an id is malformed_output, not a crash', async () => {
    handle = (_req, res) => {
      const body = JSON.parse(fixture('tool-calls.json')) as {
        choices: { message: { tool_calls: Record<string, unknown>[] } }[];
      };
      delete body.choices[0]?.message.tool_calls[0]?.id;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const e = await failure(
      provider().call({ model: 'gpt-4o', input: 'x', tools: [LOOKUP] }, { signal: signal() }),
    );
    expect(e.category).toBe('malformed_output');
    expect(e.message).toContain('tool_calls[0]');
  });
});

describe('openaiCompatible on the wire: streaming', () => {
  it('asks for stream: true with include_usage, hands deltas over in order and takes usage from the last chunk', async () => {
    handle = (_req, res) => {
      sse(res);
      res.end(fixture('text-stream.sse'));
    };
    const deltas: string[] = [];
    const res = await provider().call(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Where is my order?' }] },
      { signal: signal(), onDelta: (t) => deltas.push(t) },
    );
    expect(received[0]?.body.stream).toBe(true);
    expect(received[0]?.body.stream_options).toEqual({ include_usage: true });
    expect(deltas).toEqual(['Your order', ' A-1001', ' ships today.']);
    expect(res).toEqual({
      output: 'Your order A-1001 ships today.',
      model: 'gpt-4o-mini-2024-07-18',
      usage: { inputTokens: 41, outputTokens: 7 },
      finishReason: 'stop',
    });
  });

  it('joins streamed tool-call fragments by index', async () => {
    handle = (_req, res) => {
      sse(res);
      // One event per write, as a server flushes them.
      const parts = events(fixture('tool-stream.sse'));
      for (const part of parts) res.write(part);
      res.end();
    };
    const deltas: string[] = [];
    const res = await provider().call(
      { model: 'gpt-4o', input: 'refund A-1001', tools: [LOOKUP] },
      { signal: signal(), onDelta: (t) => deltas.push(t) },
    );
    expect(deltas).toEqual([]);
    expect(res.toolCalls).toEqual([
      { id: 'call_DdmO9pD3xa9XTPNJ32zg2hcA', name: 'order_lookup', args: { orderId: 'A-1001' } },
      { id: 'call_9pD3xa9XTPNJ32zg2hcADdmO', name: 'refund', args: { orderId: 'A-1001', amount: 19.5 } },
    ]);
    expect(res.usage).toEqual({ inputTokens: 95, outputTokens: 40 });
    expect(res.finishReason).toBe('tool_calls');
  });

  it('a 429 on a stream request is rate_limited with retryAfterMs from retry-after', async () => {
    handle = (_req, res) => {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '7' });
      res.end(
        JSON.stringify({
          error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' },
        }),
      );
    };
    const e = await failure(
      provider().call({ model: 'gpt-4o', input: 'x' }, { signal: signal(), onDelta: () => undefined }),
    );
    expect(e.category).toBe('rate_limited');
    expect(e.retryAfterMs).toBe(7_000);
    expect(e.status).toBe(429);
  });

  it('a connection dropped mid-stream fails the call with provider_error after the deltas that arrived', async () => {
    handle = (_req, res) => {
      sse(res);
      const parts = events(fixture('text-stream.sse'));
      res.write(parts[0]);
      res.write(parts[1], () => res.socket?.destroy());
    };
    const deltas: string[] = [];
    const e = await failure(
      provider().call(
        { model: 'gpt-4o-mini', input: 'x' },
        { signal: signal(), onDelta: (t) => deltas.push(t) },
      ),
    );
    expect(e.category).toBe('provider_error');
    expect(deltas).toEqual(['Your order']);
  });

  it('a stream that ends cleanly but without a finish_reason is provider_error, never a half answer', async () => {
    handle = (_req, res) => {
      sse(res);
      const parts = events(fixture('text-stream.sse'));
      res.end(`${parts[1]}data: [DONE]\n\n`);
    };
    const e = await failure(
      provider().call({ model: 'gpt-4o-mini', input: 'x' }, { signal: signal(), onDelta: () => undefined }),
    );
    expect(e.category).toBe('provider_error');
    expect(e.message).toContain('partial answer was dropped');
  });

  it('aborting mid-stream rejects with cancelled at once and leaves no socket or timer open', async () => {
    const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    let socketClosed!: () => void;
    const closed = new Promise<void>((r) => (socketClosed = r));
    let socketGone!: Promise<void>;
    handle = (_req, res) => {
      res.on('close', () => socketClosed());
      const socket = res.socket as Socket;
      socketGone = new Promise<void>((r) => socket.once('close', () => r()));
      sse(res);
      res.write(events(fixture('text-stream.sse'))[1]); // then hangs
    };
    const controller = new AbortController();
    let firstDelta!: () => void;
    const streaming = new Promise<void>((r) => (firstDelta = r));
    const pending = provider().call(
      { model: 'gpt-4o-mini', input: 'x' },
      { signal: controller.signal, onDelta: () => firstDelta() },
    );
    await streaming;
    controller.abort(new Error('unsubscribed'));
    const e = await failure(pending);
    expect(e.category).toBe('cancelled');
    await closed; // the server saw the request go away, and its connection is closed, not pooled
    await socketGone;
    // (Node's fetch may then open a fresh idle keep-alive connection of its own pool, closed by its
    // keep-alive timeout; it carries no request and is not the provider's.)
    // No timer of the SDK's (its request timeout) is left behind.
    const timersAfter = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    expect(timersAfter).toBeLessThanOrEqual(timersBefore);
  });
});
