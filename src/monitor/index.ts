/**
 * Monitoring: error budgets, rolling error-rate windows, root-cause analysis, latency SLAs, alert
 * routing and the canary judge. Every monitor is a fold over `KeelEvent`s, and every alert comes
 * from ONE fold ({@link createAlertFold}) shared by the live runtime and `keel report`.
 */
export { alertToEvent, alertFromEvent, isResolved, NO_ALERTS } from './alert.js';
export type { Alert, AlertStatus } from './alert.js';
export {
  errorBudget,
  severityForRate,
  DEFAULT_ERROR_TARGETS,
  DEFAULT_BUDGET_ALERT_AT,
} from './error-budget.js';
export type { ErrorBudget, ErrorTarget, ErrorTargets } from './error-budget.js';
export { ErrorRateMonitor } from './error-rate-monitor.js';
export type {
  ErrorRateMonitorConfig,
  ErrorRateCheck,
  ErrorRateReading,
  InsufficientData,
} from './error-rate-monitor.js';
export { TimeWindowErrorRateMonitor } from './time-window-error-rate-monitor.js';
export type {
  TimeWindowErrorRateMonitorConfig,
  TimeWindowErrorRateCheck,
  TimeWindowErrorRateReading,
} from './time-window-error-rate-monitor.js';
export { createAlertFold, createAlertLedger, EVENT_ALERTS } from './alert-fold.js';
export type { AlertFold, AlertFoldConfig, AlertLedger, EventAlert } from './alert-fold.js';
export { weekCalendar } from './iso-week.js';
export type { WeekCalendar, WeekSpan } from './iso-week.js';
export type { CanaryStatus } from './canary-fold.js';
export { createErrorRateProjection } from './error-rate-projection.js';
export type {
  ErrorRateProjection,
  ErrorRateProjectionConfig,
  ErrorBudgetTracking,
  ErrorBudgetState,
  TaskTypeErrorState,
} from './error-rate-projection.js';
export { rca, createRcaFold } from './rca.js';
export type { RcaOptions, RcaReport, RcaFold, FailureBreakdown, CauseShare } from './rca.js';
export { createLatencyProjection } from './latency-projection.js';
export type {
  LatencyProjection,
  LatencyProjectionConfig,
  LatencyScope,
  LatencySnapshot,
  LatencyStats,
} from './latency-projection.js';
export { createAlertRouter } from './router.js';
export type { AlertRouter, AlertRouterConfig, AlertRule, AlertMatch, SinkFailure } from './router.js';
export type { AlertSink, SinkContext, DeliveryRetry } from './sink.js';
export { consoleSink } from './sinks/console.js';
export type { ConsoleSinkOptions } from './sinks/console.js';
export { jsonLinesSink } from './sinks/json-lines.js';
export type { JsonLinesSinkOptions } from './sinks/json-lines.js';
export { webhookSink } from './sinks/webhook.js';
export type { WebhookSinkOptions } from './sinks/webhook.js';
export { functionSink } from './sinks/function.js';
export type { FunctionSinkOptions } from './sinks/function.js';
export { pagerDutyEvent, pagerDutySink } from './sinks/pagerduty.js';
export type {
  PagerDutyEvent,
  PagerDutyOptions,
  PagerDutySeverity,
  PagerDutySinkOptions,
} from './sinks/pagerduty.js';
export { slackMessage, slackSink } from './sinks/slack.js';
export type { SlackMessage, SlackBlock, SlackText, SlackSinkOptions } from './sinks/slack.js';
export { createCanaryJudge } from './canary-judge.js';
export type {
  CanaryJudge,
  CanaryJudgeConfig,
  CanaryTargets,
  CanaryArm,
  CanaryOutcome,
  CanaryMetric,
  CanaryVerdict,
  CanaryArmStats,
} from './canary-judge.js';
export {
  AlertDeliveryError,
  isAlertDeliveryError,
  SinkTimeoutError,
  isSinkTimeoutError,
  WebhookStatusError,
  isWebhookStatusError,
} from './errors.js';
export type { DeliveryFailureReason } from './errors.js';
