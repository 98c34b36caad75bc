/**
 * Named errors of the cost concern: a model with no price, a usage that cannot be priced, and a call
 * refused because a budget would be exceeded. Each says what happened and what to do.
 */
import { ConfigError, KeelError, isKeelError } from '../core/errors.js';

/**
 * A model has no entry in the pricing table. Keel never guesses a price, so the fix is config:
 * add the model under `pricing`. A {@link ConfigError} (field `pricing.<model>` unless told).
 */
export class UnknownModelError extends ConfigError {
  constructor(
    /** The model id that has no price. */
    readonly model: string,
    knownModels: readonly string[],
    field = `pricing.${model}`,
  ) {
    super(
      field,
      `no price is configured for model "${model}". Add it to the pricing table, e.g. ` +
        `createRuntime({ pricing: { '${model}': { inputPer1K: 0.001, outputPer1K: 0.002 } } }) ` +
        `(USD per 1,000 tokens), or use a known model: ${knownModels.join(', ') || '(none)'}.`,
    );
    this.name = 'UnknownModelError';
  }
}

/** True when `e` is an {@link UnknownModelError}. */
export function isUnknownModelError(e: unknown): e is UnknownModelError {
  return isKeelError(e) && e instanceof UnknownModelError;
}

/** Token counts handed to `price()` were negative or not finite numbers. */
export class InvalidUsageError extends KeelError {
  constructor(
    readonly model: string,
    readonly field: 'inputTokens' | 'outputTokens',
    readonly value: unknown,
  ) {
    super(
      'COST_INVALID_USAGE',
      `Cannot price a call to "${model}": usage.${field} is ${String(value)}, expected a finite number >= 0. ` +
        'Check what the provider reported as usage.',
    );
  }
}

/** True when `e` is an {@link InvalidUsageError}. */
export function isInvalidUsageError(e: unknown): e is InvalidUsageError {
  return isKeelError(e) && e instanceof InvalidUsageError;
}

/** Figures describing a refused reservation. */
export interface BudgetExceededDetails {
  /** The scope that refused: `global`, `model:<id>` or `taskType:<name>`. */
  scope: string;
  /** The scope's daily limit, USD. */
  limitUsd: number;
  /** Settled spend today, USD. */
  spentUsd: number;
  /** Outstanding reservations (calls in flight), USD. */
  reservedUsd: number;
  /** The estimate that did not fit, USD. */
  requestedUsd: number;
  /** The budget day (`YYYY-MM-DD` in the budget's time zone). */
  day: string;
}

const usd = (n: number): string => `$${n.toFixed(n !== 0 && Math.abs(n) < 0.01 ? 4 : 2)}`;

/**
 * A call was refused before any model was called, because its estimate does not fit in a budget:
 * `spent + reserved + estimate > limit`. Carries `category = 'budget_exceeded'` for RCA.
 */
export class BudgetExceededError extends KeelError {
  /** Root-cause category of the refusal. */
  readonly category = 'budget_exceeded' as const;
  readonly scope: string;
  readonly limitUsd: number;
  readonly spentUsd: number;
  readonly reservedUsd: number;
  readonly requestedUsd: number;
  readonly day: string;
  constructor(details: BudgetExceededDetails) {
    super(
      'BUDGET_EXCEEDED',
      `Budget "${details.scope}" for ${details.day} would be exceeded: ${usd(details.spentUsd)} spent + ` +
        `${usd(details.reservedUsd)} in flight + ${usd(details.requestedUsd)} requested > ` +
        `${usd(details.limitUsd)} daily limit. The call was not made. Raise the limit, set ` +
        `budget.onExhausted: 'downgrade' with budget.downgradeTo, or wait for the next day.`,
    );
    this.scope = details.scope;
    this.limitUsd = details.limitUsd;
    this.spentUsd = details.spentUsd;
    this.reservedUsd = details.reservedUsd;
    this.requestedUsd = details.requestedUsd;
    this.day = details.day;
  }
}

/** True when `e` is a {@link BudgetExceededError}. */
export function isBudgetExceededError(e: unknown): e is BudgetExceededError {
  return isKeelError(e) && e instanceof BudgetExceededError;
}

/** The budgets were stopped (the runtime closed); no more reservations are taken. */
export class BudgetsClosedError extends KeelError {
  constructor() {
    super(
      'BUDGET_CLOSED',
      'The budgets are stopped (the runtime was closed). Create a new runtime to reserve budget.',
    );
  }
}

/** True when `e` is a {@link BudgetsClosedError}. */
export function isBudgetsClosedError(e: unknown): e is BudgetsClosedError {
  return isKeelError(e) && e instanceof BudgetsClosedError;
}

/**
 * A budget shared across processes could not be checked (its Redis store did not answer in time or
 * refused the connection), so the call was refused before any model was called rather than spend
 * unguarded. Carries `category = 'budget_exceeded'`: like an exhausted budget, the budget gate
 * refused the call; the `code` (`BUDGET_UNAVAILABLE`) and message tell the two apart.
 */
export class BudgetUnavailableError extends KeelError {
  /** Root-cause category of the refusal. */
  readonly category = 'budget_exceeded' as const;
  constructor(
    /** Where the shared budget lives, without credentials, e.g. `redis://10.0.0.5:6379`. */
    readonly store: string,
    /** What went wrong: the Redis error, or that no reply came within the timeout. */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      'BUDGET_UNAVAILABLE',
      `The shared budget at ${store} could not be checked (${reason}), so the call was not made. ` +
        'Check that Redis is reachable, or set the shared budget to onUnavailable: ' +
        "'admit' to run calls unguarded while it is down.",
      options,
    );
  }
}

/** True when `e` is a {@link BudgetUnavailableError}. */
export function isBudgetUnavailableError(e: unknown): e is BudgetUnavailableError {
  return isKeelError(e) && e instanceof BudgetUnavailableError;
}

/**
 * A model call was not made because the event log could not record its reservation first (the
 * database locked past `busyTimeoutMs`, read-only, or full): Keel calls no model whose spend a
 * restarted budget could not count. Category `log_unavailable`; `cause` is the store's error.
 */
export class UnrecordedCallError extends KeelError {
  /** The failure category the monitors count. */
  readonly category = 'log_unavailable' as const;
  constructor(
    /** The agent whose call was not made. */
    readonly agent: string,
    cause: unknown,
  ) {
    super(
      'COST_UNRECORDED_CALL',
      `agent "${agent}": the model was not called because the event log could not record the call's ` +
        `reservation first (${cause instanceof Error ? cause.message : String(cause)}). Free the database ` +
        '(another process holding a write lock, a read-only file or a full disk), or raise busyTimeoutMs.',
      { cause },
    );
  }
}

/** True when `e` is an {@link UnrecordedCallError}. */
export function isUnrecordedCallError(e: unknown): e is UnrecordedCallError {
  return isKeelError(e) && e instanceof UnrecordedCallError;
}
