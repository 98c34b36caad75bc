import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import type { Alert } from '../../src/monitor/alert.js';
import { functionSink } from '../../src/monitor/sinks/function.js';
import { createRuntime, type Runtime, type RuntimeConfig } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';
import { canary } from '../../src/supervisor/canary.js';
import { ProviderError } from '../../src/providers/types.js';

const HOUR = 3_600_000;
const open: Runtime[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const rt of open.splice(0)) await rt.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmpDb(): string {
  const dir = mkdtempSync(join(tmpdir(), 'keel-restore-'));
  dirs.push(dir);
  return join(dir, 'keel.db');
}

function runtime(db: string, clock: SimulatedClock, extra: Partial<RuntimeConfig> = {}): Runtime {
  const rt = createRuntime({
    db,
    clock,
    seed: 3,
    cache: false,
    pricing: { sim: { inputPer1K: 0, outputPer1K: 0 } },
    ...extra,
  });
  open.push(rt);
  return rt;
}

async function restart(rt: Runtime): Promise<void> {
  await rt.close();
  open.splice(open.indexOf(rt), 1);
}

describe('weekly error budgets survive a restart', () => {
  // The scenario: a vendor budget of 10,000 a week at 5 % allows 500 failures, alerts at 400.
  const config: Partial<RuntimeConfig> = {
    errorTargets: { vendor: 0.05 },
    monitor: { weeklyVolume: { vendor: 10_000 } },
  };
  // A user's run() throwing a plain Error, not Keel's simulated failures.
  const vendor = agent({
    name: 'vendor_extraction',
    taskType: 'vendor',
    model: 'sim',
    run: () => Promise.reject(new Error('upstream said no')),
  });

  it('350 failures, restart 2 h later, 100 more: the 80 % alert fires at the 400th, once; nothing old is re-delivered', async () => {
    const db = tmpDb();
    const clock = simulatedClock(Date.UTC(2026, 0, 6, 9)); // Tuesday 09:00 UTC
    const first = runtime(db, clock, config);
    const before: Alert[] = [];
    first.on('alert', (a) => before.push(a));
    for (let i = 0; i < 350; i++) await first.run(vendor, {}).catch(() => undefined);
    await first.ready();
    expect(before.filter((a) => a.kind === 'error_budget')).toEqual([]);
    expect(before.map((a) => a.kind)).toEqual(['error_rate']); // raised once, before the restart
    await restart(first);

    clock.set(clock.now() + 2 * HOUR);
    // A sink sees what the runtime delivers from its first moment (the restore runs in createRuntime).
    const sunk: Alert[] = [];
    const second = runtime(db, clock, {
      ...config,
      alerts: { rules: [{ sinks: [functionSink('capture', (a) => void sunk.push(a))] }] },
    });
    const after: Alert[] = [];
    second.on('alert', (a) => after.push(a));
    await second.ready();
    expect(second.stats().errorRates.find((s) => s.taskType === 'vendor')?.budget?.failures).toBe(350);
    // The gauge shows the restored budget before the first workflow ends: 150 of 500 left.
    const gauge = await second.metrics?.registry.getSingleMetric('error_budget_remaining_ratio')?.get();
    expect(gauge?.values.find((v) => v.labels.task_type === 'vendor')?.value).toBeCloseTo(0.3, 10);
    let at: number | undefined;
    for (let i = 1; i <= 100; i++) {
      await second.run(vendor, {}).catch(() => undefined);
      await second.ready();
      if (at === undefined && after.some((a) => a.kind === 'error_budget')) at = 350 + i;
    }
    expect(at).toBe(400);
    // Only the new condition: the open error-rate alert is part of the restored state, not news.
    expect(after.map((a) => `${a.kind} ${a.status ?? 'firing'}`)).toEqual(['error_budget firing']);
    expect(after[0]?.title).toContain('400 of 500 acceptable failures');
    await clock.flush();
    expect(sunk.map((a) => a.kind)).toEqual(['error_budget']);
    const ids = (second.store.query({ type: 'alert.raised' }) as { payload: { id: string } }[]).map(
      (e) => e.payload.id,
    );
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('restores only the current ISO week: failures of last week do not count after the Monday 00:00 restart', async () => {
    const db = tmpDb();
    // Sunday 23:00 in New York (Monday 04:00 UTC): still last week there.
    const clock = simulatedClock(Date.UTC(2026, 0, 12, 4));
    const zoned: Partial<RuntimeConfig> = {
      ...config,
      monitor: { ...config.monitor, timeZone: 'America/New_York' },
    };
    const first = runtime(db, clock, zoned);
    for (let i = 0; i < 399; i++) await first.run(vendor, {}).catch(() => undefined);
    await restart(first);

    clock.set(Date.UTC(2026, 0, 12, 5)); // Monday 00:00 in New York: a new budget week
    const second = runtime(db, clock, zoned);
    const after: Alert[] = [];
    second.on('alert', (a) => after.push(a));
    await second.ready();
    expect(second.stats().errorRates.find((s) => s.taskType === 'vendor')?.budget).toMatchObject({
      failures: 0,
      periodStartMs: Date.UTC(2026, 0, 12, 5),
    });
    await second.run(vendor, {}).catch(() => undefined);
    await second.ready();
    expect(after.filter((a) => a.kind === 'error_budget' && a.status !== 'resolved')).toEqual([]);
  });

  it('refuses an unknown time zone, naming monitor.timeZone', () => {
    expect(() =>
      runtime(':memory:', simulatedClock(), { ...config, monitor: { timeZone: 'Mars/Olympus' } }),
    ).toThrow(/monitor\.timeZone.*Mars\/Olympus/);
  });
});

describe('canary judgement is a fold of the log, per runtime', () => {
  const stable = agent({ name: 'extract_v1', model: 'sim', run: () => Promise.resolve({ value: 'v1' }) });
  const candidateCalls = { n: 0 };
  const bad = agent({
    name: 'extract_v2',
    model: 'sim',
    run: () => {
      candidateCalls.n++;
      // An SDK-shaped error, as a real provider client throws it.
      return Promise.reject(Object.assign(new Error('Internal Server Error'), { status: 500 }));
    },
  });
  const topology = canary(stable, bad, {
    name: 'extract <v2> user@example.com',
    share: 0.5,
    targets: { errorRate: 0.05 },
    minSamples: 10,
  });

  it('a rolled-back candidate stays rolled back after a restart: 0 traffic', async () => {
    const db = tmpDb();
    const clock = simulatedClock(Date.UTC(2026, 0, 6, 9));
    const first = runtime(db, clock);
    for (let i = 0; i < 60; i++) await first.run(topology, {}).catch(() => undefined);
    expect(first.canary('canary')?.status()).toBe('rolled_back');
    await restart(first);

    clock.set(clock.now() + HOUR);
    const second = runtime(db, clock);
    await second.ready();
    // Known from the log before the node runs again.
    expect(second.canary('canary')?.status()).toBe('rolled_back');
    expect(second.canary('canary')?.share()).toBe(0);
    candidateCalls.n = 0;
    for (let i = 0; i < 100; i++) expect((await second.run(topology, {})).value).toBe('v1');
    expect(candidateCalls.n).toBe(0);
    expect(second.canary('canary')?.reason()).toMatch(/error rate/);
  });

  it('two runtimes sharing one topology value judge it apart', async () => {
    const a = runtime(':memory:', simulatedClock(Date.UTC(2026, 0, 6, 9)));
    const b = runtime(':memory:', simulatedClock(Date.UTC(2026, 0, 6, 9)));
    for (let i = 0; i < 60; i++) await a.run(topology, {}).catch(() => undefined);
    expect(a.canary('canary')?.status()).toBe('rolled_back');
    candidateCalls.n = 0;
    for (let i = 0; i < 10; i++) await b.run(topology, {}).catch(() => undefined);
    expect(b.canary('canary')?.status()).toBe('running');
    expect(candidateCalls.n).toBeGreaterThan(0);
  });

  it('a promotion survives a restart too', async () => {
    const db = tmpDb();
    const clock = simulatedClock(Date.UTC(2026, 0, 6, 9));
    const good = agent({ name: 'extract_v2', model: 'sim', run: () => Promise.resolve({ value: 'v2' }) });
    const promoted = canary(stable, good, { share: 0.1, targets: { errorRate: 0.05 } });
    const first = runtime(db, clock);
    await first.run(promoted, {});
    first.canary('canary')?.promote();
    await first.ready();
    await restart(first);
    const second = runtime(db, clock);
    await second.ready();
    for (let i = 0; i < 20; i++) expect((await second.run(promoted, {})).value).toBe('v2');
  });
});

describe('rt.breaker(name) after a restart', () => {
  it('answers with the restored state before first use, then takes the agent config on first use', async () => {
    const db = tmpDb();
    const clock = simulatedClock(Date.UTC(2026, 0, 6, 9));
    let calls = 0;
    const down = agent({
      name: 'down',
      model: 'sim',
      breaker: { name: 'openai', failureThreshold: 2, resetTimeoutMs: 60_000 },
      run: () => {
        calls++;
        return Promise.reject(new ProviderError('provider_error', '500'));
      },
    });
    const first = runtime(db, clock);
    for (let i = 0; i < 3; i++) await first.run(down, {}).catch(() => undefined);
    expect(first.breaker('openai')?.state()).toBe('open');
    await restart(first);

    clock.set(clock.now() + 1_000);
    const second = runtime(db, clock);
    await second.ready();
    expect(second.breaker('openai')?.state()).toBe('open');
    expect(second.breaker('nope')).toBeUndefined();
    calls = 0;
    await expect(second.run(down, {})).rejects.toMatchObject({ category: 'circuit_open', breaker: 'openai' });
    expect(calls).toBe(0);
    expect(second.breaker('openai')?.state()).toBe('open');
  });
});
