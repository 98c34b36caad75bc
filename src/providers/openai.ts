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
import type { ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
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
  type ToolCall,
  type ToolSpec,
  type FinishReason,
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
    const body = {
      model: request.model,
      messages: toMessages(request),
      ...(request.tools && request.tools.length > 0 ? { tools: request.tools.map(toTool) } : {}),
      ...(request.json ? { response_format: { type: 'json_object' as const } } : {}),
      ...(request.maxOutputTokens !== undefined ? { max_completion_tokens: request.maxOutputTokens } : {}),
      ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
    };
    try {
      const answer =
        context.onDelta !== undefined
          ? await streamed(
              await client.chat.completions.create(
                { ...body, stream: true, stream_options: { include_usage: true } },
                { signal },
              ),
              name,
              request.model,
              context.onDelta,
            )
          : answerOf(await client.chat.completions.create(body, { signal }), name, request.model);
      const { text, model, usage, toolCalls, finishReason } = answer;
      const extra = {
        ...(toolCalls.length > 0 ? { toolCalls } : {}),
        ...(finishReason !== undefined ? { finishReason } : {}),
      };
      if (!request.json || toolCalls.length > 0) return { output: text, model, usage, ...extra };
      const output = parseJsonOutput(text, name, usage);
      return { output, model, usage, confidence: confidenceOf(output), ...extra };
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

type WireMessage = ChatCompletionMessageParam;

function toMessages(request: ModelRequest): WireMessage[] {
  const messages: ChatMessage[] =
    request.messages && request.messages.length > 0
      ? [...request.messages]
      : [{ role: 'user', content: canonicalJson(request.input ?? null) }];
  if (request.json && !messages.some((m) => /json/i.test(m.content))) messages.unshift(JSON_INSTRUCTION);
  return messages.map(toWire);
}

/** One Keel message in the chat-completions format (`tool_calls`, `tool` role with `tool_call_id`). */
function toWire(m: ChatMessage): WireMessage {
  switch (m.role) {
    case 'tool':
      return { role: 'tool', tool_call_id: m.toolCallId ?? '', content: m.content };
    case 'assistant':
      return m.toolCalls && m.toolCalls.length > 0
        ? {
            role: 'assistant',
            content: m.content === '' ? null : m.content,
            tool_calls: m.toolCalls.map((c) => ({
              id: c.id,
              type: 'function' as const,
              function: { name: c.name, arguments: JSON.stringify(c.args ?? {}) },
            })),
          }
        : { role: 'assistant', content: m.content };
    default:
      return { role: m.role, content: m.content };
  }
}

function toTool(spec: ToolSpec): ChatCompletionTool {
  return {
    type: 'function',
    function: { name: spec.name, description: spec.description, parameters: spec.parameters },
  };
}

/** What one chat completion (whole or streamed) said. */
interface Answer {
  text: string;
  model: string;
  usage: Usage;
  toolCalls: ToolCall[];
  finishReason: FinishReason | undefined;
}

const FINISH_REASONS: Readonly<Record<string, FinishReason>> = {
  stop: 'stop',
  tool_calls: 'tool_calls',
  function_call: 'tool_calls',
  length: 'length',
  content_filter: 'content_filter',
};

function finishOf(raw: unknown): FinishReason | undefined {
  if (typeof raw !== 'string') return undefined;
  return FINISH_REASONS[raw] ?? 'other';
}

/** Arguments as the model sent them: parsed JSON, or the raw text when it is not JSON (the tool's schema rejects it). */
function argsOf(raw: unknown): unknown {
  if (typeof raw !== 'string') return raw ?? {};
  if (raw.trim() === '') return {};
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

/** The tool calls of a completion message (`tool_calls[].function`), checked. */
function toolCallsOf(
  message: Record<string, unknown>,
  malformed: (what: string) => ProviderError,
): ToolCall[] {
  const raw = message.tool_calls;
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw malformed(`tool_calls = ${describe(raw)}, not an array`);
  return raw.map((c: unknown, i) => {
    const call = typeof c === 'object' && c !== null ? (c as Record<string, unknown>) : {};
    const fn =
      typeof call.function === 'object' && call.function !== null
        ? (call.function as Record<string, unknown>)
        : {};
    if (typeof call.id !== 'string' || typeof fn.name !== 'string')
      throw malformed(`tool_calls[${i}] without a string id and function.name`);
    return { id: call.id, name: fn.name, args: argsOf(fn.arguments) };
  });
}

/**
 * Reads a streamed completion (server-sent `chat.completion.chunk`s): text deltas go to `onDelta` as
 * they arrive, tool-call fragments are joined by their `index`, and usage comes from the last chunk
 * (`stream_options.include_usage`). A stream that ends without a finish reason broke mid-way: it
 * is a `provider_error`, never a half answer.
 */
async function streamed(
  stream: AsyncIterable<unknown>,
  name: string,
  requested: string,
  onDelta: (text: string) => void,
): Promise<Answer> {
  let text = '';
  let model: string | undefined;
  let usage: Usage = { inputTokens: 0, outputTokens: 0 };
  let finishReason: FinishReason | undefined;
  const calls = new Map<number, { id: string; name: string; args: string }>();
  for await (const chunk of stream) {
    const body = typeof chunk === 'object' && chunk !== null ? (chunk as Record<string, unknown>) : {};
    if (typeof body.model === 'string' && body.model !== '') model = body.model;
    const reported = body.usage;
    if (typeof reported === 'object' && reported !== null) {
      const counts = reported as Record<string, unknown>;
      usage = reportedUsage(counts.prompt_tokens, counts.completion_tokens, name);
    }
    const choices = Array.isArray(body.choices) ? (body.choices as unknown[]) : [];
    const first = choices[0];
    if (typeof first !== 'object' || first === null) continue;
    const choice = first as Record<string, unknown>;
    finishReason = finishOf(choice.finish_reason) ?? finishReason;
    const delta =
      typeof choice.delta === 'object' && choice.delta !== null
        ? (choice.delta as Record<string, unknown>)
        : {};
    if (typeof delta.content === 'string' && delta.content !== '') {
      text += delta.content;
      onDelta(delta.content);
    }
    if (Array.isArray(delta.tool_calls)) {
      for (const part of delta.tool_calls as unknown[]) {
        const p = typeof part === 'object' && part !== null ? (part as Record<string, unknown>) : {};
        const index = typeof p.index === 'number' ? p.index : 0;
        const fn =
          typeof p.function === 'object' && p.function !== null
            ? (p.function as Record<string, unknown>)
            : {};
        const call = calls.get(index) ?? { id: '', name: '', args: '' };
        if (typeof p.id === 'string') call.id = p.id;
        if (typeof fn.name === 'string') call.name += fn.name;
        if (typeof fn.arguments === 'string') call.args += fn.arguments;
        calls.set(index, call);
      }
    }
  }
  if (finishReason === undefined)
    throw new ProviderError(
      'provider_error',
      `${name}: the stream ended before the model finished (no finish_reason); the partial answer was dropped`,
      { usage },
    );
  const toolCalls = [...calls.entries()]
    .sort(([a], [b]) => a - b)
    .map(([, c]) => ({ id: c.id, name: c.name, args: argsOf(c.args) }));
  return { text, model: model ?? requested, usage, toolCalls, finishReason };
}

/**
 * What a chat completion says, checked: a body that is not a completion (a string, no `choices`, a
 * choice without text content), a non-string `model`, or token counts that are not finite numbers
 * >= 0 are `malformed_output` — a server's bad answer fails that attempt, never the process. The
 * usage is kept when it is sound, since the call cost it.
 */
function answerOf(completion: unknown, name: string, requested: string): Answer {
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
  const toolCalls =
    typeof message === 'object' && message !== null
      ? toolCallsOf(message as Record<string, unknown>, malformed)
      : [];
  // With tool calls the content is often null: the turn is the calls.
  if (typeof content !== 'string' && !(toolCalls.length > 0 && (content === null || content === undefined)))
    throw malformed(`choices[0].message.content = ${describe(content)}, not text`);
  const model = body.model;
  if (model !== undefined && model !== null && typeof model !== 'string')
    throw malformed(`model = ${describe(model)}`);
  const finishReason = finishOf((first as Record<string, unknown>).finish_reason);
  return {
    text: typeof content === 'string' ? content : '',
    model: model || requested,
    usage,
    toolCalls,
    finishReason,
  };
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
