/**
 * A real tool-using agent's log through the CLI and the tracer: `keel audit trace` shows its tool
 * steps, `keel report --json` counts its tool calls, and its spans hold one `execute_tool` per call.
 */
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { llmAgent } from '../../agents/llm.js';
import { runCli } from '../../src/cli/main.js';
import { simulatedClock } from '../../src/core/clock.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { createTracing } from '../../src/observability/tracing.js';
import { simulated } from '../../src/providers/simulated.js';
import type { Report } from '../../src/report/report.js';
import { createRuntime } from '../../src/runtime.js';
import { tool } from '../../src/tools/tool.js';
import { captureIo } from './io.js';
import { tempDir } from './logs.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

/** One support run: lookup (succeeds), then refund (a plain Error, after retries), then the answer. */
async function record(db: string): Promise<string> {
  const clock = simulatedClock(Date.UTC(2026, 0, 1));
  const rt = createRuntime({
    db,
    clock,
    seed: 1,
    pricing: { 'gpt-4o': { inputPer1K: 0.0025, outputPer1K: 0.01 } },
  });
  const provider = simulated({
    seed: 7,
    latencyMs: { p50: 400, p95: 400 },
    usage: { input: { mean: 300, stddev: 0 }, output: { mean: 40, stddev: 0 } },
    toolTurn: (_request, step) => {
      if (step === 1) return [{ name: 'order_lookup', args: { orderId: 'A-1001' } }];
      if (step === 2) return [{ name: 'refund', args: { orderId: 'A-1001' } }];
      return undefined;
    },
    respond: () => ({ value: { reply: 'Sorry, refunds are down.' }, confidence: 0.9 }),
  });
  const support = llmAgent({
    name: 'support',
    model: 'gpt-4o',
    provider,
    prompt: (q: { question: string }) => q.question,
    schema: z.object({ reply: z.string() }),
    tools: {
      order_lookup: tool({
        description: 'Looks an order up by id',
        schema: z.object({ orderId: z.string() }),
        execute: ({ orderId }: { orderId: string }) => ({ orderId, status: 'delivered' }),
      }),
      refund: tool({
        description: 'Refunds an order',
        schema: z.object({ orderId: z.string() }),
        execute: () => {
          throw new Error('payments API down');
        },
      }),
    },
  });
  const run = rt.run(support, { question: 'Refund A-1001' });
  const settled = run.then(
    (r) => r,
    (e: unknown) => e,
  );
  await clock.advanceAsync(300_000);
  const result = await settled;
  await rt.close();
  if (result instanceof Error) throw result;
  return (result as { workflowId: string }).workflowId;
}

describe('a tool-using agent in the CLI and the spans', () => {
  it('audit trace shows the tool steps, report counts the calls, tracing makes execute_tool spans', async () => {
    const db = tmp.path('tools.db');
    const workflowId = await record(db);

    const t = captureIo();
    expect(await runCli(['audit', 'trace', workflowId, '--db', db], t.io)).toBe(0);
    const lines = t.stdout().split('\n');
    expect(lines.find((l) => l.includes('tool.called') && l.includes('tool=order_lookup'))).toMatch(
      /step=1 .*args=\{"orderId":"A-1001"\}/,
    );
    expect(lines.find((l) => l.includes('tool.failed'))).toMatch(
      /step=2 tool=refund .*message=.*payments API down/,
    );

    const r = captureIo();
    expect(await runCli(['report', '--db', db, '--json'], r.io)).toBe(0);
    const report = JSON.parse(r.stdout()) as Report;
    expect(report.tools.calls.map((c) => [c.agent, c.tool, c.calls, c.failures])).toEqual([
      ['support', 'order_lookup', 1, 0],
      ['support', 'refund', 1, 1],
    ]);

    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const tracing = createTracing({ tracer: provider.getTracer('t') });
    const store = openSqliteStore({ path: db, readonly: true });
    try {
      for (const e of store.query({ workflowId })) tracing.onEvent(e);
    } finally {
      await store.close();
    }
    const spans = exporter.getFinishedSpans();
    const agent = spans.find((s) => s.name === 'invoke_agent support')!;
    const tools = spans.filter((s) => s.name.startsWith('execute_tool'));
    expect(tools.map((s) => [s.name, s.attributes['error.type']])).toEqual([
      ['execute_tool order_lookup', undefined],
      ['execute_tool refund', expect.any(String)],
    ]);
    expect(tools.every((s) => s.parentSpanContext?.spanId === agent.spanContext().spanId)).toBe(true);
  });
});
