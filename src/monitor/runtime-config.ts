/**
 * Checks the monitoring part of `createRuntime()`'s config — `errorTargets`, `monitor`, `sla`,
 * `alerts` — before any monitor is built, so an error names the field as its user wrote it
 * (`monitor.weeklyVolume.shipping`), not as the monitor factory the runtime hands it to calls it
 * (`budget.volumes.shipping`). Internal: the runtime's, not part of the public surface.
 */
import { ConfigError } from '../core/errors.js';
import { DEFAULT_ERROR_TARGETS, checkTarget } from './error-budget.js';
import { checkInteger, checkPositive } from '../core/validate.js';
import { checkAlertRouting, type AlertRouterConfig } from './router.js';

/** The monitoring fields of the runtime config, as given (not yet trusted). */
export interface RuntimeMonitoringConfig {
  errorTargets?: unknown;
  monitor?: unknown;
  sla?: unknown;
  alerts?: unknown;
}

/**
 * Throws a {@link ConfigError} naming the runtime config's own path and the fix for the first bad
 * monitoring field; unknown keys are the runtime schema's business.
 *
 * @example
 * checkMonitoringConfig({ monitor: { weeklyVolume: { vendor: -1 } } });
 * // ConfigError at "monitor.weeklyVolume.vendor": must be a task count >= 0 …
 */
export function checkMonitoringConfig(config: RuntimeMonitoringConfig): void {
  const targets = config.errorTargets ?? DEFAULT_ERROR_TARGETS;
  if (!isRecord(targets)) {
    throw new ConfigError(
      'errorTargets',
      'must map task types to error-rate targets, e.g. { vendor: 0.05, payment: { rate: 0.001, severity: "critical" } }.',
    );
  }
  for (const [taskType, target] of Object.entries(targets)) checkTarget(target, `errorTargets.${taskType}`);
  if (config.monitor !== undefined) checkWindows(config.monitor, targets);
  if (config.sla !== undefined) checkSla(config.sla);
  if (config.alerts !== undefined) {
    if (!isRecord(config.alerts)) {
      throw new ConfigError(
        'alerts',
        'must be { rules: [{ match, sinks }] }, e.g. { rules: [{ sinks: [consoleSink()] }] }.',
      );
    }
    checkAlertRouting(config.alerts as unknown as AlertRouterConfig, 'alerts.');
  }
}

/** `monitor`: the error-rate windows and the weekly volumes of the error budgets. */
function checkWindows(monitor: unknown, targets: Readonly<Record<string, unknown>>): void {
  if (!isRecord(monitor)) {
    throw new ConfigError(
      'monitor',
      'must be an object, e.g. { windowSize: 100, weeklyVolume: { vendor: 10_000 } }.',
    );
  }
  const { windowSize, windowMs, minSamples, weeklyVolume } = monitor;
  if (windowSize !== undefined)
    checkInteger('monitor.windowSize', windowSize, 1, 'outcomes per error-rate window, e.g. 100');
  if (windowMs !== undefined)
    checkPositive('monitor.windowMs', windowMs, 'the error-rate window in ms, e.g. 3_600_000 for one hour');
  if (minSamples !== undefined)
    checkInteger('monitor.minSamples', minSamples, 1, 'outcomes a window needs before it is judged, e.g. 20');
  if (weeklyVolume === undefined) return;
  if (!isRecord(weeklyVolume)) {
    throw new ConfigError(
      'monitor.weeklyVolume',
      'must map task types to tasks expected per week, e.g. { vendor: 10_000 }.',
    );
  }
  for (const [taskType, volume] of Object.entries(weeklyVolume)) {
    const field = `monitor.weeklyVolume.${taskType}`;
    if (typeof volume !== 'number' || !(Number.isFinite(volume) && volume >= 0)) {
      throw new ConfigError(
        field,
        `must be a task count >= 0 (tasks expected per week, e.g. 10_000), got ${String(volume)}.`,
      );
    }
    if (!Object.prototype.hasOwnProperty.call(targets, taskType)) {
      const known = Object.keys(targets).join(', ') || '(none)';
      throw new ConfigError(
        field,
        `task type "${taskType}" has a weekly volume but no error-rate target; add errorTargets.${taskType} (e.g. 0.05) or use one of: ${known}.`,
      );
    }
  }
}

/** `sla`: the P95 latency target and its window. */
function checkSla(sla: unknown): void {
  if (!isRecord(sla)) {
    throw new ConfigError('sla', 'must be an object, e.g. { p95Ms: 10_000, windowMs: 3_600_000 }.');
  }
  checkPositive('sla.p95Ms', sla.p95Ms, 'the P95 latency target in ms, e.g. 10_000');
  if (sla.ttftP95Ms !== undefined)
    checkPositive('sla.ttftP95Ms', sla.ttftP95Ms, 'the P95 time-to-first-token target in ms, e.g. 2_000');
  if (sla.windowMs !== undefined)
    checkPositive('sla.windowMs', sla.windowMs, 'the SLA window in ms, e.g. 3_600_000 for one hour');
  if (sla.minSamples !== undefined)
    checkInteger(
      'sla.minSamples',
      sla.minSamples,
      1,
      'workflows a window needs before it is judged, e.g. 20',
    );
}

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
