/**
 * Executors are a static kind → executor map: importing `execute.ts` is enough to run every kind
 * (no combinator module has to be imported first for its side effect), and a kind nobody knows is
 * refused with an error naming it.
 */
import { lastValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import type { NewEvent } from '../../src/eventlog/events.js';
import { exec } from '../../src/supervisor/execute.js';
import type { NodeContext, Services } from '../../src/supervisor/scope.js';
import { composite, type AnyTopology, type CompositeKind } from '../../src/supervisor/topology.js';

function context(): NodeContext {
  const events: NewEvent[] = [];
  const services = {
    clock: simulatedClock(),
    inspect: undefined,
    breaker: () => {
      throw new Error('no breaker in this test');
    },
    budgets: undefined,
    cache: undefined,
    price: () => 0,
    priceCall: () => 0,
    seed: '1',
  } as unknown as Services;
  return {
    scope: {
      workflowId: 'wf-1',
      services,
      emit: (e) => void events.push(e),
      stats: { costUsd: 0, agentsCalled: 0 },
      replay: undefined,
    },
    path: 'root',
    deadlineAt: undefined,
  };
}

const step = (fn: (x: number) => unknown): AnyTopology => composite('map', [], { fn });
const run = (node: AnyTopology, input: unknown): Promise<unknown> =>
  lastValueFrom(exec(node, input, context())).then((r) => r.value);

describe('exec: the static executor map', () => {
  it('runs seq, par, branch, fallback, deadline and map with only execute.ts imported', async () => {
    const inc = step((x) => x + 1);
    const double = step((x) => x * 2);
    const fails = step(() => {
      throw new Error('primary down');
    });
    expect(await run(composite('seq', [inc, double]), 1)).toBe(4);
    expect(await run(composite('par', [inc, double]), 5)).toEqual([6, 10]);
    const isSmall = { predicate: (x: number) => x < 10 };
    expect(await run(composite('branch', [inc, double], isSmall), 3)).toBe(4);
    expect(await run(composite('branch', [inc, double], isSmall), 30)).toBe(60);
    expect(await run(composite('fallback', [fails, double]), 7)).toBe(14);
    expect(await run(composite('deadline', [inc], { deadlineMs: 1_000 }), 1)).toBe(2);
  });

  it('a node of a kind with no executor errors naming the kind and the fix', async () => {
    const hand = { ...composite('seq', []), kind: 'loop' as CompositeKind };
    await expect(run(hand, 1)).rejects.toThrow(
      'no executor for topology kind "loop"; build nodes with the combinators',
    );
    // Not an inherited property either.
    const proto = { ...composite('seq', []), kind: 'toString' as CompositeKind };
    await expect(run(proto, 1)).rejects.toThrow('no executor for topology kind "toString"');
  });
});
