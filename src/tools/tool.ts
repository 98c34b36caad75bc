/**
 * `tool()`: a function a model may call inside a tool-using agent's loop, with its own policies
 * (timeout, retries, breaker) — the shape of the AI SDK's `tool({ description, inputSchema,
 * execute })`, with Keel's policies and an idempotency key for side effects.
 */
import { z } from 'zod';
import type { Clock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import type { BreakerConfig, RetryConfig, SchemaLike } from '../supervisor/agent.js';
import { resolveBreakerConfig } from '../supervisor/breaker.js';
import type { ToolSpec } from '../providers/types.js';

/** What `execute` is handed with each call. */
export interface ToolContext {
  /** Aborted when this call times out, or the agent's attempt is cancelled or times out. */
  signal: AbortSignal;
  /**
   * `workflowId/path/step/index`: the same for the same call of the same workflow — across retries
   * of the tool, retries of the agent and a resumed run — so side effects (a refund) can be
   * deduplicated. It names the call by its position in the model turn (`step`, `index`), not by the
   * provider's call id, which a real model draws afresh each time it is asked.
   */
  idempotencyKey: string;
  /** The provider's id of this call. */
  callId: string;
  /** The model turn (1-based) that asked for the call. */
  step: number;
  /** 1-based attempt of this call (retries of the tool). */
  attempt: number;
  workflowId: string;
  /** The agent's node path. */
  path: string;
  clock: Clock;
}

/** Everything that defines a tool. */
export interface ToolConfig<A, R> {
  /** What the tool does and when to use it; the model reads it. */
  description: string;
  /**
   * Schema of the arguments (zod, or anything with `safeParse`). Zod schemas are offered to the model
   * as JSON Schema; arguments that fail it are answered to the model as an error, without a call.
   */
  schema: SchemaLike<A>;
  /**
   * JSON Schema of the arguments, for schemas zod cannot convert (default: from a zod `schema`, else
   * `{ "type": "object" }`).
   */
  parameters?: Record<string, unknown>;
  /**
   * Does the work. Its result is shown to the model as JSON and written to the log (`tool.succeeded`,
   * redacted), so it must be JSON-serialisable. Throw to fail: the failure is classified like an
   * agent's (`classifyError`) and shown to the model, which may answer without it.
   */
  execute(args: A, context: ToolContext): Promise<R> | R;
  /** Per-attempt timeout in ms (default 10_000). */
  timeoutMs?: number;
  /** Retries of this tool (default: one attempt). */
  retry?: RetryConfig;
  /**
   * A breaker around this tool. In a runtime it is one of the runtime's breakers, named
   * `tool:<breaker.name>` (shared by every tool and workflow naming it; `rt.breaker('tool:payments')`):
   * its transitions are logged as `breaker.transitioned` and it is restored after a restart.
   */
  breaker?: BreakerConfig;
}

/** A validated tool. */
export interface Tool<A = unknown, R = unknown> extends Readonly<ToolConfig<A, R>> {
  readonly kind: 'tool';
  readonly timeoutMs: number;
  /** JSON Schema of the arguments, as offered to the model. */
  readonly parameters: Record<string, unknown>;
}

/** Default per-attempt timeout of a tool call, ms. */
export const DEFAULT_TOOL_TIMEOUT_MS = 10_000;

/**
 * Defines a tool for `llmAgent({ tools })`.
 *
 * @example
 * const orderLookup = tool({
 *   description: 'Looks an order up by its id',
 *   schema: z.object({ orderId: z.string() }),
 *   execute: async ({ orderId }, { signal }) => orders.get(orderId, { signal }),
 *   timeoutMs: 2_000,
 *   retry: { attempts: 2 },
 * });
 */
export function tool<A, R>(config: ToolConfig<A, R>): Tool<A, R> {
  if (typeof config !== 'object' || config === null)
    throw new ConfigError('tool', 'expected a config object');
  if (typeof config.description !== 'string' || config.description.trim() === '')
    throw new ConfigError(
      'tool.description',
      'must be a non-empty string telling the model what the tool does',
    );
  if (typeof config.schema?.safeParse !== 'function')
    throw new ConfigError(
      'tool.schema',
      'must be a zod schema (or anything with safeParse) for the arguments',
    );
  if (typeof config.execute !== 'function')
    throw new ConfigError('tool.execute', 'must be a function (args, context) => result');
  const timeoutMs = config.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS;
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0))
    throw new ConfigError('tool.timeoutMs', `must be a number of ms > 0, got ${String(config.timeoutMs)}`);
  if (config.retry !== undefined && !(Number.isInteger(config.retry.attempts) && config.retry.attempts >= 1))
    throw new ConfigError(
      'tool.retry.attempts',
      `must be an integer >= 1, got ${String(config.retry.attempts)}`,
    );
  if (config.breaker !== undefined) {
    if (typeof config.breaker.name !== 'string' || config.breaker.name === '')
      throw new ConfigError('tool.breaker.name', 'must be a non-empty string, e.g. the tool or service name');
    resolveBreakerConfig(config.breaker); // the rest of it, checked now rather than at the first call
  }
  return Object.freeze({
    ...config,
    kind: 'tool' as const,
    timeoutMs,
    parameters: config.parameters ?? parametersOf(config.schema),
  });
}

/** True when `v` is a {@link Tool} made by `tool()`. */
export function isTool(v: unknown): v is Tool {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'tool';
}

/** Names the model may call a tool by (OpenAI's rule). */
const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Checks a `tools` record (names and values) and returns what the model is offered. */
export function toolSpecs(tools: Readonly<Record<string, Tool<never, unknown>>>, where: string): ToolSpec[] {
  if (typeof tools !== 'object' || tools === null || Array.isArray(tools))
    throw new ConfigError(
      `${where}.tools`,
      'must be an object of named tools, e.g. { order_lookup: tool({ ... }) }',
    );
  const specs: ToolSpec[] = [];
  for (const [name, t] of Object.entries(tools)) {
    if (!TOOL_NAME.test(name))
      throw new ConfigError(
        `${where}.tools.${name}`,
        'a tool name must be 1-64 letters, digits, "_" or "-" (what model APIs accept)',
      );
    if (!isTool(t))
      throw new ConfigError(
        `${where}.tools.${name}`,
        'must be made with tool({ description, schema, execute })',
      );
    specs.push({ name, description: t.description, parameters: t.parameters });
  }
  return specs;
}

/** JSON Schema of a zod schema; `{ type: 'object' }` for anything else. */
function parametersOf(schema: SchemaLike<unknown>): Record<string, unknown> {
  if (schema instanceof z.core.$ZodType) {
    try {
      const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
      delete json.$schema;
      return json;
    } catch {
      // a schema JSON Schema cannot express: arguments are still validated
    }
  }
  return { type: 'object' };
}
