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
  type LanguageModel,
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
    const settings = {
      model: languageModel,
      system,
      messages,
      maxRetries: 0,
      abortSignal: signal,
      maxOutputTokens: request.maxOutputTokens,
      temperature: request.temperature,
    };
    try {
      if (request.json) {
        const result = await generateText({ ...settings, output: Output.json() });
        const output: unknown = result.output;
        return {
          output,
          model: result.response.modelId || request.model,
          usage: reportedUsage(result.totalUsage.inputTokens, result.totalUsage.outputTokens, name),
          confidence: confidenceOf(output),
        };
      }
      const result = await generateText(settings);
      return {
        output: result.text,
        model: result.response.modelId || request.model,
        usage: reportedUsage(result.totalUsage.inputTokens, result.totalUsage.outputTokens, name),
      };
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

/** System messages go to the SDK's `system` option; no messages means the input as JSON. */
function toPrompt(request: ModelRequest): { system?: SystemModelMessage[]; messages: ModelMessage[] } {
  if (!request.messages || request.messages.length === 0)
    return { messages: [{ role: 'user', content: canonicalJson(request.input ?? null) }] };
  const system: SystemModelMessage[] = [];
  const messages: ModelMessage[] = [];
  for (const m of request.messages) {
    if (m.role === 'system') system.push({ role: 'system', content: m.content });
    else messages.push({ role: m.role, content: m.content });
  }
  return system.length > 0 ? { system, messages } : { messages };
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
