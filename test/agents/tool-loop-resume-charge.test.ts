/**
 * What resuming a tool loop costs: the model turns made before the crash are made again on resume
 * (their answers are not in the log), so the provider bills them again — and each model call made
 * is charged exactly once: the log's charges match the provider's answered calls one for one.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { llmAgent } from '../../agents/llm.js';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { simulated } from '../../src/providers/simulated.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { named, type AnyTopology } from '../../src/supervisor/topology.js';
import { tool } from '../../src/tools/tool.js';
import { cleanupDirs, crashedLog, tempDb } from '../durable/helpers.js';

const T0 = Date.UTC(2026, 5, 1);
const runtimes: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close();
  cleanupDirs();
});

function open(db: string, clock: SimulatedClock): Runtime<SqliteEventStore> {
  const rt = createRuntime<SqliteEventStore>({
    db,
    clock,
    seed: 7,
    pricing: { 'gpt-4o': { inputPer1K: 0.0025, outputPer1K: 0.01 } },
    cache: false,
    budget: { dailyUsd: 100 },
  });
  runtimes.push(rt);
  return rt;
}

/** A three-turn loop (two lookups, then the answer) on the simulated provider, counting its calls. */
function loop() {
  const provider = simulated({
    seed: 7,
    latencyMs: { p50: 400, p95: 400 },
    toolTurn: (_request, step) =>
      step === 1
        ? [{ name: 'lookup', args: { id: 'A' } }]
        : step === 2
          ? [{ name: 'lookup', args: { id: 'B' } }]
          : undefined,
    respond: () => ({ value: { reply: 'ok' }, confidence: 0.9 }),
  });
  const support = llmAgent({
    name: 'support',
    model: 'gpt-4o',
    provider,
    prompt: (q: string) => q,
    schema: z.object({ reply: z.string() }),
    tools: {
      lookup: tool({
        description: 'Looks a record up',
        schema: z.object({ id: z.string() }),
        execute: ({ id }: { id: string }) => ({ id }),
      }),
    },
  });
  return { topology: named('support', support) as unknown as AnyTopology, provider };
}

const charges = (events: readonly KeelEvent[]) =>
  events.filter((e): e is KeelEvent<'cost.incurred'> => e.type === 'cost.incurred');

describe('resuming a tool loop: each model call charged once', () => {
  it("crash with turn 2 in flight: the resumed loop's 3 calls charged once each, beside turn 1's charge before the crash", async () => {
    const first = loop();
    const clock1 = simulatedClock(T0);
    const rt1 = open(tempDb(), clock1);
    const run = rt1.run(first.topology, 'q', { workflowId: 'wf' });
    await clock1.advanceAsync(60_000);
    await run;
    const all = rt1.store.query();
    // The crash: turn 2's reservation is committed (its call was made), its answer never came.
    const cut = all.findIndex((e) => e.type === 'cost.reserved' && e.payload.step === 2) + 1;
    expect(cut).toBeGreaterThan(0);
    const kept = all.slice(0, cut);
    const file = await crashedLog(kept);

    const again = loop();
    const clock2 = simulatedClock(T0 + 120_000);
    const rt2 = open(file, clock2);
    rt2.register('support', again.topology);
    const resumed = rt2.resume();
    await clock2.advanceAsync(60_000);
    expect((await resumed).resumed).toMatchObject([{ workflowId: 'wf', outcome: 'completed' }]);
    // Every turn is made again: the provider is called 3 times (and bills them).
    expect(again.provider.calls()).toBe(3);
    const logged = charges(rt2.store.query({ workflowId: 'wf' }));
    // Turn 1 before the crash, then the resumed loop's 3 turns: one charge per answered call.
    expect(logged.map((e) => e.payload.step)).toEqual([1, 1, 2, 3]);
    // Each charge is one call the provider answered and billed: none twice, none missing. Turn 2 of
    // the crashed run (in flight, never answered) is the budget's to charge at its reservation on
    // restart (see test/durable: interrupted calls), not a `cost.incurred`.
    expect(logged).toHaveLength(1 + again.provider.calls());
    expect(logged.every((e) => e.payload.costUsd > 0 && e.payload.estimated === undefined)).toBe(true);
  });
});
