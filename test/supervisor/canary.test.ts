import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import type { Alert } from '../../src/monitor/alert.js';
import { AgentError, agent } from '../../src/supervisor/agent.js';
import { canary } from '../../src/supervisor/canary.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';

let rt: Runtime | undefined;
afterEach(async () => {
  await rt?.close();
  rt = undefined;
});

const setup = (): Runtime =>
  (rt = createRuntime({
    db: ':memory:',
    clock: simulatedClock(),
    seed: 5,
    pricing: { sim: { inputPer1K: 0, outputPer1K: 0 } },
  }));

const stable = agent({ name: 'extract_v1', model: 'sim', run: () => Promise.resolve({ value: 'v1' }) });

describe('canary', () => {
  it('routes a deterministic ~10% share to the candidate, by workflow id', async () => {
    const good = agent({ name: 'extract_v2', model: 'sim', run: () => Promise.resolve({ value: 'v2' }) });
    const arms = async (): Promise<string[]> => {
      const rt = setup();
      const c = canary(stable, good, { share: 0.1, targets: { errorRate: 0.05 } });
      const out: string[] = [];
      for (let i = 0; i < 500; i++) out.push((await rt.run(c, {}, { workflowId: `wf-${i}` })).value);
      await rt.close();
      return out;
    };
    const first = await arms();
    const share = first.filter((v) => v === 'v2').length / first.length;
    expect(share).toBeGreaterThan(0.06);
    expect(share).toBeLessThan(0.14);
    expect(await arms()).toEqual(first);
  });

  it('rolls a bad candidate back within the window it breaches in: event, alert, share 0', async () => {
    const rt = setup();
    const alerts: Alert[] = [];
    rt.on('alert', (a) => alerts.push(a));
    const bad = agent({
      name: 'extract_v2',
      model: 'sim',
      run: () => Promise.reject(new AgentError('hallucination', 'made up a vendor')),
    });
    const c = canary(stable, bad, { share: 0.5, targets: { errorRate: 0.05 }, minSamples: 10 });
    let candidateRuns = 0;
    for (let i = 0; i < 200; i++) {
      const before = rt.canary('canary')?.share() ?? 0.5;
      await rt.run(c, {}).catch(() => {
        if (before > 0) candidateRuns++;
      });
    }
    const control = rt.canary('canary');
    expect(control?.status()).toBe('rolled_back');
    expect(control?.share()).toBe(0);
    expect(candidateRuns).toBe(10);
    expect(rt.store.query({ type: 'canary.rolled_back' })).toHaveLength(1);
    expect(alerts.filter((a) => a.kind === 'canary')).toHaveLength(1);
    control?.promote();
    expect(control?.status()).toBe('rolled_back');
  });

  it('promotion is explicit and sends everything to the candidate', async () => {
    const rt = setup();
    const good = agent({ name: 'extract_v2', model: 'sim', run: () => Promise.resolve({ value: 'v2' }) });
    const c = canary(stable, good, { share: 0.1, targets: { errorRate: 0.05 } });
    await rt.run(c, {});
    rt.canary('canary')?.promote();
    for (let i = 0; i < 20; i++) expect((await rt.run(c, {})).value).toBe('v2');
  });
});
