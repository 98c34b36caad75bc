/**
 * The model boundary. Keel calls models only through a `ModelProvider`; a failed call is data (a
 * classified {@link ProviderError}), never an untyped throw.
 */
import type { Clock } from '../core/clock.js';
import { KeelError, isKeelError } from '../core/errors.js';
import type { ErrorCategory, Usage } from '../eventlog/events.js';

/** One chat message. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

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
}

/** Per-call context. */
export interface CallContext {
  /** Aborted when the attempt times out, the workflow is cancelled or its deadline passes. */
  signal: AbortSignal;
  /** The runtime's clock (simulated providers take their latency from it). */
  clock?: Clock;
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
