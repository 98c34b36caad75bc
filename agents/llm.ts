/**
 * `llmAgent()`: an agent whose work is one structured model call — or, with `tools`, a tool loop
 * (model → tools → model … → answer, machines/toolLoop.machine.ts). It asks the provider for
 * `{ "value": <schema>, "confidence": <0..1> }` as JSON, validates `value` with a zod schema and
 * hands Keel `{ value, confidence, usage, model }`.
 */
import { createActor, fromPromise } from 'xstate';
import { z } from 'zod';
import {
  toolLoopMachine,
  type CallToolsInput,
  type ToolLoopContext,
  type ToolObservation,
} from '../machines/toolLoop.machine.js';
import { callTool } from '../src/tools/call.js';
import { toolSpecs } from '../src/tools/tool.js';
import {
  AgentError,
  ConfigError,
  ProviderError,
  isProviderError,
  agent,
  estimateTokens,
  type Agent,
  type AgentConfig,
  type AgentContext,
  type AgentOutput,
  type ChatMessage,
  type ModelProvider,
  type SchemaLike,
  type Tool,
  type Usage,
  type ModelResponse,
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
  /**
   * Tools the model may call, by the name it calls them (`tool({ description, schema, execute })`).
   * With tools, each attempt runs the tool loop: the model's tool calls of one turn run at once,
   * their results go back as `tool` messages, and the model is asked again, until it answers or
   * `maxSteps` turns have passed. Each call is logged (`tool.called`, `tool.succeeded`,
   * `tool.failed`); a failed call is shown to the model as `{"error": …}`. Each model turn is
   * metered as a call of its own (`AgentContext.turn`): it reserves from the budget before it is
   * made, goes through the agent's breaker and is charged its own usage (`cost.incurred` with
   * `step`). A turn the budget or the breaker refuses ends the attempt with `budget_exceeded` /
   * `circuit_open`. Default: none.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each tool has its own argument type
  tools?: Readonly<Record<string, Tool<any, unknown>>>;
  /**
   * Most model turns of one attempt, tool turns included (an integer >= 1; default 5). A model that
   * still asks for tools on the last turn fails the attempt with `validation_error` (step limit).
   */
  maxSteps?: number;
}

/** The tools as the loop holds them (each with its own argument type). */
type ToolSet = Readonly<Record<string, Tool<never, unknown>>>;

/** Default {@link LlmAgentConfig.maxSteps}. */
export const DEFAULT_MAX_STEPS = 5;

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

  const { provider, prompt, schema, temperature, tools, maxSteps, ...policies } = config;
  const name = config.name;
  const specs = tools !== undefined ? toolSpecs(tools as ToolSet, where) : undefined;
  const steps = maxSteps ?? DEFAULT_MAX_STEPS;
  if (!(Number.isInteger(steps) && steps >= 1))
    throw new ConfigError(
      `${where}.maxSteps`,
      `must be an integer >= 1 (model turns per attempt), got ${String(maxSteps)}`,
    );
  if (maxSteps !== undefined && specs === undefined)
    throw new ConfigError(
      `${where}.maxSteps`,
      'only applies with tools; add tools: { ... } or drop maxSteps',
    );
  const instructions: ChatMessage = { role: 'system', content: systemPrompt(schema) };
  const messagesOf = (input: I): ChatMessage[] => {
    const asked = prompt(input);
    return typeof asked === 'string'
      ? [instructions, { role: 'user', content: asked }]
      : [instructions, ...asked];
  };

  const run = async (input: I, context: AgentContext): Promise<AgentOutput<O>> => {
    const messages = messagesOf(input);
    const request = {
      model: context.model,
      input,
      json: true,
      maxOutputTokens: context.maxOutputTokens,
      temperature,
    };
    const callContext = {
      signal: context.signal,
      clock: context.clock,
      ...(context.onDelta !== undefined ? { onDelta: context.onDelta } : {}),
    };
    const { response, usage } =
      specs === undefined || tools === undefined
        ? await provider
            .call({ ...request, messages }, callContext)
            .then((r) => ({ response: r, usage: r.usage }))
        : await toolLoop(name, tools as ToolSet, steps, messages, context, (turn, step) => {
            const call = (model: string): Promise<ModelResponse> =>
              provider.call({ ...request, model, messages: turn, tools: specs }, callContext);
            // Each turn is metered as a call of its own: reserved, breaker-guarded, charged.
            return context.turn !== undefined
              ? context.turn(step, call, { inputTokens: estimateTokens(turn) })
              : call(context.model);
          });
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

/**
 * Runs the tool loop of one attempt (machines/toolLoop.machine.ts): model turns through `turn`, the
 * tool calls of a turn at once through `callTool`. Resolves with the answering turn and the usage
 * of every turn; a failed turn rejects with its error, carrying the usage of every turn; the step
 * limit rejects with `validation_error`.
 */
async function toolLoop(
  name: string,
  tools: Readonly<Record<string, Tool<never, unknown>>>,
  maxSteps: number,
  messages: readonly ChatMessage[],
  context: AgentContext,
  turn: (messages: readonly ChatMessage[], step: number) => Promise<ModelResponse>,
): Promise<{ response: ModelResponse; usage: Usage }> {
  const scope = {
    workflowId: context.workflowId,
    path: context.path,
    agent: name,
    clock: context.clock,
    signal: context.signal,
    record: context.recordTool ?? (() => undefined),
    ...(context.toolBreaker !== undefined ? { breaker: context.toolBreaker } : {}),
    ...(context.recordedToolResult !== undefined ? { recorded: context.recordedToolResult } : {}),
  };
  const loop = toolLoopMachine.provide({
    actors: {
      modelTurn: fromPromise<ModelResponse, { messages: readonly ChatMessage[]; step: number }>(({ input }) =>
        turn(input.messages, input.step),
      ),
      callTools: fromPromise<readonly ToolObservation[], CallToolsInput>(({ input }) =>
        Promise.all(input.calls.map((call, index) => callTool(tools, call, input.step, index, scope))),
      ),
    },
  });
  const actor = createActor(loop, { input: { messages, maxSteps } });
  const final = await new Promise<ToolLoopContext & { state: string }>((resolve, reject) => {
    actor.subscribe({
      complete: () => {
        const snapshot = actor.getSnapshot();
        resolve({ ...snapshot.context, state: String(snapshot.value) });
      },
      error: reject,
    });
    actor.start();
  });
  if (final.state === 'answered' && final.response !== undefined)
    return { response: final.response, usage: final.usage };
  if (final.state === 'stepLimit')
    throw new AgentError(
      'validation_error',
      `${name}: step limit reached: the model still asked for tools at step ${final.step} of maxSteps ${maxSteps}; raise maxSteps, or tell the model in the prompt to answer once it has what it needs`,
      { usage: final.usage },
    );
  // A model turn failed: the attempt fails with its category, charged every turn it made.
  const error = final.error;
  if (isProviderError(error)) {
    const usage = error.details.usage ? sum(final.usage, error.details.usage) : final.usage;
    throw new ProviderError(error.category, error.message, { ...error.details, usage, cause: error });
  }
  throw error instanceof Error
    ? error
    : new AgentError('unknown', `${name}: ${String(error)}`, { usage: final.usage });
}

const sum = (a: Usage, b: Usage): Usage => ({
  inputTokens: a.inputTokens + b.inputTokens,
  outputTokens: a.outputTokens + b.outputTokens,
});

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
