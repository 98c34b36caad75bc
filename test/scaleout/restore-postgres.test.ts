/**
 * Policy state restored from a Postgres log as from a SQLite one: the week's error budget and a
 * canary's rollback survive a restart of the runtime (a new connection, a new process's view).
 */
import { afterEach, expect, it } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { openPostgresStore } from '../../src/eventlog/postgres.js';
import type { Alert } from '../../src/monitor/alert.js';
import { createRuntime, type Runtime, type RuntimeConfig } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';
import { canary } from '../../src/supervisor/canary.js';
import { describePostgres, freshDatabase } from '../support/scaleout.js';

const HOUR = 3_600_000;
const open: Runtime[] = [];
afterEach(async () => {
  for (const rt of open.splice(0)) await rt.close();
});

function member(url: string, clock: SimulatedClock, extra: Partial<RuntimeConfig> = {}): Runtime {
  const rt = createRuntime({
    store: openPostgresStore({ url }),
    clock,
    seed: 9,
    cache: false,
    metrics: false,
    tracing: false,
    pricing: { sim: { inputPer1K: 0, outputPer1K: 0 } },
    ...extra,
  });
  open.push(rt);
  return rt;
}

async function stop(rt: Runtime): Promise<void> {
  open.splice(open.indexOf(rt), 1);
  await rt.close();
}

describePostgres('policy state restored from a Postgres log', () => {
  it('error budget: 350 failures, restart 2 h later, 100 more → the 80 % alert at the 400th', async () => {
    const url = await freshDatabase();
    const config: Partial<RuntimeConfig> = {
      errorTargets: { vendor: 0.05 },
      monitor: { weeklyVolume: { vendor: 10_000 } },
    };
    const vendor = agent({
      name: 'vendor_extraction',
      taskType: 'vendor',
      model: 'sim',
      run: () => Promise.reject(new Error('upstream said no')),
    });
    const clock = simulatedClock(Date.UTC(2026, 0, 6, 9));
    const first = member(url, clock, config);
    for (let i = 0; i < 350; i++) await first.run(vendor, {}).catch(() => undefined);
    await stop(first);

    clock.set(clock.now() + 2 * HOUR);
    const second = member(url, clock, config);
    const after: Alert[] = [];
    second.on('alert', (a) => after.push(a));
    await second.ready();
    let at: number | undefined;
    for (let i = 1; i <= 100; i++) {
      await second.run(vendor, {}).catch(() => undefined);
      await second.ready();
      if (at === undefined && after.some((a) => a.kind === 'error_budget')) at = 350 + i;
    }
    expect(at).toBe(400);
    expect(after.map((a) => a.kind)).toEqual(['error_budget']);
  }, 60_000);

  it('a rolled-back canary stays rolled back after a restart', async () => {
    const url = await freshDatabase();
    const stable = agent({ name: 'v1', model: 'sim', run: () => Promise.resolve({ value: 'v1' }) });
    let candidateCalls = 0;
    const bad = agent({
      name: 'v2',
      model: 'sim',
      run: () => {
        candidateCalls++;
        return Promise.reject(new Error('bad prompt'));
      },
    });
    const topology = canary(stable, bad, { share: 0.5, targets: { errorRate: 0.05 }, minSamples: 5 });
    const clock = simulatedClock(Date.UTC(2026, 0, 6, 9));
    const first = member(url, clock);
    for (let i = 0; i < 40; i++) await first.run(topology, {}).catch(() => undefined);
    expect(first.canary('canary')?.status()).toBe('rolled_back');
    await stop(first);

    clock.set(clock.now() + HOUR);
    const second = member(url, clock);
    await second.ready();
    expect(second.canary('canary')?.status()).toBe('rolled_back');
    candidateCalls = 0;
    for (let i = 0; i < 40; i++) await second.run(topology, {});
    expect(candidateCalls).toBe(0);
  }, 60_000);
});
