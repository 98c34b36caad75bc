/** Smoke test of bench/limits.bench.ts: it runs with tiny counts and reports its one goal. */
import { describe, expect, it } from 'vitest';
import { runBench } from '../../bench/limits.bench.js';

describe('limits bench', () => {
  it('measures the limiter overhead when not limiting and states the 2 us goal', async () => {
    const report = await runBench({ quick: true, json: false });
    expect(report.bench).toBe('limits');
    expect(report.goals.map((g) => g.goal)).toEqual(['limiter overhead when not limiting <= 2 us/call']);
    expect(report.tables[0]!.rows.every((r) => Number.isFinite(r.value) && r.value >= 0)).toBe(true);
    // The shared (Redis) limiter's cost per call, or why it was skipped.
    const redisLine = report.method.find((m) => m.startsWith('redis'));
    expect(redisLine).toBeDefined();
    if (!redisLine!.includes('SKIPPED')) {
      expect(report.tables[1]!.rows.map((r) => r.name)).toContain(
        'shared acquire+release: rpm, tpm, 1 in flight',
      );
      expect(report.tables[1]!.rows.every((r) => Number.isFinite(r.value) && r.value > 0)).toBe(true);
    }
  });
});
