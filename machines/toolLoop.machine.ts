/**
 * The tool loop of a tool-using agent: the model thinks, asks for tools, observes their results and
 * thinks again, until it answers or the step limit is reached.
 *
 * ```
 *   thinking ──(answer)──────────────────────────────► answered
 *      │  ▲  ──(tool calls at step = maxSteps)───────► stepLimit
 *      │  │  ──(model turn failed)───────────────────► failed
 *      ▼  │
 *   callingTools (every call of the turn at once) ──► observing ──► thinking (step + 1)
 * ```
 *
 * Pure: the model turn and the tool calls are actors the caller provides (`modelTurn`, `callTools`)
 * with `machine.provide({ actors })`; the machine only decides what comes next and keeps the
 * conversation. One model turn is one step.
 */
import { assign, fromPromise, setup } from 'xstate';
import type { Usage } from '../src/eventlog/events.js';
import type { ChatMessage, ModelResponse, ToolCall } from '../src/providers/types.js';

/** What the loop starts from. */
export interface ToolLoopInput {
  /** The conversation so far (system and user messages). */
  messages: readonly ChatMessage[];
  /** Most model turns (>= 1). */
  maxSteps: number;
}

/** One tool's answer, as the model is shown it. */
export interface ToolObservation {
  call: ToolCall;
  /** The `tool` message content: the result as JSON, or `{"error": …}`. */
  content: string;
}

/** The loop's state. */
export interface ToolLoopContext {
  readonly messages: readonly ChatMessage[];
  readonly maxSteps: number;
  /** The current (or last) model turn, 1-based. */
  readonly step: number;
  /** Usage of every model turn so far (what each reported; a turn that reported none counts 0). */
  readonly usage: Usage;
  /** The last model answer. */
  readonly response: ModelResponse | undefined;
  /** Tool calls of the current turn. */
  readonly pending: readonly ToolCall[];
  /** What the last tool calls answered. */
  readonly observations: readonly ToolObservation[];
  /** Why a model turn failed (state `failed`). */
  readonly error: unknown;
}

/** The actors the caller provides. */
export interface ModelTurnInput {
  messages: readonly ChatMessage[];
  step: number;
}
export interface CallToolsInput {
  calls: readonly ToolCall[];
  step: number;
}

const notProvided = (name: string) => () =>
  Promise.reject(new Error(`toolLoopMachine: provide the "${name}" actor with machine.provide({ actors })`));

/** Adds a turn's usage; a turn that reported none (or a malformed one) adds nothing. */
const add = (a: Usage, b: Usage | undefined): Usage => {
  const input = (b as { inputTokens?: unknown } | undefined)?.inputTokens;
  const output = (b as { outputTokens?: unknown } | undefined)?.outputTokens;
  const count = (n: unknown): number => (typeof n === 'number' && n >= 0 && Number.isFinite(n) ? n : 0);
  return { inputTokens: a.inputTokens + count(input), outputTokens: a.outputTokens + count(output) };
};

/**
 * The tool-loop machine.
 *
 * @example
 * const loop = toolLoopMachine.provide({
 *   actors: {
 *     modelTurn: fromPromise(({ input }) => provider.call({ model, messages: input.messages, tools }, { signal })),
 *     callTools: fromPromise(({ input }) => Promise.all(input.calls.map(run))),
 *   },
 * });
 * const actor = createActor(loop, { input: { messages, maxSteps: 5 } }).start();
 */
export const toolLoopMachine = setup({
  types: {
    context: {} as ToolLoopContext,
    input: {} as ToolLoopInput,
  },
  actors: {
    modelTurn: fromPromise<ModelResponse, ModelTurnInput>(notProvided('modelTurn')),
    callTools: fromPromise<readonly ToolObservation[], CallToolsInput>(notProvided('callTools')),
  },
  guards: {
    wantsTools: (_, response: ModelResponse) => (response.toolCalls?.length ?? 0) > 0,
    atStepLimit: ({ context }) => context.step >= context.maxSteps,
  },
}).createMachine({
  id: 'toolLoop',
  context: ({ input }) => ({
    messages: input.messages,
    maxSteps: input.maxSteps,
    step: 1,
    usage: { inputTokens: 0, outputTokens: 0 },
    response: undefined,
    pending: [],
    observations: [],
    error: undefined,
  }),
  initial: 'thinking',
  states: {
    thinking: {
      invoke: {
        src: 'modelTurn',
        input: ({ context }) => ({ messages: context.messages, step: context.step }),
        onDone: [
          {
            guard: { type: 'wantsTools', params: ({ event }) => event.output },
            target: 'deciding',
            actions: assign(({ context, event }) => ({
              response: event.output,
              usage: add(context.usage, event.output.usage),
              pending: event.output.toolCalls ?? [],
              messages: [
                ...context.messages,
                {
                  role: 'assistant' as const,
                  content: typeof event.output.output === 'string' ? event.output.output : '',
                  toolCalls: event.output.toolCalls,
                },
              ],
            })),
          },
          {
            target: 'answered',
            actions: assign(({ context, event }) => ({
              response: event.output,
              usage: add(context.usage, event.output.usage),
            })),
          },
        ],
        onError: { target: 'failed', actions: assign({ error: ({ event }) => event.error }) },
      },
    },
    /** The model asked for tools: run them, unless this was the last step allowed. */
    deciding: {
      always: [{ guard: 'atStepLimit', target: 'stepLimit' }, { target: 'callingTools' }],
    },
    callingTools: {
      invoke: {
        src: 'callTools',
        input: ({ context }) => ({ calls: context.pending, step: context.step }),
        onDone: {
          target: 'observing',
          actions: assign({ observations: ({ event }) => event.output }),
        },
        onError: { target: 'failed', actions: assign({ error: ({ event }) => event.error }) },
      },
    },
    /** The results join the conversation as `tool` messages, and the model thinks again. */
    observing: {
      always: {
        target: 'thinking',
        actions: assign(({ context }) => ({
          messages: [
            ...context.messages,
            ...context.observations.map((o): ChatMessage => ({
              role: 'tool',
              toolCallId: o.call.id,
              toolName: o.call.name,
              content: o.content,
            })),
          ],
          step: context.step + 1,
          pending: [],
        })),
      },
    },
    answered: { type: 'final' },
    stepLimit: { type: 'final' },
    failed: { type: 'final' },
  },
});

/** The tool-loop machine's type. */
export type ToolLoopMachine = typeof toolLoopMachine;
