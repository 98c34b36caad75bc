/**
 * The runtime's handle on one shared circuit-breaker actor. Agents naming the same breaker share
 * one handle; each call takes a {@link BreakerPermit} with `acquire()` and settles it once.
 *
 * The machine (`machines/circuitBreaker.machine.ts`) decides every transition. The handle only
 * reads its snapshot to skip sending events that cannot change anything — a closed breaker with no
 * failures to forget — because a `send()` costs about 2 µs and this gate runs on every agent call.
 */
import { createActor, type Actor, type AnyActorRef } from 'xstate';
import {
  circuitBreakerMachine,
  type BreakerRestore,
  type BreakerTransition,
  type CircuitBreakerEvent,
  type ResolvedBreakerConfig,
} from '../../machines/circuitBreaker.machine.js';
import type { Clock } from '../core/clock.js';
import { ConfigError, KeelError, isKeelError } from '../core/errors.js';
import { ERROR_CATEGORIES, type BreakerState, type ErrorCategory } from '../eventlog/events.js';
import type { BreakerConfig } from './agent.js';

/**
 * Failure categories a breaker does not count unless `countOn` says otherwise: each says the
 * caller's input or the output's content was wrong (or the call never reached the dependency), so
 * the dependency itself is not failing. Every other category — including `unknown`, a plain
 * `new Error()` from a user's `run()` — counts, as in opossum and cockatiel; a category added later
 * counts by default.
 */
export const BREAKER_IGNORED_CATEGORIES: readonly ErrorCategory[] = Object.freeze([
  'validation_error',
  'hallucination',
  'missing_field',
  'ocr_error',
  'budget_exceeded',
  'cancelled',
  'circuit_open',
  // the event log could not record the call's reservation: the model was never called
  'log_unavailable',
]);

/** Failure categories a breaker counts unless `countOn` says otherwise: all but the ignored ones. */
const DEFAULT_COUNT_ON: readonly ErrorCategory[] = ERROR_CATEGORIES.filter(
  (c) => !BREAKER_IGNORED_CATEGORIES.includes(c),
);

/** A call was refused because its breaker is open (or half-open with every probe slot taken). */
export class CircuitOpenError extends KeelError {
  /** Root-cause category for RCA and metrics. */
  readonly category = 'circuit_open' as const;
  constructor(
    /** Name of the breaker that refused the call. */
    readonly breaker: string,
    /** Time until the breaker admits a probe, in ms; undefined while half-open probes are running. */
    readonly retryInMs?: number,
  ) {
    super(
      'CIRCUIT_OPEN',
      `Circuit breaker "${breaker}" is open, so the call was rejected without running` +
        (retryInMs === undefined
          ? ' (a half-open probe is already running). '
          : `; it lets a probe through in ${retryInMs} ms. `) +
        'Serve a fallback (cached value or default) when isCircuitOpenError(e), or retry later.',
    );
  }
}

/** True when `e` is a {@link CircuitOpenError}. */
export function isCircuitOpenError(e: unknown): e is CircuitOpenError {
  return isKeelError(e) && e.code === 'CIRCUIT_OPEN';
}

/** A breaker state change, as handed to `onTransition` (the runtime logs it as `breaker.transitioned`). */
export interface BreakerTransitionInfo extends Omit<BreakerTransition, 'type'> {
  /** The breaker's name. */
  breaker: string;
  /** Clock time of the change, ms since epoch. */
  atMs: number;
}

/** Where to resume a breaker from; `nowMs` defaults to the clock's time. */
export type BreakerRestoreInput = Omit<BreakerRestore, 'nowMs'> & { nowMs?: number };

/** What a breaker handle needs from the runtime. */
export interface BreakerDeps {
  /** The runtime's clock: the reset timeout runs on it (and `atMs` of outcomes comes from it). */
  clock: Clock;
  /**
   * The runtime's root actor: the breaker joins its actor system as `breaker:<name>`, so the Stately
   * inspector shows it. XState runs delays on the root system's clock, so the root must have been
   * created with this same `clock`.
   */
  parent?: AnyActorRef;
  /** Resume the state the log last recorded (see {@link breakerRestoreFrom}). */
  restore?: BreakerRestoreInput;
  /**
   * Called synchronously on each state change, while the actor is processing: keep it quick, don't
   * throw, and don't call `acquire()` from it.
   */
  onTransition?: (transition: BreakerTransitionInfo) => void;
}

/** The right to make one call through a breaker. Settle it exactly once; later calls are ignored. */
export interface BreakerPermit {
  /** True when this call is a half-open probe: its outcome closes or re-opens the breaker. */
  readonly probe: boolean;
  /** The call succeeded: resets the consecutive-failure count (a probe closes the breaker). */
  success(): void;
  /** The call failed; counts only if `category` is in `countOn` (a counted probe failure re-opens). */
  failure(category: ErrorCategory): void;
  /** The call ended with no outcome to count (cancelled, skipped): frees a probe slot. */
  release(): void;
}

/** The runtime's handle on one shared breaker actor. */
export interface Breaker {
  /** The breaker's name (`BreakerConfig.name`). */
  readonly name: string;
  /** The underlying actor (system id `breaker:<name>`), for inspection and tests. */
  readonly actor: Actor<typeof circuitBreakerMachine>;
  /** The current state. */
  state(): BreakerState;
  /**
   * Asks to make one call. Returns a permit, or `undefined` when the call must be rejected without
   * running: the breaker is open, or half-open with every probe slot taken (or it was stopped).
   */
  acquire(): BreakerPermit | undefined;
  /** While open: ms until the breaker admits a probe. Otherwise `undefined`. */
  retryInMs(): number | undefined;
  /** Stops the actor (and its reset timer). Every later `acquire()` is rejected. */
  stop(): void;
}

/** Validates a {@link BreakerConfig} and applies its defaults. Messages name the field and the fix. */
export function resolveBreakerConfig(config: BreakerConfig): ResolvedBreakerConfig {
  const at = (field: string): string =>
    `breaker${typeof config?.name === 'string' ? ` "${config.name}"` : ''}.${field}`;
  if (typeof config !== 'object' || config === null)
    throw new ConfigError('breaker', 'expected an object such as { name: "openai", failureThreshold: 5 }');
  if (typeof config.name !== 'string' || config.name.length === 0)
    throw new ConfigError(at('name'), 'must name the shared breaker, e.g. "openai"');
  const positiveInteger = (field: string, value: number | undefined, fallback: number): number => {
    const v = value ?? fallback;
    if (!Number.isInteger(v) || v < 1)
      throw new ConfigError(at(field), `must be an integer >= 1, got ${value}`);
    return v;
  };
  const positiveMs = (field: string, value: number | undefined, fallback: number): number => {
    const v = value ?? fallback;
    if (!(v > 0) || !Number.isFinite(v))
      throw new ConfigError(at(field), `must be a positive, finite number of milliseconds, got ${value}`);
    return v;
  };

  const pct = config.errorThresholdPercentage;
  if (pct !== undefined && !(pct >= 0 && pct < 100))
    throw new ConfigError(
      at('errorThresholdPercentage'),
      `must be a percentage in [0, 100) (the breaker opens when failures exceed it), got ${pct}`,
    );
  // The rate strategy replaces the consecutive one unless both are asked for.
  const failureThreshold =
    config.failureThreshold === undefined && pct !== undefined
      ? undefined
      : positiveInteger('failureThreshold', config.failureThreshold, 5);
  const resetTimeoutMs = positiveMs('resetTimeoutMs', config.resetTimeoutMs, 60_000);
  const resetBackoffFactor = config.resetBackoffFactor ?? 1;
  if (!(resetBackoffFactor >= 1) || !Number.isFinite(resetBackoffFactor))
    throw new ConfigError(
      at('resetBackoffFactor'),
      `must be a finite number >= 1 (1 keeps the reset timeout fixed), got ${config.resetBackoffFactor}`,
    );
  const maxResetTimeoutMs = positiveMs('maxResetTimeoutMs', config.maxResetTimeoutMs, 10 * resetTimeoutMs);
  if (maxResetTimeoutMs < resetTimeoutMs)
    throw new ConfigError(
      at('maxResetTimeoutMs'),
      `must be >= resetTimeoutMs (${resetTimeoutMs}), got ${maxResetTimeoutMs}`,
    );
  const countOn = config.countOn ?? DEFAULT_COUNT_ON;
  const isList: boolean = Array.isArray(countOn);
  if (!isList || countOn.some((c) => !ERROR_CATEGORIES.includes(c)))
    throw new ConfigError(
      at('countOn'),
      `must list error categories (${ERROR_CATEGORIES.join(', ')}), got ${JSON.stringify(countOn)}`,
    );
  return {
    name: config.name,
    failureThreshold,
    errorThresholdPercentage: pct,
    volumeThreshold: positiveInteger('volumeThreshold', config.volumeThreshold, 10),
    rollingWindowMs: positiveMs('rollingWindowMs', config.rollingWindowMs, 10_000),
    resetTimeoutMs,
    resetBackoffFactor,
    maxResetTimeoutMs,
    halfOpenMaxProbes: positiveInteger('halfOpenMaxProbes', config.halfOpenMaxProbes, 1),
    countOn: [...countOn],
  };
}

/**
 * Turns the last `breaker.transitioned` event of a breaker into the restore input of a new one.
 *
 * @param last - the event's payload fields and its `ts`.
 * @example
 * const restore = breakerRestoreFrom({ ...event.payload, ts: event.ts });
 * const breaker = createBreaker({ name: 'openai' }, { clock, restore });
 */
export function breakerRestoreFrom(last: {
  to: BreakerState;
  failures: number;
  resetTimeoutMs?: number;
  ts: number;
}): BreakerRestoreInput {
  return last.resetTimeoutMs === undefined
    ? { state: last.to, sinceMs: last.ts, failures: last.failures }
    : {
        state: last.to,
        sinceMs: last.ts,
        failures: last.failures,
        currentResetTimeoutMs: last.resetTimeoutMs,
      };
}

const PROBE_ACQUIRE: CircuitBreakerEvent = { type: 'PROBE.ACQUIRE' };
/** `round` of permits taken while closed (they are not probes). */
const NOT_A_PROBE = -1;

class BreakerHandle implements Breaker {
  readonly actor: Actor<typeof circuitBreakerMachine>;
  private readonly counted: ReadonlySet<ErrorCategory>;
  private readonly rateOn: boolean;
  private readonly maxProbes: number;
  private stopped = false;
  /** Clock time the current open period ends (for `retryInMs`). */
  private openUntilMs: number;

  constructor(
    readonly name: string,
    config: ResolvedBreakerConfig,
    private readonly clock: Clock,
    deps: BreakerDeps,
  ) {
    this.counted = new Set(config.countOn);
    this.rateOn = config.errorThresholdPercentage !== undefined;
    this.maxProbes = config.halfOpenMaxProbes;
    const restore: BreakerRestore | undefined =
      deps.restore === undefined ? undefined : { ...deps.restore, nowMs: deps.restore.nowMs ?? clock.now() };
    this.actor = createActor(circuitBreakerMachine, {
      input: restore === undefined ? { config } : { config, restore },
      clock,
      parent: deps.parent,
      systemId: `breaker:${name}`,
    });
    this.openUntilMs =
      restore?.state === 'open'
        ? restore.sinceMs + this.actor.getSnapshot().context.currentResetTimeoutMs
        : 0;
    const onTransition = deps.onTransition;
    this.actor.on('transitioned', (t) => {
      const atMs = clock.now();
      if (t.to === 'open') this.openUntilMs = atMs + (t.resetTimeoutMs ?? 0);
      if (onTransition === undefined) return;
      const info: BreakerTransitionInfo = {
        breaker: name,
        from: t.from,
        to: t.to,
        reason: t.reason,
        failures: t.failures,
        atMs,
      };
      if (t.resetTimeoutMs !== undefined) info.resetTimeoutMs = t.resetTimeoutMs;
      onTransition(info);
    });
    this.actor.start();
  }

  state(): BreakerState {
    const value = this.actor.getSnapshot().value;
    return value === 'resuming' ? 'closed' : value;
  }

  acquire(): BreakerPermit | undefined {
    if (this.stopped) return undefined;
    const snapshot = this.actor.getSnapshot();
    if (snapshot.value === 'closed') return new Permit(this, false, NOT_A_PROBE);
    if (snapshot.value !== 'halfOpen') return undefined;
    const { probesInFlight, probeRound } = snapshot.context;
    if (probesInFlight >= this.maxProbes) return undefined;
    this.actor.send(PROBE_ACQUIRE);
    const after = this.actor.getSnapshot();
    const admitted =
      after.value === 'halfOpen' &&
      after.context.probeRound === probeRound &&
      after.context.probesInFlight === probesInFlight + 1;
    return admitted ? new Permit(this, true, probeRound) : undefined;
  }

  retryInMs(): number | undefined {
    if (this.stopped || this.actor.getSnapshot().value !== 'open') return undefined;
    return Math.max(0, this.openUntilMs - this.clock.now());
  }

  stop(): void {
    this.stopped = true;
    if (this.actor._parent === undefined) {
      this.actor.stop();
      return;
    }
    // XState refuses `stop()` on an actor created with `parent` ("a non-root actor cannot be stopped
    // directly") and the parent only stops children it spawned itself. `_stop()` is what the parent's
    // own `stopChild` calls: it cancels the reset timer and unregisters `breaker:<name>`.
    const internal = this.actor as unknown as { _stop?: () => unknown };
    if (typeof internal._stop === 'function') internal._stop();
  }

  /** @internal A permit succeeded. */
  settleSuccess(round: number): void {
    if (round === NOT_A_PROBE) {
      const snapshot = this.actor.getSnapshot();
      // Ordinary calls only count while closed; a closed breaker with nothing to forget stays as is.
      if (snapshot.value !== 'closed' || (snapshot.context.failures === 0 && !this.rateOn)) return;
      this.actor.send({ type: 'SUCCESS', atMs: this.clock.now() });
    } else {
      this.actor.send({ type: 'SUCCESS', atMs: this.clock.now(), probe: round });
    }
  }

  /** @internal A permit failed. */
  settleFailure(round: number, category: ErrorCategory): void {
    if (round === NOT_A_PROBE) {
      if (!this.counted.has(category) || this.actor.getSnapshot().value !== 'closed') return;
      this.actor.send({ type: 'FAILURE', category, atMs: this.clock.now() });
    } else {
      this.actor.send({ type: 'FAILURE', category, atMs: this.clock.now(), probe: round });
    }
  }

  /** @internal A permit ended without an outcome. */
  settleRelease(round: number): void {
    if (round !== NOT_A_PROBE) this.actor.send({ type: 'PROBE.RELEASE', probe: round });
  }
}

class Permit implements BreakerPermit {
  private settled = false;
  constructor(
    private readonly owner: BreakerHandle,
    readonly probe: boolean,
    private readonly round: number,
  ) {}

  success(): void {
    if (this.settled) return;
    this.settled = true;
    this.owner.settleSuccess(this.round);
  }

  failure(category: ErrorCategory): void {
    if (this.settled) return;
    this.settled = true;
    this.owner.settleFailure(this.round, category);
  }

  release(): void {
    if (this.settled) return;
    this.settled = true;
    this.owner.settleRelease(this.round);
  }
}

/**
 * Creates the handle on one shared breaker: validates `config`, starts its actor (system id
 * `breaker:<name>`) on `deps.clock`, and reports each state change to `deps.onTransition`.
 *
 * @throws {ConfigError} when a config field is invalid, or `deps.parent` runs on another clock.
 * @example
 * const breaker = createBreaker(
 *   { name: 'openai', failureThreshold: 5, resetTimeoutMs: 60_000 },
 *   { clock, onTransition: (t) => log.append(t) },
 * );
 * const permit = breaker.acquire();
 * if (permit === undefined) throw new CircuitOpenError(breaker.name, breaker.retryInMs());
 * try {
 *   const out = await callModel();
 *   permit.success();
 * } catch (e) {
 *   permit.failure(isProviderError(e) ? e.category : 'unknown');
 * }
 */
export function createBreaker(config: BreakerConfig, deps: BreakerDeps): Breaker {
  const resolved = resolveBreakerConfig(config);
  if (deps.parent !== undefined && deps.parent.system._clock !== deps.clock)
    throw new ConfigError(
      `breaker "${resolved.name}".parent`,
      'the parent actor runs on a different clock, and XState schedules delays on the root clock: create ' +
        'the root actor with createActor(machine, { clock }) using the same Clock you pass to createBreaker',
    );
  return new BreakerHandle(resolved.name, resolved, deps.clock, deps);
}
