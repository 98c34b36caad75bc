/**
 * Error budgets: how many failures a task type may have in a period before its error-rate target
 * is missed (the tutorial's `calculate_error_budget`).
 */
import { ConfigError } from '../core/errors.js';
import { ALERT_SEVERITIES, type AlertSeverity } from '../eventlog/events.js';
import { checkRatio } from '../core/validate.js';

/** An error-rate target with the severity its alerts carry. */
export interface ErrorTarget {
  /** Highest acceptable failure ratio in [0, 1), e.g. `0.05` for < 5 %. */
  rate: number;
  /** Severity of this task type's alerts (default: from the rate, see {@link severityForRate}). */
  severity?: AlertSeverity;
}

/** Error-rate targets per task type: a ratio, or a ratio with a severity. */
export type ErrorTargets = Readonly<Record<string, number | ErrorTarget>>;

/**
 * The tutorial's targets: payment extraction < 0.1 %, vendor extraction < 5 %, invoice routing
 * < 10 %, fraud screening < 15 %.
 */
export const DEFAULT_ERROR_TARGETS: Readonly<Record<'payment' | 'vendor' | 'routing' | 'fraud', number>> =
  Object.freeze({ payment: 0.001, vendor: 0.05, routing: 0.1, fraud: 0.15 });

/** Share of the budget at which the budget alert fires (the tutorial's 80 %). */
export const DEFAULT_BUDGET_ALERT_AT = 0.8;

/** An error budget for one task type and volume. */
export interface ErrorBudget {
  /** The task type's target failure ratio. */
  targetRate: number;
  /** Failures the period may have without missing the target: ⌊volume × targetRate⌋. */
  acceptableFailures: number;
  /** Failures at which to alert: ⌊acceptableFailures × alertAt⌋ (80 % by default). */
  alertThreshold: number;
}

/**
 * The error budget of `taskType` for `volume` tasks.
 *
 * @param taskType - a key of `targets` (`payment`, `vendor`, `routing`, `fraud` by default).
 * @param volume - tasks expected in the period, e.g. 10_000 invoices a week.
 * @param targets - per task type targets (default {@link DEFAULT_ERROR_TARGETS}).
 * @param alertAt - share of the budget that triggers the alert (default 0.8).
 * @throws ConfigError when `taskType` has no target, or a number is out of range.
 * @example
 * errorBudget('vendor', 10_000); // { targetRate: 0.05, acceptableFailures: 500, alertThreshold: 400 }
 */
export function errorBudget(
  taskType: string,
  volume: number,
  targets: ErrorTargets = DEFAULT_ERROR_TARGETS,
  alertAt: number = DEFAULT_BUDGET_ALERT_AT,
): ErrorBudget {
  if (!(Number.isFinite(volume) && volume >= 0)) {
    throw new ConfigError('volume', `must be a number of tasks >= 0, got ${String(volume)}.`);
  }
  checkRatio('alertAt', alertAt, 'e.g. 0.8 to alert at 80 % of the budget');
  const target = targetOf(targets, taskType);
  if (target === undefined) {
    const known = Object.keys(targets).join(', ') || '(none)';
    throw new ConfigError(
      `targets.${taskType}`,
      `task type "${taskType}" has no error-rate target. Add one (e.g. targets: { ${taskType}: 0.05 }) or use one of: ${known}.`,
    );
  }
  return budgetFor(target.rate, volume, alertAt);
}

/** Budget arithmetic with a guard against binary rounding (0.29 × 100 is 28.999…). */
export function budgetFor(targetRate: number, volume: number, alertAt: number): ErrorBudget {
  const acceptableFailures = Math.floor(volume * targetRate + 1e-9);
  const alertThreshold = Math.floor(acceptableFailures * alertAt + 1e-9);
  return { targetRate, acceptableFailures, alertThreshold };
}

/**
 * Default severity for a target, matching the tutorial's routing: a target of 0.1 % or tighter is
 * `critical` (PagerDuty), up to 5 % `medium` (Slack), looser `low` (email).
 *
 * @example
 * severityForRate(0.001); // 'critical'
 */
export function severityForRate(rate: number): AlertSeverity {
  if (rate <= 0.001) return 'critical';
  if (rate <= 0.05) return 'medium';
  return 'low';
}

/** Every alert severity, most urgent first. */

/** The validated target of a task type (`undefined` when it has none). Internal. */
export function targetOf(targets: ErrorTargets, taskType: string): Required<ErrorTarget> | undefined {
  if (!Object.prototype.hasOwnProperty.call(targets, taskType)) return undefined;
  const raw = targets[taskType];
  return raw === undefined ? undefined : checkTarget(raw, `targets.${taskType}`);
}

/**
 * `raw` as a target (a ratio, or `{ rate, severity }`), or a {@link ConfigError} naming `field` (or
 * its `.rate` / `.severity`) and the fix. Internal: the runtime checks its `errorTargets` with it.
 */
export function checkTarget(raw: unknown, field: string): Required<ErrorTarget> {
  const hint = 'e.g. 0.05 for a 5 % error-rate target';
  if (typeof raw === 'number') {
    checkRatio(field, raw, hint);
    return { rate: raw, severity: severityForRate(raw) };
  }
  if (typeof raw !== 'object' || raw === null) {
    throw new ConfigError(
      field,
      `must be a ratio between 0 and 1 or { rate, severity } (${hint}), got ${JSON.stringify(raw) ?? String(raw)}.`,
    );
  }
  const { rate, severity } = raw as { rate?: unknown; severity?: unknown };
  checkRatio(`${field}.rate`, rate, hint);
  if (severity !== undefined && !ALERT_SEVERITIES.includes(severity as AlertSeverity)) {
    throw new ConfigError(
      `${field}.severity`,
      `must be one of ${ALERT_SEVERITIES.join(', ')} (or left out to follow the rate), got ${JSON.stringify(severity) ?? typeof severity}.`,
    );
  }
  return {
    rate: rate as number,
    severity: (severity as AlertSeverity | undefined) ?? severityForRate(rate as number),
  };
}
