import { describe, expect, it } from 'vitest';
import { SimulatedClock, createActor, initialTransition, transition } from 'xstate';
import {
  circuitBreakerMachine,
  type BreakerRestore,
  type BreakerTransition,
  type CircuitBreakerEvent,
} from '../../machines/circuitBreaker.machine.js';
import { simulatedClock, type SimulatedClock as KeelSimulatedClock } from '../../src/core/clock.js';
import type { BreakerConfig } from '../../src/supervisor/agent.js';
import { resolveBreakerConfig } from '../../src/supervisor/breaker.js';

function start(config: Partial<BreakerConfig> = {}, restore?: BreakerRestore) {
  const clock: KeelSimulatedClock = simulatedClock(0);
  const resolved = resolveBreakerConfig({ name: 'openai', resetTimeoutMs: 1_000, ...config });
  const actor = createActor(circuitBreakerMachine, {
    input: restore === undefined ? { config: resolved } : { config: resolved, restore },
    clock,
  });
  const emitted: BreakerTransition[] = [];
  actor.on('transitioned', (t) => emitted.push(t));
  actor.start();
  const send = (event: CircuitBreakerEvent) => actor.send(event);
  const fail = (n = 1, probe?: number) => {
    for (let i = 0; i < n; i++) send({ type: 'FAILURE', category: 'timeout', atMs: clock.now(), probe });
  };
  const succeed = (probe?: number) => send({ type: 'SUCCESS', atMs: clock.now(), probe });
  const snap = () => actor.getSnapshot();
  return { clock, actor, emitted, send, fail, succeed, snap };
}

const moves = (emitted: readonly BreakerTransition[]) => emitted.map((t) => `${t.from}>${t.to}:${t.reason}`);

describe('circuitBreaker machine', () => {
  it('emits every state change exactly once with from, to, reason and failures', () => {
    const { clock, emitted, send, fail, succeed, snap } = start({ failureThreshold: 3 });
    fail(3);
    clock.advance(1_000);
    send({ type: 'PROBE.ACQUIRE' });
    succeed(snap().context.probeRound);
    send({ type: 'TRIP' });
    send({ type: 'RESET' });
    send({ type: 'TRIP' });
    clock.advance(1_000);
    send({ type: 'PROBE.ACQUIRE' });
    fail(1, snap().context.probeRound);
    send({ type: 'RESET' });
    send({ type: 'RESET' }); // already closed: no change, nothing emitted

    expect(moves(emitted)).toEqual([
      'closed>open:consecutive_failures',
      'open>halfOpen:reset_timeout',
      'halfOpen>closed:probe_succeeded',
      'closed>open:forced_open',
      'open>closed:forced_closed',
      'closed>open:forced_open',
      'open>halfOpen:reset_timeout',
      'halfOpen>open:probe_failed',
      'open>closed:forced_closed',
    ]);
    expect(emitted[0]).toEqual({
      type: 'transitioned',
      from: 'closed',
      to: 'open',
      reason: 'consecutive_failures',
      failures: 3,
      resetTimeoutMs: 1_000,
    });
    expect(emitted[2]?.failures).toBe(0);
    expect(snap().value).toBe('closed');
  });

  it('runs the reset timeout on the actor clock, including XState’s own SimulatedClock', () => {
    const clock = new SimulatedClock();
    const actor = createActor(circuitBreakerMachine, {
      input: { config: resolveBreakerConfig({ name: 'openai', failureThreshold: 1, resetTimeoutMs: 500 }) },
      clock,
    }).start();
    actor.send({ type: 'FAILURE', category: 'provider_error', atMs: 0 });
    clock.increment(499);
    expect(actor.getSnapshot().value).toBe('open');
    clock.increment(1);
    expect(actor.getSnapshot().value).toBe('halfOpen');
  });

  it('backs off the reset timeout after each failed probe, up to the cap, and resets it on close', () => {
    const { clock, emitted, send, fail, succeed, snap } = start({
      failureThreshold: 1,
      resetBackoffFactor: 2,
      maxResetTimeoutMs: 5_000,
    });
    fail();
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      const before = clock.now();
      while (snap().value === 'open') clock.advance(100);
      waits.push(clock.now() - before);
      send({ type: 'PROBE.ACQUIRE' });
      fail(1, snap().context.probeRound);
    }
    expect(waits).toEqual([1_000, 2_000, 4_000, 5_000]);
    expect(emitted.filter((t) => t.to === 'open').map((t) => t.resetTimeoutMs)).toEqual([
      1_000, 2_000, 4_000, 5_000, 5_000,
    ]);
    clock.advance(5_000);
    send({ type: 'PROBE.ACQUIRE' });
    succeed(snap().context.probeRound);
    expect(snap().value).toBe('closed');
    expect(snap().context.currentResetTimeoutMs).toBe(1_000);
  });

  it('admits at most halfOpenMaxProbes probes and ignores outcomes of probes from an earlier round', () => {
    const { clock, send, fail, succeed, snap } = start({ failureThreshold: 1, halfOpenMaxProbes: 2 });
    fail();
    clock.advance(1_000);
    const round1 = snap().context.probeRound;
    for (let i = 0; i < 5; i++) send({ type: 'PROBE.ACQUIRE' });
    expect(snap().context.probesInFlight).toBe(2);

    fail(1, round1); // one probe fails: open again
    clock.advance(1_000);
    expect(snap().value).toBe('halfOpen');
    succeed(round1); // the other probe of round 1 comes back late
    send({ type: 'PROBE.RELEASE', probe: round1 });
    expect(snap().value).toBe('halfOpen');
    expect(snap().context.probesInFlight).toBe(0);
  });

  it('ignores ordinary (non-probe) outcomes while open or half-open', () => {
    const { clock, fail, succeed, snap } = start({ failureThreshold: 1 });
    fail();
    succeed();
    expect(snap().value).toBe('open');
    clock.advance(1_000);
    succeed();
    fail(3);
    expect(snap().value).toBe('halfOpen');
  });

  it('treats a probe that failed with an uncounted category as released', () => {
    const { clock, send, snap } = start({ failureThreshold: 1 });
    send({ type: 'FAILURE', category: 'timeout', atMs: 0 });
    clock.advance(1_000);
    send({ type: 'PROBE.ACQUIRE' });
    const probe = snap().context.probeRound;
    send({ type: 'FAILURE', category: 'validation_error', atMs: clock.now(), probe });
    expect(snap().value).toBe('halfOpen');
    expect(snap().context.probesInFlight).toBe(0);
  });

  describe('restore input', () => {
    it('resumes an open breaker for the rest of its reset timeout, silently', () => {
      const { clock, emitted, snap } = start(
        { resetTimeoutMs: 60_000 },
        { state: 'open', sinceMs: -45_000, failures: 5, nowMs: 0 },
      );
      expect(snap().value).toBe('open');
      expect(snap().context.failures).toBe(5);
      expect(emitted).toEqual([]);
      clock.advance(14_999);
      expect(snap().value).toBe('open');
      clock.advance(1);
      expect(moves(emitted)).toEqual(['open>halfOpen:reset_timeout']);
    });

    it('goes straight to half-open, and says so, when the open time already ran out', () => {
      const { emitted, snap } = start(
        { resetTimeoutMs: 60_000 },
        { state: 'open', sinceMs: 0, failures: 5, nowMs: 60_000 },
      );
      expect(snap().value).toBe('halfOpen');
      expect(moves(emitted)).toEqual(['open>halfOpen:reset_timeout']);
    });

    it('keeps a backed-off reset timeout (capped by the config)', () => {
      const { clock, snap } = start(
        { resetTimeoutMs: 1_000, resetBackoffFactor: 2, maxResetTimeoutMs: 8_000 },
        { state: 'open', sinceMs: 0, failures: 7, currentResetTimeoutMs: 4_000, nowMs: 1_000 },
      );
      clock.advance(2_999);
      expect(snap().value).toBe('open');
      clock.advance(1);
      expect(snap().value).toBe('halfOpen');
      expect(snap().context.currentResetTimeoutMs).toBe(4_000);
    });

    it('resumes a closed breaker with its consecutive failures', () => {
      const { fail, snap } = start(
        { failureThreshold: 5 },
        { state: 'closed', sinceMs: 0, failures: 4, nowMs: 0 },
      );
      expect(snap().value).toBe('closed');
      fail();
      expect(snap().value).toBe('open');
    });
  });

  it('is a pure fold: transition() computes the next state without running anything', () => {
    const config = resolveBreakerConfig({ name: 'openai', failureThreshold: 2 });
    let [snapshot] = initialTransition(circuitBreakerMachine, { config });
    const failure: CircuitBreakerEvent = { type: 'FAILURE', category: 'timeout', atMs: 0 };
    [snapshot] = transition(circuitBreakerMachine, snapshot, failure);
    const [opened, actions] = transition(circuitBreakerMachine, snapshot, failure);
    expect(snapshot.value).toBe('closed');
    expect(opened.value).toBe('open');
    expect(opened.context.failures).toBe(2);
    expect(actions.map((a) => a.type)).toContain('xstate.emit');
  });

  it('rejects misspelled events at compile time', () => {
    const { actor } = start();
    // @ts-expect-error 'FAILUER' is not a breaker event
    actor.send({ type: 'FAILUER', category: 'timeout', atMs: 0 });
    // @ts-expect-error 'timeot' is not an ErrorCategory
    actor.send({ type: 'FAILURE', category: 'timeot', atMs: 0 });
    // @ts-expect-error a FAILURE needs its category
    actor.send({ type: 'FAILURE', atMs: 0 });
    expect(actor.getSnapshot().context.failures).toBe(0);
  });
});
