/**
 * Replay and what-ifs over workflows a crash cut off and `rt.markInterrupted` closed: replay says
 * they are not replayable (interrupted at seq N) instead of inventing outputs, and the what-ifs
 * read them exactly as runs the log ended before.
 */
import { describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import { SEED_PRICING } from '../../src/cost/pricing.js';
import type { KeelEvent, KeelEventType } from '../../src/eventlog/events.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { createCascadeWhatIf, whatIfCascade } from '../../src/replay/whatif.js';
import { createRuntime } from '../../src/runtime.js';
import { demoTopologies } from '../cli/fixtures/topologies.js';
import { invoices, perTestScratch, recordCascade } from '../cli/logs.js';
import { appendAll, cutOff, workflowsWith } from '../compliance/crash-log.js';

const counter = globalThis as { keelFixtureModelCalls?: number };

const scratch = perTestScratch();

/** Twelve triage cascades recorded (threshold 0.95, so some escalate to GPT-4); their events. */
async function recordedTriage(): Promise<KeelEvent[]> {
  const db = scratch.dir().path('recorded.db');
  await recordCascade(db, 0.95, invoices(12));
  const store = openSqliteStore({ path: db, readonly: true });
  try {
    return store.query();
  } finally {
    await store.close();
  }
}

/** An end event for `workflowId` after the last event of `events`. */
function ending(
  events: readonly KeelEvent[],
  workflowId: string,
  type: KeelEventType,
  payload: unknown,
): KeelEvent {
  const last = events[events.length - 1] as KeelEvent;
  return { seq: last.seq + 1, ts: last.ts + 1, workflowId, type, v: 1, class: 'audit', payload } as KeelEvent;
}

describe('replay of an interrupted workflow', () => {
  it('reports it as not replayable, interrupted at seq N, with zero model calls; "all" replays the rest', async () => {
    const events = await recordedTriage();
    const [cut] = workflowsWith(events, 'cascade.escalated');
    if (cut === undefined) throw new Error('the recording should escalate some invoices');
    const db = scratch.dir().path('crash.db');
    const crashed = openSqliteStore({ path: db });
    await appendAll(crashed, cutOff(events, new Set([cut])));
    await crashed.close();
    const lastTs = (events[events.length - 1] as KeelEvent).ts;
    const rt = createRuntime({
      db,
      clock: simulatedClock(lastTs + 60_000),
      pricing: SEED_PRICING,
      cache: false,
      metrics: false,
      tracing: false,
    });
    scratch.keep(rt);
    const {
      marked: [mark],
    } = await rt.markInterrupted({ startedBefore: rt.clock.now(), reason: 'pod evicted', markedBy: 'ops' });
    if (mark === undefined) throw new Error('the cut workflow should be marked');
    const topologies = demoTopologies();
    counter.keelFixtureModelCalls = 0;

    const [one] = await rt.replay(cut, { topologies });

    expect(one).toEqual({
      workflowId: cut,
      name: 'triage',
      ok: false,
      modelCalls: 0,
      interrupted: { seq: mark.seq, lastSeq: mark.lastSeq, reason: 'pod evicted', markedBy: 'ops' },
      divergences: [
        {
          kind: 'not_replayable',
          path: '',
          message: expect.stringContaining(
            `was interrupted at seq ${mark.lastSeq} (marked at seq ${mark.seq} by ops: pod evicted)`,
          ) as string,
          recorded: {
            reason: 'pod evicted',
            startedSeq: mark.startedSeq,
            lastSeq: mark.lastSeq,
            markedBy: 'ops',
          },
          replayed: undefined,
        },
      ],
    });
    // Without a registered topology it says the same: the interruption is the reason.
    expect((await rt.replay(cut))[0]?.interrupted).toEqual(one?.interrupted);

    const all = await rt.replay('all', { topologies });
    expect(all).toHaveLength(12);
    expect(all.filter((r) => r.interrupted !== undefined).map((r) => r.workflowId)).toEqual([cut]);
    expect(all.filter((r) => r.interrupted === undefined).every((r) => r.ok)).toBe(true);
    expect(counter.keelFixtureModelCalls).toBe(0);
  });
});

describe('what-ifs over an interrupted workflow', () => {
  it('read it as unfinished (same figures as a log that ends first), not as a failed run', async () => {
    const events = await recordedTriage();
    const [cut] = workflowsWith(events, 'cascade.escalated');
    if (cut === undefined) throw new Error('the recording should escalate some invoices');
    // Cut after GPT-4 answered and before the cascade accepted it: how the run ended decides.
    const crashed = cutOff(events, new Set([cut]));
    const interrupted = [
      ...crashed,
      ending(crashed, cut, 'workflow.interrupted', {
        reason: 'r',
        startedSeq: 1,
        lastSeq: 2,
        markedBy: 'cli',
      }),
    ];
    const failed = [
      ...crashed,
      ending(crashed, cut, 'workflow.failed', {
        category: 'unknown',
        message: 'm',
        latencyMs: 1,
        costUsd: 0,
        agentsCalled: 2,
      }),
    ];
    const options = { thresholds: [0.95, 0.9] };

    const asInterrupted = whatIfCascade(interrupted, options);

    expect(asInterrupted).toEqual(whatIfCascade(crashed, options));
    expect(asInterrupted.sites[0]?.runs).toBe(11);
    expect(whatIfCascade(failed, options).sites[0]?.runs).toBe(12);
    // The mark ends the workflow: the fold lets go of it at once, not at the end of the log.
    const fold = createCascadeWhatIf(options);
    for (const e of interrupted) fold.apply(e);
    expect(fold.openWorkflows).toBe(0);
  });
});
