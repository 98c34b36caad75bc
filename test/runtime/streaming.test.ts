/**
 * Streaming to the caller: `rt.run$()` emits the text an llmAgent's model streams as `delta` items
 * beside the logged events, records time to first token, retries a broken stream without caching
 * the half answer, and aborts the stream on unsubscribe.
 */
import { lastValueFrom, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { llmAgent } from '../../agents/llm.js';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { simulated } from '../../src/providers/simulated.js';
import type { ModelProvider } from '../../src/providers/types.js';
import { createRuntime, isRunDelta, type RunItem, type Runtime } from '../../src/runtime.js';

let runtimes: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const rt of runtimes) await rt.close();
  runtimes = [];
});

function open(): { rt: Runtime<SqliteEventStore>; clock: SimulatedClock } {
  const clock = simulatedClock();
  const rt = createRuntime({
    db: ':memory:',
    clock,
    seed: 1,
    pricing: { 'gpt-4o': { inputPer1K: 0.0025, outputPer1K: 0.01 } },
  });
  runtimes.push(rt);
  return { rt, clock };
}

const ANSWER = { value: { reply: 'Your order A-1001 ships today.' }, confidence: 0.9 };

const answerer = (
  provider: ModelProvider,
  extra: { retry?: { attempts: number }; cache?: { ttlMs: number } } = {},
) =>
  llmAgent({
    name: 'support',
    model: 'gpt-4o',
    provider,
    prompt: (q: string) => q,
    schema: z.object({ reply: z.string() }),
    ...extra,
  });

async function collect(clock: SimulatedClock, items$: ReturnType<Runtime['run$']>): Promise<RunItem[]> {
  const all = lastValueFrom(items$.pipe(toArray()));
  await clock.advanceAsync(60_000);
  return all;
}

describe('rt.run$ streaming', () => {
  it('emits the deltas in order beside the events, records TTFT, and logs only the final output', async () => {
    const { rt, clock } = open();
    const provider = simulated({ seed: 2, latencyMs: { p50: 1_000, p95: 1_000 }, respond: () => ANSWER });
    const items = await collect(clock, rt.run$(answerer(provider), 'Where is A-1001?'));
    const deltas = items.filter(isRunDelta);
    expect(deltas.length).toBeGreaterThan(3);
    expect(JSON.parse(deltas.map((d) => d.text).join(''))).toEqual(ANSWER);
    expect(new Set(deltas.map((d) => d.path)).size).toBe(1);
    // Deltas come after agent.invoked and before agent.succeeded.
    const kinds = items.map((i) => i.type);
    expect(kinds.indexOf('delta')).toBeGreaterThan(kinds.indexOf('agent.invoked'));
    expect(kinds.lastIndexOf('delta')).toBeLessThan(kinds.indexOf('agent.succeeded'));

    const workflowId = deltas[0]?.workflowId ?? '';
    const logged = rt.store.query({ workflowId });
    expect(logged.some((e) => (e.type as string) === 'delta')).toBe(false);
    const first = logged.find((e) => e.type === 'agent.first_token');
    expect(first?.payload).toMatchObject({ agent: 'support', model: 'gpt-4o', attempt: 1, ttftMs: 300 });
    const text = await rt.metrics?.metricsText();
    expect(text).toContain('llm_time_to_first_token_seconds_bucket{le="0.5",model="gpt-4o"} 1');
  });

  it('rt.run() does not stream: the provider gets no onDelta', async () => {
    const { rt, clock } = open();
    const base = simulated({ seed: 2, latencyMs: { p50: 0, p95: 0 }, respond: () => ANSWER });
    const streamed: boolean[] = [];
    const provider: ModelProvider = {
      name: 'spy',
      call: (request, context) => {
        streamed.push(context.onDelta !== undefined);
        return base.call(request, context);
      },
    };
    const p = rt.run(answerer(provider), 'x');
    await clock.advanceAsync(1_000);
    await p;
    expect(streamed).toEqual([false]);
  });

  it('a stream broken mid-way is retried per policy; the half answer is neither the output nor cached', async () => {
    const { rt, clock } = open();
    let calls = 0;
    const broken = simulated({
      seed: 2,
      latencyMs: { p50: 1_000, p95: 1_000 },
      rates: { provider_error: 1 },
    });
    const good = simulated({ seed: 2, latencyMs: { p50: 1_000, p95: 1_000 }, respond: () => ANSWER });
    const provider: ModelProvider = {
      name: 'flaky-stream',
      call: (request, context) => (++calls === 1 ? broken : good).call(request, context),
    };
    const agentOf = answerer(provider, { retry: { attempts: 2 }, cache: { ttlMs: 60_000 } });
    const items = await collect(clock, rt.run$(agentOf, 'Where is A-1001?'));
    const types = items.map((i) => i.type);
    expect(types).toContain('agent.retried');
    const retried = types.indexOf('agent.retried');
    const after = items.slice(retried).filter(isRunDelta);
    expect(items.slice(0, retried).filter(isRunDelta).length).toBeGreaterThan(0); // the broken half
    expect(JSON.parse(after.map((d) => d.text).join(''))).toEqual(ANSWER);
    const done = items.find((i) => i.type === 'workflow.completed');
    expect(done && !isRunDelta(done) && done.payload.output).toEqual(ANSWER.value);

    // The cache holds the whole answer: a second run is a hit with the same value, no call.
    const again = rt.run(agentOf, 'Where is A-1001?');
    await clock.advanceAsync(1_000);
    expect((await again).value).toEqual(ANSWER.value);
    expect(calls).toBe(2);
  });

  it('unsubscribing mid-stream aborts the model call and leaves no timer', async () => {
    const { rt, clock } = open();
    const provider = simulated({ seed: 2, latencyMs: { p50: 1_000, p95: 1_000 }, respond: () => ANSWER });
    const seen: RunItem[] = [];
    const sub = rt.run$(answerer(provider), 'x').subscribe({ next: (i) => seen.push(i) });
    await clock.advanceAsync(400); // the first deltas are out (first at 300 ms)
    expect(seen.some(isRunDelta)).toBe(true);
    sub.unsubscribe();
    const n = seen.length;
    await clock.advanceAsync(5_000);
    expect(seen.length).toBe(n);
    expect(clock.pendingTimers()).toBe(0);
  });
});
