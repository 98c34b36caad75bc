import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/core/errors.js';
import { openaiCompatible } from '../../src/providers/openai.js';
import { isProviderError, type ModelProvider, type ProviderError } from '../../src/providers/types.js';

/** A loopback server answering in the chat-completions format; each test sets `handle`. */
interface Received {
  path: string;
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
      const r: Received = {
        path: req.url ?? '',
        headers: req.headers,
        body: JSON.parse(raw) as Record<string, unknown>,
      };
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

function completion(content: string, usage = { prompt_tokens: 812, completion_tokens: 64 }) {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1_767_225_600,
    model: 'gpt-4-0613',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop', logprobs: null }],
    usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
  };
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

const provider = (): ModelProvider =>
  openaiCompatible({ baseURL, apiKey: 'sk-test', name: 'local', defaultHeaders: { 'x-team': 'billing' } });

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (e) {
    if (isProviderError(e)) return e;
    throw e;
  }
  throw new Error('expected the call to fail');
}

const signal = () => new AbortController().signal;

describe('openaiCompatible provider', () => {
  it('maps a chat completion to output, model and usage', async () => {
    handle = (_req, res) => send(res, 200, completion('Acme Corp'));
    const res = await provider().call(
      {
        model: 'gpt-4',
        messages: [{ role: 'user', content: 'Who sent invoice INV-1?' }],
        maxOutputTokens: 100,
      },
      { signal: signal() },
    );
    expect(res).toEqual({
      output: 'Acme Corp',
      model: 'gpt-4-0613',
      usage: { inputTokens: 812, outputTokens: 64 },
      finishReason: 'stop',
    });
    const [req] = received;
    expect(req?.path).toBe('/v1/chat/completions');
    expect(req?.headers.authorization).toBe('Bearer sk-test');
    expect(req?.headers['x-team']).toBe('billing');
    expect(req?.body).toMatchObject({ model: 'gpt-4', max_completion_tokens: 100 });
    expect(req?.body.response_format).toBeUndefined();
  });

  it('asks for a JSON object when request.json is set and reads confidence from it', async () => {
    handle = (_req, res) => send(res, 200, completion('{"value":{"vendor":"Acme"},"confidence":0.88}'));
    const res = await provider().call(
      { model: 'gpt-4', input: { invoice: 'INV-1' }, json: true },
      { signal: signal() },
    );
    expect(res.output).toEqual({ value: { vendor: 'Acme' }, confidence: 0.88 });
    expect(res.confidence).toBe(0.88);
    const body = received[0]?.body;
    expect(body?.response_format).toEqual({ type: 'json_object' });
    // OpenAI's JSON mode needs the word JSON in the messages; the input travels as canonical JSON
    expect(body?.messages).toEqual([
      { role: 'system', content: 'Respond with a single JSON object.' },
      { role: 'user', content: '{"invoice":"INV-1"}' },
    ]);
  });

  it('classifies a 429 as rate_limited with retryAfterMs from retry-after (seconds) or retry-after-ms', async () => {
    handle = (_req, res) =>
      send(res, 429, { error: { message: 'Rate limit reached', type: 'requests' } }, { 'retry-after': '2' });
    const e = await failure(provider().call({ model: 'gpt-4', input: 'x' }, { signal: signal() }));
    expect(e.category).toBe('rate_limited');
    expect(e.status).toBe(429);
    expect(e.retryAfterMs).toBe(2_000);
    expect(received).toHaveLength(1); // the SDK did not retry

    handle = (_req, res) =>
      send(res, 429, { error: { message: 'slow down' } }, { 'retry-after-ms': '750', 'retry-after': '1' });
    const ms = await failure(provider().call({ model: 'gpt-4', input: 'x' }, { signal: signal() }));
    expect(ms.retryAfterMs).toBe(750);
  });

  it('classifies a 500 as provider_error without retrying, and a 401 as unknown', async () => {
    handle = (_req, res) => send(res, 500, { error: { message: 'The server had an error' } });
    const e = await failure(provider().call({ model: 'gpt-4', input: 'x' }, { signal: signal() }));
    expect(e.category).toBe('provider_error');
    expect(e.status).toBe(500);
    expect(received).toHaveLength(1);

    handle = (_req, res) => send(res, 401, { error: { message: 'Incorrect API key provided' } });
    expect(
      (await failure(provider().call({ model: 'gpt-4', input: 'x' }, { signal: signal() }))).category,
    ).toBe('unknown');
  });

  it('classifies an unreachable server as provider_error', async () => {
    const port = (server.address() as AddressInfo).port;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const gone = openaiCompatible({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'sk-test' });
    const e = await failure(gone.call({ model: 'gpt-4', input: 'x' }, { signal: signal() }));
    expect(e.category).toBe('provider_error');
    server = createServer(); // afterEach closes this placeholder
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  it('a hung request rejects with cancelled as soon as the signal aborts, closing the socket', async () => {
    let arrived!: () => void;
    const requestArrived = new Promise<void>((r) => (arrived = r));
    let socketClosed!: () => void;
    const closed = new Promise<void>((r) => (socketClosed = r));
    handle = (_req, res) => {
      res.on('close', () => socketClosed());
      arrived(); // and never answer
    };
    const controller = new AbortController();
    const pending = provider().call({ model: 'gpt-4', input: 'x' }, { signal: controller.signal });
    await requestArrived;
    controller.abort(new Error('attempt timed out'));
    const e = await failure(pending);
    expect(e.category).toBe('cancelled');
    await closed; // the server saw the connection go away
  });

  it('classifies non-JSON text as malformed_output when JSON was asked, keeping its usage', async () => {
    handle = (_req, res) =>
      send(res, 200, completion('The vendor is {Acme', { prompt_tokens: 90, completion_tokens: 7 }));
    const e = await failure(
      provider().call({ model: 'gpt-4', input: 'x', json: true }, { signal: signal() }),
    );
    expect(e.category).toBe('malformed_output');
    expect(e.details.usage).toEqual({ inputTokens: 90, outputTokens: 7 });
  });

  it('rejects a bad baseURL or a missing apiKey naming the field', () => {
    const field = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isConfigError(e) ? e.field : 'not a ConfigError';
      }
      return 'no error';
    };
    expect(field(() => openaiCompatible({ baseURL: 'api.openai.com', apiKey: 'k' }))).toBe(
      'openaiCompatible.baseURL',
    );
    expect(field(() => openaiCompatible({ baseURL: 'https://api.openai.com/v1', apiKey: '' }))).toBe(
      'openaiCompatible.apiKey',
    );
  });
});
