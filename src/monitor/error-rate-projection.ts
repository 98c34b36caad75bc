/**
 * Error-rate monitoring as a fold over the event stream: a rolling window per task type that
 * raises ONE alert when the window's error rate passes the task type's target and ONE resolve when
 * it recovers (hysteresis), plus error-budget consumption per period with an alert at 80 % and at
 * 100 %, each once per period. The live monitor and `keel report` run this same fold.
 */
import type { Clock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import { ERROR_CATEGORIES, type ErrorCategory, type KeelEvent } from '../eventlog/events.js';
import { NO_ALERTS, type Alert } from './alert.js';
import {
  DEFAULT_BUDGET_ALERT_AT,
  budgetFor,
  checkTarget,
  targetOf,
  type ErrorBudget,
  type ErrorTarget,
  type ErrorTargets,
} from './error-budget.js';
import { CATEGORY_LABELS } from '../eventlog/outcome.js';
import { errorRateMessage } from './internal/format.js';
import { grouped, percent0, percent1 } from '../core/format.js';
import { categoryIndex } from './internal/outcome.js';
import { failureCategory, isOutcomeEvent } from '../eventlog/outcome.js';
import { OutcomeWindow, SUCCESS_INDEX } from './internal/outcome-window.js';
import { checkInteger, checkPositive, checkRatio } from '../core/validate.js';
import { weekCalendar } from './iso-week.js';

/** Error-budget tracking: expected volume per task type over a fixed period. */
export interface ErrorBudgetTracking {
  /** Tasks expected per period, per task type, e.g. `{ vendor: 10_000 }`. Others are not tracked. */
  volumes: Readonly<Record<string, number>>;
  /**
   * IANA time zone of the budget weeks (default `UTC`). A budget period is an ISO week: it starts
   * on Monday at 00:00 in this zone and ends at the next Monday's 00:00; failures count from zero
   * again at each start, and the period's open budget alerts resolve.
   */
  timeZone?: string;
  /** Share of the budget that raises the warning alert (default 0.8). */
  alertAt?: number;
}

/** Configuration of {@link createErrorRateProjection}. */
export interface ErrorRateProjectionConfig {
  /** Error-rate target per task type, e.g. {@link DEFAULT_ERROR_TARGETS}. */
  targets: ErrorTargets;
  /** Target for task types missing from `targets` (default: none, so they are tracked but never alert). */
  defaultTarget?: number | ErrorTarget;
  /**
   * Outcomes per window (default 100 when `windowMs` is not set; unbounded by count otherwise).
   * With both set, the window is the last `windowSize` outcomes not older than `windowMs`.
   */
  windowSize?: number;
  /** Window length in ms, by event timestamps (default: none, a count window). */
  windowMs?: number;
  /**
   * Outcomes a window must hold before it is judged (default `windowSize` for a count window —
   * "insufficient data until full" — else 20).
   */
  minSamples?: number;
  /**
   * An open alert resolves when the window's rate drops below `target × resolveRatio` (default 0.8).
   * The gap keeps a rate hovering at the target from flapping.
   */
  resolveRatio?: number;
  /** Error-budget consumption alerts (default: off). */
  budget?: ErrorBudgetTracking;
  /** Time for {@link ErrorRateProjection.snapshot} when called without `nowMs` (default: last event's ts). */
  clock?: Clock;
}

/** Budget consumption of one task type in the current period. */
export interface ErrorBudgetState extends ErrorBudget {
  /** Start of the current period (Monday 00:00 in the budget's time zone), ms since epoch. */
  periodStartMs: number;
  /** Expected tasks in the period. */
  volume: number;
  /** Failures so far in the period. */
  failures: number;
  /** Budget left, in [0, 1]: 1 − failures / acceptableFailures. */
  remainingRatio: number;
}

/** The error state of one task type. */
export interface TaskTypeErrorState {
  taskType: string;
  /** The target in force (`undefined` when the task type has none). */
  target: number | undefined;
  /** Outcomes in the window. */
  samples: number;
  /** Failures in the window. */
  failures: number;
  /** Failures / samples in the window (0 when empty). */
  errorRate: number;
  /** Whether an error-rate alert is open. */
  alerting: boolean;
  /** Most frequent failure category in the window. */
  primaryCause: ErrorCategory | undefined;
  /** Present when the task type's budget is tracked. */
  budget?: ErrorBudgetState;
}

/** A fold from events to error-rate and error-budget alerts. */
export interface ErrorRateProjection {
  /**
   * Folds one event; returns the alerts it raised or resolved (usually none — a shared empty
   * array). Reads `agent.succeeded`, `agent.failed` and `agent.rejected`; ignores the rest.
   */
  apply(event: KeelEvent): readonly Alert[];
  /** Current state per task type (windows are aged to `nowMs` first when time-bounded). */
  snapshot(nowMs?: number): TaskTypeErrorState[];
}

interface BudgetTrack {
  volume: number;
  budget: ErrorBudget;
  /** Start of the week counted, ms since epoch (NaN before the first outcome). */
  period: number;
  failures: number;
  alertedWarning: boolean;
  alertedExhausted: boolean;
  open: Alert[];
}

interface TaskState {
  taskType: string;
  target: Required<ErrorTarget> | undefined;
  window: OutcomeWindow;
  openAlertId: string | undefined;
  budget: BudgetTrack | undefined;
}

/**
 * Creates the error-rate fold.
 *
 * @example
 * const errors = createErrorRateProjection({
 *   targets: DEFAULT_ERROR_TARGETS,
 *   windowSize: 100,
 *   budget: { volumes: { vendor: 10_000 } },
 * });
 * store.onCommit((events) => events.forEach((e) => errors.apply(e).forEach((a) => router.route(a))));
 */
export function createErrorRateProjection(config: ErrorRateProjectionConfig): ErrorRateProjection {
  const { targets, windowMs, resolveRatio = 0.8, clock } = config;
  if (typeof targets !== 'object' || targets === null) {
    throw new ConfigError('targets', 'must map task types to error-rate targets, e.g. { vendor: 0.05 }.');
  }
  for (const taskType of Object.keys(targets)) targetOf(targets, taskType);
  const defaultTarget =
    config.defaultTarget === undefined ? undefined : checkTarget(config.defaultTarget, 'defaultTarget');
  if (windowMs !== undefined) checkPositive('windowMs', windowMs, 'the window length in ms, e.g. 3_600_000');
  const windowSize = config.windowSize ?? (windowMs === undefined ? 100 : undefined);
  if (windowSize !== undefined) checkInteger('windowSize', windowSize, 1, 'outcomes per window, e.g. 100');
  const minSamples =
    config.minSamples ?? (windowMs === undefined ? (windowSize ?? 100) : Math.min(20, windowSize ?? 20));
  checkInteger('minSamples', minSamples, 1, 'outcomes needed before judging, e.g. 20');
  checkRatio('resolveRatio', resolveRatio, 'e.g. 0.8 to resolve below 80 % of the target');

  const budgetCfg = config.budget;
  const weeks = weekCalendar(budgetCfg?.timeZone ?? 'UTC', 'budget.timeZone');
  const alertAt = budgetCfg?.alertAt ?? DEFAULT_BUDGET_ALERT_AT;
  if (budgetCfg !== undefined) {
    checkRatio('budget.alertAt', alertAt, 'e.g. 0.8 to alert at 80 % of the budget');
    const volumes: unknown = budgetCfg.volumes;
    if (typeof volumes !== 'object' || volumes === null) {
      throw new ConfigError(
        'budget.volumes',
        'must map task types to tasks per period, e.g. { vendor: 10_000 }.',
      );
    }
    for (const [taskType, volume] of Object.entries(budgetCfg.volumes)) {
      if (!(Number.isFinite(volume) && volume >= 0)) {
        throw new ConfigError(
          `budget.volumes.${taskType}`,
          `must be a task count >= 0, got ${String(volume)}.`,
        );
      }
      if (targetOf(targets, taskType) === undefined && defaultTarget === undefined) {
        throw new ConfigError(
          `budget.volumes.${taskType}`,
          `task type "${taskType}" has a volume but no error-rate target; add targets.${taskType} (e.g. 0.05).`,
        );
      }
    }
  }

  const states = new Map<string, TaskState>();
  let lastTs = 0;

  const stateOf = (taskType: string): TaskState => {
    let s = states.get(taskType);
    if (s === undefined) {
      const target = targetOf(targets, taskType) ?? defaultTarget;
      const volume = budgetCfg?.volumes[taskType];
      s = {
        taskType,
        target,
        window: new OutcomeWindow({ size: windowSize, ms: windowMs }),
        openAlertId: undefined,
        budget:
          volume === undefined || target === undefined
            ? undefined
            : {
                volume,
                budget: budgetFor(target.rate, volume, alertAt),
                period: NaN,
                failures: 0,
                alertedWarning: false,
                alertedExhausted: false,
                open: [],
              },
      };
      states.set(taskType, s);
    }
    return s;
  };

  const windowData = (s: TaskState, target: number) => ({
    taskType: s.taskType,
    errorRate: s.window.errorRate,
    threshold: target,
    failures: s.window.failures,
    samples: s.window.samples,
    windowSize,
    windowMs,
    primaryCause: s.window.primaryCause(),
    causes: nonZeroCauses(s.window.causeCounts()),
  });

  const judgeRate = (s: TaskState, event: KeelEvent): Alert | undefined => {
    const target = s.target;
    if (target === undefined || s.window.samples < minSamples) return undefined;
    const { errorRate, failures, samples } = s.window;
    if (s.openAlertId === undefined && errorRate > target.rate) {
      s.openAlertId = `error_rate:${s.taskType}:${event.seq}`;
      const cause = s.window.primaryCause();
      const causeText =
        cause === undefined
          ? ''
          : ` (primary cause: ${CATEGORY_LABELS[cause]}, ${percent0(((s.window.causeCounts()[categoryIndex(cause)] ?? 0) / failures) * 100)})`;
      return {
        id: s.openAlertId,
        kind: 'error_rate',
        severity: target.severity,
        title: `${s.taskType}: ${errorRateMessage(errorRate, target.rate, samples, windowMs)}${causeText}`,
        data: windowData(s, target.rate),
        ts: event.ts,
        status: 'firing',
      };
    }
    if (
      s.openAlertId !== undefined &&
      (failures === 0 || errorRate < target.rate * resolveRatio * (1 - 1e-9))
    ) {
      const id = s.openAlertId;
      s.openAlertId = undefined;
      return {
        id,
        kind: 'error_rate',
        severity: target.severity,
        title: `${s.taskType} recovered: ${errorRateMessage(errorRate, target.rate, samples, windowMs)}`,
        data: windowData(s, target.rate),
        ts: event.ts,
        status: 'resolved',
      };
    }
    return undefined;
  };

  const judgeBudget = (
    s: TaskState,
    b: BudgetTrack,
    event: KeelEvent,
    failed: boolean,
    alerts: Alert[] | undefined,
  ): Alert[] | undefined => {
    let out = alerts;
    const week = weeks.weekOf(event.ts);
    const period = week.startMs;
    if (period !== b.period) {
      for (const open of b.open) {
        (out ??= []).push({
          ...open,
          title: `${s.taskType}: error-budget period ended with ${grouped(b.failures)} of ${grouped(b.budget.acceptableFailures)} acceptable failures used`,
          ts: event.ts,
          status: 'resolved',
        });
      }
      b.open = [];
      b.period = period;
      b.failures = 0;
      b.alertedWarning = false;
      b.alertedExhausted = false;
    }
    if (!failed) return out;
    b.failures++;
    const { acceptableFailures, alertThreshold, targetRate } = b.budget;
    const severity = s.target?.severity ?? 'medium';
    const periodStartMs = week.startMs;
    const data = {
      taskType: s.taskType,
      periodStartMs,
      periodEndMs: week.endMs,
      timeZone: weeks.timeZone,
      volume: b.volume,
      targetRate,
      acceptableFailures,
      alertThreshold,
      failures: b.failures,
    };
    const of = `${grouped(b.failures)} of ${grouped(acceptableFailures)} acceptable failures (target ${percent1(targetRate)} of ${grouped(b.volume)})`;
    if (!b.alertedWarning && b.failures >= alertThreshold) {
      b.alertedWarning = true;
      const alert: Alert = {
        id: `error_budget:${s.taskType}:${periodStartMs}:${Math.round(alertAt * 100)}`,
        kind: 'error_budget',
        severity,
        title: `${s.taskType}: ${Math.round(alertAt * 100)}% of the error budget used: ${of}`,
        data,
        ts: event.ts,
        status: 'firing',
      };
      b.open.push(alert);
      (out ??= []).push(alert);
    }
    if (!b.alertedExhausted && b.failures >= acceptableFailures) {
      b.alertedExhausted = true;
      const alert: Alert = {
        id: `error_budget:${s.taskType}:${periodStartMs}:100`,
        kind: 'error_budget',
        severity,
        title: `${s.taskType}: error budget exhausted: ${of}`,
        data,
        ts: event.ts,
        status: 'firing',
      };
      b.open.push(alert);
      (out ??= []).push(alert);
    }
    return out;
  };

  return {
    apply(event) {
      if (!isOutcomeEvent(event)) return NO_ALERTS;
      if (event.ts > lastTs) lastTs = event.ts;
      const s = stateOf(event.payload.taskType);
      const category = failureCategory(event);
      s.window.record(event.ts, category === undefined ? SUCCESS_INDEX : categoryIndex(category));
      if (s.target === undefined) return NO_ALERTS;
      const rate = judgeRate(s, event);
      let out = rate === undefined ? undefined : [rate];
      if (s.budget !== undefined) out = judgeBudget(s, s.budget, event, category !== undefined, out);
      return out ?? NO_ALERTS;
    },

    snapshot(nowMs = clock?.now() ?? lastTs) {
      const result: TaskTypeErrorState[] = [];
      for (const s of states.values()) {
        s.window.expire(nowMs);
        const b = s.budget;
        const week = weeks.weekOf(nowMs);
        const current = b !== undefined && b.period === week.startMs;
        const failures = current ? b.failures : 0;
        result.push({
          taskType: s.taskType,
          target: s.target?.rate,
          samples: s.window.samples,
          failures: s.window.failures,
          errorRate: s.window.errorRate,
          alerting: s.openAlertId !== undefined,
          primaryCause: s.window.primaryCause(),
          budget:
            b === undefined
              ? undefined
              : {
                  ...b.budget,
                  periodStartMs: week.startMs,
                  volume: b.volume,
                  failures,
                  remainingRatio: remaining(failures, b.budget.acceptableFailures),
                },
        });
      }
      return result;
    },
  };
}

function remaining(failures: number, acceptable: number): number {
  if (acceptable <= 0) return failures > 0 ? 0 : 1;
  return Math.max(0, 1 - failures / acceptable);
}

function nonZeroCauses(counts: Readonly<Uint32Array>): Partial<Record<ErrorCategory, number>> {
  const out: Partial<Record<ErrorCategory, number>> = {};
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i] ?? 0;
    const category = ERROR_CATEGORIES[i];
    if (c > 0 && category !== undefined) out[category] = c;
  }
  return out;
}
