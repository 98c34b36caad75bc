/**
 * Chaos on the model side: fault windows on the seeded simulated provider (5xx bursts, 429 storms,
 * hangs, latency spikes, malformed output), everything on virtual time. Under each fault the
 * breaker opens at its threshold; while open, calls are rejected without reaching the provider and
 * without any virtual time passing; half-open admits one probe; the breaker recovers after the
 * window; retries wait for retry-after; and afterwards nothing is left hanging.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import type { ErrorCategory } from '../../src/eventlog/events.js';
import { simulated, type FaultKind, type FaultWindow } from '../../src/providers/simulated.js';
import { createRuntime, type Runtime, type WorkflowResult } from '../../src/runtime.js';
import { isCircuitOpenError } from '../../src/supervisor/breaker.js';
import type { Agent } from '../../src/supervisor/agent.js';
import {
  PRICING,
  breakerMoves,
  categoryOf,
  drive,
  logHealth,
  missingTerminal,
  modelAgent,
  recording,
  type RecordingProvider,
} from './harness.js';
import { chaosSummary } from './summary.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';

const scenario = chaosSummary('provider-faults');

const THRESHOLD = 5;
const RESET_MS = 30_000;
const TIMEOUT_MS = 1_000;
/** Calls rejected while the breaker is open, per fault. */
const OPEN_REJECTIONS = 200;
/** The one real-clock check: this many rejections in well under a second. */
const TIMED_REJECTIONS = 1_000;
const DEFAULT_COUNT_ON: readonly ErrorCategory[] = ['timeout', 'rate_limited', 'provider_error'];

interface FaultCase {
  fault: string;
  kind: FaultKind;
  /** The category the failed calls carry (and the breaker counts). */
  counted: ErrorCategory;
  window?: Partial<FaultWindow>;
  countOn?: readonly ErrorCategory[];
}

const CASES: FaultCase[] = [
  { fault: '5xx burst', kind: 'provider_error', counted: 'provider_error' },
  {
    fault: '429 storm (retry-after 2 s)',
    kind: 'rate_limited',
    counted: 'rate_limited',
    window: { retryAfterMs: 2_000 },
  },
  { fault: 'hang (no answer)', kind: 'timeout', counted: 'timeout' },
  {
    fault: 'latency spike (+5 s, timeout 1 s)',
    kind: 'latency_spike',
    counted: 'timeout',
    window: { extraLatencyMs: 5_000 },
  },
  {
    fault: 'malformed output',
    kind: 'malformed_output',
    counted: 'malformed_output',
    countOn: [...DEFAULT_COUNT_ON, 'malformed_output'],
  },
];

const runtimes: Runtime[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close();
});

/** A runtime on `clock` with one shared breaker `llm`. */
function runtimeFor(
  clock: SimulatedClock,
  countOn: readonly ErrorCategory[] = DEFAULT_COUNT_ON,
): Runtime<SqliteEventStore> {
  const rt = createRuntime({
    db: ':memory:',
    clock,
    seed: 7,
    pricing: PRICING,
    cache: false,
    metrics: false,
    tracing: false,
    breakers: { llm: { failureThreshold: THRESHOLD, resetTimeoutMs: RESET_MS, countOn } },
  });
  runtimes.push(rt);
  return rt;
}

/** Starts runs with ids of our own, so the log can be checked for every one of them. */
function launcher(rt: Runtime, topology: Agent) {
  const ids: string[] = [];
  let unsettled = 0;
  const run = (tag: string): Promise<WorkflowResult<unknown>> => {
    const id = `${tag}-${ids.length}`;
    ids.push(id);
    unsettled++;
    const p = rt.run(topology, { n: ids.length }, { workflowId: id });
    p.then(
      () => unsettled--,
      () => unsettled--,
    );
    return p;
  };
  const many = (tag: string, n: number) => Array.from({ length: n }, () => run(tag));
  return { run, many, ids, unsettled: () => unsettled };
}

const rejectedWith = (results: PromiseSettledResult<unknown>[], test: (e: unknown) => boolean): number =>
  results.filter((r) => r.status === 'rejected' && test(r.reason)).length;

describe('chaos: provider faults against the breaker', () => {
  it.each(CASES)(
    '$fault: opens at the threshold, rejects without calling while open, probes once, recovers',
    async (c) => {
      const s = scenario(c.fault);
      const clock = simulatedClock();
      const t0 = clock.now();
      const window = { fromMs: t0 + 10_000, toMs: t0 + 60_000 };
      const provider: RecordingProvider = recording(
        simulated({
          seed: 11,
          latencyMs: { p50: 20, p95: 60 },
          faults: [{ ...window, kind: c.kind, ...c.window }],
        }),
        clock,
      );
      const rt = runtimeFor(clock, c.countOn);
      const extract = modelAgent('extract', provider, { timeoutMs: TIMEOUT_MS, breaker: { name: 'llm' } });
      const runs = launcher(rt, extract);

      // Healthy before the window.
      const healthy = await drive(clock, runs.many('healthy', 3));
      expect(healthy.every((r) => r.status === 'fulfilled')).toBe(true);
      const breaker = rt.breaker('llm');
      if (!breaker) throw new Error('the breaker "llm" should exist once an agent used it');
      await clock.advanceAsync(window.fromMs - clock.now());

      // The fault hits: one run at a time until the breaker opens.
      const callsBefore = provider.calls.length;
      const tripping: PromiseSettledResult<unknown>[] = [];
      for (let i = 0; i < 3 * THRESHOLD && breaker.state() !== 'open'; i++) {
        tripping.push(...(await drive(clock, [runs.run('trip')])));
      }
      const faultyCalls = provider.calls.length - callsBefore;
      s.inject(faultyCalls);
      s.hold('breaker opens after exactly failureThreshold failed calls', () => {
        expect(breaker.state()).toBe('open');
        expect(faultyCalls).toBe(THRESHOLD);
        expect(rejectedWith(tripping, (e) => categoryOf(e) === c.counted)).toBe(THRESHOLD);
      });

      // While open: rejected at the gate, no provider call, no virtual time, no timer left behind.
      const calls = provider.calls.length;
      const now = clock.now();
      const timers = clock.pendingTimers();
      const retryIn = breaker.retryInMs();
      const open = await Promise.allSettled(runs.many('open', OPEN_REJECTIONS));
      s.hold(
        'while open: every call rejected with CircuitOpenError, zero provider calls, zero virtual time',
        () => {
          expect(rejectedWith(open, isCircuitOpenError)).toBe(OPEN_REJECTIONS);
          expect(rejectedWith(open, (e) => (e as { retryInMs?: number }).retryInMs === retryIn)).toBe(
            OPEN_REJECTIONS,
          );
          expect(provider.calls.length).toBe(calls);
          expect(clock.now()).toBe(now);
          expect(clock.pendingTimers()).toBe(timers);
        },
      );
      if (c.kind === 'provider_error') {
        // The one real-clock check, coarse: CPU time of this process (robust on a shared machine),
        // for whole runs — run() to committed `workflow.failed` — not just the gate.
        // Best of three batches, so JIT warm-up and a neighbour's burst do not decide the verdict.
        const batches: { cpuMs: number; wallMs: number; rejected: number }[] = [];
        for (let b = 0; b < 3; b++) {
          const wall0 = performance.now();
          const cpu0 = process.cpuUsage();
          const timed = await Promise.allSettled(runs.many('open-timed', TIMED_REJECTIONS));
          const cpu = process.cpuUsage(cpu0);
          batches.push({
            cpuMs: (cpu.user + cpu.system) / 1_000,
            wallMs: performance.now() - wall0,
            rejected: rejectedWith(timed, isCircuitOpenError),
          });
        }
        const cpuMs = Math.min(...batches.map((b) => b.cpuMs));
        console.log(
          `${TIMED_REJECTIONS} breaker rejections (run() to committed workflow.failed), 3 batches: ` +
            batches.map((b) => `${b.cpuMs.toFixed(0)} ms CPU / ${b.wallMs.toFixed(0)} ms wall`).join(', '),
        );
        s.hold('1,000 rejections take < 1 s in total (< 1 ms each), with no provider call', () => {
          expect(batches.map((b) => b.rejected)).toEqual([
            TIMED_REJECTIONS,
            TIMED_REJECTIONS,
            TIMED_REJECTIONS,
          ]);
          expect(provider.calls.length).toBe(calls);
          expect(clock.now()).toBe(now);
          expect(cpuMs).toBeLessThan(1_000);
        });
      }

      // Half-open inside the window: one probe among ten callers; it fails and re-opens the breaker.
      const probeRound = async (tag: string) => {
        await clock.advanceAsync(breaker.retryInMs() ?? 0);
        const state = breaker.state();
        const before = provider.calls.length;
        const results = await drive(clock, runs.many(tag, 10));
        return { state, probes: provider.calls.length - before, results };
      };
      const first = await probeRound('probe-in-window');
      s.inject(first.probes);
      s.hold('half-open admits exactly one probe; a failed probe re-opens', () => {
        expect(first.state).toBe('halfOpen');
        expect(first.probes).toBe(1);
        expect(rejectedWith(first.results, isCircuitOpenError)).toBe(9);
        expect(rejectedWith(first.results, (e) => categoryOf(e) === c.counted)).toBe(1);
        expect(breaker.state()).toBe('open');
      });

      // Half-open after the window: the probe succeeds and the breaker closes.
      const second = await probeRound('probe-after-window');
      expect(clock.now()).toBeGreaterThanOrEqual(window.toMs);
      s.hold('after the window: one successful probe closes the breaker', () => {
        expect(second.state).toBe('halfOpen');
        expect(second.probes).toBe(1);
        expect(second.results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        expect(rejectedWith(second.results, isCircuitOpenError)).toBe(9);
        expect(breaker.state()).toBe('closed');
      });

      const recovered = await drive(clock, runs.many('recovered', 20));
      s.hold('recovered: every call succeeds again', () => {
        expect(recovered.filter((r) => r.status === 'fulfilled')).toHaveLength(20);
      });

      // Afterwards: nothing hangs, no timer is pending, every workflow is finished in the log.
      const health = logHealth(rt.store);
      const missing = missingTerminal(rt.store, runs.ids);
      s.lost(missing.length);
      s.hold('no hung promise, no pending timer, no open workflow, chain verifies', () => {
        expect(runs.unsettled()).toBe(0);
        expect(provider.inFlight()).toBe(0);
        expect(clock.pendingTimers()).toBe(0);
        expect(missing).toEqual([]);
        expect(health.open).toEqual([]);
        expect(health.doubleFinished).toEqual([]);
        expect(health.started).toBe(runs.ids.length);
        expect(health.verified).toBe(true);
      });
      s.hold('the log records closed>open>halfOpen>open>halfOpen>closed', () => {
        expect(breakerMoves(rt.store, 'llm')).toEqual([
          'closed>open',
          'open>halfOpen',
          'halfOpen>open',
          'open>halfOpen',
          'halfOpen>closed',
        ]);
      });
      await rt.close();
      s.hold('closing leaves no timer on the clock', () => expect(clock.pendingTimers()).toBe(0));
    },
  );

  it('429 storm: every retry waits for retry-after in virtual time, never less', async () => {
    const s = scenario('429 storm x50 concurrent, retries honour retry-after');
    const RETRY_AFTER_MS = 2_000;
    const clock = simulatedClock();
    const t0 = clock.now();
    const provider = recording(
      simulated({
        seed: 5,
        latencyMs: { p50: 20, p95: 60 },
        faults: [{ fromMs: t0, toMs: t0 + 5_000, kind: 'rate_limited', retryAfterMs: RETRY_AFTER_MS }],
      }),
      clock,
    );
    const rt = runtimeFor(clock);
    // Backoff (100, 200, 400, 800 ms) is shorter than retry-after: retry-after must win.
    const extract = modelAgent('extract', provider, {
      timeoutMs: TIMEOUT_MS,
      retry: { attempts: 5, baseDelayMs: 100 },
    });
    const runs = launcher(rt, extract);
    const results = await drive(clock, runs.many('storm', 50), { stepMs: 10 });

    const limited = provider.calls.filter((c) => c.outcome === 'rate_limited');
    s.inject(limited.length);
    const byWorkflow = new Map<string, typeof provider.calls>();
    for (const call of provider.calls) byWorkflow.set(call.key, [...(byWorkflow.get(call.key) ?? []), call]);
    const gaps: number[] = [];
    for (const calls of byWorkflow.values()) {
      for (let i = 1; i < calls.length; i++) {
        const prev = calls[i - 1];
        const next = calls[i];
        if (prev?.outcome === 'rate_limited' && next) gaps.push(next.startMs - (prev.endMs ?? Infinity));
      }
    }
    s.hold('no attempt starts before retry-after has passed since the 429', () => {
      expect(gaps.length).toBe(limited.length);
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(RETRY_AFTER_MS);
    });
    const retried = rt.store.query({ type: 'agent.retried' });
    s.hold('agent.retried events carry retry-after and a delay at least as long', () => {
      expect(retried).toHaveLength(limited.length);
      for (const e of retried) {
        if (e.type !== 'agent.retried') continue;
        expect(e.payload.retryAfterMs).toBe(RETRY_AFTER_MS);
        expect(e.payload.delayMs).toBeGreaterThanOrEqual(RETRY_AFTER_MS);
      }
    });
    s.hold('every workflow succeeds once the storm passes', () => {
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(50);
      expect(provider.calls.filter((c) => c.outcome === 'ok').every((c) => c.startMs >= t0 + 5_000)).toBe(
        true,
      );
    });
    const missing = missingTerminal(rt.store, runs.ids);
    s.lost(missing.length);
    s.hold('no hung promise, no pending timer, no open workflow', () => {
      expect(runs.unsettled()).toBe(0);
      expect(provider.inFlight()).toBe(0);
      expect(clock.pendingTimers()).toBe(0);
      expect(missing).toEqual([]);
      expect(logHealth(rt.store)).toMatchObject({ open: [], verified: true });
    });
  });
});
