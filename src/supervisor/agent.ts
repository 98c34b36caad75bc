/**
 * `agent()`: the leaf of every topology. An agent wraps one unit of model work (`run`) with the
 * policies Keel enforces around it: timeout, retries, breaker, cache, budget and output validation.
 */
import type { Clock } from '../core/clock.js';
import { assertNameHasNoPii } from '../compliance/identifiers.js';
import { ConfigError, KeelError, isKeelError } from '../core/errors.js';
import { assertWellFormed } from '../core/unicode.js';
import type { Random } from '../core/random.js';
import type { ErrorCategory, Usage } from '../eventlog/events.js';
import type { OnError } from './topology.js';
import type { RecordToolEvent } from '../tools/call.js';
import type { BreakerLike } from './scope.js';

/** What an agent's `run` returns. */
export interface AgentOutput<O> {
  value: O;
  /** Confidence in [0, 1]; cascades and votes read it. */
  confidence?: number;
  /** Tokens used; priced against `model` (or `AgentOutput.model` when the provider reports one). */
  usage?: Usage;
  /** Model that actually answered. */
  model?: string;
}

/** Context handed to `run` for each attempt. */
export interface AgentContext {
  /** Aborted on timeout, cancellation or a missed deadline: pass it to the provider. */
  signal: AbortSignal;
  /** 1-based attempt number. */
  attempt: number;
  /** The model to use for this attempt (a budget downgrade may change it). */
  model: string;
  workflowId: string;
  /** Position of this agent in the topology tree. */
  path: string;
  clock: Clock;
  /** Seeded per (workflow, path, attempt): the same run draws the same numbers. */
  rng: Random;
  /**
   * The agent's `maxOutputTokens`: pass it to the provider as its output cap (AI SDK
   * `maxOutputTokens`, OpenAI `max_completion_tokens`). Absent when the agent declares none.
   */
  maxOutputTokens?: number;
  /**
   * Writes a tool step of this attempt to the workflow's log (`tool.called`, `tool.succeeded`,
   * `tool.failed`); `llmAgent({ tools })` does. Events of an attempt that already ended (timed out,
   * cancelled) are dropped.
   */
  recordTool?: RecordToolEvent;
  /**
   * The runtime's shared breaker for a tool's breaker config, named `tool:<name>` (its transitions
   * are logged and restored after a restart); `llmAgent({ tools })` uses it.
   */
  toolBreaker?: (config: BreakerConfig) => BreakerLike;
  /**
   * Present when a workflow cut off by a crash resumes (`rt.resume()`) an agent whose tool loop
   * was in flight: the logged result of the tool call at `step`/`index` (its position in the model
   * turn) when it succeeded before the crash and the model asks for the same tool with the same
   * arguments — fed back instead of running the tool again (`llmAgent({ tools })` does).
   */
  recordedToolResult?: (
    step: number,
    index: number,
    tool: string,
    args: unknown,
  ) => { result: unknown } | undefined;
  /**
   * Meters one model turn of a multi-turn attempt (a tool loop; `llmAgent({ tools })` uses it) as a
   * call of its own: before `call` runs, the turn takes the agent's breaker permit and reserves its
   * estimate from the budget (`cost.reserved` with `step`; the first turn uses what the attempt
   * took), waiting until the log has committed it; after, it is charged what it reported
   * (`cost.incurred` with `step`, its reservation when it reported none) and the breaker counts
   * it. A turn the budget refuses rejects with `BudgetExceededError`, one an open breaker refuses
   * with `CircuitOpenError`: end the loop with that error (turns already made stay charged). Once
   * an attempt used `turn`, the `usage` its `run` returns is not charged again. Absent in replay.
   */
  turn?: ModelTurn;
  /**
   * Present while a caller streams the workflow (`rt.run$()`): hand it the model's text as it
   * arrives, in order (pass it to the provider as `CallContext.onDelta`; `llmAgent` does).
   */
  onDelta?: (text: string) => void;
}

/** What a metered model turn resolves with: the usage it cost and the model that answered. */
export interface TurnAnswer {
  usage?: Usage;
  model?: string;
}

/** Options of one metered model turn. */
export interface TurnOptions {
  /**
   * Input tokens of this turn's request (with `maxOutputTokens`, the turn reserves this plus the
   * cap; a tool loop's later turns carry the tool results). Default: the attempt's estimate.
   */
  inputTokens?: number;
}

/**
 * {@link AgentContext.turn}: runs `call` (given the model to ask, which a budget downgrade may
 * change) as model turn `step` (1-based) of the attempt, metered; turns run one after another.
 */
export type ModelTurn = <R extends TurnAnswer>(
  step: number,
  call: (model: string) => Promise<R>,
  options?: TurnOptions,
) => Promise<R>;

/** Retry policy. */
export interface RetryConfig {
  /** Total attempts including the first (default 1: no retry). */
  attempts: number;
  /** Delay growth between attempts (default `exponential`). */
  backoff?: 'exponential' | 'fixed';
  /** First retry delay in ms (default 200). */
  baseDelayMs?: number;
  /** Cap on any one delay in ms (default 30_000). */
  maxDelayMs?: number;
  /** Full jitter from the seeded PRNG (default true). */
  jitter?: boolean;
  /** Categories that are retried (default: timeout, rate_limited, provider_error, malformed_output). */
  retryOn?: readonly ErrorCategory[];
}

/** Circuit-breaker policy; agents naming the same breaker share one breaker actor. */
export interface BreakerConfig {
  /** Shared breaker name, e.g. the provider (`openai`). */
  name: string;
  /** Consecutive failures that open the breaker (default 5). */
  failureThreshold?: number;
  /** Failure percentage over the rolling window that opens it (rate strategy; off by default). */
  errorThresholdPercentage?: number;
  /** Minimum calls in the window before the rate strategy may trip (default 10). */
  volumeThreshold?: number;
  /** Rolling window for the rate strategy in ms (default 10_000). */
  rollingWindowMs?: number;
  /** Time open before a half-open probe, in ms (default 60_000). */
  resetTimeoutMs?: number;
  /** Multiply the reset timeout after each failed probe, up to `maxResetTimeoutMs` (default 1: fixed). */
  resetBackoffFactor?: number;
  /** Cap for the backing-off reset timeout in ms (default 10 × resetTimeoutMs). */
  maxResetTimeoutMs?: number;
  /** Concurrent probes admitted while half-open (default 1). */
  halfOpenMaxProbes?: number;
  /**
   * Which failure categories count against the breaker. Default: every category except those that
   * say the caller's input or the output's content was wrong — `validation_error`, `hallucination`,
   * `missing_field`, `ocr_error`, `budget_exceeded`, `cancelled`, `circuit_open` — so `timeout`,
   * `rate_limited`, `provider_error`, `malformed_output` and `unknown` (a plain thrown `Error`) count.
   */
  countOn?: readonly ErrorCategory[];
}

/**
 * Cache policy for an agent (`false` turns caching off). An entry is keyed by the agent's name and
 * version and by its input, or by the part of the input `key` picks.
 *
 * @example
 * // Vendor validation depends on the vendor only: invoices from the same vendor share one entry.
 * const vendorCheck = agent({
 *   name: 'vendor_validation', model: 'gpt-4',
 *   cache: { ttlMs: 86_400_000, key: (input) => input.vendor },
 *   run: async (input: { vendor: string; invoiceId: string }) => ({ value: `${input.vendor}: known` }),
 * });
 */
export type CachePolicy<I = unknown> =
  | false
  | {
      /** How long an output is served from the cache, in ms (required, > 0). */
      ttlMs: number;
      /** Serve the expired entry when the call fails (default true). */
      staleIfError?: boolean;
      /**
       * What keys the cache, from the input (default: the whole input). Return the fields the
       * output depends on, e.g. `input.vendor` or `[input.vendor, input.country]`: inputs with an
       * equal key (as canonical JSON) share one entry. Returning `undefined` or throwing fails the
       * invocation with `validation_error` (no model call).
       */
      key?(input: I): unknown;
    };

/** Output validation: `true` accepts; a string or `{ category, message }` rejects. */
export type OutputValidator<O> = (value: O) => true | string | { category: ErrorCategory; message: string };

/** Anything with zod's `safeParse` shape (zod 3 or 4). */
export interface SchemaLike<O> {
  safeParse(value: unknown): { success: true; data: O } | { success: false; error: { message: string } };
}

/** Everything that defines an agent. */
export interface AgentConfig<I, O> {
  /** Unique, stable name: it keys the cache, metrics and replay. */
  name: string;
  /** Bump when `run` changes behaviour: it invalidates cached outputs (default `1`). */
  version?: string;
  /** Task type for error targets and cost attribution (default: `name`). */
  taskType?: string;
  /** Model id, priced by the runtime's pricing table. */
  model: string;
  /**
   * Who serves `model`, for telemetry: recorded on `agent.invoked` and written to spans as
   * `gen_ai.provider.name` (OpenTelemetry GenAI registry names such as `openai`, `anthropic`,
   * `aws.bedrock`, `azure.ai.openai`, `gcp.gemini`). `llmAgent` sets it to its provider's `name`.
   * Default: unset, and spans say `_OTHER` (see `tracing.providerName` to name it runtime-wide).
   */
  providerName?: string;
  /** Per-attempt timeout in ms (default 30_000). */
  timeoutMs?: number;
  /**
   * Bulkhead: calls of this agent in flight at once across every workflow of the runtime (an
   * integer >= 1). A call past it waits for a slot; one that cannot wait is rejected with
   * `BulkheadRejectedError` (category `rate_limited`) before reaching the provider. Default: no cap.
   */
  concurrency?: number;
  /** With `concurrency`: calls that may wait for a slot, an integer >= 0 (default 1,000; 0: reject at once). */
  maxQueue?: number;
  /** With `concurrency`: longest a call waits for a slot, in ms, an integer >= 0 (default 30_000). */
  maxQueueMs?: number;
  retry?: RetryConfig;
  breaker?: BreakerConfig;
  cache?: CachePolicy<I>;
  /** Expected usage per call, used to reserve budget before the call (default 1000 in / 500 out). */
  estimate?: Usage;
  /**
   * Most output tokens one call may produce (an integer >= 1). `run` receives it as
   * `context.maxOutputTokens` and must pass it to the provider as its output cap (`llmAgent` does).
   * With a cap, a call reserves its worst case — the input estimate (see `estimateInputTokens`)
   * plus this many output tokens, priced — so a budget's daily limit cannot be passed.
   * Default: no cap (the reservation is the `estimate`, raised by what the agent really spent).
   */
  maxOutputTokens?: number;
  /**
   * Input tokens of one call's request, from the input (used with `maxOutputTokens`). Default:
   * `estimateTokens(input)` — the input serialized as JSON, one token per 4 characters, rounded up
   * — or `estimate.inputTokens` when that is larger.
   */
  estimateInputTokens?(input: I): number;
  /**
   * What a `run` that resolves without `usage` costs (default `estimate`): `estimate` charges the
   * call's reservation and marks the cost `estimated` in the log; `fail` charges it too and fails
   * the attempt with `malformed_output` (for agents that must always report usage).
   */
  onMissingUsage?: 'estimate' | 'fail';
  /** A zod schema (or anything with `safeParse`): an invalid output fails with `validation_error`. */
  schema?: SchemaLike<O>;
  /** Extra validation after the schema: `true` accepts; a string or `{ category, message }` rejects. */
  validate?(value: O): true | string | { category: ErrorCategory; message: string };
  /**
   * The work itself. Throw {@link AgentError} (or a ProviderError) to classify a failure yourself;
   * anything else thrown is classified by `classifyError` (HTTP status, network code, abort, cause
   * chain), and a plain `Error` is `unknown`, which breakers count by default.
   */
  run(input: I, context: AgentContext): Promise<AgentOutput<O>>;
}

/** A validated agent definition: a leaf node of a topology. */
export interface Agent<I = unknown, O = unknown> extends Readonly<AgentConfig<I, O>> {
  readonly kind: 'agent';
  readonly version: string;
  readonly taskType: string;
  readonly timeoutMs: number;
  /** How a parent handles this agent's failure (set with `supervise()`). */
  readonly onError?: OnError;
}

/** An agent classifies its own failure (e.g. `ocr_error`, `missing_field`, `hallucination`). */
export class AgentError extends KeelError {
  constructor(
    readonly category: ErrorCategory,
    message: string,
    options?: { cause?: unknown; usage?: Usage },
  ) {
    super(`AGENT_${category.toUpperCase()}`, message, options);
    this.usage = options?.usage;
  }
  readonly usage: Usage | undefined;
}

/** True when `e` is an {@link AgentError}. */
export function isAgentError(e: unknown): e is AgentError {
  return isKeelError(e) && e instanceof AgentError;
}

const NAME = /^[A-Za-z0-9_.:-]{1,128}$/;

/** True for a usage with finite token counts >= 0 (what a provider may report). */
export function isUsage(u: unknown): u is Usage {
  if (typeof u !== 'object' || u === null) return false;
  const { inputTokens, outputTokens } = u as { inputTokens?: unknown; outputTokens?: unknown };
  return (
    typeof inputTokens === 'number' &&
    typeof outputTokens === 'number' &&
    inputTokens >= 0 &&
    outputTokens >= 0 &&
    Number.isFinite(inputTokens) &&
    Number.isFinite(outputTokens)
  );
}

/** Checks an agent's bulkhead options (`concurrency`, `maxQueue`, `maxQueueMs`). */
function checkBulkhead(config: AgentConfig<never, unknown>, where: string): void {
  const { concurrency, maxQueue, maxQueueMs } = config;
  const whole = (v: unknown, min: number): boolean => Number.isSafeInteger(v) && (v as number) >= min;
  if (concurrency !== undefined && !whole(concurrency, 1))
    throw new ConfigError(
      `${where}.concurrency`,
      `must be a whole number of calls in flight >= 1, e.g. 4 (or left out: no cap), got ${String(concurrency)}`,
    );
  if (maxQueue !== undefined && !whole(maxQueue, 0))
    throw new ConfigError(
      `${where}.maxQueue`,
      `must be a whole number of waiting calls >= 0, e.g. 100 (0: reject at once), got ${String(maxQueue)}`,
    );
  if (maxQueueMs !== undefined && !whole(maxQueueMs, 0))
    throw new ConfigError(
      `${where}.maxQueueMs`,
      `must be a whole number of ms >= 0, e.g. 5_000 (0: reject at once), got ${String(maxQueueMs)}`,
    );
  if (concurrency === undefined && (maxQueue !== undefined || maxQueueMs !== undefined))
    throw new ConfigError(
      `${where}.${maxQueue !== undefined ? 'maxQueue' : 'maxQueueMs'}`,
      'bounds the wait for a bulkhead slot, so it needs concurrency too, e.g. { concurrency: 4, maxQueue: 100 }',
    );
}

/**
 * Defines an agent.
 *
 * @example
 * const vendor = agent({
 *   name: 'vendor_extraction', taskType: 'vendor', model: 'gpt-4', timeoutMs: 10_000,
 *   retry: { attempts: 2 }, breaker: { name: 'openai' }, cache: { ttlMs: 86_400_000 },
 *   run: async (input: { text: string }) => ({ value: input.text.slice(0, 20), confidence: 0.95 }),
 * });
 */
export function agent<I, O>(config: AgentConfig<I, O>): Agent<I, O> {
  const where = typeof config?.name === 'string' ? `agent "${config.name}"` : 'agent';
  if (typeof config !== 'object' || config === null)
    throw new ConfigError('agent', 'expected a config object');
  if (typeof config.name !== 'string' || !NAME.test(config.name))
    throw new ConfigError(`${where}.name`, 'must be 1-128 characters of letters, digits, _ . : or -');
  if (typeof config.model !== 'string' || config.model.length === 0)
    throw new ConfigError(`${where}.model`, 'must name a model from the pricing table, e.g. "gpt-4"');
  if (typeof config.run !== 'function') throw new ConfigError(`${where}.run`, 'must be an async function');
  const timeoutMs = config.timeoutMs ?? 30_000;
  if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs))
    throw new ConfigError(
      `${where}.timeoutMs`,
      `must be a positive number of milliseconds, got ${config.timeoutMs}`,
    );
  checkBulkhead(config, where);
  if (config.retry !== undefined && (!Number.isInteger(config.retry.attempts) || config.retry.attempts < 1))
    throw new ConfigError(`${where}.retry.attempts`, `must be an integer >= 1, got ${config.retry.attempts}`);
  if (config.cache && !(config.cache.ttlMs > 0))
    throw new ConfigError(
      `${where}.cache.ttlMs`,
      'must be a positive number of milliseconds (or set cache: false)',
    );
  if (config.cache && config.cache.key !== undefined && typeof config.cache.key !== 'function')
    throw new ConfigError(
      `${where}.cache.key`,
      `must be a function of the input returning what keys the cache, e.g. key: (input) => input.vendor; got ${typeof config.cache.key}`,
    );
  if (
    config.providerName !== undefined &&
    (typeof config.providerName !== 'string' || !NAME.test(config.providerName))
  )
    throw new ConfigError(
      `${where}.providerName`,
      'must be 1-128 characters of letters, digits, _ . : or -, e.g. "openai" or "aws.bedrock" (or left out)',
    );
  if (config.breaker !== undefined && (typeof config.breaker.name !== 'string' || !config.breaker.name))
    throw new ConfigError(`${where}.breaker.name`, 'must name the shared breaker, e.g. "openai"');
  // Names label metrics and spans: none may carry PII (the field, not the name, is in the message).
  assertNameHasNoPii('agent.name', config.name);
  if (typeof config.taskType === 'string') assertNameHasNoPii('agent.taskType', config.taskType);
  if (config.breaker !== undefined) assertNameHasNoPii('agent.breaker.name', config.breaker.name);
  // Stored and hashed into the log: no lone surrogates (IllFormedUnicodeError naming the field).
  for (const [field, value] of [
    ['taskType', config.taskType],
    ['version', config.version],
    ['model', config.model],
    ['breaker.name', config.breaker?.name],
  ] as const) {
    if (typeof value === 'string') assertWellFormed(`${where}.${field}`, value);
  }
  if (
    config.maxOutputTokens !== undefined &&
    !(Number.isSafeInteger(config.maxOutputTokens) && config.maxOutputTokens >= 1)
  )
    throw new ConfigError(
      `${where}.maxOutputTokens`,
      `must be an integer number of tokens >= 1 (e.g. 1024), got ${String(config.maxOutputTokens)}`,
    );
  if (config.estimateInputTokens !== undefined && typeof config.estimateInputTokens !== 'function')
    throw new ConfigError(
      `${where}.estimateInputTokens`,
      'must be a function from the input to a number of tokens, e.g. (input) => estimateTokens(input.text)',
    );
  if (
    config.onMissingUsage !== undefined &&
    config.onMissingUsage !== 'estimate' &&
    config.onMissingUsage !== 'fail'
  )
    throw new ConfigError(
      `${where}.onMissingUsage`,
      `must be 'estimate' or 'fail', got ${JSON.stringify(config.onMissingUsage) ?? String(config.onMissingUsage)}`,
    );
  if (config.estimate !== undefined && !isUsage(config.estimate))
    throw new ConfigError(
      `${where}.estimate`,
      'must be { inputTokens, outputTokens } with finite numbers >= 0, e.g. { inputTokens: 1000, outputTokens: 500 }',
    );
  return Object.freeze({
    ...config,
    kind: 'agent' as const,
    version: config.version ?? '1',
    taskType: config.taskType ?? config.name,
    timeoutMs,
  });
}
