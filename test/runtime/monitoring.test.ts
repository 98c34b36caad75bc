import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import type { Alert } from '../../src/monitor/alert.js';
import { functionSink } from '../../src/monitor/sinks/function.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent, AgentError } from '../../src/supervisor/agent.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';

let rt: Runtime<SqliteEventStore> | undefined;
afterEach(async () => {
  await rt?.close();
  rt = undefined;
});

describe('live monitoring in the runtime', () => {
  it('raises one error-rate alert per breach from committed events, routes it, and lists it in stats()', async () => {
    const delivered: Alert[] = [];
    const clock = simulatedClock();
    rt = createRuntime({
      db: ':memory:',
      clock,
      seed: 1,
      pricing: { sim: { inputPer1K: 0, outputPer1K: 0 } },
      errorTargets: { vendor: 0.05 },
      monitor: { windowSize: 100 },
      alerts: {
        rules: [
          { match: { kind: 'error_rate' }, sinks: [functionSink('capture', (a) => void delivered.push(a))] },
        ],
      },
    });
    const raised: Alert[] = [];
    rt.on('alert', (a) => raised.push(a));
    let i = 0;
    const vendor = agent({
      name: 'vendor_extraction',
      taskType: 'vendor',
      model: 'sim',
      run: () =>
        i++ % 10 === 0 && i < 80
          ? Promise.reject(new AgentError('ocr_error', 'blurred scan'))
          : Promise.resolve({ value: 'ACME' }),
    });
    for (let n = 0; n < 100; n++) await rt.run(vendor, { n }).catch(() => undefined);
    await rt.ready(); // alerts are delivered once their `alert.raised` is committed
    const errorAlerts = raised.filter((a) => a.kind === 'error_rate' && a.status !== 'resolved');
    expect(errorAlerts).toHaveLength(1);
    expect(errorAlerts[0]?.title).toMatch(/8\.0%|exceeds/);
    await clock.flush();
    expect(delivered.map((a) => a.id)).toContain(errorAlerts[0]?.id);
    expect(rt.store.query({ type: 'alert.raised' }).length).toBeGreaterThanOrEqual(1);
    const vendorState = rt.stats().errorRates.find((s) => s.taskType === 'vendor');
    expect(vendorState?.alerting).toBe(true);
    expect(vendorState?.primaryCause).toBe('ocr_error');
  });

  it('raises the P95 SLA alert once when workflows run slower than the target', async () => {
    const clock: SimulatedClock = simulatedClock();
    rt = createRuntime({
      db: ':memory:',
      clock,
      seed: 1,
      pricing: { sim: { inputPer1K: 0, outputPer1K: 0 } },
      sla: { p95Ms: 1_000, minSamples: 5 },
    });
    const raised: Alert[] = [];
    rt.on('alert', (a) => raised.push(a));
    const slow = agent({
      name: 'slow',
      model: 'sim',
      run: () =>
        new Promise<{ value: number }>((resolve) => clock.setTimeout(() => resolve({ value: 1 }), 2_000)),
    });
    for (let n = 0; n < 10; n++) {
      const p = rt.run(slow, {});
      await clock.advanceAsync(2_000);
      await p;
    }
    const sla = raised.filter((a) => a.kind === 'sla');
    expect(sla).toHaveLength(1);
    expect(rt.stats().latency).toBeDefined();
  });
});
