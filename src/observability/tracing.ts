/**
 * OpenTelemetry spans as a consumer of the event stream. Fed committed events in order, it opens
 * `invoke_workflow {name}` → `invoke_agent {agent}` → `chat {model}` (one per attempt) and
 * `execute_tool {tool}` (one per tool call of a tool-using agent, `tool.called` to its outcome) with the
 * GenAI semantic-convention attributes, taking start and end times from the events' `ts`, so a
 * trace shows what the runtime's clock saw. Depends on `@opentelemetry/api` only: the SDK, the
 * exporter and the context manager are the user's.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  isSpanContextValid,
  trace,
  type Attributes,
  type Context,
  type HrTime,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import type { ErrorCategory, KeelEvent, Usage } from '../eventlog/events.js';
import {
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_AGENT_NAME,
  ATTR_GEN_AI_AGENT_VERSION,
  ATTR_GEN_AI_INPUT_MESSAGES,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_OUTPUT_MESSAGES,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_TOOL_CALL_ARGUMENTS,
  ATTR_GEN_AI_TOOL_CALL_ID,
  ATTR_GEN_AI_TOOL_CALL_RESULT,
  ATTR_GEN_AI_TOOL_NAME,
  ATTR_GEN_AI_TOOL_TYPE,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_GEN_AI_WORKFLOW_NAME,
  ATTR_KEEL_ATTEMPT,
  ATTR_KEEL_ATTEMPTS,
  ATTR_KEEL_CACHED,
  ATTR_KEEL_CONFIDENCE,
  ATTR_KEEL_COST_USD,
  ATTR_KEEL_NODE_PATH,
  ATTR_KEEL_TASK_TYPE,
  ATTR_KEEL_TENANT,
  ATTR_KEEL_TOOL_STEP,
  ATTR_KEEL_WORKFLOW_ID,
  GEN_AI_OPERATION,
  GEN_AI_PROVIDER_OTHER,
  KEEL_SPAN_EVENT,
  genAiProviderName,
} from './genai.js';

/** Options of {@link createTracing}. */
export interface TracingOptions {
  /** Tracer that creates the spans (default `trace.getTracer('keel')`, the global provider's). */
  tracer?: Tracer;
  /**
   * Record inputs and outputs as `gen_ai.input.messages` / `gen_ai.output.messages` (default
   * false). Events are redacted before they reach the log, so this sees redacted content only.
   */
  captureContent?: boolean;
  /**
   * Overrides `gen_ai.provider.name` of the model calls: a fixed name (`'openai'`) or a function
   * of the model id (`undefined`: no override for that model). Default: the provider the agent
   * declared on `agent.invoked` (its `providerName`; `llmAgent` takes its provider's `name`), as a
   * GenAI registry name (see `genAiProviderName`), else `_OTHER`. Spans always carry the attribute.
   */
  providerName?: string | ((model: string) => string | undefined);
}

/** Trace and span ids (hex) of the span an event was attributed to: for log correlation. */
export interface TraceIds {
  traceId: string;
  spanId: string;
}

/** Turns the event stream into spans. */
export interface KeelTracing {
  /**
   * Feeds one committed event, in log order. `parent` is read on `workflow.started` only: the
   * caller's active context captured at `rt.run`, under which the workflow span is opened
   * (default: a new root trace). Returns the ids of the span the event belongs to (the agent's
   * span for agent events, else the workflow's), or `undefined` for events outside a traced
   * workflow, so a log line can carry `trace.id` / `span.id`.
   */
  onEvent(event: KeelEvent, parent?: Context): TraceIds | undefined;
  /** Workflows with open spans (0 once every workflow has ended: nothing leaks). */
  openWorkflows(): number;
}

interface AgentState {
  readonly span: Span;
  readonly ctx: Context;
  readonly agent: string;
  /** Model of the current attempt (a budget downgrade changes it). */
  model: string;
  /** The provider `agent.invoked` recorded, if any. */
  readonly provider: string | undefined;
  /** 1-based number of the attempt in progress (as logged: a resumed invocation's start after 1). */
  attempt: number;
  /** Number of its first attempt (`agent.invoked`'s `firstAttempt`, else 1). */
  readonly firstAttempt: number;
  /** Event time (ms) the current attempt started. */
  attemptStartMs: number;
  /** False once the current attempt's chat span was written (timed out before `agent.retried`). */
  attemptOpen: boolean;
  usage: Usage | undefined;
  usageAttempt: number;
  /** Open `execute_tool` spans, by `step:callId`. */
  readonly tools: Map<string, Span>;
}

interface WorkflowState {
  readonly span: Span;
  readonly ctx: Context;
  readonly agents: Map<string, AgentState>;
  /**
   * False when the workflow span records nothing and has no valid ids (no OpenTelemetry SDK
   * registered, no traced caller): its agent and chat spans would be no-ops too, so they are not
   * made, and every event of the workflow reports the workflow span's (invalid) ids, as they would.
   */
  readonly traced: boolean;
}

const hrTime = (ms: number): HrTime => {
  const seconds = Math.floor(ms / 1000);
  return [seconds, Math.round((ms - seconds * 1000) * 1e6)];
};

const messages = (role: 'user' | 'assistant', value: unknown): string =>
  JSON.stringify([
    { role, parts: [{ type: 'text', content: typeof value === 'string' ? value : JSON.stringify(value) }] },
  ]);

/**
 * Creates the span projection of the event stream.
 *
 * @example
 * const tracing = createTracing({ providerName: 'openai' });
 * const parent = context.active(); // captured where rt.run was called
 * for (const event of committed) tracing.onEvent(event, parent);
 */
export function createTracing(options: TracingOptions = {}): KeelTracing {
  const tracer = options.tracer ?? trace.getTracer('keel');
  const capture = options.captureContent === true;
  const override = options.providerName;
  /** `gen_ai.provider.name` of a call of `model` whose agent recorded `recorded`: never undefined. */
  const providerOf = (model: string, recorded: string | undefined): string =>
    (typeof override === 'function' ? override(model) : override) ??
    (recorded === undefined ? GEN_AI_PROVIDER_OTHER : genAiProviderName(recorded));
  const workflows = new Map<string, WorkflowState>();

  const fail = (span: Span, category: ErrorCategory, message?: string): void => {
    span.setAttribute(ATTR_ERROR_TYPE, category);
    span.setStatus(
      message === undefined ? { code: SpanStatusCode.ERROR } : { code: SpanStatusCode.ERROR, message },
    );
  };

  /** Writes the chat span of the agent's current attempt, from its start to `endMs`. */
  const writeChat = (
    a: AgentState,
    endMs: number,
    outcome: { category?: ErrorCategory; message?: string; responseModel?: string; output?: unknown },
    fallbackUsage?: Usage,
  ): void => {
    const attributes: Attributes = {
      [ATTR_GEN_AI_OPERATION_NAME]: GEN_AI_OPERATION.chat,
      [ATTR_GEN_AI_REQUEST_MODEL]: a.model,
      [ATTR_GEN_AI_AGENT_NAME]: a.agent,
      [ATTR_KEEL_ATTEMPT]: a.attempt,
    };
    attributes[ATTR_GEN_AI_PROVIDER_NAME] = providerOf(a.model, a.provider);
    const usage = a.usageAttempt === a.attempt ? a.usage : fallbackUsage;
    if (usage !== undefined) {
      attributes[ATTR_GEN_AI_USAGE_INPUT_TOKENS] = usage.inputTokens;
      attributes[ATTR_GEN_AI_USAGE_OUTPUT_TOKENS] = usage.outputTokens;
    }
    if (outcome.responseModel !== undefined) attributes[ATTR_GEN_AI_RESPONSE_MODEL] = outcome.responseModel;
    if (capture && outcome.output !== undefined)
      attributes[ATTR_GEN_AI_OUTPUT_MESSAGES] = messages('assistant', outcome.output);
    const span = tracer.startSpan(
      `${GEN_AI_OPERATION.chat} ${a.model}`,
      { kind: SpanKind.CLIENT, startTime: hrTime(Math.min(a.attemptStartMs, endMs)), attributes },
      a.ctx,
    );
    if (outcome.category !== undefined) fail(span, outcome.category, outcome.message);
    span.end(hrTime(endMs));
    a.attemptOpen = false;
  };

  const endAgent = (wf: WorkflowState, path: string, a: AgentState, endMs: number): void => {
    for (const span of a.tools.values()) {
      fail(span, 'cancelled', 'the agent ended before this tool call reported an outcome');
      span.end(hrTime(endMs));
    }
    a.tools.clear();
    a.span.end(hrTime(endMs));
    wf.agents.delete(path);
  };

  const endWorkflow = (workflowId: string, wf: WorkflowState, endMs: number): void => {
    for (const [path, a] of [...wf.agents]) {
      fail(a.span, 'cancelled', 'the workflow ended before this agent reported an outcome');
      endAgent(wf, path, a, endMs);
    }
    wf.span.end(hrTime(endMs));
    workflows.delete(workflowId);
  };

  const startWorkflow = (event: KeelEvent<'workflow.started'>, parent: Context | undefined): TraceIds => {
    const previous = workflows.get(event.workflowId);
    if (previous !== undefined) endWorkflow(event.workflowId, previous, event.ts);
    const p = event.payload;
    const attributes: Attributes = {
      [ATTR_GEN_AI_OPERATION_NAME]: GEN_AI_OPERATION.invokeWorkflow,
      [ATTR_GEN_AI_WORKFLOW_NAME]: p.name,
      [ATTR_KEEL_WORKFLOW_ID]: event.workflowId,
    };
    if (p.tenant !== undefined) attributes[ATTR_KEEL_TENANT] = p.tenant;
    if (capture) attributes[ATTR_GEN_AI_INPUT_MESSAGES] = messages('user', p.input);
    const span = tracer.startSpan(
      `${GEN_AI_OPERATION.invokeWorkflow} ${p.name}`,
      { kind: SpanKind.INTERNAL, startTime: hrTime(event.ts), attributes },
      parent ?? ROOT_CONTEXT,
    );
    const ids = span.spanContext();
    const traced = span.isRecording() || isSpanContextValid(ids);
    const ctx = traced ? trace.setSpan(parent ?? ROOT_CONTEXT, span) : ROOT_CONTEXT;
    workflows.set(event.workflowId, { span, ctx, agents: new Map(), traced });
    return ids;
  };

  const startAgent = (wf: WorkflowState, event: KeelEvent<'agent.invoked'>): TraceIds => {
    const p = event.payload;
    const previous = wf.agents.get(p.path);
    if (previous !== undefined) endAgent(wf, p.path, previous, event.ts);
    const attributes: Attributes = {
      [ATTR_GEN_AI_OPERATION_NAME]: GEN_AI_OPERATION.invokeAgent,
      [ATTR_GEN_AI_AGENT_NAME]: p.agent,
      [ATTR_GEN_AI_REQUEST_MODEL]: p.model,
      [ATTR_KEEL_TASK_TYPE]: p.taskType,
      [ATTR_KEEL_NODE_PATH]: p.path,
    };
    if (p.agentVersion !== undefined) attributes[ATTR_GEN_AI_AGENT_VERSION] = p.agentVersion;
    if (p.tenant !== undefined) attributes[ATTR_KEEL_TENANT] = p.tenant;
    attributes[ATTR_GEN_AI_PROVIDER_NAME] = providerOf(p.model, p.provider);
    const span = tracer.startSpan(
      `${GEN_AI_OPERATION.invokeAgent} ${p.agent}`,
      { kind: SpanKind.INTERNAL, startTime: hrTime(event.ts), attributes },
      wf.ctx,
    );
    wf.agents.set(p.path, {
      span,
      ctx: trace.setSpan(wf.ctx, span),
      agent: p.agent,
      model: p.model,
      provider: p.provider,
      attempt: p.firstAttempt ?? 1,
      firstAttempt: p.firstAttempt ?? 1,
      attemptStartMs: event.ts,
      attemptOpen: true,
      usage: undefined,
      usageAttempt: 0,
      tools: new Map(),
    });
    return span.spanContext();
  };

  /** Applies an event that belongs to an open agent invocation at `path`. */
  const onAgentEvent = (wf: WorkflowState, event: KeelEvent, a: AgentState, path: string): void => {
    switch (event.type) {
      case 'cache.miss':
      case 'cost.reserved':
        // The gate passed: the attempt's model call starts now.
        if (a.attemptOpen) a.attemptStartMs = event.ts;
        break;
      case 'cache.hit':
        a.span.addEvent(
          KEEL_SPAN_EVENT.cacheHit,
          { 'keel.cache.age_ms': event.payload.ageMs, 'keel.saved_usd': event.payload.savedUsd },
          hrTime(event.ts),
        );
        break;
      case 'cache.stale_served':
        a.span.addEvent(
          KEEL_SPAN_EVENT.cacheStaleServed,
          { 'keel.cache.age_ms': event.payload.ageMs, [ATTR_ERROR_TYPE]: event.payload.reason },
          hrTime(event.ts),
        );
        break;
      case 'budget.downgraded':
        a.model = event.payload.toModel;
        a.span.addEvent(
          KEEL_SPAN_EVENT.budgetDowngraded,
          { 'keel.model.from': event.payload.fromModel, 'keel.model.to': event.payload.toModel },
          hrTime(event.ts),
        );
        break;
      case 'cost.incurred': {
        // A tool loop charges each model turn: the attempt's usage is their sum.
        const u = event.payload.usage;
        const step = event.payload.step;
        a.usage =
          step !== undefined && step > 1 && a.usageAttempt === event.payload.attempt && a.usage !== undefined
            ? {
                inputTokens: a.usage.inputTokens + u.inputTokens,
                outputTokens: a.usage.outputTokens + u.outputTokens,
              }
            : u;
        a.usageAttempt = event.payload.attempt;
        break;
      }
      case 'agent.timed_out':
        if (a.attemptOpen && event.payload.attempt === a.attempt)
          writeChat(a, event.ts, {
            category: 'timeout',
            message: `attempt ${a.attempt} timed out after ${event.payload.timeoutMs} ms`,
          });
        break;
      case 'tool.called': {
        const p = event.payload;
        const key = `${p.step}:${p.callId}`;
        const previous = a.tools.get(key);
        if (previous !== undefined) previous.end(hrTime(event.ts));
        const attributes: Attributes = {
          [ATTR_GEN_AI_OPERATION_NAME]: GEN_AI_OPERATION.executeTool,
          [ATTR_GEN_AI_TOOL_NAME]: p.tool,
          [ATTR_GEN_AI_TOOL_CALL_ID]: p.callId,
          [ATTR_GEN_AI_TOOL_TYPE]: 'function',
          [ATTR_GEN_AI_AGENT_NAME]: p.agent,
          [ATTR_KEEL_TOOL_STEP]: p.step,
        };
        if (capture) attributes[ATTR_GEN_AI_TOOL_CALL_ARGUMENTS] = JSON.stringify(p.args ?? null);
        const span = tracer.startSpan(
          `${GEN_AI_OPERATION.executeTool} ${p.tool}`,
          { kind: SpanKind.INTERNAL, startTime: hrTime(event.ts), attributes },
          a.ctx,
        );
        a.tools.set(key, span);
        break;
      }
      case 'tool.succeeded':
      case 'tool.failed': {
        const p = event.payload;
        const key = `${p.step}:${p.callId}`;
        const span = a.tools.get(key);
        if (span === undefined) break;
        span.setAttribute(ATTR_KEEL_ATTEMPTS, p.attempts);
        if (event.type === 'tool.succeeded') {
          if (capture)
            span.setAttribute(ATTR_GEN_AI_TOOL_CALL_RESULT, JSON.stringify(event.payload.result ?? null));
        } else fail(span, event.payload.category, event.payload.message);
        span.end(hrTime(event.ts));
        a.tools.delete(key);
        break;
      }
      case 'agent.retried': {
        const p = event.payload;
        if (a.attemptOpen && p.attempt === a.attempt)
          writeChat(a, event.ts, { category: p.category, message: p.message });
        a.span.addEvent(
          KEEL_SPAN_EVENT.retry,
          { [ATTR_KEEL_ATTEMPT]: p.attempt, [ATTR_ERROR_TYPE]: p.category, 'keel.delay_ms': p.delayMs },
          hrTime(event.ts),
        );
        a.attempt = p.attempt + 1;
        a.attemptStartMs = event.ts + p.delayMs;
        a.attemptOpen = true;
        break;
      }
      case 'agent.succeeded': {
        const p = event.payload;
        const output = capture ? p.output : undefined;
        if (p.cached !== true && a.attemptOpen && a.firstAttempt - 1 + p.attempts >= a.attempt)
          writeChat(a, event.ts, { responseModel: p.model, output }, p.attempts === 1 ? p.usage : undefined);
        a.span.setAttributes({
          [ATTR_GEN_AI_RESPONSE_MODEL]: p.model,
          [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: p.usage.inputTokens,
          [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: p.usage.outputTokens,
          [ATTR_KEEL_COST_USD]: p.costUsd,
          [ATTR_KEEL_ATTEMPTS]: p.attempts,
          [ATTR_KEEL_CACHED]: p.cached === true,
        });
        if (p.confidence !== undefined) a.span.setAttribute(ATTR_KEEL_CONFIDENCE, p.confidence);
        if (output !== undefined)
          a.span.setAttribute(ATTR_GEN_AI_OUTPUT_MESSAGES, messages('assistant', output));
        endAgent(wf, path, a, event.ts);
        break;
      }
      case 'agent.failed': {
        const p = event.payload;
        if (a.attemptOpen && a.firstAttempt - 1 + p.attempts >= a.attempt)
          writeChat(a, event.ts, { category: p.category, message: p.message });
        a.span.setAttributes({ [ATTR_KEEL_COST_USD]: p.costUsd, [ATTR_KEEL_ATTEMPTS]: p.attempts });
        fail(a.span, p.category, p.message);
        endAgent(wf, path, a, event.ts);
        break;
      }
      case 'agent.rejected': {
        const p = event.payload;
        const name =
          p.category === 'circuit_open'
            ? KEEL_SPAN_EVENT.breakerRejected
            : p.category === 'budget_exceeded'
              ? KEEL_SPAN_EVENT.budgetRejected
              : undefined;
        if (name !== undefined) a.span.addEvent(name, { 'keel.reason': p.reason }, hrTime(event.ts));
        fail(a.span, p.category, p.reason);
        endAgent(wf, path, a, event.ts);
        break;
      }
      default:
        break;
    }
  };

  const onEvent = (event: KeelEvent, parent?: Context): TraceIds | undefined => {
    if (event.type === 'workflow.started') return startWorkflow(event, parent);
    const wf = workflows.get(event.workflowId);
    if (wf === undefined) return undefined;
    if (!wf.traced) return untracedEvent(event, wf);
    switch (event.type) {
      case 'agent.invoked':
        return startAgent(wf, event);
      case 'workflow.completed': {
        wf.span.setAttribute(ATTR_KEEL_COST_USD, event.payload.costUsd);
        if (capture)
          wf.span.setAttribute(ATTR_GEN_AI_OUTPUT_MESSAGES, messages('assistant', event.payload.output));
        const ids = wf.span.spanContext();
        endWorkflow(event.workflowId, wf, event.ts);
        return ids;
      }
      case 'workflow.failed':
      case 'workflow.cancelled': {
        wf.span.setAttribute(ATTR_KEEL_COST_USD, event.payload.costUsd);
        if (event.type === 'workflow.failed') fail(wf.span, event.payload.category, event.payload.message);
        else fail(wf.span, 'cancelled', event.payload.reason);
        const ids = wf.span.spanContext();
        endWorkflow(event.workflowId, wf, event.ts);
        return ids;
      }
      case 'workflow.interrupted':
        return interrupted(event, wf);
      case 'vote.early_stop':
        wf.span.addEvent(
          KEEL_SPAN_EVENT.voteEarlyStop,
          {
            [ATTR_KEEL_NODE_PATH]: event.payload.path,
            'keel.vote.cast': event.payload.cast,
            'keel.vote.total': event.payload.total,
            'keel.vote.skipped': event.payload.skipped,
          },
          hrTime(event.ts),
        );
        return wf.span.spanContext();
      case 'cascade.escalated': {
        const p = event.payload;
        const attributes: Attributes = {
          [ATTR_KEEL_NODE_PATH]: p.path,
          'keel.cascade.from_stage': p.fromStage,
          'keel.cascade.to_stage': p.toStage,
          'keel.cascade.from_agent': p.fromAgent,
          'keel.cascade.to_agent': p.toAgent,
          'keel.reason': p.reason,
        };
        if (p.confidence !== undefined) attributes[ATTR_KEEL_CONFIDENCE] = p.confidence;
        wf.span.addEvent(KEEL_SPAN_EVENT.cascadeEscalated, attributes, hrTime(event.ts));
        return wf.span.spanContext();
      }
      default: {
        const path = agentPath(event);
        const a = path === undefined ? undefined : wf.agents.get(path);
        if (path === undefined || a === undefined) return wf.span.spanContext();
        const ids = a.span.spanContext();
        onAgentEvent(wf, event, a, path);
        return ids;
      }
    }
  };

  /** An event of an untraced workflow: only the workflow's end matters (its span still ends). */
  const untracedEvent = (event: KeelEvent, wf: WorkflowState): TraceIds => {
    const ids = wf.span.spanContext();
    if (event.type === 'workflow.completed' || event.type === 'workflow.failed') {
      wf.span.setAttribute(ATTR_KEEL_COST_USD, event.payload.costUsd);
      if (event.type === 'workflow.failed') fail(wf.span, event.payload.category, event.payload.message);
      endWorkflow(event.workflowId, wf, event.ts);
    } else if (event.type === 'workflow.cancelled') {
      wf.span.setAttribute(ATTR_KEEL_COST_USD, event.payload.costUsd);
      fail(wf.span, 'cancelled', event.payload.reason);
      endWorkflow(event.workflowId, wf, event.ts);
    } else if (event.type === 'workflow.interrupted') interrupted(event, wf);
    return ids;
  };

  /** A crash cut the workflow off and it was marked later: its span ends, as an error, at the mark. */
  const interrupted = (event: KeelEvent<'workflow.interrupted'>, wf: WorkflowState): TraceIds => {
    const ids = wf.span.spanContext();
    wf.span.setAttribute(ATTR_ERROR_TYPE, 'interrupted');
    wf.span.setStatus({ code: SpanStatusCode.ERROR, message: event.payload.reason });
    endWorkflow(event.workflowId, wf, event.ts);
    return ids;
  };

  return { onEvent, openWorkflows: () => workflows.size };
}

/** The topology path of events that belong to one agent invocation. */
function agentPath(event: KeelEvent): string | undefined {
  switch (event.type) {
    case 'agent.succeeded':
    case 'agent.failed':
    case 'agent.retried':
    case 'agent.timed_out':
    case 'agent.rejected':
    case 'cost.reserved':
    case 'cost.incurred':
    case 'budget.downgraded':
    case 'cache.hit':
    case 'cache.miss':
    case 'cache.stale_served':
    case 'tool.called':
    case 'tool.succeeded':
    case 'tool.failed':
      return event.payload.path;
    default:
      return undefined;
  }
}
