/**
 * The model boundary. Keel calls models only through a `ModelProvider`; a failed call is data (a
 * classified {@link ProviderError}), never an untyped throw.
 */
import type { Clock } from '../core/clock.js';
import { KeelError, isKeelError } from '../core/errors.js';
import type { ErrorCategory, Usage } from '../eventlog/events.js';

/**
 * One chat message. An assistant turn that asked for tools carries `toolCalls`; each tool's answer
 * goes back as a `tool` message naming the call it answers (`toolCallId`, and `toolName`, which
 * the AI SDK needs).
 */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  /** The text; for a `tool` message, the tool's result (JSON text, or an error message). */
  content: string;
  /** Assistant turns only: the tool calls the model asked for. */
  toolCalls?: readonly ToolCall[];
  /** Tool messages only: the id of the call this message answers. */
  toolCallId?: string;
  /** Tool messages only: the name of the tool that answered. */
  toolName?: string;
}

/** A tool call the model asked for. */
export interface ToolCall {
  /** The provider's call id (OpenAI `call_…`), unique within the turn; tool results name it. */
  id: string;
  /** The tool's name as offered in `ModelRequest.tools`. */
  name: string;
  /** The arguments, parsed from the model's JSON (unvalidated: the tool's schema checks them). */
  args: unknown;
}

/** A tool offered to the model: its name, what it does, and its arguments as JSON Schema. */
export interface ToolSpec {
  /** Name the model calls it by: letters, digits, `_` and `-`, at most 64 characters. */
  name: string;
  /** What the tool does and when to use it (the model reads this). */
  description: string;
  /** JSON Schema of the arguments object. */
  parameters: Record<string, unknown>;
}

/** Why the model stopped: with an answer, to call tools, at its output cap, or filtered. */
export type FinishReason = 'stop' | 'tool_calls' | 'length' | 'content_filter' | 'other';

/** What an agent asks of a model. */
export interface ModelRequest {
  /** Model id as priced in the pricing table, e.g. `gpt-4`. */
  model: string;
  /** Structured input (simulated providers derive their behaviour from it). */
  input?: unknown;
  /** Chat messages for real models. */
  messages?: readonly ChatMessage[];
  /** Ask the model for JSON output (structured output). */
  json?: boolean;
  /** Upper bound on output tokens. */
  maxOutputTokens?: number;
  /** Sampling temperature. */
  temperature?: number;
  /** Tools the model may call (default: none). The answer then may carry `toolCalls`. */
  tools?: readonly ToolSpec[];
}

/** A model's answer. */
export interface ModelResponse {
  /** Text or parsed JSON the model returned. */
  output: unknown;
  /** Model that actually answered (may differ from the requested alias). */
  model: string;
  usage: Usage;
  /** The model's own confidence in [0, 1], when it reports one. */
  confidence?: number;
  /** Tool calls the model asked for (then `output` is the text it said beside them, often empty). */
  toolCalls?: readonly ToolCall[];
  /** Why the model stopped, when the provider says. */
  finishReason?: FinishReason;
}

/** Per-call context. */
export interface CallContext {
  /** Aborted when the attempt times out, the workflow is cancelled or its deadline passes. */
  signal: AbortSignal;
  /** The runtime's clock (simulated providers take their latency from it). */
  clock?: Clock;
  /**
   * Stream the answer: when given, the provider asks for a streamed response (AI SDK `streamText`,
   * OpenAI `stream: true`) and calls this with each piece of text as it arrives, in order. The call
   * still resolves with the whole response (text, tool calls, usage) once the stream ends; a stream
   * that breaks mid-way rejects with its category, like any failed call.
   */
  onDelta?: (text: string) => void;
}

/**
 * A language model behind any API.
 *
 * @example
 * const provider: ModelProvider = simulated({ seed: 42, latencyMs: { p50: 800, p95: 2_000 } });
 * const res = await provider.call({ model: 'gpt-4', input: { invoice: 'INV-1' } }, { signal });
 */
export interface ModelProvider {
  /** Provider name for telemetry (`gen_ai.provider.name`), e.g. `openai`. */
  readonly name: string;
  call(request: ModelRequest, context: CallContext): Promise<ModelResponse>;
}

/** A classified provider failure. `category` drives retries, breakers and RCA. */
export class ProviderError extends KeelError {
  constructor(
    readonly category: ErrorCategory,
    message: string,
    readonly details: {
      /** HTTP status, when the failure came from an HTTP API. */
      status?: number;
      /** Server-requested wait before retrying (from `retry-after`). */
      retryAfterMs?: number;
      /** Usage consumed by the failed call (it still costs money). */
      usage?: Usage;
      cause?: unknown;
    } = {},
  ) {
    super(`PROVIDER_${category.toUpperCase()}`, message, { cause: details.cause });
  }
  get retryAfterMs(): number | undefined {
    return this.details.retryAfterMs;
  }
  get status(): number | undefined {
    return this.details.status;
  }
}

/** True when `e` is a {@link ProviderError}. */
export function isProviderError(e: unknown): e is ProviderError {
  return isKeelError(e) && e instanceof ProviderError;
}
