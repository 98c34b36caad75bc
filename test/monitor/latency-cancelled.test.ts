import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { createLatencyProjection } from '../../src/monitor/latency-projection.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { AgentError, agent } from '../../src/supervisor/agent.js';
import { par } from '../../src/supervisor/parallel.js';

const open: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const rt of open.splice(0)) await rt.close();
});

interface Claim {
  /** The fast check fails (and so cancels the slow sibling) when set. */
  reject: boolean;
  /** How long the slow agent takes, ms. */
  slowMs: number;
}

const after = <T>(clock: SimulatedClock, ms: number, value: () => T): Promise<{ value: T }> =>
  new Promise((resolve, reject) =>
    clock.setTimeout(() => {
      try {
        resolve({ value: value() });
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    }, ms),
  );

/**
 * Runs `claims` one after another through `par(fastCheck, slowLookup)`: a rejected claim fails the
 * fast check after 10 ms, which cancels the slow lookup 10 ms into its call.
 */
async function record(claims: readonly Claim[]): Promise<Runtime<SqliteEventStore>> {
  const clock = simulatedClock(1_700_000_000_000);
  const rt = createRuntime({ db: ':memory:', clock, seed: 7, metrics: false, redact: false });
  open.push(rt);
  const fastCheck = agent({
    name: 'fast_check',
    model: 'gpt-4',
    run: (claim: Claim) =>
      after(clock, 10, () => {
        if (claim.reject) throw new AgentError('missing_field', 'claim has no policy number');
        return true;
      }),
  });
  const slowLookup = agent({
    name: 'slow_lookup',
    model: 'gpt-4',
    run: (claim: Claim) => after(clock, claim.slowMs, () => 'found'),
  });
  const claimCheck = par(fastCheck, slowLookup);
  for (const claim of claims) {
    const done = rt.run(claimCheck, claim, { name: 'claim' }).then(
      () => 'completed',
      () => 'failed',
    );
    await clock.advanceAsync(claim.slowMs);
    await done;
  }
  return rt;
}

describe('latency percentiles and cancelled calls', () => {
  it("computes the slow sibling's P95 from its completed calls only, not from the calls a failing sibling cut short", async () => {
    // 20 completed lookups take 1_000 … 1_950 ms; 20 more are cancelled 10 ms in.
    const completed = Array.from({ length: 20 }, (_, i): Claim => ({
      reject: false,
      slowMs: 1_000 + i * 50,
    }));
    const cancelled = Array.from({ length: 20 }, (): Claim => ({ reject: true, slowMs: 1_000 }));
    const claims = completed.flatMap((c, i) => [c, cancelled[i] as Claim]);
    const rt = await record(claims);

    const events = rt.store.query({});
    const cancelledLookups = events.filter(
      (e) =>
        e.type === 'agent.failed' && e.payload.agent === 'slow_lookup' && e.payload.category === 'cancelled',
    );
    expect(cancelledLookups).toHaveLength(20);
    expect(cancelledLookups.every((e) => e.type === 'agent.failed' && e.payload.latencyMs === 10)).toBe(true);

    const latency = createLatencyProjection({ slaP95Ms: 1_800 });
    for (const e of events) latency.apply(e);
    const slow = latency.stats('agent', 'slow_lookup');
    // P95 of 1_000 … 1_950 ms is the 19th value, 1_900 ms; counting the 20 cancelled calls at 10 ms
    // would give 1_850 ms and a median of 10 ms.
    expect(slow).toMatchObject({ count: 20, p50Ms: 1_450, p95Ms: 1_900, maxMs: 1_950 });
    expect(slow?.meanMs).toBeCloseTo(1_475, 6);
    expect(slow?.window).toMatchObject({ samples: 20, p95Ms: 1_900 });
    expect(slow?.slaCompliance).toBeCloseTo(17 / 20, 10);

    // The fast check's own failures are real answers and still count.
    expect(latency.stats('agent', 'fast_check')).toMatchObject({ count: 40, maxMs: 10 });
    // Workflow latency keeps counting every finished workflow, failed ones included.
    const claim = latency.stats('workflow', 'claim');
    expect(claim?.count).toBe(40);
    expect(claim?.p50Ms).toBe(10);
  });
});
