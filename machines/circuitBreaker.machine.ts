/**
 * The circuit-breaker machine: one long-lived actor per shared breaker (`openai`, `anthropic`, ...).
 *
 * Pure: no I/O and no timers of its own. Time enters only as the `atMs` of outcome events (for the
 * rolling window) and through XState's `after`, which runs on the actor's clock — so a test drives
 * the open → halfOpen delay with a simulated clock. Every state change is emitted as a
 * {@link BreakerTransition}, which the runtime appends to the log as `breaker.transitioned`.
 *
 * ```
 *            counted failures ≥ threshold,        reset timeout elapsed
 *            or error rate > percentage           (after, on the clock)
 *   closed ───────────────────────────► open ─────────────────────► halfOpen
 *     ▲                                  ▲   probe failed (backoff)     │
 *     │                                  └──────────────────────────────┤
 *     └──────────────────────────────── probe succeeded ────────────────┘
 * ```
 */
import { assign, emit, setup } from 'xstate';
import type { BreakerState, ErrorCategory } from '../src/eventlog/events.js';

/** Buckets the rolling window is cut into (as opossum's `rollingCountBuckets`). */
const WINDOW_BUCKETS = 10;

/**
 * A breaker policy with every default applied and every value validated (see `resolveBreakerConfig`
 * in `src/supervisor/breaker.ts`). The machine's input; it never validates it again.
 */
export interface ResolvedBreakerConfig {
  /** Shared breaker name, e.g. `openai`. */
  readonly name: string;
  /** Consecutive counted failures that open the breaker; `undefined` turns the strategy off. */
  readonly failureThreshold: number | undefined;
  /**
   * Failure percentage of the calls in the rolling window above which the breaker opens (strictly
   * above, as opossum and cockatiel); `undefined` turns the rate strategy off.
   */
  readonly errorThresholdPercentage: number | undefined;
  /** Calls in the window needed before the rate strategy may trip. */
  readonly volumeThreshold: number;
  /** Length of the rolling window in ms (10 buckets of `rollingWindowMs / 10`). */
  readonly rollingWindowMs: number;
  /** Time open before the first half-open probe, in ms. */
  readonly resetTimeoutMs: number;
  /** Factor applied to the reset timeout after each failed probe (1 = fixed). */
  readonly resetBackoffFactor: number;
  /** Cap for the backing-off reset timeout in ms. */
  readonly maxResetTimeoutMs: number;
  /** Concurrent probes admitted while half-open. */
  readonly halfOpenMaxProbes: number;
  /** Failure categories that count against the breaker. */
  readonly countOn: readonly ErrorCategory[];
}

/**
 * Where a breaker stood when its runtime stopped, as read back from the event log, so a reopened
 * runtime resumes it: an open breaker stays open for the rest of its reset timeout.
 */
export interface BreakerRestore {
  /** The state the log last recorded. */
  state: BreakerState;
  /** When that state was entered, ms since epoch (the `ts` of the last `breaker.transitioned`). */
  sinceMs: number;
  /** Consecutive failures recorded with that transition. */
  failures: number;
  /** The reset timeout in force (after backoff), in ms (default: the configured `resetTimeoutMs`). */
  currentResetTimeoutMs?: number;
  /** The clock's time now, ms since epoch: `resetTimeout − (nowMs − sinceMs)` is the open time left. */
  nowMs: number;
}

/** The machine's input. */
export interface CircuitBreakerInput {
  config: ResolvedBreakerConfig;
  /** Resume a breaker recorded in the log instead of starting closed. */
  restore?: BreakerRestore;
}

/** One bucket of the rolling window: calls and failures whose `atMs` fell in it. */
export interface WindowBucket {
  /** `floor(atMs / bucketMs)`: buckets are aligned to the epoch, not to the first call. */
  readonly index: number;
  readonly calls: number;
  readonly failures: number;
}

/** Why a breaker changed state (stable codes, logged as `breaker.transitioned.reason`). */
export type BreakerTransitionReason =
  | 'consecutive_failures'
  | 'error_rate'
  | 'reset_timeout'
  | 'probe_succeeded'
  | 'probe_failed'
  | 'forced_open'
  | 'forced_closed';

/** Emitted on every state change (`actor.on('transitioned', ...)`). */
export interface BreakerTransition {
  type: 'transitioned';
  from: BreakerState;
  to: BreakerState;
  reason: BreakerTransitionReason;
  /** Consecutive counted failures after the change (0 once closed). */
  failures: number;
  /** On transitions to `open`: the reset timeout now in force, ms (what the log needs to resume it). */
  resetTimeoutMs?: number;
}

/** The machine's context. Plain data: it serialises with the snapshot. */
export interface CircuitBreakerContext {
  readonly config: ResolvedBreakerConfig;
  /** Consecutive counted failures (reset by a success). */
  readonly failures: number;
  /** Rolling-window buckets, oldest first (empty unless the rate strategy is on). */
  readonly window: readonly WindowBucket[];
  /** Probes admitted and not yet settled in the current half-open round. */
  readonly probesInFlight: number;
  /** Increments on each entry to half-open; outcomes of probes from another round are ignored. */
  readonly probeRound: number;
  /** The reset timeout in force, ms (grows with `resetBackoffFactor` after failed probes). */
  readonly currentResetTimeoutMs: number;
  /** How long the current open period lasts, ms (less than the reset timeout after a restore). */
  readonly openForMs: number;
  /** The state the actor starts in (from `restore`); `openElapsed` goes straight to half-open. */
  readonly resumeTo: BreakerState | 'openElapsed';
}

/**
 * Events the breaker accepts. `atMs` is the clock time of the outcome (the rolling window buckets by
 * it). `probe` is the `probeRound` a half-open permit was admitted in; outcomes without it are
 * ordinary calls, which only count while closed.
 */
export type CircuitBreakerEvent =
  | { type: 'SUCCESS'; atMs: number; probe?: number }
  | { type: 'FAILURE'; category: ErrorCategory; atMs: number; probe?: number }
  | { type: 'PROBE.ACQUIRE' }
  | { type: 'PROBE.RELEASE'; probe: number }
  | { type: 'RESET' }
  | { type: 'TRIP' };

interface NotifyParams {
  from: BreakerState;
  to: BreakerState;
  reason: BreakerTransitionReason;
}

function initialContext({ config, restore }: CircuitBreakerInput): CircuitBreakerContext {
  const fresh: CircuitBreakerContext = {
    config,
    failures: 0,
    window: [],
    probesInFlight: 0,
    probeRound: 0,
    currentResetTimeoutMs: config.resetTimeoutMs,
    openForMs: config.resetTimeoutMs,
    resumeTo: 'closed',
  };
  if (restore === undefined) return fresh;
  const current = Math.min(
    Math.max(restore.currentResetTimeoutMs ?? config.resetTimeoutMs, config.resetTimeoutMs),
    config.maxResetTimeoutMs,
  );
  const failures = Math.max(0, Math.floor(restore.failures)) || 0;
  if (restore.state !== 'open') {
    return {
      ...fresh,
      failures,
      currentResetTimeoutMs: current,
      openForMs: current,
      resumeTo: restore.state,
    };
  }
  const remaining = Math.min(current - Math.max(0, restore.nowMs - restore.sinceMs), current);
  return {
    ...fresh,
    failures,
    currentResetTimeoutMs: current,
    openForMs: Math.max(0, remaining),
    resumeTo: remaining > 0 ? 'open' : 'openElapsed',
  };
}

/** The window after one more call at `atMs`: buckets older than the window are dropped. */
function recordCall(
  window: readonly WindowBucket[],
  config: ResolvedBreakerConfig,
  atMs: number,
  failed: boolean,
): readonly WindowBucket[] {
  const add = failed ? 1 : 0;
  const last = window[window.length - 1];
  const index = Math.floor(atMs / (config.rollingWindowMs / WINDOW_BUCKETS));
  // Outcomes that arrive out of order (an earlier `atMs`) join the newest bucket.
  if (last !== undefined && index <= last.index) {
    const next = window.slice();
    next[next.length - 1] = { index: last.index, calls: last.calls + 1, failures: last.failures + add };
    return next;
  }
  const oldest = index - WINDOW_BUCKETS + 1;
  let keepFrom = 0;
  while (keepFrom < window.length && (window[keepFrom] as WindowBucket).index < oldest) keepFrom++;
  const next = window.slice(keepFrom);
  next.push({ index, calls: 1, failures: add });
  return next;
}

function rateExceeded(window: readonly WindowBucket[], config: ResolvedBreakerConfig): boolean {
  const percentage = config.errorThresholdPercentage;
  if (percentage === undefined) return false;
  let calls = 0;
  let failures = 0;
  for (const bucket of window) {
    calls += bucket.calls;
    failures += bucket.failures;
  }
  return calls >= config.volumeThreshold && failures * 100 > percentage * calls;
}

const isCounted = (context: CircuitBreakerContext, event: CircuitBreakerEvent): boolean =>
  event.type === 'FAILURE' && context.config.countOn.includes(event.category);

const isCurrentProbe = (context: CircuitBreakerContext, event: CircuitBreakerEvent): boolean =>
  (event.type === 'SUCCESS' || event.type === 'FAILURE' || event.type === 'PROBE.RELEASE') &&
  event.probe === context.probeRound;

const atMsOf = (event: CircuitBreakerEvent): number =>
  event.type === 'SUCCESS' || event.type === 'FAILURE' ? event.atMs : 0;

/**
 * The circuit-breaker machine. States `closed`, `open`, `halfOpen` (plus a transient `resuming`
 * that only routes a restored breaker to its state). Create it with the runtime's clock so the
 * reset timeout runs in virtual time under test.
 *
 * @example
 * const clock = simulatedClock();
 * const actor = createActor(circuitBreakerMachine, {
 *   input: { config: resolveBreakerConfig({ name: 'openai', failureThreshold: 5 }) },
 *   clock,
 * });
 * actor.on('transitioned', (t) => console.log(`${t.from} → ${t.to} (${t.reason})`));
 * actor.start();
 * actor.send({ type: 'FAILURE', category: 'timeout', atMs: clock.now() });
 */
export const circuitBreakerMachine = setup({
  types: {
    context: {} as CircuitBreakerContext,
    events: {} as CircuitBreakerEvent,
    input: {} as CircuitBreakerInput,
    emitted: {} as BreakerTransition,
  },
  guards: {
    resumesClosed: ({ context }) => context.resumeTo === 'closed',
    resumesOpen: ({ context }) => context.resumeTo === 'open',
    resumesHalfOpen: ({ context }) => context.resumeTo === 'halfOpen',
    counted: ({ context, event }) => isCounted(context, event),
    consecutiveTrips: ({ context, event }) =>
      isCounted(context, event) &&
      context.config.failureThreshold !== undefined &&
      context.failures + 1 >= context.config.failureThreshold,
    rateTrips: ({ context, event }) =>
      isCounted(context, event) &&
      context.config.errorThresholdPercentage !== undefined &&
      rateExceeded(recordCall(context.window, context.config, atMsOf(event), true), context.config),
    probeSlotFree: ({ context }) => context.probesInFlight < context.config.halfOpenMaxProbes,
    currentProbe: ({ context, event }) => isCurrentProbe(context, event),
    countedProbeFailure: ({ context, event }) => isCurrentProbe(context, event) && isCounted(context, event),
  },
  delays: {
    resetTimeout: ({ context }) => context.openForMs,
  },
  actions: {
    notify: emit(({ context }, params: NotifyParams): BreakerTransition =>
      params.to === 'open'
        ? {
            type: 'transitioned',
            ...params,
            failures: context.failures,
            resetTimeoutMs: context.currentResetTimeoutMs,
          }
        : { type: 'transitioned', ...params, failures: context.failures },
    ),
    recordSuccess: assign(({ context, event }) => ({
      failures: 0,
      window:
        context.config.errorThresholdPercentage === undefined
          ? context.window
          : recordCall(context.window, context.config, atMsOf(event), false),
    })),
    recordFailure: assign(({ context, event }) => ({
      failures: context.failures + 1,
      window:
        context.config.errorThresholdPercentage === undefined
          ? context.window
          : recordCall(context.window, context.config, atMsOf(event), true),
    })),
    forgetFailures: assign({ failures: 0, window: [] }),
    closeCircuit: assign(({ context }) => ({
      failures: 0,
      window: [],
      probesInFlight: 0,
      currentResetTimeoutMs: context.config.resetTimeoutMs,
    })),
    openForResetTimeout: assign(({ context }) => ({ openForMs: context.currentResetTimeoutMs })),
    backOff: assign(({ context }) => {
      const { resetBackoffFactor, maxResetTimeoutMs } = context.config;
      const next = Math.min(context.currentResetTimeoutMs * resetBackoffFactor, maxResetTimeoutMs);
      return { failures: context.failures + 1, currentResetTimeoutMs: next, openForMs: next };
    }),
    startProbeRound: assign(({ context }) => ({ probesInFlight: 0, probeRound: context.probeRound + 1 })),
    admitProbe: assign(({ context }) => ({ probesInFlight: context.probesInFlight + 1 })),
    releaseProbe: assign(({ context }) => ({ probesInFlight: Math.max(0, context.probesInFlight - 1) })),
  },
}).createMachine({
  id: 'circuitBreaker',
  context: ({ input }) => initialContext(input),
  initial: 'resuming',
  states: {
    resuming: {
      always: [
        { guard: 'resumesClosed', target: 'closed' },
        { guard: 'resumesOpen', target: 'open' },
        { guard: 'resumesHalfOpen', target: 'halfOpen' },
        {
          target: 'halfOpen',
          actions: { type: 'notify', params: { from: 'open', to: 'halfOpen', reason: 'reset_timeout' } },
        },
      ],
    },
    closed: {
      on: {
        SUCCESS: { actions: 'recordSuccess' },
        FAILURE: [
          {
            guard: 'consecutiveTrips',
            target: 'open',
            actions: [
              'recordFailure',
              'openForResetTimeout',
              { type: 'notify', params: { from: 'closed', to: 'open', reason: 'consecutive_failures' } },
            ],
          },
          {
            guard: 'rateTrips',
            target: 'open',
            actions: [
              'recordFailure',
              'openForResetTimeout',
              { type: 'notify', params: { from: 'closed', to: 'open', reason: 'error_rate' } },
            ],
          },
          { guard: 'counted', actions: 'recordFailure' },
        ],
        TRIP: {
          target: 'open',
          actions: [
            'openForResetTimeout',
            { type: 'notify', params: { from: 'closed', to: 'open', reason: 'forced_open' } },
          ],
        },
        RESET: { actions: 'forgetFailures' },
      },
    },
    open: {
      after: {
        resetTimeout: {
          target: 'halfOpen',
          actions: { type: 'notify', params: { from: 'open', to: 'halfOpen', reason: 'reset_timeout' } },
        },
      },
      on: {
        RESET: {
          target: 'closed',
          actions: [
            'closeCircuit',
            { type: 'notify', params: { from: 'open', to: 'closed', reason: 'forced_closed' } },
          ],
        },
      },
    },
    halfOpen: {
      entry: 'startProbeRound',
      on: {
        'PROBE.ACQUIRE': { guard: 'probeSlotFree', actions: 'admitProbe' },
        'PROBE.RELEASE': { guard: 'currentProbe', actions: 'releaseProbe' },
        SUCCESS: {
          guard: 'currentProbe',
          target: 'closed',
          actions: [
            'closeCircuit',
            { type: 'notify', params: { from: 'halfOpen', to: 'closed', reason: 'probe_succeeded' } },
          ],
        },
        FAILURE: [
          {
            guard: 'countedProbeFailure',
            target: 'open',
            actions: [
              'backOff',
              { type: 'notify', params: { from: 'halfOpen', to: 'open', reason: 'probe_failed' } },
            ],
          },
          // A probe that failed for a reason the breaker does not count proves nothing: free its slot.
          { guard: 'currentProbe', actions: 'releaseProbe' },
        ],
        TRIP: {
          target: 'open',
          actions: [
            'openForResetTimeout',
            { type: 'notify', params: { from: 'halfOpen', to: 'open', reason: 'forced_open' } },
          ],
        },
        RESET: {
          target: 'closed',
          actions: [
            'closeCircuit',
            { type: 'notify', params: { from: 'halfOpen', to: 'closed', reason: 'forced_closed' } },
          ],
        },
      },
    },
  },
});

/** The circuit-breaker machine's type (for `Actor<CircuitBreakerMachine>`). */
export type CircuitBreakerMachine = typeof circuitBreakerMachine;
