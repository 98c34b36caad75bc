/**
 * Keel's one error classifier, on errors as SDKs, `fetch`, axios and undici really throw them, and
 * as a user's `agent({ run })` code passes them on: through `classifyError`, `categoryOf` and
 * `rt.run` (where the category drives retries, retry-after waits and the log).
 */
import { createServer } from 'node:net';
import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  InternalServerError,
  RateLimitError,
} from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import type { ErrorCategory } from '../../src/eventlog/events.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { MAX_CAUSE_DEPTH, classifyError } from '../../src/providers/classify.js';
import { ProviderError } from '../../src/providers/types.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent, AgentError } from '../../src/supervisor/agent.js';
import { categoryOf } from '../../src/supervisor/errors.js';

const NOW = Date.UTC(2026, 0, 1, 12);

/** An error with extra fields, as SDKs and HTTP clients build them. */
const err = (message: string, fields: Record<string, unknown>, cause?: unknown): Error =>
  Object.assign(new Error(message, cause === undefined ? {} : { cause }), fields);

/** An openai SDK `APIError` as the SDK builds it from a response. */
const openaiError = (status: number, headers: Record<string, string> = {}): APIError =>
  APIError.generate(status, { error: { message: `status ${status}` } }, undefined, new Headers(headers));

const dom = (name: string): Error => new DOMException('the operation was aborted', name);

interface Row {
  what: string;
  error: unknown;
  category: ErrorCategory;
  status?: number;
  retryAfterMs?: number;
}

const ROWS: Row[] = [
  // plain errors from user code
  { what: 'a plain new Error("boom")', error: new Error('boom'), category: 'unknown' },
  { what: 'a thrown string', error: 'boom', category: 'unknown' },
  { what: 'a thrown undefined', error: undefined, category: 'unknown' },
  {
    what: 'Object.assign(new Error("upstream 503"), { status: 503 })',
    error: err('upstream 503', { status: 503 }),
    category: 'provider_error',
    status: 503,
  },
  {
    what: 'status as a string "502"',
    error: err('bad gateway', { status: '502' }),
    category: 'provider_error',
    status: 502,
  },
  {
    what: 'statusCode 429 (got, undici)',
    error: err('slow down', { statusCode: 429 }),
    category: 'rate_limited',
    status: 429,
  },
  { what: 'status 408', error: err('request timeout', { status: 408 }), category: 'timeout', status: 408 },
  {
    what: 'status 400',
    error: err('bad request', { status: 400 }),
    category: 'validation_error',
    status: 400,
  },
  { what: 'status 413', error: err('too large', { status: 413 }), category: 'validation_error', status: 413 },
  {
    what: 'status 422',
    error: err('unprocessable', { status: 422 }),
    category: 'validation_error',
    status: 422,
  },
  { what: 'status 401', error: err('bad key', { status: 401 }), category: 'unknown', status: 401 },
  { what: 'status 404', error: err('no such model', { status: 404 }), category: 'unknown', status: 404 },
  { what: 'a 2xx status says nothing', error: err('odd', { status: 200 }), category: 'unknown' },
  { what: 'a non-HTTP number says nothing', error: err('odd', { status: 7 }), category: 'unknown' },
  // openai SDK
  {
    what: 'openai RateLimitError with retry-after seconds',
    error: openaiError(429, { 'retry-after': '2' }),
    category: 'rate_limited',
    status: 429,
    retryAfterMs: 2_000,
  },
  {
    what: 'openai RateLimitError with retry-after-ms (wins over retry-after)',
    error: openaiError(429, { 'retry-after-ms': '750', 'retry-after': '9' }),
    category: 'rate_limited',
    status: 429,
    retryAfterMs: 750,
  },
  {
    what: 'openai 503 with an HTTP-date retry-after',
    error: openaiError(503, { 'retry-after': new Date(NOW + 30_000).toUTCString() }),
    category: 'provider_error',
    status: 503,
    retryAfterMs: 30_000,
  },
  { what: 'openai BadRequestError', error: openaiError(400), category: 'validation_error', status: 400 },
  { what: 'openai AuthenticationError', error: openaiError(401), category: 'unknown', status: 401 },
  {
    what: 'openai APIConnectionError caused by ECONNRESET',
    error: new APIConnectionError({ cause: err('socket hang up', { code: 'ECONNRESET' }) }),
    category: 'provider_error',
  },
  {
    what: 'openai APIConnectionError caused by ETIMEDOUT',
    error: new APIConnectionError({ cause: err('connect ETIMEDOUT', { code: 'ETIMEDOUT' }) }),
    category: 'timeout',
  },
  {
    what: 'openai APIConnectionError with no cause',
    error: new APIConnectionError({}),
    category: 'provider_error',
  },
  { what: 'openai APIConnectionTimeoutError', error: new APIConnectionTimeoutError(), category: 'timeout' },
  { what: 'openai APIUserAbortError', error: new APIUserAbortError(), category: 'cancelled' },
  // fetch and undici
  {
    what: 'fetch TypeError("fetch failed") with cause.code ECONNREFUSED',
    error: new TypeError('fetch failed', {
      cause: err('connect ECONNREFUSED 127.0.0.1:1', { code: 'ECONNREFUSED' }),
    }),
    category: 'provider_error',
  },
  {
    what: 'fetch TypeError with an undici HeadersTimeoutError cause',
    error: new TypeError('fetch failed', {
      cause: Object.assign(err('Headers Timeout Error', { code: 'UND_ERR_HEADERS_TIMEOUT' }), {
        name: 'HeadersTimeoutError',
      }),
    }),
    category: 'timeout',
  },
  {
    what: 'undici SocketError (UND_ERR_SOCKET)',
    error: Object.assign(err('other side closed', { code: 'UND_ERR_SOCKET' }), { name: 'SocketError' }),
    category: 'provider_error',
  },
  {
    what: 'undici ConnectTimeoutError',
    error: err('Connect Timeout Error', { code: 'UND_ERR_CONNECT_TIMEOUT' }),
    category: 'timeout',
  },
  {
    what: 'undici RequestAbortedError',
    error: err('Request aborted', { code: 'UND_ERR_ABORTED' }),
    category: 'cancelled',
  },
  {
    what: 'undici ResponseStatusCodeError (statusCode + headers)',
    error: err('Response status code 429', {
      code: 'UND_ERR_RESPONSE_STATUS_CODE',
      statusCode: 429,
      headers: { 'retry-after': '4' },
    }),
    category: 'rate_limited',
    status: 429,
    retryAfterMs: 4_000,
  },
  { what: 'ETIMEDOUT', error: err('connect ETIMEDOUT', { code: 'ETIMEDOUT' }), category: 'timeout' },
  {
    what: 'EAI_AGAIN',
    error: err('getaddrinfo EAI_AGAIN', { code: 'EAI_AGAIN' }),
    category: 'provider_error',
  },
  { what: 'EPIPE', error: err('write EPIPE', { code: 'EPIPE' }), category: 'provider_error' },
  { what: 'an unrelated code (ENOENT)', error: err('no file', { code: 'ENOENT' }), category: 'unknown' },
  // axios
  {
    what: 'axios-like { response: { status: 503, headers } }',
    error: err('Request failed with status code 503', {
      isAxiosError: true,
      code: 'ERR_BAD_RESPONSE',
      response: { status: 503, headers: { 'Retry-After': '3' } },
    }),
    category: 'provider_error',
    status: 503,
    retryAfterMs: 3_000,
  },
  {
    what: 'axios-like response.headers with a get() (AxiosHeaders)',
    error: err('Request failed with status code 429', {
      response: {
        status: 429,
        headers: { get: (h: string) => (h === 'retry-after-ms' ? '125' : undefined) },
      },
    }),
    category: 'rate_limited',
    status: 429,
    retryAfterMs: 125,
  },
  {
    what: 'axios timeout (ECONNABORTED)',
    error: err('timeout of 1000ms exceeded', { code: 'ECONNABORTED' }),
    category: 'timeout',
  },
  // abort and timeout names
  { what: 'DOMException AbortError', error: dom('AbortError'), category: 'cancelled' },
  {
    what: 'DOMException TimeoutError (AbortSignal.timeout)',
    error: dom('TimeoutError'),
    category: 'timeout',
  },
  {
    what: 'an Error named AbortError',
    error: Object.assign(new Error('aborted'), { name: 'AbortError' }),
    category: 'cancelled',
  },
  // cause chains
  {
    what: "a wrapper whose cause's cause has status 503",
    error: new Error('vendor lookup failed', {
      cause: new Error('http', { cause: err('503', { status: 503 }) }),
    }),
    category: 'provider_error',
    status: 503,
  },
  {
    what: 'a plain Error wrapping a ProviderError keeps its category and retry-after',
    error: new Error('wrapped', {
      cause: new ProviderError('rate_limited', '429', { status: 429, retryAfterMs: 900 }),
    }),
    category: 'rate_limited',
    status: 429,
    retryAfterMs: 900,
  },
  {
    what: "Keel's own AgentError",
    error: new AgentError('hallucination', 'made up'),
    category: 'hallucination',
  },
];

describe('classifyError: one table for every source', () => {
  it.each(ROWS)('$what → $category', ({ error, category, status, retryAfterMs }) => {
    const c = classifyError(error, NOW);
    expect(c.category).toBe(category);
    expect(c.status).toBe(status);
    expect(c.retryAfterMs).toBe(retryAfterMs);
    expect(typeof c.message).toBe('string');
    expect(categoryOf(error)).toBe(category);
  });

  it('reads headers from a Headers instance, a plain object (any case) and arrays', () => {
    const headers = new Headers({ 'Retry-After': '1' });
    expect(classifyError(err('x', { status: 429, headers }), NOW).retryAfterMs).toBe(1_000);
    expect(classifyError(err('x', { status: 429, headers: { 'RETRY-AFTER': 5 } }), NOW).retryAfterMs).toBe(
      5_000,
    );
    expect(
      classifyError(err('x', { status: 429, headers: { 'retry-after': ['7', '8'] } }), NOW).retryAfterMs,
    ).toBe(7_000);
    expect(
      classifyError(err('x', { status: 429, headers: { 'retry-after': 'soon' } }), NOW).retryAfterMs,
    ).toBe(undefined);
  });

  it('keeps the usage an AgentError or ProviderError reports', () => {
    const usage = { inputTokens: 10, outputTokens: 2 };
    expect(classifyError(new AgentError('ocr_error', 'garbled', { usage }), NOW).usage).toEqual(usage);
    expect(classifyError(new ProviderError('malformed_output', 'x', { usage }), NOW).usage).toEqual(usage);
  });

  it('never throws, and stops on cyclic or overlong cause chains', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    Object.assign(a, { cause: b });
    expect(classifyError(a, NOW).category).toBe('unknown');

    // The status sits one link beyond the bound: not looked at.
    let deep: Error = err('deep', { status: 503 });
    for (let i = 0; i <= MAX_CAUSE_DEPTH; i++) deep = new Error(`wrap ${i}`, { cause: deep });
    expect(classifyError(deep, NOW).category).toBe('unknown');
    expect(classifyError(deep.cause as Error, NOW).category).toBe('provider_error');

    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('no reading me');
        },
      },
    );
    expect(classifyError(hostile, NOW).category).toBe('unknown');
    const getter = Object.defineProperty(new Error('g'), 'status', {
      get() {
        throw new Error('nope');
      },
    });
    expect(classifyError(getter, NOW).category).toBe('unknown');
    expect(classifyError({ toJSON: () => 1n }, NOW).category).toBe('unknown');
    expect(classifyError('\ud800 lone surrogate \u0000', NOW)).toEqual({
      category: 'unknown',
      message: '\ud800 lone surrogate \u0000',
    });
  });

  it('classifies a real fetch failure against a closed loopback port as provider_error', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const e: unknown = await fetch(`http://127.0.0.1:${port}/`).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TypeError);
    expect(classifyError(e, NOW).category).toBe('provider_error');
  });

  it('the SDK subclasses are what the table saw', () => {
    expect(openaiError(429)).toBeInstanceOf(RateLimitError);
    expect(openaiError(500)).toBeInstanceOf(InternalServerError);
  });
});

describe("errors thrown by a user's run() are classified in the runtime", () => {
  let rt: Runtime<SqliteEventStore> | undefined;
  afterEach(async () => {
    await rt?.close();
    rt = undefined;
  });

  it('an SDK-shaped 429 is rate_limited, retried after its retry-after header, and logged as such', async () => {
    const clock = simulatedClock(NOW);
    rt = createRuntime({
      db: ':memory:',
      clock,
      seed: 1,
      pricing: { sim: { inputPer1K: 0, outputPer1K: 0 } },
    });
    let calls = 0;
    const limited = agent({
      name: 'limited',
      model: 'sim',
      retry: { attempts: 2, baseDelayMs: 100, jitter: false },
      run: () => {
        calls++;
        return calls === 1
          ? Promise.reject(openaiError(429, { 'retry-after': '5' }))
          : Promise.resolve({ value: 'ok' });
      },
    });
    const p = rt.run(limited, {});
    await clock.advanceAsync(4_999);
    expect(calls).toBe(1);
    await clock.advanceAsync(1);
    await expect(p).resolves.toMatchObject({ value: 'ok' });
    const [retried] = rt.store.query({ type: 'agent.retried' });
    expect(retried?.payload).toMatchObject({ category: 'rate_limited', retryAfterMs: 5_000, delayMs: 5_000 });
  });

  it('a fetch failure with cause.code is provider_error in agent.failed and workflow.failed', async () => {
    const clock = simulatedClock(NOW);
    rt = createRuntime({
      db: ':memory:',
      clock,
      seed: 1,
      pricing: { sim: { inputPer1K: 0, outputPer1K: 0 } },
    });
    const down = agent({
      name: 'down',
      model: 'sim',
      run: () =>
        Promise.reject(
          new TypeError('fetch failed', { cause: err('connect ECONNREFUSED', { code: 'ECONNREFUSED' }) }),
        ),
    });
    await expect(rt.run(down, {})).rejects.toMatchObject({ category: 'provider_error' });
    expect(rt.store.query({ type: 'agent.failed' })[0]?.payload).toMatchObject({
      category: 'provider_error',
    });
    expect(rt.store.query({ type: 'workflow.failed' })[0]?.payload).toMatchObject({
      category: 'provider_error',
    });
  });
});
