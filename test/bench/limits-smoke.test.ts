/** Smoke test of bench/limits.bench.ts: it runs with tiny counts and reports its one goal. */
import { describe, expect, it } from 'vitest';
import { runBench } from '../../bench/limits.bench.js';

describe('limits bench', () => {
  it('measures the limiter overhead when not limiting and states the 2 us goal', async () => {
    const report = await runBench({ quick: true, json: false });
    expect(report.bench).toBe('limits');
    expect(report.goals.map((g) => g.goal)).toEqual(['limiter overhead when not limiting <= 2 us/call']);
    expect(report.tables[0]!.rows.every((r) => Number.isFinite(r.value) && r.value >= 0)).toBe(true);
  });
});
