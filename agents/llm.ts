/**
 * `llmAgent()`: an agent whose work is one structured model call. It asks the provider for
 * `{ "value": <schema>, "confidence": <0..1> }` as JSON, validates `value` with a zod schema and
 * hands Keel `{ value, confidence, usage, model }`.
 */
import { z } from 'zod';
import {
  AgentError,
  ConfigError,
  ProviderError,
  agent,
  estimateTokens,
  type Agent,
  type AgentConfig,
  type AgentContext,
  type AgentOutput,
  type ChatMessage,
  type ModelProvider,
  type SchemaLike,
  type Usage,
} from '../src/index.js';

/** Everything that defines an {@link llmAgent}: the usual agent policies plus the model call. */
export interface LlmAgentConfig<I, O> extends Omit<AgentConfig<I, O>, 'run' | 'schema'> {
  /** Where the model is called: `simulated()`, `aiSdk()`, `openaiCompatible()` or your own. */
  provider: ModelProvider;
  /**
   * Builds the prompt from the input: a string becomes one user message; an array is sent as is.
   * A system message describing the JSON answer (and the schema, for zod schemas) is put first.
   */
  prompt: (input: I) => string | readonly ChatMessage[];
  /** Schema of `value` (zod 3/4 or anything with `safeParse`); a mismatch fails with `validation_error`. */
  schema: SchemaLike<O>;
  /** Sampling temperature (default: the provider's). */
  temperature?: number;
}

/**
 * Defines an agent that makes one JSON model call per attempt. The provider is called with the
 * attempt's `model` (a budget downgrade may change it), `signal` and `clock`, and `json: true`.
 *
 * Failures: an answer without `value`, a `value` the schema rejects, or a `confidence` outside
 * [0, 1] throws `AgentError('validation_error')` naming the field (carrying the call's usage); text
 * that is not JSON is a `ProviderError('malformed_output')`; provider failures pass through.
 *
 * @example
 * const vendor = llmAgent({
 *   name: 'vendor_extraction', taskType: 'vendor', model: 'gpt-4',
 *   provider: simulated({ seed: 42 }),
 *   prompt: (invoice: { text: string }) => `Who issued this invoice?\n${invoice.text}`,
 *   schema: z.object({ vendor: z.string().min(1) }),
 *   timeoutMs: 10_000, retry: { attempts: 2 }, breaker: { name: 'openai' },
 * });
 */
export function llmAgent<I, O>(config: LlmAgentConfig<I, O>): Agent<I, O> {
  const where = typeof config?.name === 'string' ? `llmAgent "${config.name}"` : 'llmAgent';
  if (typeof config !== 'object' || config === null)
    throw new ConfigError('llmAgent', 'expected a config object');
  if (typeof config.provider?.call !== 'function')
    throw new ConfigError(
      `${where}.provider`,
      'must be a ModelProvider, e.g. simulated({ seed: 1 }) or openaiCompatible({ ... })',
    );
  if (typeof config.prompt !== 'function')
    throw new ConfigError(
      `${where}.prompt`,
      'must be a function from the input to a string or chat messages',
    );
  if (typeof config.schema?.safeParse !== 'function')
    throw new ConfigError(`${where}.schema`, 'must be a zod schema (or anything with safeParse) for "value"');

  const { provider, prompt, schema, temperature, ...policies } = config;
  const name = config.name;
  const instructions: ChatMessage = { role: 'system', content: systemPrompt(schema) };
  const messagesOf = (input: I): ChatMessage[] => {
    const asked = prompt(input);
    return typeof asked === 'string'
      ? [instructions, { role: 'user', content: asked }]
      : [instructions, ...asked];
  };

  const run = async (input: I, context: AgentContext): Promise<AgentOutput<O>> => {
    const messages = messagesOf(input);
    const response = await provider.call(
      {
        model: context.model,
        input,
        messages,
        json: true,
        maxOutputTokens: context.maxOutputTokens,
        temperature,
      },
      { signal: context.signal, clock: context.clock },
    );
    const usage = response.usage;
    const output = asJson(response.output, name, usage);
    if (typeof output !== 'object' || output === null || Array.isArray(output) || !('value' in output))
      throw new AgentError(
        'validation_error',
        `${name}: the model's answer has no "value" field; expected {"value": ..., "confidence": 0..1}`,
        { usage },
      );
    const answer = output as { value: unknown; confidence?: unknown };
    const parsed = schema.safeParse(answer.value);
    if (!parsed.success)
      throw new AgentError(
        'validation_error',
        `${name}: the model's answer failed the schema: ${issues(parsed.error)}`,
        {
          usage,
        },
      );
    let confidence = response.confidence;
    if (answer.confidence !== undefined) {
      if (typeof answer.confidence !== 'number' || !(answer.confidence >= 0 && answer.confidence <= 1))
        throw new AgentError(
          'validation_error',
          `${name}: "confidence" must be a number in [0, 1], got ${JSON.stringify(answer.confidence)}`,
          { usage },
        );
      confidence = answer.confidence;
    }
    return { value: parsed.data, confidence, usage, model: response.model };
  };

  return agent<I, O>({
    // With a cap, the reservation's input part is the request this agent sends: the messages.
    estimateInputTokens: (input) => estimateTokens(messagesOf(input)),
    ...policies,
    // Spans name who served the call (`gen_ai.provider.name`): the provider's own name by default.
    providerName: policies.providerName ?? provider.name,
    run,
  });
}

/** The instruction every call carries; zod schemas are described as JSON Schema. */
function systemPrompt(schema: SchemaLike<unknown>): string {
  let shape = '';
  if (schema instanceof z.core.$ZodType) {
    try {
      shape = `\n"value" must match this JSON Schema: ${JSON.stringify(
        z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }),
      )}`;
    } catch {
      shape = ''; // a schema JSON Schema cannot express: the answer is still validated
    }
  }
  return (
    'Answer with a single JSON object of the form {"value": <your answer>, "confidence": <number from 0 to 1>}.' +
    shape +
    '\n"confidence" is how likely it is that "value" is correct.'
  );
}

/** A provider that ignored `json: true` may hand back text: parse it or fail as malformed output. */
function asJson(output: unknown, name: string, usage: Usage): unknown {
  if (typeof output !== 'string') return output;
  try {
    return JSON.parse(output) as unknown;
  } catch (cause) {
    throw new ProviderError(
      'malformed_output',
      `${name}: the model's answer is not JSON; retry, or tighten the prompt`,
      {
        usage,
        cause,
      },
    );
  }
}

/** `value.total: Too small ...; value.lines[0].sku: ...` from a zod error, else its message. */
function issues(error: { message: string }): string {
  const list = (error as { issues?: unknown }).issues;
  if (!Array.isArray(list) || list.length === 0) return error.message;
  return list
    .slice(0, 5)
    .map((issue: unknown) => {
      const { path, message } = issue as { path?: unknown; message?: unknown };
      const at = Array.isArray(path)
        ? path.reduce<string>(
            (acc, key: unknown) => (typeof key === 'number' ? `${acc}[${key}]` : `${acc}.${String(key)}`),
            'value',
          )
        : 'value';
      return `${at}: ${typeof message === 'string' ? message : 'invalid'}`;
    })
    .join('; ');
}
