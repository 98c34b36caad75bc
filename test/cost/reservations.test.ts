/** Learned reservations: a bounded fold of recent actual costs per (agent, model). */
import { describe, expect, it } from 'vitest';
import { createReservationLearner } from '../../src/cost/reservations.js';
import type { KeelEvent } from '../../src/eventlog/events.js';

let seq = 0;
function incurred(agent: string, model: string, costUsd: number, estimated = false): KeelEvent {
  return {
    seq: ++seq,
    ts: 1,
    v: 1,
    class: 'audit',
    workflowId: 'w',
    type: 'cost.incurred',
    payload: {
      path: 'p',
      agent,
      model,
      taskType: 't',
      attempt: 1,
      usage: { inputTokens: 1, outputTokens: 1 },
      costUsd,
      estimateUsd: 0.01,
      ...(estimated ? { estimated: true } : {}),
    },
  };
}

describe('createReservationLearner', () => {
  it('reserves the larger of the estimate and the p95 of recent actual costs, per agent and model', () => {
    const l = createReservationLearner({ window: 100 });
    expect(l.reserveUsd('a', 'm', 0.01)).toBe(0.01);
    for (let i = 1; i <= 100; i++) l.apply(incurred('a', 'm', i / 1_000)); // 0.001 … 0.100
    expect(l.learnedUsd('a', 'm')).toBeCloseTo(0.095, 12);
    expect(l.reserveUsd('a', 'm', 0.01)).toBeCloseTo(0.095, 12);
    expect(l.reserveUsd('a', 'm', 0.2)).toBe(0.2);
    expect(l.reserveUsd('a', 'other-model', 0.01)).toBe(0.01);
    expect(l.reserveUsd('b', 'm', 0.01)).toBe(0.01);
  });

  it('learns from reported costs only, forgets costs older than its window, and rises at once', () => {
    const l = createReservationLearner({ window: 10 });
    l.apply(incurred('a', 'm', 5, true)); // charged from the estimate: not a measurement
    expect(l.learnedUsd('a', 'm')).toBeUndefined();
    for (let i = 0; i < 10; i++) l.apply(incurred('a', 'm', 1));
    expect(l.learnedUsd('a', 'm')).toBe(1);
    for (let i = 0; i < 40; i++) l.apply(incurred('a', 'm', 0.1));
    expect(l.learnedUsd('a', 'm')).toBeCloseTo(0.1, 12);
    l.apply(incurred('a', 'm', 3));
    expect(l.learnedUsd('a', 'm')).toBe(3);
  });

  it('keeps at most maxKeys (agent, model) pairs, forgetting the oldest', () => {
    const l = createReservationLearner({ maxKeys: 2 });
    l.apply(incurred('a', 'm', 1));
    l.apply(incurred('b', 'm', 1));
    l.apply(incurred('c', 'm', 1));
    expect(l.learnedUsd('a', 'm')).toBeUndefined();
    expect(l.learnedUsd('b', 'm')).toBe(1);
    expect(l.learnedUsd('c', 'm')).toBe(1);
  });

  it('names a bad option', () => {
    expect(() => createReservationLearner({ percentile: 0 })).toThrow(/reservations.percentile/);
    expect(() => createReservationLearner({ window: 0 })).toThrow(/reservations.window/);
  });
});
