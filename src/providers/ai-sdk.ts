/**
 * `aiSdk()`: a {@link ModelProvider} over any Vercel AI SDK v6 language model (OpenAI, Anthropic,
 * Google, Ollama, ... through their `@ai-sdk/*` providers). Keel owns retries and timeouts, so the
 * SDK's own retries are off and Keel's abort signal is passed through.
 */
import {
  APICallError,
  JSONParseError,
  NoContentGeneratedError,
  NoObjectGeneratedError,
  Output,
  RetryError,
  TypeValidationError,
  generateText,
  jsonSchema,
  streamText,
  tool,
  type JSONSchema7,
  type LanguageModel,
  type ToolSet,
  type ModelMessage,
  type SystemModelMessage,
} from 'ai';
import { realClock } from '../core/clock.js';
import { canonicalJson } from '../core/json.js';
import {
  cancelledError,
  categoryForStatus,
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
  type ModelProvider,
  type ModelRequest,
  type ModelResponse,
  type FinishReason,
  type ToolCall,
} from './types.js';
import type { Usage } from '../eventlog/events.js';

/** Options of {@link aiSdk}. */
export interface AiSdkOptions {
  /**
   * Provider name for telemetry (`gen_ai.provider.name`). Default: the model's `provider` id
   * (e.g. `openai.chat`), or `ai-sdk` when models are chosen per request.
   */
  name?: string;
}

/**
 * Adapts an AI SDK v6 language model. Pass one model, or a function from Keel's model id
 * (`ModelRequest.model`, which a budget downgrade may change) to a model. JSON requests use
 * `Output.json()`; the SDK's retries are disabled (`maxRetries: 0`).
 *
 * Failures are classified by Keel's one classifier (`classifyError`): HTTP 429 is `rate_limited`
 * (with `retryAfterMs` from `retry-after-ms` / `retry-after`), 408 `timeout`, 5xx and network
 * failures `provider_error`, 400/413/415/422 `validation_error`, other 4xx `unknown`, an aborted
 * signal `cancelled`. Unparseable or missing JSON, a 2xx body the SDK could not read, and token
 * counts that are negative or not finite are `malformed_output`.
 *
 * @example
 * import { openai } from '@ai-sdk/openai';
 * const provider = aiSdk((modelId) => openai(modelId));
 * const res = await provider.call({ model: 'gpt-4o-mini', messages, json: true }, { signal });
 */
export function aiSdk(
  model: LanguageModel | ((modelId: string) => LanguageModel),
  options: AiSdkOptions = {},
): ModelProvider {
  const name =
    options.name ?? (typeof model === 'object' && model !== null ? model.provider : undefined) ?? 'ai-sdk';

  const generate = async (request: ModelRequest, context: CallContext): Promise<ModelResponse> => {
    const { signal } = context;
    const languageModel = typeof model === 'function' ? model(request.model) : model;
    const { system, messages } = toPrompt(request);
    const tools = toolSetOf(request);
    const settings = {
      model: languageModel,
      system,
      messages,
      ...(tools !== undefined ? { tools } : {}),
      maxRetries: 0,
      abortSignal: signal,
      maxOutputTokens: request.maxOutputTokens,
      temperature: request.temperature,
    };
    try {
      if (context.onDelta !== undefined) return await streamed(settings, request, name, context.onDelta);
      // JSON output is asked for only without tools: a turn that calls tools has no JSON to parse.
      if (request.json && tools === undefined) {
        const result = await generateText({ ...settings, output: Output.json() });
        const output: unknown = result.output;
        return {
          output,
          model: result.response.modelId || request.model,
          usage: reportedUsage(result.totalUsage.inputTokens, result.totalUsage.outputTokens, name),
          confidence: confidenceOf(output),
          finishReason: finishOf(result.finishReason),
        };
      }
      const result = await generateText(settings);
      const toolCalls = result.toolCalls.map((c): ToolCall => ({
        id: c.toolCallId,
        name: c.toolName,
        args: c.input,
      }));
      const usage = reportedUsage(result.totalUsage.inputTokens, result.totalUsage.outputTokens, name);
      const answer = {
        model: result.response.modelId || request.model,
        usage,
        finishReason: finishOf(result.finishReason),
        ...(toolCalls.length > 0 ? { toolCalls } : {}),
      };
      if (request.json && toolCalls.length === 0) {
        const output = parseJsonOutput(result.text, name, usage);
        return { output, ...answer, confidence: confidenceOf(output) };
      }
      return { output: result.text, ...answer };
    } catch (e) {
      throw classify(e, name, signal, (context.clock ?? realClock).now());
    }
  };

  return {
    name,
    call(request, context) {
      if (context.signal.aborted) return Promise.reject(cancelledError(name, context.signal));
      return raceAbort(generate(request, context), context.signal, name);
    },
  };
}

/**
 * System messages go to the SDK's `system` option; no messages means the input as JSON. Tool calls
 * become `tool-call` parts of the assistant message, tool answers `tool-result` parts (as text).
 */
function toPrompt(request: ModelRequest): { system?: SystemModelMessage[]; messages: ModelMessage[] } {
  if (!request.messages || request.messages.length === 0)
    return { messages: [{ role: 'user', content: canonicalJson(request.input ?? null) }] };
  const system: SystemModelMessage[] = [];
  const messages: ModelMessage[] = [];
  for (const m of request.messages) {
    if (m.role === 'system') system.push({ role: 'system', content: m.content });
    else if (m.role === 'user') messages.push({ role: 'user', content: m.content });
    else if (m.role === 'tool')
      messages.push({
        role: 'tool',
        content: [
          {
            type: 'tool-result',
            toolCallId: m.toolCallId ?? '',
            toolName: m.toolName ?? '',
            output: { type: 'text', value: m.content },
          },
        ],
      });
    else if (m.toolCalls && m.toolCalls.length > 0)
      messages.push({
        role: 'assistant',
        content: [
          ...(m.content !== '' ? [{ type: 'text' as const, text: m.content }] : []),
          ...m.toolCalls.map((c) => ({
            type: 'tool-call' as const,
            toolCallId: c.id,
            toolName: c.name,
            input: c.args,
          })),
        ],
      });
    else messages.push({ role: 'assistant', content: m.content });
  }
  return system.length > 0 ? { system, messages } : { messages };
}

/** The offered tools as an AI SDK tool set without `execute`: the SDK reports the calls and Keel runs them. */
function toolSetOf(request: ModelRequest): ToolSet | undefined {
  if (!request.tools || request.tools.length === 0) return undefined;
  const set: ToolSet = {};
  for (const spec of request.tools)
    set[spec.name] = tool({
      description: spec.description,
      inputSchema: jsonSchema(spec.parameters as JSONSchema7),
    });
  return set;
}

const FINISH: Readonly<Record<string, FinishReason>> = {
  stop: 'stop',
  'tool-calls': 'tool_calls',
  length: 'length',
  'content-filter': 'content_filter',
};

function finishOf(reason: string | undefined): FinishReason | undefined {
  return reason === undefined ? undefined : (FINISH[reason] ?? 'other');
}

/**
 * `streamText`: text deltas go to `onDelta` as they arrive; tool calls and usage come with the
 * stream's end. An `error` part (a broken stream) rejects with the error, classified by the caller;
 * a stream that ends without its `finish` part broke mid-way (`provider_error`).
 */
async function streamed(
  settings: Parameters<typeof streamText>[0],
  request: ModelRequest,
  name: string,
  onDelta: (text: string) => void,
): Promise<ModelResponse> {
  // Errors arrive as `error` parts (below); the SDK's default onError would also log them.
  const result = streamText({ ...settings, onError: () => undefined });
  let text = '';
  const toolCalls: ToolCall[] = [];
  let finish: { reason: FinishReason | undefined; usage: Usage } | undefined;
  let modelId: string | undefined;
  for await (const part of result.fullStream) {
    switch (part.type) {
      case 'text-delta':
        if (part.text !== '') {
          text += part.text;
          onDelta(part.text);
        }
        break;
      case 'tool-call':
        toolCalls.push({ id: part.toolCallId, name: part.toolName, args: part.input });
        break;
      case 'finish-step':
        modelId = part.response.modelId || modelId;
        break;
      case 'finish':
        finish = {
          reason: finishOf(part.finishReason),
          usage: reportedUsage(part.totalUsage.inputTokens, part.totalUsage.outputTokens, name),
        };
        break;
      case 'error':
        throw part.error;
      default:
        break;
    }
  }
  if (finish === undefined)
    throw new ProviderError(
      'provider_error',
      `${name}: the stream ended before the model finished; the partial answer was dropped`,
    );
  const answer = {
    model: modelId || request.model,
    usage: finish.usage,
    ...(finish.reason !== undefined ? { finishReason: finish.reason } : {}),
    ...(toolCalls.length > 0 ? { toolCalls } : {}),
  };
  if (request.json && toolCalls.length === 0) {
    const output = parseJsonOutput(text, name, finish.usage);
    return { output, ...answer, confidence: confidenceOf(output) };
  }
  return { output: text, ...answer };
}

function classify(error: unknown, name: string, signal: AbortSignal, nowMs: number): ProviderError {
  if (isProviderError(error)) return error;
  if (signal.aborted) return cancelledError(name, signal, error);
  const e = RetryError.isInstance(error) ? error.lastError : error;
  if (APICallError.isInstance(e) && answeredBadly(e)) {
    return new ProviderError(
      'malformed_output',
      `${name}: the model API answered ${e.statusCode} with a body that is not a valid response (${e.message}); the answer was dropped`,
      { status: e.statusCode, cause: e },
    );
  }
  if (APICallError.isInstance(e)) {
    const c = classifyError(e, nowMs);
    // No status: the request never got an answer (a transport failure), the provider's failure.
    const category =
      e.statusCode === undefined && c.category === 'unknown' ? categoryForStatus(undefined) : c.category;
    const status = e.statusCode;
    return new ProviderError(
      category,
      `${name}: ${status ?? 'network'} error from the model API: ${e.message}`,
      { status, retryAfterMs: c.retryAfterMs, cause: e },
    );
  }
  if (NoObjectGeneratedError.isInstance(e)) {
    return new ProviderError(
      'malformed_output',
      `${name}: JSON output was requested but the model's answer could not be parsed (${e.message}); retry, or tighten the prompt`,
      { usage: e.usage ? soundUsage(e.usage.inputTokens, e.usage.outputTokens, name) : undefined, cause: e },
    );
  }
  if (
    JSONParseError.isInstance(e) ||
    TypeValidationError.isInstance(e) ||
    NoContentGeneratedError.isInstance(e)
  )
    return new ProviderError('malformed_output', `${name}: unusable model output: ${e.message}`, {
      cause: e,
    });
  const c = classifyError(e, nowMs);
  return new ProviderError(c.category, `${name}: the model call failed: ${c.message}`, {
    status: c.status,
    retryAfterMs: c.retryAfterMs,
    usage: c.usage,
    cause: e,
  });
}

/**
 * The API answered with success (2xx) but its body could not be read as a response: the AI SDK's
 * providers throw `APICallError('Invalid JSON response')` with the parse or schema error as cause.
 */
function answeredBadly(e: APICallError): boolean {
  return e.statusCode !== undefined && e.statusCode >= 200 && e.statusCode <= 299;
}

/** Reported usage when it can be priced, else none (the failure is reported without it). */
function soundUsage(input: unknown, output: unknown, name: string): Usage | undefined {
  try {
    return reportedUsage(input, output, name);
  } catch {
    return undefined;
  }
}
