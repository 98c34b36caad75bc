/**
 * A tool's breaker is one of the runtime's breakers, named `tool:<name>`: its transitions are in
 * the log (`breaker.transitioned`), `rt.breaker('tool:<name>')` reads it, and a restarted runtime
 * resumes it from the log — an open tool breaker stays open, so the tool is not called again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { llmAgent } from '../../agents/llm.js';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { SYSTEM_WORKFLOW_ID, type EventPayloads, type KeelEvent } from '../../src/eventlog/events.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { simulated } from '../../src/providers/simulated.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { tool } from '../../src/tools/tool.js';

let dir: string | undefined;
let runtimes: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const rt of runtimes) await rt.close().catch(() => undefined);
  runtimes = [];
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function open(db: string, clock: SimulatedClock): Runtime<SqliteEventStore> {
  const rt = createRuntime({
    db,
    clock,
    seed: 1,
    pricing: { 'gpt-4o': { inputPer1K: 0.0025, outputPer1K: 0.01 } },
  });
  runtimes.push(rt);
  return rt;
}

async function settle<T>(clock: SimulatedClock, p: Promise<T>): Promise<T> {
  const settled = p.then(
    (v) => ({ ok: true as const, v }),
    (e: unknown) => ({ ok: false as const, e }),
  );
  await clock.advanceAsync(10_000);
  const r = await settled;
  if (!r.ok) throw r.e;
  return r.v;
}

const transitions = (events: KeelEvent[]): EventPayloads['breaker.transitioned'][] =>
  events.filter((e) => e.type === 'breaker.transitioned').map((e) => e.payload);

describe("a tool's breaker", () => {
  it('logs its transitions as breaker tool:<name> and is restored open after a restart', async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-tool-breaker-'));
    const db = join(dir, 'keel.db');
    const clock = simulatedClock(Date.UTC(2026, 0, 6, 9));
    let runs = 0;
    // A plain Error, as a user's code throws: counted by the breaker (category unknown).
    const refund = tool({
      description: 'Refunds an order',
      schema: z.object({ orderId: z.string() }),
      breaker: { name: 'payments', failureThreshold: 2, resetTimeoutMs: 600_000 },
      execute: () => {
        runs++;
        throw new Error('payments API: connection refused');
      },
    });
    const support = llmAgent({
      name: 'support',
      model: 'gpt-4o',
      provider: simulated({
        seed: 3,
        latencyMs: { p50: 100, p95: 100 },
        toolTurn: (_r, step) => (step <= 2 ? [{ name: 'refund', args: { orderId: 'A-1' } }] : undefined),
        respond: () => ({ value: { reply: 'Sorry, refunds are down.' }, confidence: 0.5 }),
      }),
      prompt: (q: string) => q,
      schema: z.object({ reply: z.string() }),
      tools: { refund },
    });

    const first = open(db, clock);
    await settle(clock, first.run(support, 'refund A-1'));
    expect(runs).toBe(2);
    expect(first.breaker('tool:payments')?.state()).toBe('open');
    const logged = transitions(first.store.query({ workflowId: SYSTEM_WORKFLOW_ID }));
    expect(logged).toEqual([
      expect.objectContaining({ breaker: 'tool:payments', from: 'closed', to: 'open', failures: 2 }),
    ]);
    await first.close();

    // A new process on the same file, a second later: the breaker is open before anyone uses it,
    // and the tool is refused without running.
    clock.set(clock.now() + 1_000);
    const second = open(db, clock);
    await second.ready();
    expect(second.breaker('tool:payments')?.state()).toBe('open');
    runs = 0;
    const result = await settle(clock, second.run(support, 'refund A-1 again'));
    expect(result.value.reply).toBe('Sorry, refunds are down.');
    expect(runs).toBe(0);
    const failed = second.store
      .query({ workflowId: result.workflowId })
      .filter((e) => e.type === 'tool.failed')
      .map((e) => e.payload);
    expect(failed.map((f) => [f.category, f.attempts])).toEqual([
      ['circuit_open', 0],
      ['circuit_open', 0],
    ]);
    expect(failed[0]?.message).toContain('breaker "tool:payments" is open');
    // Same name as an agent breaker, no clash: tool breakers live under their prefix.
    expect(second.breaker('payments')).toBeUndefined();
  });

  it('rejects a bad breaker config when the tool is defined, naming the field', () => {
    expect(() =>
      tool({
        description: 'x',
        schema: z.object({}),
        execute: () => 1,
        breaker: { name: 'payments', failureThreshold: -1 },
      }),
    ).toThrow(/breaker "payments"\.failureThreshold/);
  });
});
