import { describe, expect, it } from 'vitest';
import type { KeelEvent } from '../../src/eventlog/events.js';
import type { Alert } from '../../src/monitor/alert.js';
import { createLatencyProjection, type LatencyProjection } from '../../src/monitor/latency-projection.js';
import { event, failed, succeeded } from './fixtures.js';

const HOUR = 3_600_000;

let wf = 0;
/** A finished workflow: started + completed (or failed), `latencyMs` apart, ending at `endTs`. */
function workflow(name: string, latencyMs: number, endTs: number, ok = true): KeelEvent[] {
  const id = `wf-${++wf}`;
  return [
    event('workflow.started', { name, topology: {}, input: {}, inputHash: 'h' }, endTs - latencyMs, id),
    ok
      ? event('workflow.completed', { output: 1, latencyMs, costUsd: 0.01, agentsCalled: 1 }, endTs, id)
      : event(
          'workflow.failed',
          { category: 'timeout', message: 't', latencyMs, costUsd: 0.01, agentsCalled: 1 },
          endTs,
          id,
        ),
  ];
}

const feed = (p: LatencyProjection, events: Iterable<KeelEvent>): Alert[] => {
  const out: Alert[] = [];
  for (const e of events) out.push(...p.apply(e));
  return out;
};

describe('createLatencyProjection', () => {
  it('gives P50/P90/P95/P99/max per agent from a known latency set (1 … 100 ms)', () => {
    const p = createLatencyProjection();
    for (let ms = 1; ms <= 100; ms++)
      p.apply(succeeded({ agent: 'vendor_extraction', latencyMs: ms, ts: ms }));
    p.apply(failed('timeout', { agent: 'other', latencyMs: 7, ts: 200 }));
    const s = p.stats('agent', 'vendor_extraction');
    expect(s).toMatchObject({ count: 100, p50Ms: 50, p90Ms: 90, p95Ms: 95, p99Ms: 99, maxMs: 100 });
    expect(s?.meanMs).toBeCloseTo(50.5, 1);
    expect(p.stats('agent', 'other')).toMatchObject({ count: 1, p95Ms: 7 });
    expect(
      p
        .snapshot()
        .agents.map((a) => a.name)
        .sort(),
    ).toEqual(['other', 'vendor_extraction']);
  });

  it('takes no latency sample from a cancelled call, so cut-short calls cannot hide an SLA breach', () => {
    const p = createLatencyProjection({ slaP95Ms: 1_000, minSamples: 5, monitor: 'agent' });
    const alerts: Alert[] = [];
    for (let i = 1; i <= 10; i++) alerts.push(...p.apply(succeeded({ latencyMs: 2_000, ts: i })));
    expect(alerts.map((a) => a.status)).toEqual(['firing']);
    // Cut-short calls at 5 ms would pull the window's P95 under the target and resolve the alert.
    for (let i = 11; i <= 200; i++) alerts.push(...p.apply(failed('cancelled', { latencyMs: 5, ts: i })));
    expect(alerts.map((a) => a.status)).toEqual(['firing']);
    expect(p.stats('agent', 'vendor_extraction')).toMatchObject({
      count: 10,
      p50Ms: 2_000,
      window: { samples: 10 },
    });
  });

  it('keeps HDR precision for large latencies (3 significant digits)', () => {
    const p = createLatencyProjection();
    for (let i = 1; i <= 100; i++) p.apply(succeeded({ latencyMs: i * 200, ts: i })); // 200 ms … 20 s
    const p95 = p.stats('agent', 'vendor_extraction')?.p95Ms ?? 0;
    expect(Math.abs(p95 - 19_000) / 19_000).toBeLessThan(0.001);
    expect(p.stats('agent', 'vendor_extraction')?.maxMs).toBe(20_000);
  });

  it('tracks workflows by the name from workflow.started and drops per-id state at the end', () => {
    const p = createLatencyProjection({ slaP95Ms: 10_000 });
    feed(p, workflow('invoice', 5_000, 10_000));
    feed(p, workflow('invoice', 15_000, 20_000, false));
    feed(p, workflow('refund', 1_000, 30_000));
    p.apply(
      event('workflow.started', { name: 'invoice', topology: {}, input: {}, inputHash: 'h' }, 40_000, 'open'),
    );
    const snap = p.snapshot();
    expect(snap.openWorkflows).toBe(1);
    expect(snap.workflows.find((w) => w.name === 'invoice')).toMatchObject({ count: 2, slaCompliance: 0.5 });
    expect(snap.workflows.find((w) => w.name === 'refund')).toMatchObject({ count: 1, slaCompliance: 1 });
    p.apply(event('workflow.cancelled', { reason: 'user', latencyMs: 10, costUsd: 0 }, 40_010, 'open'));
    expect(p.snapshot().openWorkflows).toBe(0);
    // an end without a start (e.g. pruned) is ignored
    p.apply(
      event('workflow.completed', { output: 1, latencyMs: 1, costUsd: 0, agentsCalled: 0 }, 50_000, 'x'),
    );
    expect(p.stats('workflow', 'invoice')?.count).toBe(2);
  });

  it('alerts ONCE when the window P95 passes the SLA, resolves once, and alerts again on a new breach', () => {
    const p = createLatencyProjection({ slaP95Ms: 10_000, windowMs: HOUR, minSamples: 20 });
    let ts = 0;
    const run = (latencyMs: number, n: number): Alert[] => {
      const out: Alert[] = [];
      for (let i = 0; i < n; i++) out.push(...feed(p, workflow('invoice', latencyMs, (ts += 1_000))));
      return out;
    };
    expect(run(5_000, 20)).toEqual([]);
    // 21 samples with 1 slow: P95 is still the 20th value (5 s); the second slow one tips it
    expect(run(18_500, 1)).toEqual([]);
    const raised = run(18_500, 1);
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({ kind: 'sla', severity: 'high', status: 'firing' });
    expect(raised[0]?.title).toBe(
      'invoice: P95 latency 18,500 ms exceeds SLA 10,000 ms over last 1 hour (2 of 22 slower)',
    );
    expect(raised[0]?.data).toMatchObject({ scope: 'workflow', name: 'invoice', p95Ms: 18_500, samples: 22 });
    expect(run(30_000, 10)).toEqual([]); // still breached: no repeat

    // an hour later only fast workflows are in the window: one resolve
    ts += HOUR;
    const resolved = run(8_000, 25);
    expect(resolved).toHaveLength(1);
    expect(resolved[0]).toMatchObject({ id: raised[0]?.id, status: 'resolved' });
    expect(p.stats('workflow', 'invoice')?.window).toMatchObject({ alerting: false, p95Ms: 8_000 });

    const again = run(25_000, 5);
    expect(again).toHaveLength(1);
    expect(again[0]?.id).not.toBe(raised[0]?.id);
  });

  it('does not resolve while P95 sits between the resolve level and the SLA', () => {
    const p = createLatencyProjection({
      slaP95Ms: 10_000,
      windowMs: HOUR,
      minSamples: 20,
      resolveRatio: 0.9,
    });
    let ts = 0;
    const out: Alert[] = [];
    for (let i = 0; i < 20; i++) out.push(...feed(p, workflow('invoice', 12_000, (ts += 1_000))));
    expect(out).toHaveLength(1);
    ts += HOUR;
    for (let i = 0; i < 20; i++) out.push(...feed(p, workflow('invoice', 9_500, (ts += 1_000))));
    expect(p.stats('workflow', 'invoice')?.window.p95Ms).toBe(9_500); // under the SLA, above 9,000
    expect(out).toHaveLength(1);
    ts += HOUR;
    for (let i = 0; i < 20; i++) out.push(...feed(p, workflow('invoice', 8_000, (ts += 1_000))));
    expect(out.map((a) => a.status)).toEqual(['firing', 'resolved']);
  });

  it('watches agents only when asked', () => {
    const wfOnly = createLatencyProjection({ slaP95Ms: 100, minSamples: 1 });
    expect(wfOnly.apply(succeeded({ latencyMs: 500, ts: 1 }))).toEqual([]);
    const agents = createLatencyProjection({ slaP95Ms: 100, minSamples: 1, monitor: 'agent' });
    expect(agents.apply(succeeded({ latencyMs: 500, ts: 1 }))).toHaveLength(1);
  });

  it('names the offending field in config errors', () => {
    expect(() => createLatencyProjection({ slaP95Ms: 0 })).toThrow(/slaP95Ms/);
    expect(() => createLatencyProjection({ windowMs: -1 })).toThrow(/windowMs/);
    expect(() => createLatencyProjection({ resolveRatio: 2 })).toThrow(/resolveRatio/);
  });
});
