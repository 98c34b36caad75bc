import {
  INVALID_SPAN_CONTEXT,
  ProxyTracerProvider,
  context,
  trace,
  SpanKind,
  SpanStatusCode,
  type Context,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SYSTEM_WORKFLOW_ID, type KeelEvent } from '../../src/eventlog/events.js';
import {
  ATTR_ERROR_TYPE,
  ATTR_GEN_AI_AGENT_NAME,
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
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_GEN_AI_WORKFLOW_NAME,
  KEEL_SPAN_EVENT,
} from '../../src/observability/genai.js';
import { createTracing, type KeelTracing } from '../../src/observability/tracing.js';
import { StreamBuilder, syntheticStream } from './stream.js';

/** Counts spans started and ended, to prove none is left open. */
class OpenSpans implements SpanProcessor {
  open = 0;
  onStart(): void {
    this.open++;
  }
  onEnd(): void {
    this.open--;
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const exporter = new InMemorySpanExporter();
const openSpans = new OpenSpans();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter), openSpans] });
const tracer = provider.getTracer('keel-test');
const contextManager = new AsyncLocalStorageContextManager();

const hr = (ms: number): [number, number] => [Math.floor(ms / 1000), (ms % 1000) * 1e6];
const ts = (events: readonly KeelEvent[], workflowId: string, type: KeelEvent['type'], nth = 0): number =>
  events.filter((e) => e.workflowId === workflowId && e.type === type)[nth]!.ts;

function feed(tracing: KeelTracing, events: readonly KeelEvent[], parent?: Context): void {
  for (const event of events) tracing.onEvent(event, parent);
}

/** The finished spans of one workflow's trace. */
function traceOf(workflowId: string): { root: ReadableSpan; spans: ReadableSpan[] } {
  const finished = exporter.getFinishedSpans();
  const root = finished.find((s) => s.attributes['keel.workflow.id'] === workflowId);
  if (root === undefined) throw new Error(`no workflow span for ${workflowId}`);
  const traceId = root.spanContext().traceId;
  return { root, spans: finished.filter((s) => s.spanContext().traceId === traceId) };
}

const childrenOf = (spans: ReadableSpan[], parent: ReadableSpan) =>
  spans.filter((s) => s.parentSpanContext?.spanId === parent.spanContext().spanId);

describe('createTracing', () => {
  beforeAll(() => {
    context.setGlobalContextManager(contextManager.enable());
  });
  afterAll(() => {
    context.disable();
  });
  beforeEach(() => exporter.reset());

  it('builds invoke_workflow → invoke_agent → one chat span per attempt, timed by the events', () => {
    const events = syntheticStream(1);
    feed(createTracing({ tracer, providerName: 'openai' }), events);
    const { root, spans } = traceOf('wf-invoice-0');

    expect(root.name).toBe('invoke_workflow invoice');
    expect(root.kind).toBe(SpanKind.INTERNAL);
    expect(root.parentSpanContext).toBeUndefined();
    expect(root.attributes[ATTR_GEN_AI_OPERATION_NAME]).toBe('invoke_workflow');
    expect(root.attributes[ATTR_GEN_AI_WORKFLOW_NAME]).toBe('invoice');
    expect(root.startTime).toEqual(hr(ts(events, 'wf-invoice-0', 'workflow.started')));
    expect(root.endTime).toEqual(hr(ts(events, 'wf-invoice-0', 'workflow.completed')));
    expect(root.status.code).toBe(SpanStatusCode.UNSET);

    const agents = childrenOf(spans, root);
    expect(agents.map((s) => s.name)).toEqual([
      'invoke_agent vendor_extraction',
      'invoke_agent amount_extraction',
      'invoke_agent routing',
    ]);
    for (const a of agents) {
      expect(a.kind).toBe(SpanKind.INTERNAL);
      expect(a.attributes[ATTR_GEN_AI_OPERATION_NAME]).toBe('invoke_agent');
    }
    const [vendor, amount, routing] = agents as [ReadableSpan, ReadableSpan, ReadableSpan];
    expect(vendor.attributes[ATTR_GEN_AI_AGENT_NAME]).toBe('vendor_extraction');
    expect(vendor.attributes[ATTR_GEN_AI_REQUEST_MODEL]).toBe('gpt-4');
    expect(vendor.attributes[ATTR_GEN_AI_PROVIDER_NAME]).toBe('openai');

    const [vendorChat, ...extra] = childrenOf(spans, vendor);
    expect(extra).toEqual([]);
    expect(vendorChat!.name).toBe('chat gpt-4');
    expect(vendorChat!.kind).toBe(SpanKind.CLIENT);
    expect(vendorChat!.attributes).toMatchObject({
      [ATTR_GEN_AI_OPERATION_NAME]: 'chat',
      [ATTR_GEN_AI_PROVIDER_NAME]: 'openai',
      [ATTR_GEN_AI_REQUEST_MODEL]: 'gpt-4',
      [ATTR_GEN_AI_RESPONSE_MODEL]: 'gpt-4',
      [ATTR_GEN_AI_USAGE_INPUT_TOKENS]: 800,
      [ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: 200,
    });

    // A cache hit makes no model call: no chat span, a span event instead.
    expect(childrenOf(spans, amount)).toEqual([]);
    expect(amount.events.map((e) => e.name)).toEqual([KEEL_SPAN_EVENT.cacheHit]);

    // The routing agent timed out once, then succeeded after a 200 ms backoff.
    const chats = childrenOf(spans, routing);
    expect(chats.map((s) => [s.name, s.attributes['keel.attempt']])).toEqual([
      ['chat gpt-3.5-turbo', 1],
      ['chat gpt-3.5-turbo', 2],
    ]);
    const [first, second] = chats as [ReadableSpan, ReadableSpan];
    expect(first.attributes[ATTR_ERROR_TYPE]).toBe('timeout');
    expect(first.status.code).toBe(SpanStatusCode.ERROR);
    expect(first.startTime).toEqual(hr(ts(events, 'wf-invoice-0', 'cost.reserved', 1)));
    expect(first.endTime).toEqual(hr(ts(events, 'wf-invoice-0', 'agent.timed_out')));
    expect(second.startTime).toEqual(hr(ts(events, 'wf-invoice-0', 'agent.retried') + 200));
    expect(second.status.code).toBe(SpanStatusCode.UNSET);
    expect(second.attributes[ATTR_GEN_AI_USAGE_INPUT_TOKENS]).toBe(500);
    expect(routing.events.map((e) => e.name)).toEqual([KEEL_SPAN_EVENT.retry]);
  });

  it('marks failures with error.type from the root cause and records breaker rejections', () => {
    feed(createTracing({ tracer }), syntheticStream(1));
    const failed = traceOf('wf-payment-0');
    expect(failed.root.status.code).toBe(SpanStatusCode.ERROR);
    expect(failed.root.attributes[ATTR_ERROR_TYPE]).toBe('provider_error');
    const [agent] = childrenOf(failed.spans, failed.root);
    expect(agent!.attributes[ATTR_ERROR_TYPE]).toBe('provider_error');
    expect(agent!.status).toEqual({ code: SpanStatusCode.ERROR, message: 'HTTP 503 after 2 attempts' });
    const chats = childrenOf(failed.spans, agent!);
    expect(chats.map((s) => s.attributes[ATTR_ERROR_TYPE])).toEqual(['provider_error', 'provider_error']);

    const rejected = traceOf('wf-payment-rejected-0');
    const [refused] = childrenOf(rejected.spans, rejected.root);
    expect(refused!.attributes[ATTR_ERROR_TYPE]).toBe('circuit_open');
    expect(refused!.events.map((e) => e.name)).toEqual([KEEL_SPAN_EVENT.breakerRejected]);
    expect(childrenOf(rejected.spans, refused!)).toEqual([]);
  });

  it('records early stops and escalations as span events on the workflow span', () => {
    feed(createTracing({ tracer }), syntheticStream(1));
    const vote = traceOf('wf-fraud-0').root;
    const stop = vote.events.find((e) => e.name === KEEL_SPAN_EVENT.voteEarlyStop);
    expect(stop?.attributes).toMatchObject({
      'keel.vote.cast': 3,
      'keel.vote.total': 5,
      'keel.vote.skipped': 2,
    });
    const cascade = traceOf('wf-cascade-up-0').root;
    const escalation = cascade.events.find((e) => e.name === KEEL_SPAN_EVENT.cascadeEscalated);
    expect(escalation?.attributes).toMatchObject({
      'keel.cascade.from_agent': 'vendor_cheap',
      'keel.cascade.to_agent': 'vendor_strong',
    });
    expect(traceOf('wf-cascade-flat-0').root.events).toEqual([]);
  });

  it("parents the workflow span to the caller's active span, captured across an await", async () => {
    const tracing = createTracing({ tracer });
    const events = syntheticStream(1).filter((e) => e.workflowId === 'wf-invoice-0');
    const callerIds = await tracer.startActiveSpan('POST /invoices', async (span) => {
      await Promise.resolve();
      const parent = context.active(); // what rt.run captures
      feed(tracing, events, parent);
      span.end();
      return span.spanContext();
    });
    const { root } = traceOf('wf-invoice-0');
    expect(root.parentSpanContext?.spanId).toBe(callerIds.spanId);
    expect(root.spanContext().traceId).toBe(callerIds.traceId);
  });

  it('leaves no span open and no workflow state behind', () => {
    const tracing = createTracing({ tracer });
    feed(tracing, syntheticStream(3));
    expect(tracing.openWorkflows()).toBe(0);
    expect(openSpans.open).toBe(0);

    // An agent that never reports is closed (as cancelled) when its workflow ends.
    const b = new StreamBuilder();
    b.add('workflow.started', 'wf-x', { name: 'x', topology: {}, input: {}, inputHash: 'h' });
    b.add('agent.invoked', 'wf-x', { path: 'x/a', agent: 'a', taskType: 't', model: 'gpt-4' }, 5);
    feed(tracing, b.events);
    expect(tracing.openWorkflows()).toBe(1);
    expect(openSpans.open).toBe(2);
    tracing.onEvent(
      b.add('workflow.cancelled', 'wf-x', { reason: 'caller unsubscribed', latencyMs: 10, costUsd: 0 }, 5),
    );
    expect(tracing.openWorkflows()).toBe(0);
    expect(openSpans.open).toBe(0);
    const { root, spans } = traceOf('wf-x');
    expect(root.attributes[ATTR_ERROR_TYPE]).toBe('cancelled');
    expect(childrenOf(spans, root)[0]!.attributes[ATTR_ERROR_TYPE]).toBe('cancelled');
  });

  it('captures content only when asked', () => {
    feed(createTracing({ tracer }), syntheticStream(1));
    const withContent = (s: ReadableSpan) =>
      s.attributes[ATTR_GEN_AI_INPUT_MESSAGES] !== undefined ||
      s.attributes[ATTR_GEN_AI_OUTPUT_MESSAGES] !== undefined;
    expect(exporter.getFinishedSpans().filter(withContent)).toEqual([]);

    exporter.reset();
    feed(createTracing({ tracer, captureContent: true }), syntheticStream(1));
    const { root, spans } = traceOf('wf-invoice-0');
    const input = JSON.parse(String(root.attributes[ATTR_GEN_AI_INPUT_MESSAGES])) as {
      role: string;
      parts: { content: string }[];
    }[];
    expect(input[0]?.role).toBe('user');
    expect(input[0]?.parts[0]?.content).toContain('INV-1');
    const vendor = spans.find((s) => s.name === 'invoke_agent vendor_extraction');
    expect(String(vendor?.attributes[ATTR_GEN_AI_OUTPUT_MESSAGES])).toContain('Acme Corp');
  });

  it('without an SDK, reports for every event the ids no-op spans have, and keeps no state', () => {
    // The API's own tracer with no provider registered: every span is a no-op.
    const noop = new ProxyTracerProvider().getTracer('keel');
    const tracing = createTracing({ tracer: noop });
    const events = syntheticStream(3);
    const ids = events.map((e) => tracing.onEvent(e));
    // Events of a workflow get the (invalid) ids of its no-op spans; runtime-level ones none.
    const system = events.map((e) => e.workflowId === SYSTEM_WORKFLOW_ID);
    expect(system.some(Boolean)).toBe(true);
    expect(ids.filter((id, i) => !system[i] && id !== INVALID_SPAN_CONTEXT)).toEqual([]);
    expect(ids.filter((id, i) => system[i] && id !== undefined)).toEqual([]);
    expect(tracing.openWorkflows()).toBe(0);

    // A traced caller, still without an SDK: the spans carry the caller's ids, as no-op spans do.
    const caller = trace.wrapSpanContext({ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: 1 });
    const parent = trace.setSpan(context.active(), caller);
    const one = syntheticStream(1).filter((e) => e.workflowId === 'wf-invoice-0');
    const withParent = one.map((e) => tracing.onEvent(e, parent));
    expect(withParent.every((id) => id?.traceId === 'a'.repeat(32) && id.spanId === 'b'.repeat(16))).toBe(
      true,
    );
    expect(tracing.openWorkflows()).toBe(0);
  });

  it("returns the ids of each event's span, for log correlation", () => {
    const tracing = createTracing({ tracer });
    const events = syntheticStream(1);
    const ids = events.map((e) => tracing.onEvent(e));
    const { root, spans } = traceOf('wf-invoice-0');
    const vendor = spans.find((s) => s.name === 'invoke_agent vendor_extraction')!;
    const incurred = events.findIndex((e) => e.type === 'cost.incurred' && e.workflowId === 'wf-invoice-0');
    expect(ids[incurred]).toEqual(expect.objectContaining(vendor.spanContext()));
    const completed = events.findIndex(
      (e) => e.type === 'workflow.completed' && e.workflowId === 'wf-invoice-0',
    );
    expect(ids[completed]?.spanId).toBe(root.spanContext().spanId);
    const breaker = events.findIndex((e) => e.type === 'breaker.transitioned');
    expect(ids[breaker]).toBeUndefined();
  });

  /** A support agent's tool loop: two calls in step 1 (one throws), a reused call id in step 2. */
  function toolStream(): StreamBuilder {
    const b = new StreamBuilder();
    const wf = 'wf-support';
    const path = 'support/agent';
    const call = { path, agent: 'support' };
    b.add('workflow.started', wf, { name: 'support', topology: {}, input: {}, inputHash: 'h' });
    b.add('agent.invoked', wf, { path, agent: 'support', taskType: 'support', model: 'gpt-4o' }, 1);
    b.add(
      'tool.called',
      wf,
      { ...call, tool: 'lookup_order', callId: 'c1', step: 1, args: { id: 'A-1' } },
      10,
    );
    b.add('tool.called', wf, { ...call, tool: 'refund', callId: 'c2', step: 1, args: { id: 'A-1' } }, 0);
    b.add(
      'tool.failed',
      wf,
      {
        ...call,
        tool: 'refund',
        callId: 'c2',
        step: 1,
        category: 'provider_error',
        message: 'Error: payments API down',
        latencyMs: 7,
        attempts: 2,
      },
      7,
    );
    b.add(
      'tool.succeeded',
      wf,
      {
        ...call,
        tool: 'lookup_order',
        callId: 'c1',
        step: 1,
        result: { status: 'shipped' },
        latencyMs: 12,
        attempts: 1,
      },
      5,
    );
    // Call ids are unique within a step only: step 2 reuses `c1`.
    b.add(
      'tool.called',
      wf,
      { ...call, tool: 'lookup_order', callId: 'c1', step: 2, args: { id: 'B-2' } },
      20,
    );
    return b;
  }

  it('opens an execute_tool span per tool call under the agent span, timed by tool.called → outcome', () => {
    const b = toolStream();
    const path = 'support/agent';
    b.add(
      'tool.succeeded',
      'wf-support',
      {
        path,
        agent: 'support',
        tool: 'lookup_order',
        callId: 'c1',
        step: 2,
        result: { status: 'pending' },
        latencyMs: 3,
        attempts: 1,
      },
      3,
    );
    b.add(
      'agent.succeeded',
      'wf-support',
      {
        path,
        agent: 'support',
        taskType: 'support',
        model: 'gpt-4o',
        output: 'done',
        attempts: 1,
        latencyMs: 60,
        usage: { inputTokens: 10, outputTokens: 5 },
        costUsd: 0.001,
      },
      4,
    );
    b.add(
      'workflow.completed',
      'wf-support',
      { output: 'done', latencyMs: 61, costUsd: 0.001, agentsCalled: 1 },
      0,
    );
    feed(createTracing({ tracer }), b.events);
    const { root, spans } = traceOf('wf-support');
    const [agent] = childrenOf(spans, root);
    const tools = childrenOf(spans, agent!).filter(
      (s) => s.attributes[ATTR_GEN_AI_OPERATION_NAME] === 'execute_tool',
    );
    expect(
      tools.map((s) => [s.name, s.attributes[ATTR_GEN_AI_TOOL_CALL_ID], s.attributes['keel.tool.step']]),
    ).toEqual([
      ['execute_tool refund', 'c2', 1],
      ['execute_tool lookup_order', 'c1', 1],
      ['execute_tool lookup_order', 'c1', 2],
    ]);
    const [refund, first, second] = tools as [ReadableSpan, ReadableSpan, ReadableSpan];
    expect(refund.kind).toBe(SpanKind.INTERNAL);
    expect(refund.attributes[ATTR_GEN_AI_TOOL_NAME]).toBe('refund');
    expect(refund.attributes[ATTR_ERROR_TYPE]).toBe('provider_error');
    expect(refund.status).toEqual({ code: SpanStatusCode.ERROR, message: 'Error: payments API down' });
    expect(refund.attributes['keel.attempts']).toBe(2);
    expect(refund.startTime).toEqual(hr(ts(b.events, 'wf-support', 'tool.called', 1)));
    expect(refund.endTime).toEqual(hr(ts(b.events, 'wf-support', 'tool.failed')));
    expect(first.status.code).toBe(SpanStatusCode.UNSET);
    expect(first.startTime).toEqual(hr(ts(b.events, 'wf-support', 'tool.called', 0)));
    expect(first.endTime).toEqual(hr(ts(b.events, 'wf-support', 'tool.succeeded', 0)));
    expect(second.endTime).toEqual(hr(ts(b.events, 'wf-support', 'tool.succeeded', 1)));
    // Content stays out unless asked for.
    expect(first.attributes[ATTR_GEN_AI_TOOL_CALL_ARGUMENTS]).toBeUndefined();
    expect(first.attributes[ATTR_GEN_AI_TOOL_CALL_RESULT]).toBeUndefined();
    expect(openSpans.open).toBe(0);

    exporter.reset();
    feed(createTracing({ tracer, captureContent: true }), b.events);
    const shown = exporter.getFinishedSpans().find((s) => s.name === 'execute_tool lookup_order')!;
    expect(JSON.parse(String(shown.attributes[ATTR_GEN_AI_TOOL_CALL_ARGUMENTS]))).toEqual({ id: 'A-1' });
    expect(JSON.parse(String(shown.attributes[ATTR_GEN_AI_TOOL_CALL_RESULT]))).toEqual({ status: 'shipped' });
  });

  it('numbers the chat spans of a resumed invocation from its firstAttempt, and writes each one', () => {
    // rt.resume() re-ran an agent whose attempt 1 a crash cut off: its attempts are 2 and 3.
    const b = new StreamBuilder();
    const wf = 'wf-resumed';
    const path = 'support';
    const base = { path, agent: 'support', taskType: 'support', model: 'gpt-4o' };
    b.add('workflow.started', wf, {
      name: 'support',
      topology: { kind: 'agent' },
      input: 'q',
      inputHash: 'h',
    });
    b.add('agent.invoked', wf, { ...base, firstAttempt: 2 }, 1);
    b.add('cost.reserved', wf, { ...base, estimateUsd: 0.01, attempt: 2 }, 1);
    b.add('agent.timed_out', wf, { path, agent: 'support', attempt: 2, timeoutMs: 5_000 }, 5_000);
    b.add('agent.retried', wf, {
      path,
      agent: 'support',
      attempt: 2,
      category: 'timeout',
      message: 't',
      delayMs: 200,
    });
    b.add('cost.reserved', wf, { ...base, estimateUsd: 0.01, attempt: 3 }, 200);
    const usage = { inputTokens: 300, outputTokens: 40 };
    b.add('cost.incurred', wf, { ...base, attempt: 3, usage, costUsd: 0.005, estimateUsd: 0.01 }, 900);
    b.add('agent.succeeded', wf, {
      ...base,
      output: 'a',
      attempts: 2,
      latencyMs: 6_101,
      usage,
      costUsd: 0.005,
    });
    b.add('workflow.completed', wf, { output: 'a', latencyMs: 6_103, costUsd: 0.005, agentsCalled: 1 }, 1);
    feed(createTracing({ tracer }), b.events);
    const { root, spans } = traceOf(wf);
    const [agentSpan] = childrenOf(spans, root);
    const chats = childrenOf(spans, agentSpan!);
    expect(chats.map((s) => [s.attributes['keel.attempt'], s.status.code])).toEqual([
      [2, SpanStatusCode.ERROR],
      [3, SpanStatusCode.UNSET],
    ]);
    expect(chats[1]!.attributes[ATTR_GEN_AI_USAGE_INPUT_TOKENS]).toBe(300);
  });

  it('closes a tool call that never reported, as cancelled, when its workflow ends', () => {
    const b = toolStream();
    const tracing = createTracing({ tracer });
    feed(tracing, b.events);
    expect(openSpans.open).toBe(3); // workflow, agent, the step-2 call
    tracing.onEvent(
      b.add('workflow.cancelled', 'wf-support', { reason: 'crash', latencyMs: 50, costUsd: 0 }, 9),
    );
    expect(openSpans.open).toBe(0);
    expect(tracing.openWorkflows()).toBe(0);
    const open = exporter.getFinishedSpans().filter((s) => s.attributes[ATTR_GEN_AI_TOOL_CALL_ID] === 'c1');
    expect(open.map((s) => s.attributes[ATTR_ERROR_TYPE])).toEqual([undefined, 'cancelled']);
    expect(open[1]!.endTime).toEqual(hr(ts(b.events, 'wf-support', 'workflow.cancelled')));
  });
});
