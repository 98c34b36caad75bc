/**
 * Property: for random small topologies (seq/par of 2–5 agents) and a random crash point (the log
 * cut after k events, as a killed process would leave it), resume + finish gives the result and the
 * set of succeeded agents of a run that never crashed, and no agent is called twice after the crash —
 * none at all when its success was in the log.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { par } from '../../src/supervisor/parallel.js';
import { seq } from '../../src/supervisor/sequential.js';
import { named, type AnyTopology, type Topology } from '../../src/supervisor/topology.js';
import { PRICING, cleanupDirs, counting, crashedLog, tempDb, type CountingAgent } from './helpers.js';

const T0 = Date.UTC(2026, 5, 1);

type Shape = 'leaf' | { kind: 'seq' | 'par'; children: Shape[] };

const leaves = (s: Shape): number => (s === 'leaf' ? 1 : s.children.reduce((n, c) => n + leaves(c), 0));

const shapeArb: fc.Arbitrary<Shape> = fc
  .letrec<{ node: Shape }>((tie) => ({
    node: fc.oneof(
      { maxDepth: 3, depthIdentifier: 'shape' },
      fc.constant<Shape>('leaf'),
      fc.record({
        kind: fc.constantFrom<'seq' | 'par'>('seq', 'par'),
        children: fc.array(tie('node'), { minLength: 2, maxLength: 3, depthIdentifier: 'shape' }),
      }),
    ),
  }))
  .node.filter((s) => s !== 'leaf' && leaves(s) >= 2 && leaves(s) <= 5);

/** The topology of `shape` with fresh counting agents a0, a1, … (in depth-first order). */
function build(shape: Shape): { topology: AnyTopology; agents: CountingAgent[] } {
  const agents: CountingAgent[] = [];
  const node = (s: Shape): Topology<never, unknown> => {
    if (s === 'leaf') {
      const name = `a${agents.length}`;
      const a = counting(name, (input) => ({ [name]: input }));
      agents.push(a);
      return a.agent;
    }
    const children = s.children.map(node);
    return s.kind === 'seq' ? seq(...children) : par(...(children as Topology<unknown, unknown>[]));
  };
  const topology = named('prop', node(shape)) as unknown as AnyTopology;
  return { topology, agents };
}

const runtimes: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close();
  cleanupDirs();
});

function open(db: string, startMs: number): Runtime<SqliteEventStore> {
  const rt = createRuntime<SqliteEventStore>({
    db,
    clock: simulatedClock(startMs),
    seed: 7,
    pricing: PRICING,
    cache: false,
    budget: { dailyUsd: 100 },
  });
  runtimes.push(rt);
  return rt;
}

const succeededPaths = (events: readonly KeelEvent[]): string[] =>
  events
    .filter((e) => e.type === 'agent.succeeded')
    .map((e) => (e.payload as { path: string }).path)
    .sort();

describe('property: resume after a crash at any point', () => {
  it('finishes like an uninterrupted run, calling no recorded agent and no agent twice', async () => {
    let midway = 0;
    await fc.assert(
      fc.asyncProperty(shapeArb, fc.nat({ max: 10_000 }), async (shape, cut) => {
        const workflowId = 'wf-prop';
        // The uninterrupted run, on a file so its log is what a process writes.
        const whole = build(shape);
        const rt1 = open(tempDb(), T0);
        const expected = await rt1.run(whole.topology, { n: 1 }, { workflowId });
        const all = rt1.store.query();
        const mine = all.filter((e) => e.workflowId === workflowId);
        const expectedSucceeded = succeededPaths(mine);
        expect(expectedSucceeded).toHaveLength(whole.agents.length);
        await rt1.close();

        // The crash: every event up to k, with k after workflow.started and before the workflow's end.
        const startedAt = all.findIndex((e) => e.type === 'workflow.started');
        const endAt = all.findIndex((e) => e.type === 'workflow.completed');
        const k = startedAt + 1 + (cut % (endAt - startedAt));
        const kept = all.slice(0, k);
        const file = await crashedLog(kept);

        const again = build(shape);
        const rt2 = open(file, T0 + 120_000);
        rt2.register('prop', again.topology);
        const report = await rt2.resume();
        expect(report.refused).toEqual([]);
        expect(report.resumed).toMatchObject([{ workflowId, outcome: 'completed' }]);

        const result = await rt2.result(workflowId);
        expect(result.value).toEqual(expected.value);
        const events = rt2.store.query({ workflowId });
        expect(succeededPaths(events)).toEqual(expectedSucceeded);
        expect(events.filter((e) => e.type === 'workflow.completed')).toHaveLength(1);
        expect(rt2.store.verify().ok).toBe(true);

        // Calls after the crash: none for an agent whose success was in the log, at most one otherwise.
        const recorded = new Set(
          kept
            .filter((e) => e.type === 'agent.succeeded')
            .map((e) => (e.payload as { path: string }).path.split('/').at(-1)),
        );
        for (const [i, a] of again.agents.entries()) {
          expect(a.calls(), `a${i}`).toBeLessThanOrEqual(recorded.has(`a${i}`) ? 0 : 1);
          if (!recorded.has(`a${i}`)) expect(a.calls(), `a${i} must run after the crash`).toBe(1);
        }
        if (recorded.size > 0 && recorded.size < again.agents.length) midway++;
        await rt2.close();
      }),
      { numRuns: 60 },
    );
    // The crash points are spread out: many runs cut between the first and the last agent's success.
    expect(midway).toBeGreaterThan(10);
  }, 120_000);
});
