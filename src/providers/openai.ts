/**
 * `openaiCompatible()`: a {@link ModelProvider} for any server speaking OpenAI's chat-completions API
 * (OpenAI, Azure-style gateways, vLLM, Ollama, LiteLLM, ...), on the official `openai` SDK. Keel owns
 * retries and timeouts: the SDK's retries are off and its own timeout is set far out of the way.
 */
import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIUserAbortError,
  OpenAI,
  type ClientOptions,
} from 'openai';
import { realClock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import { canonicalJson } from '../core/json.js';
import {
  cancelledError,
  classifyError,
  confidenceOf,
  parseJsonOutput,
  raceAbort,
  reportedUsage,
} from './classify.js';
import {
  ProviderError,
  isProviderError,
  type CallContext,
  type ChatMessage,
  type ModelProvider,
  type ModelRequest,
  type ModelResponse,
} from './types.js';
import type { Usage } from '../eventlog/events.js';

/** Options of {@link openaiCompatible}. */
export interface OpenAICompatibleOptions {
  /** API root including the version path, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`. */
  baseURL: string;
  /** Bearer token. Servers that ignore it (a local Ollama) still need a non-empty string, e.g. `none`. */
  apiKey: string;
  /** Provider name for telemetry (`gen_ai.provider.name`) and error messages (default `openai`). */
  name?: string;
  /** Headers sent with every request (default: none). */
  defaultHeaders?: Record<string, string>;
  /** A `fetch` implementation, e.g. to add a proxy or record traffic (default: the global `fetch`). */
  fetch?: ClientOptions['fetch'];
}

/**
 * The SDK's own request timeout, in ms: one day, so Keel's per-attempt timeout (which aborts the
 * signal) always fires first. Node timers cannot exceed ~24.8 days.
 */
const SDK_TIMEOUT_MS = 86_400_000;

/**
 * An OpenAI-compatible chat-completions provider. Sends `request.messages` (or the input as
 * canonical JSON), asks for `response_format: { type: 'json_object' }` when `request.json` is set
 * (adding a one-line system instruction when no message mentions JSON, as OpenAI requires), caps
 * output with `max_completion_tokens`, and reads `confidence` from a JSON answer when present.
 *
 * Failures are classified by Keel's one classifier (`classifyError`): 429 is `rate_limited` with
 * `retryAfterMs` from `retry-after-ms` / `retry-after`; 408 `timeout`; 5xx and connection failures
 * `provider_error`; 400/413/415/422 `validation_error`; other 4xx `unknown`; an aborted signal
 * `cancelled`. A body that is not a chat completion (not JSON, no `choices`, `content: null`, token
 * counts that are negative or not finite) and non-JSON text when JSON was asked are
 * `malformed_output`.
 *
 * @example
 * const provider = openaiCompatible({ baseURL: 'https://api.openai.com/v1', apiKey: process.env.OPENAI_API_KEY ?? '' });
 * const res = await provider.call({ model: 'gpt-4o-mini', messages, json: true }, { signal });
 */
export function openaiCompatible(options: OpenAICompatibleOptions): ModelProvider {
  if (typeof options?.baseURL !== 'string' || !URL.canParse(options.baseURL))
    throw new ConfigError(
      'openaiCompatible.baseURL',
      `must be an absolute URL such as "https://api.openai.com/v1", got ${String(options?.baseURL)}`,
    );
  if (typeof options.apiKey !== 'string' || options.apiKey.length === 0)
    throw new ConfigError(
      'openaiCompatible.apiKey',
      'must be a non-empty string; for a server that needs no key pass any placeholder such as "none"',
    );
  const name = options.name ?? 'openai';
  const client = new OpenAI({
    baseURL: options.baseURL,
    apiKey: options.apiKey,
    defaultHeaders: options.defaultHeaders,
    fetch: options.fetch,
    maxRetries: 0,
    timeout: SDK_TIMEOUT_MS,
  });

  const complete = async (request: ModelRequest, context: CallContext): Promise<ModelResponse> => {
    const { signal } = context;
    try {
      const completion = await client.chat.completions.create(
        {
          model: request.model,
          messages: toMessages(request),
          ...(request.json ? { response_format: { type: 'json_object' as const } } : {}),
          ...(request.maxOutputTokens !== undefined
            ? { max_completion_tokens: request.maxOutputTokens }
            : {}),
          ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
        },
        { signal },
      );
      const { text, model, usage } = answerOf(completion, name, request.model);
      if (!request.json) return { output: text, model, usage };
      const output = parseJsonOutput(text, name, usage);
      return { output, model, usage, confidence: confidenceOf(output) };
    } catch (e) {
      throw classify(e, name, signal, (context.clock ?? realClock).now());
    }
  };

  return {
    name,
    call(request, context) {
      if (context.signal.aborted) return Promise.reject(cancelledError(name, context.signal));
      return raceAbort(complete(request, context), context.signal, name);
    },
  };
}

const JSON_INSTRUCTION: ChatMessage = { role: 'system', content: 'Respond with a single JSON object.' };

function toMessages(request: ModelRequest): ChatMessage[] {
  const messages: ChatMessage[] =
    request.messages && request.messages.length > 0
      ? request.messages.map((m) => ({ role: m.role, content: m.content }))
      : [{ role: 'user', content: canonicalJson(request.input ?? null) }];
  if (request.json && !messages.some((m) => /json/i.test(m.content))) messages.unshift(JSON_INSTRUCTION);
  return messages;
}

/**
 * What a chat completion says, checked: a body that is not a completion (a string, no `choices`, a
 * choice without text content), a non-string `model`, or token counts that are not finite numbers
 * >= 0 are `malformed_output` — a server's bad answer fails that attempt, never the process. The
 * usage is kept when it is sound, since the call cost it.
 */
function answerOf(
  completion: unknown,
  name: string,
  requested: string,
): { text: string; model: string; usage: Usage } {
  const body =
    typeof completion === 'object' && completion !== null
      ? (completion as Record<string, unknown>)
      : undefined;
  const reported = body?.usage;
  const counts =
    typeof reported === 'object' && reported !== null ? (reported as Record<string, unknown>) : {};
  const usage = reportedUsage(counts.prompt_tokens, counts.completion_tokens, name);
  const malformed = (what: string): ProviderError =>
    new ProviderError(
      'malformed_output',
      `${name}: the API answered ${what}; expected a chat completion with choices[0].message.content`,
      {
        usage,
      },
    );
  if (body === undefined) throw malformed(`a body that is not a JSON object (${describe(completion)})`);
  const choices = body.choices;
  if (!Array.isArray(choices) || choices.length === 0) throw malformed('a JSON object without choices');
  const first: unknown = choices[0];
  const message =
    typeof first === 'object' && first !== null ? (first as Record<string, unknown>).message : undefined;
  const content =
    typeof message === 'object' && message !== null
      ? (message as Record<string, unknown>).content
      : undefined;
  if (typeof content !== 'string')
    throw malformed(`choices[0].message.content = ${describe(content)}, not text`);
  const model = body.model;
  if (model !== undefined && model !== null && typeof model !== 'string')
    throw malformed(`model = ${describe(model)}`);
  return { text: content, model: model || requested, usage };
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
  return v === null || typeof v !== 'object' ? String(v) : Array.isArray(v) ? 'an array' : 'an object';
}

function classify(error: unknown, name: string, signal: AbortSignal, nowMs: number): ProviderError {
  if (isProviderError(error)) return error;
  if (signal.aborted || error instanceof APIUserAbortError) return cancelledError(name, signal, error);
  if (error instanceof APIConnectionTimeoutError)
    return new ProviderError('timeout', `${name}: the SDK's own request timeout passed`, { cause: error });
  // The SDK parses a JSON-typed body with `response.json()`: a body that is not JSON throws here.
  if (error instanceof SyntaxError)
    return new ProviderError(
      'malformed_output',
      `${name}: the API answered a body that is not JSON (${error.message})`,
      {
        cause: error,
      },
    );
  const c = classifyError(error, nowMs);
  if (error instanceof APIConnectionError) {
    // A connection the SDK could not make is the provider's failure, whatever its cause says.
    const category = c.category === 'unknown' ? 'provider_error' : c.category;
    return new ProviderError(category, `${name}: could not reach the API: ${c.message}`, { cause: error });
  }
  const what = c.status !== undefined ? `${c.status} error` : 'the model call failed';
  return new ProviderError(c.category, `${name}: ${what}: ${c.message}`, {
    status: c.status,
    retryAfterMs: c.retryAfterMs,
    usage: c.usage,
    cause: error,
  });
}
