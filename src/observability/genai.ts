/**
 * The telemetry vocabulary Keel's spans speak: OpenTelemetry GenAI semantic-convention attribute
 * names and values, defined here because `@opentelemetry/semantic-conventions` marks the `gen_ai.*`
 * names as moved to a separate repository (and Keel depends on `@opentelemetry/api` only), plus
 * Keel's own `keel.*` attributes and span-event names.
 */

/** `gen_ai.operation.name`: what the span does (`invoke_workflow`, `invoke_agent`, `chat` or `execute_tool`). */
export const ATTR_GEN_AI_OPERATION_NAME = 'gen_ai.operation.name';
/** `gen_ai.provider.name`: who serves the model, e.g. `openai`. */
export const ATTR_GEN_AI_PROVIDER_NAME = 'gen_ai.provider.name';
/** `gen_ai.request.model`: the model the agent asked for. */
export const ATTR_GEN_AI_REQUEST_MODEL = 'gen_ai.request.model';
/** `gen_ai.response.model`: the model that actually answered. */
export const ATTR_GEN_AI_RESPONSE_MODEL = 'gen_ai.response.model';
/** `gen_ai.usage.input_tokens`: prompt tokens consumed. */
export const ATTR_GEN_AI_USAGE_INPUT_TOKENS = 'gen_ai.usage.input_tokens';
/** `gen_ai.usage.output_tokens`: completion tokens produced. */
export const ATTR_GEN_AI_USAGE_OUTPUT_TOKENS = 'gen_ai.usage.output_tokens';
/** `gen_ai.agent.name`: the Keel agent's name. */
export const ATTR_GEN_AI_AGENT_NAME = 'gen_ai.agent.name';
/** `gen_ai.agent.version`: the Keel agent's version, when the event carries one. */
export const ATTR_GEN_AI_AGENT_VERSION = 'gen_ai.agent.version';
/** `gen_ai.workflow.name`: the topology's name. */
export const ATTR_GEN_AI_WORKFLOW_NAME = 'gen_ai.workflow.name';
/** `gen_ai.input.messages`: input content (only with `captureContent: true`). */
export const ATTR_GEN_AI_INPUT_MESSAGES = 'gen_ai.input.messages';
/** `gen_ai.output.messages`: output content (only with `captureContent: true`). */
export const ATTR_GEN_AI_OUTPUT_MESSAGES = 'gen_ai.output.messages';
/** `gen_ai.tool.name`: the tool an `execute_tool` span ran. */
export const ATTR_GEN_AI_TOOL_NAME = 'gen_ai.tool.name';
/** `gen_ai.tool.call.id`: the model's id of the tool call. */
export const ATTR_GEN_AI_TOOL_CALL_ID = 'gen_ai.tool.call.id';
/** `gen_ai.tool.type`: `function` for Keel's tools (code run by the agent's process). */
export const ATTR_GEN_AI_TOOL_TYPE = 'gen_ai.tool.type';
/** `gen_ai.tool.call.arguments`: the call's (redacted) arguments (only with `captureContent: true`). */
export const ATTR_GEN_AI_TOOL_CALL_ARGUMENTS = 'gen_ai.tool.call.arguments';
/** `gen_ai.tool.call.result`: the call's (redacted) result (only with `captureContent: true`). */
export const ATTR_GEN_AI_TOOL_CALL_RESULT = 'gen_ai.tool.call.result';
/** `error.type`: the root-cause category of a failure (an `ErrorCategory`). */
export const ATTR_ERROR_TYPE = 'error.type';

/** Values of {@link ATTR_GEN_AI_OPERATION_NAME} Keel emits. */
export const GEN_AI_OPERATION = {
  invokeWorkflow: 'invoke_workflow',
  invokeAgent: 'invoke_agent',
  chat: 'chat',
  executeTool: 'execute_tool',
} as const;

/** A value of {@link ATTR_GEN_AI_OPERATION_NAME}. */
export type GenAiOperation = (typeof GEN_AI_OPERATION)[keyof typeof GEN_AI_OPERATION];

/** `keel.workflow.id`: the workflow id (high cardinality: a span attribute, never a metric label). */
export const ATTR_KEEL_WORKFLOW_ID = 'keel.workflow.id';
/** `keel.tenant`: the workflow's tenant (`RunOptions.tenant`), on workflow and agent spans. */
export const ATTR_KEEL_TENANT = 'keel.tenant';
/** `keel.node.path`: where in the topology tree the agent ran, e.g. `invoice/par[0]/vendor`. */
export const ATTR_KEEL_NODE_PATH = 'keel.node.path';
/** `keel.task_type`: the agent's task type (error targets and cost attribution). */
export const ATTR_KEEL_TASK_TYPE = 'keel.task_type';
/** `keel.attempt`: 1-based attempt number of a `chat` span. */
export const ATTR_KEEL_ATTEMPT = 'keel.attempt';
/** `keel.attempts`: attempts an agent invocation made. */
export const ATTR_KEEL_ATTEMPTS = 'keel.attempts';
/** `keel.tool.step`: 1-based model turn of the tool loop that asked for an `execute_tool` span's call. */
export const ATTR_KEEL_TOOL_STEP = 'keel.tool.step';
/** `keel.cost_usd`: actual cost in USD of the span's work. */
export const ATTR_KEEL_COST_USD = 'keel.cost_usd';
/** `keel.confidence`: the accepted output's confidence in [0, 1]. */
export const ATTR_KEEL_CONFIDENCE = 'keel.confidence';
/** `keel.cached`: true when the agent's output came from the cache. */
export const ATTR_KEEL_CACHED = 'keel.cached';

/** Names of the span events Keel records. */
export const KEEL_SPAN_EVENT = {
  /** On `invoke_agent`: the output came from the cache (`ageMs`, `savedUsd`). */
  cacheHit: 'keel.cache.hit',
  /** On `invoke_agent`: a stale cached output was served because the call failed. */
  cacheStaleServed: 'keel.cache.stale_served',
  /** On `invoke_agent`: the circuit breaker refused the call before any model call. */
  breakerRejected: 'keel.breaker.rejected',
  /** On `invoke_agent`: the budget refused the call before any model call. */
  budgetRejected: 'keel.budget.rejected',
  /** On `invoke_agent`: the budget moved the call to a cheaper model. */
  budgetDowngraded: 'keel.budget.downgraded',
  /** On `invoke_agent`: an attempt failed and another follows after `delayMs`. */
  retry: 'keel.retry',
  /** On `invoke_workflow`: a vote stopped early because its majority could no longer change. */
  voteEarlyStop: 'keel.vote.early_stop',
  /** On `invoke_workflow`: a cascade escalated to its next stage. */
  cascadeEscalated: 'keel.cascade.escalated',
} as const;

/**
 * `gen_ai.provider.name` of a call whose agent does not say who serves its model (a `run()` of
 * your own without `providerName`, and logs written before agents recorded it). Name it on the
 * agent (`providerName`) or for the whole runtime (`tracing.providerName`).
 */
export const GEN_AI_PROVIDER_OTHER = '_OTHER';

/** Provider ids of the Vercel AI SDK (`LanguageModel.provider`, before its first `.`) → GenAI registry names. */
const AI_SDK_PROVIDERS: Readonly<Record<string, string>> = {
  openai: 'openai',
  anthropic: 'anthropic',
  'amazon-bedrock': 'aws.bedrock',
  bedrock: 'aws.bedrock',
  'azure-openai': 'azure.ai.openai',
  azure: 'azure.ai.openai',
  google: 'gcp.gemini',
  'google-vertex': 'gcp.vertex_ai',
  vertex: 'gcp.vertex_ai',
  mistral: 'mistral_ai',
  xai: 'x_ai',
  groq: 'groq',
  deepseek: 'deepseek',
  cohere: 'cohere',
  perplexity: 'perplexity',
};

/** Names of the GenAI registry Keel passes through unchanged. */
const REGISTRY = new Set([
  ...Object.values(AI_SDK_PROVIDERS),
  'gcp.gen_ai',
  'azure.ai.inference',
  'ibm.watsonx.ai',
]);

/**
 * The `gen_ai.provider.name` of a provider's `name`: a GenAI registry name as is (`openai`,
 * `aws.bedrock`, …); an AI SDK provider id as its registry name (`openai.chat` → `openai`,
 * `amazon-bedrock` → `aws.bedrock`, `google.vertex.chat` → `gcp.vertex_ai`); any other name
 * (`simulated`, your own) as is.
 *
 * @example
 * genAiProviderName('anthropic.messages'); // 'anthropic'
 * genAiProviderName('simulated'); // 'simulated'
 */
export function genAiProviderName(name: string): string {
  if (REGISTRY.has(name)) return name;
  if (name.startsWith('google.vertex')) return 'gcp.vertex_ai';
  const dot = name.indexOf('.');
  const id = dot < 0 ? name : name.slice(0, dot);
  return Object.hasOwn(AI_SDK_PROVIDERS, id) ? (AI_SDK_PROVIDERS[id] as string) : name;
}
