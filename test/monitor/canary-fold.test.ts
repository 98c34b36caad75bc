import { describe, expect, it } from 'vitest';
import { createCanaryFold, type CanaryRollback } from '../../src/monitor/canary-fold.js';
import { event } from './fixtures.js';

const observed = (path: string, arm: 'candidate' | 'stable', success: boolean, ts = 1) =>
  event('canary.observed', { canary: 'v2', path, arm, success, latencyMs: 100, costUsd: 0.01 }, ts);

describe('createCanaryFold', () => {
  it('judges outcomes read before the node runs once it does, and asks for the rollback to be recorded once', () => {
    const rollbacks: CanaryRollback[] = [];
    const f = createCanaryFold({ onRollback: (r) => rollbacks.push(r), onPromote: () => undefined });
    for (let i = 0; i < 5; i++) f.apply(observed('wf/canary[0]', 'candidate', false, i));
    expect(f.control('wf/canary[0]')?.status()).toBe('running');
    const c = f.at('wf/canary[0]', { name: 'v2', share: 0.5, targets: { errorRate: 0.05 }, minSamples: 5 });
    expect(c.status()).toBe('rolled_back');
    expect(c.share()).toBe(0);
    expect(rollbacks).toHaveLength(1);
    expect(rollbacks[0]).toMatchObject({ path: 'wf/canary[0]', ts: 4 });
    f.apply(observed('wf/canary[0]', 'candidate', false));
    expect(rollbacks).toHaveLength(1);
  });

  it('keys judgements by path: two canaries of one name are judged apart', () => {
    const f = createCanaryFold({ onRollback: () => undefined, onPromote: () => undefined });
    const spec = { name: 'v2', share: 0.5, targets: { errorRate: 0.05 }, minSamples: 2 };
    const a = f.at('a/canary', spec);
    const b = f.at('b/canary', spec);
    f.apply(observed('a/canary', 'candidate', false));
    f.apply(observed('a/canary', 'candidate', false));
    expect(a.status()).toBe('rolled_back');
    expect(b.status()).toBe('running');
    expect(b.share()).toBe(0.5);
    expect(f.control('v2')).toBeUndefined(); // ambiguous name: pass the path
  });

  it('honours a rollback an older log recorded without a path, by name', () => {
    const f = createCanaryFold({ onRollback: () => undefined, onPromote: () => undefined });
    f.apply(event('canary.rolled_back', { canary: 'v2', reason: 'error rate', data: null }, 1, '_system'));
    const c = f.at('x/canary', { name: 'v2', share: 0.1, targets: { errorRate: 0.05 } });
    expect(c.status()).toBe('rolled_back');
    expect(c.reason()).toBe('error rate');
  });

  it('records a promotion, which a later read of the log restores', () => {
    const promoted: string[] = [];
    const f = createCanaryFold({ onRollback: () => undefined, onPromote: (c) => promoted.push(c.path) });
    const c = f.at('p/canary', { name: 'v2', share: 0.1, targets: { errorRate: 0.05 } });
    c.promote();
    expect(c.share()).toBe(1);
    expect(promoted).toEqual(['p/canary']);
    const restored = createCanaryFold({ onRollback: () => undefined, onPromote: () => undefined });
    restored.apply(event('canary.promoted', { canary: 'v2', path: 'p/canary' }, 1, '_system'));
    expect(restored.at('p/canary', { name: 'v2', share: 0.1, targets: { errorRate: 0.05 } }).share()).toBe(1);
  });
});
