/**
 * How the ready-made agents talk to a model: one JSON call answering `{ "value": …, "confidence": 0..1 }`.
 * Internal to `agents/`: not part of the public surface.
 */
import {
  AgentError,
  ProviderError,
  type AgentContext,
  type ChatMessage,
  type ModelProvider,
  type Usage,
} from '../src/index.js';

/** The model's answer, read from its JSON. */
export interface ModelAnswer {
  /** The `value` field (anything JSON). */
  value: unknown;
  /** The answer's own `confidence`, else the provider's, else undefined. */
  confidence: number | undefined;
  /** Tokens the call used: carried by any failure classified afterwards, so it is still charged. */
  usage: Usage;
  /** Model that answered. */
  model: string;
}

const SYSTEM =
  'Answer with one JSON object {"value": <answer>, "confidence": <0..1>}. ' +
  'Copy text exactly as it appears in the document; use null when it is not there.';

/**
 * Calls `provider` once for an agent attempt: the attempt's model, signal and clock, `json: true`,
 * the structured `input` (simulated models read it) and chat messages (real models read those).
 */
export async function askModel(
  provider: ModelProvider,
  agentName: string,
  context: AgentContext,
  input: unknown,
  question: string,
): Promise<ModelAnswer> {
  const messages: ChatMessage[] = [
    { role: 'system', content: SYSTEM },
    { role: 'user', content: question },
  ];
  const response = await provider.call(
    { model: context.model, input, messages, json: true },
    { signal: context.signal, clock: context.clock },
  );
  const { usage } = response;
  let output = response.output;
  if (typeof output === 'string') {
    try {
      output = JSON.parse(output) as unknown;
    } catch (cause) {
      throw new ProviderError(
        'malformed_output',
        `${agentName}: the model's answer is not JSON; retry, or tighten the prompt`,
        { usage, cause },
      );
    }
  }
  if (typeof output !== 'object' || output === null || !('value' in output)) {
    throw new AgentError(
      'validation_error',
      `${agentName}: the model's answer has no "value" field; expected {"value": ..., "confidence": 0..1}`,
      { usage },
    );
  }
  const answer = output as { value: unknown; confidence?: unknown };
  const confidence =
    typeof answer.confidence === 'number' && answer.confidence >= 0 && answer.confidence <= 1
      ? answer.confidence
      : response.confidence;
  return { value: answer.value, confidence, usage, model: response.model };
}
