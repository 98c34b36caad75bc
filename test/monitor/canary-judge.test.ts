import { describe, expect, it } from 'vitest';
import { createCanaryJudge } from '../../src/monitor/canary-judge.js';

describe('createCanaryJudge', () => {
  it('continues while the candidate has fewer than minSamples, even if it fails', () => {
    const judge = createCanaryJudge({ targets: { errorRate: 0.05 }, minSamples: 20 });
    for (let i = 0; i < 19; i++)
      expect(judge.record('candidate', { success: false })).toEqual({ decision: 'continue' });
    expect(judge.record('candidate', { success: false }).decision).toBe('rollback');
  });

  it('rolls back as soon as the candidate error rate breaches the target, with a reason', () => {
    const judge = createCanaryJudge({ targets: { errorRate: 0.05 }, minSamples: 20 });
    for (let i = 0; i < 100; i++) judge.record('stable', { success: i % 50 !== 0 }); // 2 %
    for (let i = 0; i < 19; i++) judge.record('candidate', { success: true });
    expect(judge.record('candidate', { success: false })).toEqual({ decision: 'continue' }); // 1 of 20 = 5 %
    const verdict = judge.record('candidate', { success: false }); // 2 of 21 = 9.5 %
    expect(verdict).toMatchObject({ decision: 'rollback', metric: 'errorRate', target: 0.05, samples: 21 });
    if (verdict.decision !== 'rollback') throw new Error('expected a rollback');
    expect(verdict.candidate).toBeCloseTo(2 / 21, 10);
    expect(verdict.stable).toBeCloseTo(0.02, 10);
    expect(verdict.reason).toBe(
      'candidate error rate 9.5% exceeds target 5.0% over 21 workflows (stable 2.0% over 100)',
    );
    // final: later outcomes do not change it
    for (let i = 0; i < 1_000; i++) judge.record('candidate', { success: true });
    expect(judge.verdict).toBe(verdict);
  });

  it('rolls back on P95 latency over the target', () => {
    const judge = createCanaryJudge({ targets: { p95Ms: 10_000 }, minSamples: 20 });
    for (let i = 0; i < 20; i++) judge.record('stable', { success: true, latencyMs: 5_000 });
    for (let i = 0; i < 19; i++) judge.record('candidate', { success: true, latencyMs: 6_000 });
    expect(judge.record('candidate', { success: true, latencyMs: 30_000 }).decision).toBe('continue'); // P95 = 6 s
    const verdict = judge.record('candidate', { success: true, latencyMs: 30_000 }); // 2 of 21 slow: P95 = 30 s
    expect(verdict).toMatchObject({ decision: 'rollback', metric: 'p95Ms', target: 10_000, samples: 21 });
    if (verdict.decision !== 'rollback') throw new Error('expected a rollback');
    expect(Math.abs(verdict.candidate - 30_000)).toBeLessThan(30);
    expect(verdict.reason).toMatch(
      /^candidate P95 latency 30,0\d\d ms exceeds target 10,000 ms over 21 workflows \(stable 5,00\d ms over 20\)$/,
    );
  });

  it('rolls back on mean cost per workflow over the target', () => {
    const judge = createCanaryJudge({ targets: { costUsdPerWorkflow: 0.04 }, minSamples: 10 });
    let verdict = judge.record('candidate', { success: true, costUsd: 0.05 });
    for (let i = 1; i < 10; i++) verdict = judge.record('candidate', { success: true, costUsd: 0.05 });
    expect(verdict).toMatchObject({ decision: 'rollback', metric: 'costUsdPerWorkflow', stable: undefined });
    if (verdict.decision !== 'rollback') throw new Error('expected a rollback');
    expect(verdict.reason).toBe(
      'candidate cost per workflow $0.0500 exceeds target $0.0400 over 10 workflows',
    );
  });

  it('promotes a candidate that stays within every target for promoteAfter workflows', () => {
    const judge = createCanaryJudge({
      targets: { errorRate: 0.05, p95Ms: 10_000 },
      minSamples: 20,
      promoteAfter: 50,
    });
    let verdict = judge.record('candidate', { success: true, latencyMs: 1_000 });
    for (let i = 1; i < 49; i++) verdict = judge.record('candidate', { success: i !== 30, latencyMs: 1_000 });
    expect(verdict.decision).toBe('continue');
    expect(judge.record('candidate', { success: true, latencyMs: 1_000 })).toMatchObject({
      decision: 'promote',
      samples: 50,
    });
    expect(judge.stats('candidate')).toMatchObject({
      samples: 50,
      failures: 1,
      errorRate: 0.02,
      p95Ms: 1_000,
    });
  });

  it('ignores the stable arm for decisions', () => {
    const judge = createCanaryJudge({ targets: { errorRate: 0.01 }, minSamples: 1 });
    expect(judge.record('stable', { success: false })).toEqual({ decision: 'continue' });
    expect(judge.stats('stable')).toMatchObject({ samples: 1, failures: 1 });
  });

  it('names the offending field in config errors', () => {
    expect(() => createCanaryJudge({ targets: {} })).toThrow(/targets/);
    expect(() => createCanaryJudge({ targets: { errorRate: 3 } })).toThrow(/targets\.errorRate/);
    expect(() => createCanaryJudge({ targets: { p95Ms: 1 }, minSamples: 0 })).toThrow(/minSamples/);
    expect(() => createCanaryJudge({ targets: { p95Ms: 1 }, minSamples: 20, promoteAfter: 5 })).toThrow(
      /promoteAfter/,
    );
  });
});
