/** The simulated provider's scripted tool-call turns and streamed answers, on virtual time. */
import { describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import { simulated } from '../../src/providers/simulated.js';
import { isProviderError, type ModelRequest, type ToolSpec } from '../../src/providers/types.js';

const LOOKUP: ToolSpec = {
  name: 'order_lookup',
  description: 'Looks an order up',
  parameters: { type: 'object' },
};

const request = (messages: ModelRequest['messages'] = [{ role: 'user', content: 'A-1?' }]): ModelRequest => ({
  model: 'gpt-4o',
  input: { orderId: 'A-1' },
  messages,
  tools: [LOOKUP],
});

describe('simulated provider: tool turns', () => {
  const script = {
    seed: 3,
    latencyMs: { p50: 0, p95: 0 },
    toolTurn: (_r: ModelRequest, step: number) =>
      step === 1
        ? [
            { name: 'order_lookup', args: { orderId: 'A-1' } },
            { name: 'order_lookup', args: { orderId: 'A-2' } },
          ]
        : undefined,
    respond: () => 'Both shipped.',
  };

  it('makes the scripted calls on step 1 with seeded, distinct call ids, and answers once the results are in', async () => {
    const signal = new AbortController().signal;
    const first = await simulated(script).call(request(), { signal });
    expect(first.finishReason).toBe('tool_calls');
    expect(first.toolCalls?.map((c) => c.args)).toEqual([{ orderId: 'A-1' }, { orderId: 'A-2' }]);
    const ids = first.toolCalls?.map((c) => c.id) ?? [];
    expect(new Set(ids).size).toBe(2);
    for (const id of ids) expect(id).toMatch(/^call_[0-9a-z]+$/);

    // The same seed draws the same ids; another seed others.
    const again = await simulated(script).call(request(), { signal });
    expect(again.toolCalls?.map((c) => c.id)).toEqual(ids);
    const other = await simulated({ ...script, seed: 4 }).call(request(), { signal });
    expect(other.toolCalls?.map((c) => c.id)).not.toEqual(ids);

    const second = await simulated(script).call(
      request([
        { role: 'user', content: 'A-1?' },
        { role: 'assistant', content: '', toolCalls: first.toolCalls },
        { role: 'tool', toolCallId: ids[0], content: '"shipped"' },
        { role: 'tool', toolCallId: ids[1], content: '"shipped"' },
      ]),
      { signal },
    );
    expect(second.toolCalls).toBeUndefined();
    expect(second.output).toBe('Both shipped.');
  });

  it('makes no tool calls when the request offers no tools', async () => {
    const res = await simulated(script).call(
      { model: 'gpt-4o', input: 'x', messages: [{ role: 'user', content: 'hi' }] },
      { signal: new AbortController().signal },
    );
    expect(res.toolCalls).toBeUndefined();
    expect(res.output).toBe('Both shipped.');
  });
});

describe('simulated provider: streaming', () => {
  it('streams the answer word by word on the clock, the first piece at 30% of the latency', async () => {
    const clock = simulatedClock();
    const t0 = clock.now();
    const seen: { text: string; at: number }[] = [];
    const provider = simulated({
      seed: 1,
      latencyMs: { p50: 1_000, p95: 1_000 },
      respond: () => 'Your order ships today.',
    });
    const pending = provider.call(
      { model: 'gpt-4o', input: 'x' },
      {
        signal: new AbortController().signal,
        clock,
        onDelta: (text) => seen.push({ text, at: clock.now() - t0 }),
      },
    );
    await clock.advanceAsync(1_000);
    const res = await pending;
    expect(seen.map((d) => d.text).join('')).toBe('Your order ships today.');
    expect(seen.map((d) => d.text)).toEqual(['Your', ' order', ' ships', ' today.']);
    expect(seen[0]?.at).toBe(300);
    expect(res.output).toBe('Your order ships today.');
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a provider_error breaks the stream half-way; an abort mid-stream leaves no timer', async () => {
    const clock = simulatedClock();
    const broken = simulated({
      seed: 1,
      latencyMs: { p50: 1_000, p95: 1_000 },
      rates: { provider_error: 1 },
    });
    const seen: string[] = [];
    const failing = broken.call(
      { model: 'gpt-4o', input: { words: 'one two three four' } },
      { signal: new AbortController().signal, clock, onDelta: (t) => seen.push(t) },
    );
    const settled = failing.catch((e: unknown) => e);
    await clock.advanceAsync(1_000);
    const e = await settled;
    expect(isProviderError(e) && e.category).toBe('provider_error');
    expect(seen.length).toBeGreaterThan(0);

    const controller = new AbortController();
    const ok = simulated({ seed: 1, latencyMs: { p50: 1_000, p95: 1_000 }, respond: () => 'a b c d e f' });
    const pending = ok.call(
      { model: 'gpt-4o', input: 'x' },
      { signal: controller.signal, clock, onDelta: () => controller.abort() },
    );
    const aborted = pending.catch((err: unknown) => err);
    await clock.advanceAsync(300);
    const err = await aborted;
    expect(isProviderError(err) && err.category).toBe('cancelled');
    expect(clock.pendingTimers()).toBe(0);
  });
});
