import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, createMachine, type InspectionEvent } from 'xstate';
import { circuitBreakerMachine, type BreakerTransition } from '../../machines/circuitBreaker.machine.js';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { KeelError, isConfigError } from '../../src/core/errors.js';
import type { ErrorCategory } from '../../src/eventlog/events.js';
import { ProviderError, isProviderError } from '../../src/providers/types.js';
import type { BreakerConfig } from '../../src/supervisor/agent.js';
import {
  CircuitOpenError,
  breakerRestoreFrom,
  createBreaker,
  isCircuitOpenError,
  resolveBreakerConfig,
  type Breaker,
  type BreakerRestoreInput,
  type BreakerTransitionInfo,
} from '../../src/supervisor/breaker.js';

/** How the agent runtime wraps a model call in a breaker. */
async function callThrough<T>(breaker: Breaker, fn: () => Promise<T>): Promise<T> {
  const permit = breaker.acquire();
  if (permit === undefined) throw new CircuitOpenError(breaker.name, breaker.retryInMs());
  try {
    const value = await fn();
    permit.success();
    return value;
  } catch (e) {
    permit.failure(isProviderError(e) ? e.category : 'unknown');
    throw e;
  }
}

function setup(config: Partial<BreakerConfig> = {}, restore?: BreakerRestoreInput, clock = simulatedClock()) {
  const log: BreakerTransitionInfo[] = [];
  const breaker = createBreaker(
    { name: 'openai', failureThreshold: 5, resetTimeoutMs: 60_000, ...config },
    { clock, restore, onTransition: (t) => log.push(t) },
  );
  const fail = (n = 1, category: ErrorCategory = 'timeout') => {
    for (let i = 0; i < n; i++) breaker.acquire()?.failure(category);
  };
  const succeed = (n = 1) => {
    for (let i = 0; i < n; i++) breaker.acquire()?.success();
  };
  return { clock, breaker, log, fail, succeed };
}

const moves = (log: readonly BreakerTransitionInfo[]) => log.map((t) => `${t.from}>${t.to}:${t.reason}`);

/** Events delivered to the breaker actor (each one is a `send()` on the hot path). */
function countEvents(breaker: Breaker): () => number {
  let n = 0;
  breaker.actor.system.inspect((e: InspectionEvent) => {
    if (e.type === '@xstate.event' && e.actorRef === breaker.actor && !e.event.type.startsWith('xstate.'))
      n++;
  });
  return () => n;
}

describe('breaker: consecutive failures (failure_threshold=5, timeout=60s)', () => {
  it('opens after 5 consecutive failures', () => {
    const { breaker, fail } = setup();
    fail(4);
    expect(breaker.state()).toBe('closed');
    fail();
    expect(breaker.state()).toBe('open');
  });

  it('rejects calls without running them while open', async () => {
    const { breaker, fail, clock } = setup();
    fail(5);
    clock.advance(15_000);
    let ran = 0;
    const error: unknown = await callThrough(breaker, () => Promise.resolve(++ran)).catch((e: unknown) => e);
    expect(ran).toBe(0);
    expect(isCircuitOpenError(error)).toBe(true);
    expect(error).toMatchObject({ breaker: 'openai', retryInMs: 45_000, code: 'CIRCUIT_OPEN' });
    expect(breaker.acquire()).toBeUndefined();
  });

  it('goes half-open exactly resetTimeoutMs after opening, not 1 ms earlier', () => {
    const { breaker, fail, clock } = setup();
    fail(5);
    clock.advance(59_999);
    expect(breaker.state()).toBe('open');
    expect(breaker.acquire()).toBeUndefined();
    clock.advance(1);
    expect(breaker.state()).toBe('halfOpen');
    expect(breaker.acquire()?.probe).toBe(true);
  });

  it('closes on one successful probe', async () => {
    const { breaker, fail, clock } = setup();
    fail(5);
    clock.advance(60_000);
    await expect(callThrough(breaker, () => Promise.resolve('ok'))).resolves.toBe('ok');
    expect(breaker.state()).toBe('closed');
    expect(breaker.acquire()?.probe).toBe(false);
  });

  it('re-opens when the probe fails, for another full reset timeout', async () => {
    const { breaker, fail, clock } = setup();
    fail(5);
    clock.advance(60_000);
    const boom = () => Promise.reject(new ProviderError('provider_error', 'HTTP 503'));
    await expect(callThrough(breaker, boom)).rejects.toThrow('HTTP 503');
    expect(breaker.state()).toBe('open');
    expect(breaker.retryInMs()).toBe(60_000);
    clock.advance(59_999);
    expect(breaker.state()).toBe('open');
    clock.advance(1);
    expect(breaker.state()).toBe('halfOpen');
  });

  it('backs off the reset timeout after each failed probe and caps it', () => {
    const { breaker, fail, clock } = setup({
      resetTimeoutMs: 1_000,
      resetBackoffFactor: 3,
      maxResetTimeoutMs: 10_000,
    });
    fail(5);
    const openFor: Array<number | undefined> = [breaker.retryInMs()];
    for (let i = 0; i < 4; i++) {
      clock.advance(breaker.retryInMs() ?? 0);
      expect(breaker.state()).toBe('halfOpen');
      breaker.acquire()?.failure('timeout');
      openFor.push(breaker.retryInMs());
    }
    expect(openFor).toEqual([1_000, 3_000, 9_000, 10_000, 10_000]);
  });

  it('resets the count on a success', () => {
    const { breaker, fail, succeed } = setup();
    fail(4);
    succeed();
    fail(4);
    expect(breaker.state()).toBe('closed');
    fail();
    expect(breaker.state()).toBe('open');
  });

  it('does not count a validation_error: it neither opens the breaker nor resets the count', () => {
    const { breaker, fail } = setup();
    fail(4);
    fail(20, 'validation_error');
    expect(breaker.state()).toBe('closed');
    fail(1, 'timeout');
    expect(breaker.state()).toBe('open');
  });

  it('counts only the categories listed in countOn', () => {
    const { breaker, fail } = setup({ failureThreshold: 2, countOn: ['rate_limited'] });
    fail(5, 'timeout');
    expect(breaker.state()).toBe('closed');
    fail(2, 'rate_limited');
    expect(breaker.state()).toBe('open');
  });

  it('settles a permit once: a second outcome is ignored', () => {
    const { breaker } = setup({ failureThreshold: 2 });
    const permit = breaker.acquire();
    permit?.failure('timeout');
    permit?.failure('timeout');
    permit?.success();
    expect(breaker.state()).toBe('closed');
    breaker.acquire()?.failure('timeout');
    expect(breaker.state()).toBe('open');
  });
});

describe('breaker: error-rate strategy', () => {
  const rate = { errorThresholdPercentage: 50, volumeThreshold: 10, rollingWindowMs: 10_000 };

  it('does not trip below volumeThreshold, even at 100% failures', () => {
    const { breaker, fail } = setup({ ...rate, failureThreshold: undefined });
    fail(9);
    expect(breaker.state()).toBe('closed');
    fail();
    expect(breaker.state()).toBe('open');
  });

  it('trips only above errorThresholdPercentage within the window', () => {
    const { breaker, fail, succeed, clock, log } = setup({ ...rate, failureThreshold: undefined });
    for (let i = 0; i < 5; i++) {
      succeed();
      fail();
      clock.advance(500);
    }
    expect(breaker.state()).toBe('closed'); // 5 of 10 = 50%: not above
    fail();
    expect(breaker.state()).toBe('open'); // 6 of 11
    expect(log.at(-1)?.reason).toBe('error_rate');
  });

  it('forgets calls older than rollingWindowMs', () => {
    const run = (gapMs: number) => {
      const { breaker, fail, succeed, clock } = setup({
        ...rate,
        volumeThreshold: 4,
        failureThreshold: undefined,
      });
      fail(3);
      clock.advance(gapMs);
      succeed();
      fail();
      succeed(2);
      return breaker.state();
    };
    expect(run(5_000)).toBe('open'); // 4 failures of 5 calls: the old ones still count
    expect(run(10_000)).toBe('closed'); // 1 failure of 4 calls: the old ones are gone
  });

  it('keeps the consecutive strategy too when both are configured', () => {
    const { breaker, fail } = setup({ ...rate, failureThreshold: 3 });
    fail(3);
    expect(breaker.state()).toBe('open');
  });
});

describe('breaker: half-open probes', () => {
  it('lets exactly one of 50 concurrent calls through as the probe (opossum #819)', async () => {
    const { breaker, fail, clock } = setup();
    fail(5);
    clock.advance(60_000);
    let ran = 0;
    let finishProbe: (v: string) => void = () => undefined;
    const probe = () =>
      new Promise<string>((resolve) => {
        ran++;
        finishProbe = resolve;
      });
    const calls = Array.from({ length: 50 }, () => callThrough(breaker, probe).catch((e: unknown) => e));
    expect(ran).toBe(1);
    finishProbe('ok');
    const results = await Promise.all(calls);
    expect(results.filter((r) => r === 'ok')).toHaveLength(1);
    expect(results.filter(isCircuitOpenError)).toHaveLength(49);
    expect(breaker.state()).toBe('closed');
  });

  it('frees the slot of a released probe', () => {
    const { breaker, fail, clock } = setup();
    fail(5);
    clock.advance(60_000);
    const first = breaker.acquire();
    expect(first?.probe).toBe(true);
    expect(breaker.acquire()).toBeUndefined();
    first?.release();
    expect(breaker.state()).toBe('halfOpen');
    const second = breaker.acquire();
    expect(second?.probe).toBe(true);
    second?.success();
    expect(breaker.state()).toBe('closed');
  });

  it('admits up to halfOpenMaxProbes concurrent probes', () => {
    const { breaker, fail, clock } = setup({ halfOpenMaxProbes: 3 });
    fail(5);
    clock.advance(60_000);
    const permits = Array.from({ length: 10 }, () => breaker.acquire());
    expect(permits.filter((p) => p !== undefined)).toHaveLength(3);
  });
});

describe('breaker: transitions and the log', () => {
  it('reports every transition once, with from, to, reason, failures and time', () => {
    const { breaker, fail, clock, log } = setup();
    fail(5);
    clock.advance(60_000);
    breaker.acquire()?.failure('timeout');
    clock.advance(60_000);
    breaker.acquire()?.success();
    expect(moves(log)).toEqual([
      'closed>open:consecutive_failures',
      'open>halfOpen:reset_timeout',
      'halfOpen>open:probe_failed',
      'open>halfOpen:reset_timeout',
      'halfOpen>closed:probe_succeeded',
    ]);
    const t0 = Date.UTC(2026, 0, 1);
    expect(log[0]).toEqual({
      breaker: 'openai',
      from: 'closed',
      to: 'open',
      reason: 'consecutive_failures',
      failures: 5,
      resetTimeoutMs: 60_000,
      atMs: t0,
    });
    expect(log.map((t) => t.atMs - t0)).toEqual([0, 60_000, 60_000, 120_000, 120_000]);
  });

  it('round-trips through the log: a restored breaker stays open for the remaining time', () => {
    const clock = simulatedClock();
    const first = setup({ resetTimeoutMs: 1_000, resetBackoffFactor: 2 }, undefined, clock);
    first.fail(5);
    clock.advance(1_000);
    first.breaker.acquire()?.failure('timeout'); // open again, now for 2 000 ms
    clock.advance(500);
    first.breaker.stop();
    const last = first.log.at(-1);
    if (last === undefined) throw new Error('nothing logged');
    const recorded = { ...last, ts: last.atMs }; // what the event log stores: payload + ts

    const restored = setup(
      { resetTimeoutMs: 1_000, resetBackoffFactor: 2 },
      breakerRestoreFrom(recorded),
      clock,
    );
    expect(restored.breaker.state()).toBe('open');
    expect(restored.breaker.acquire()).toBeUndefined();
    expect(restored.breaker.retryInMs()).toBe(1_500);
    expect(restored.log).toEqual([]);
    clock.advance(1_499);
    expect(restored.breaker.state()).toBe('open');
    clock.advance(1);
    expect(restored.breaker.state()).toBe('halfOpen');
    expect(moves(restored.log)).toEqual(['open>halfOpen:reset_timeout']);
    restored.breaker.acquire()?.failure('timeout');
    expect(restored.breaker.retryInMs()).toBe(4_000); // the backoff carried over
  });

  it('restores straight to half-open when the open time ran out while the runtime was down', () => {
    const clock = simulatedClock();
    const restore = { state: 'open' as const, sinceMs: clock.now() - 90_000, failures: 5 };
    const { breaker, log } = setup({}, restore, clock);
    expect(breaker.state()).toBe('halfOpen');
    expect(moves(log)).toEqual(['open>halfOpen:reset_timeout']);
    expect(breaker.acquire()?.probe).toBe(true);
  });
});

describe('breaker: hot path', () => {
  it('sends no event for calls that succeed while closed with nothing to forget', () => {
    const { breaker, fail, succeed } = setup();
    const events = countEvents(breaker);
    succeed(1_000);
    expect(events()).toBe(0);
    fail();
    expect(events()).toBe(1);
    succeed(); // forgets the failure: one event
    succeed(100);
    fail(10, 'validation_error');
    expect(events()).toBe(2);
    expect(breaker.state()).toBe('closed');
  });

  it('sends one event per call under the rate strategy (each call changes the window)', () => {
    const { breaker, succeed } = setup({ errorThresholdPercentage: 50 });
    const events = countEvents(breaker);
    succeed(10);
    expect(events()).toBe(10);
  });

  it('behaves exactly like the machine fed every outcome unfiltered', () => {
    type Op = { kind: 'success' | 'release' | 'advance' } | { kind: 'failure'; category: ErrorCategory };
    const op = fc.oneof(
      fc.constant<Op>({ kind: 'success' }),
      fc.constant<Op>({ kind: 'release' }),
      fc.constant<Op>({ kind: 'advance' }),
      fc
        .constantFrom<ErrorCategory>('timeout', 'validation_error', 'rate_limited')
        .map((category): Op => ({ kind: 'failure', category })),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), fc.boolean(), (ops, rateOn) => {
        const config: BreakerConfig = rateOn
          ? {
              name: 'p',
              failureThreshold: 3,
              errorThresholdPercentage: 40,
              volumeThreshold: 4,
              resetTimeoutMs: 100,
            }
          : { name: 'p', failureThreshold: 3, resetTimeoutMs: 100, resetBackoffFactor: 2 };
        const clock: SimulatedClock = simulatedClock(0);
        const handleLog: string[] = [];
        const breaker = createBreaker(config, {
          clock,
          onTransition: (t) => handleLog.push(`${t.from}>${t.to}:${t.reason}`),
        });
        // Reference: the bare machine, sent every outcome with no filtering.
        const refLog: string[] = [];
        const ref = createActor(circuitBreakerMachine, {
          input: { config: resolveBreakerConfig(config) },
          clock,
        });
        ref.on('transitioned', (t: BreakerTransition) => refLog.push(`${t.from}>${t.to}:${t.reason}`));
        ref.start();
        for (const o of ops) {
          if (o.kind === 'advance') {
            clock.advance(60);
            continue;
          }
          const permit = breaker.acquire();
          const refState = ref.getSnapshot().value;
          let probe: number | undefined;
          if (refState === 'halfOpen') {
            ref.send({ type: 'PROBE.ACQUIRE' });
            probe = ref.getSnapshot().context.probeRound;
          }
          if (permit === undefined) continue;
          const atMs = clock.now();
          if (o.kind === 'success') {
            permit.success();
            ref.send({ type: 'SUCCESS', atMs, probe });
          } else if (o.kind === 'failure') {
            permit.failure(o.category);
            ref.send({ type: 'FAILURE', category: o.category, atMs, probe });
          } else {
            permit.release();
            if (probe !== undefined) ref.send({ type: 'PROBE.RELEASE', probe });
          }
          expect(breaker.state()).toBe(ref.getSnapshot().value);
        }
        expect(handleLog).toEqual(refLog);
        breaker.stop();
        ref.stop();
      }),
      { numRuns: 200 },
    );
  });
});

describe('breaker: lifecycle and configuration', () => {
  it('joins the runtime’s actor system as breaker:<name> and runs on the root clock', () => {
    const clock = simulatedClock();
    const root = createActor(createMachine({}), { clock }).start();
    const breaker = createBreaker(
      { name: 'openai', failureThreshold: 1, resetTimeoutMs: 1_000 },
      { clock, parent: root },
    );
    expect(root.system.get('breaker:openai')).toBe(breaker.actor);
    breaker.acquire()?.failure('timeout');
    clock.advance(1_000);
    expect(breaker.state()).toBe('halfOpen');
    breaker.acquire()?.failure('timeout');
    expect(clock.pendingTimers()).toBe(1);
    breaker.stop();
    expect(clock.pendingTimers()).toBe(0);
    expect(root.system.get('breaker:openai')).toBeUndefined();
  });

  it('refuses a parent running on another clock', () => {
    const root = createActor(createMachine({}), { clock: simulatedClock() }).start();
    const create = () => createBreaker({ name: 'openai' }, { clock: simulatedClock(), parent: root });
    expect(create).toThrow(/different clock/);
  });

  it('stops: no timer left behind, and every later call is rejected', () => {
    const { breaker, fail, clock } = setup();
    fail(5);
    expect(clock.pendingTimers()).toBe(1);
    breaker.stop();
    expect(clock.pendingTimers()).toBe(0);
    expect(breaker.acquire()).toBeUndefined();
  });

  it.each<[Partial<BreakerConfig>, string]>([
    [{ failureThreshold: 0 }, 'breaker "openai".failureThreshold'],
    [{ errorThresholdPercentage: 100 }, 'breaker "openai".errorThresholdPercentage'],
    [{ resetTimeoutMs: -1 }, 'breaker "openai".resetTimeoutMs'],
    [{ resetBackoffFactor: 0.5 }, 'breaker "openai".resetBackoffFactor'],
    [{ resetTimeoutMs: 5_000, maxResetTimeoutMs: 1_000 }, 'breaker "openai".maxResetTimeoutMs'],
    [{ halfOpenMaxProbes: 1.5 }, 'breaker "openai".halfOpenMaxProbes'],
    [{ countOn: ['timeout', 'timeot' as ErrorCategory] }, 'breaker "openai".countOn'],
  ])('rejects %o with a ConfigError naming the field', (bad, field) => {
    let caught: unknown;
    try {
      createBreaker({ name: 'openai', ...bad }, { clock: simulatedClock() });
    } catch (e) {
      caught = e;
    }
    expect(isConfigError(caught)).toBe(true);
    expect(caught).toMatchObject({ field });
  });

  it('applies the documented defaults', () => {
    expect(resolveBreakerConfig({ name: 'openai' })).toEqual({
      name: 'openai',
      failureThreshold: 5,
      errorThresholdPercentage: undefined,
      volumeThreshold: 10,
      rollingWindowMs: 10_000,
      resetTimeoutMs: 60_000,
      resetBackoffFactor: 1,
      maxResetTimeoutMs: 600_000,
      halfOpenMaxProbes: 1,
      countOn: ['timeout', 'rate_limited', 'provider_error', 'malformed_output', 'unknown'],
    });
  });

  it('tells a CircuitOpenError apart from other errors', () => {
    expect(isCircuitOpenError(new CircuitOpenError('openai', 10))).toBe(true);
    expect(isCircuitOpenError(new KeelError('OTHER', 'x'))).toBe(false);
    expect(isCircuitOpenError(new Error('CIRCUIT_OPEN'))).toBe(false);
    expect(new CircuitOpenError('openai').message).toMatch(/probe is already running/);
  });
});
