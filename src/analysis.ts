/**
 * `keel/analysis`: reading a log after the fact — the report, what-ifs, replay's decision
 * comparison, root causes, and the folds the live runtime and `keel report` share. Every analysis
 * is a fold over `KeelEvent`s (`apply(event)`, then `result()`); `foldEvents` streams one from any
 * store, SQLite's synchronous `iterate()` or Postgres's asynchronous one, in the memory of the fold.
 */

// ── reading the log ─────────────────────────────────────────────────────────────────────────────
export { foldEvents, foldSync } from './eventlog/fold.js';
export type { EventFold } from './eventlog/fold.js';
export { collectEvents, withEvents } from './eventlog/store.js';
export {
  isEventType,
  isKnownEventType,
  EVENT_VERSIONS,
  DEFAULT_EVENT_CLASS,
  ALERT_KINDS,
  ALERT_SEVERITIES,
} from './eventlog/events.js';
export { isOutcomeEvent, failureCategory, CATEGORY_LABELS } from './eventlog/outcome.js';
export type { OutcomeEvent } from './eventlog/outcome.js';
export { findOpenWorkflows, DEFAULT_INTERRUPTED_REASON } from './compliance/interrupted.js';
export type {
  OpenWorkflow,
  FindOpenWorkflowsOptions,
  MarkInterruptedOptions,
  MarkInterruptedResult,
  InterruptedWorkflow,
} from './compliance/interrupted.js';
export { agentsOf } from './supervisor/topology.js';

// ── the report ──────────────────────────────────────────────────────────────────────────────────
export { buildReport, createReportFold, formatReport, renderHtml } from './report/index.js';
export type * from './report/index.js';
export { createCostTracker } from './cost/tracker.js';
export type { CostTracker, CostTrackerOptions, CostSummary, TenantCost } from './cost/tracker.js';
export { formatCostDashboard } from './cost/dashboard.js';

// ── monitoring folds: alerts, error rates, budgets, latency, root causes ────────────────────────
export { alertToEvent, alertFromEvent, isResolved, NO_ALERTS } from './monitor/alert.js';
export { createAlertFold, createAlertLedger, EVENT_ALERTS } from './monitor/alert-fold.js';
export type { AlertFold, AlertFoldConfig, AlertLedger, EventAlert } from './monitor/alert-fold.js';
export { errorBudget, severityForRate } from './monitor/error-budget.js';
export type { ErrorBudget } from './monitor/error-budget.js';
export { weekCalendar } from './monitor/iso-week.js';
export type { WeekCalendar, WeekSpan } from './monitor/iso-week.js';
export type { CanaryStatus } from './monitor/canary-fold.js';
export { createErrorRateProjection } from './monitor/error-rate-projection.js';
export type {
  ErrorRateProjection,
  ErrorRateProjectionConfig,
  ErrorBudgetTracking,
  ErrorBudgetState,
  TaskTypeErrorState,
} from './monitor/error-rate-projection.js';
export { createLatencyProjection } from './monitor/latency-projection.js';
export type {
  LatencyProjection,
  LatencyProjectionConfig,
  LatencyScope,
  LatencySnapshot,
  LatencyStats,
} from './monitor/latency-projection.js';
export { rca, createRcaFold } from './monitor/rca.js';
export type { RcaOptions, RcaReport, RcaFold, FailureBreakdown, CauseShare } from './monitor/rca.js';
export { pagerDutyEvent } from './monitor/sinks/pagerduty.js';
export type { PagerDutyEvent } from './monitor/sinks/pagerduty.js';
export { slackMessage } from './monitor/sinks/slack.js';
export type { SlackMessage, SlackBlock, SlackText } from './monitor/sinks/slack.js';

// ── replay and what-ifs ─────────────────────────────────────────────────────────────────────────
export { recordedSource, decisionsOf, compareDecisions } from './replay/recorded.js';
export type { Divergence, Decision, RecordedSource } from './replay/recorded.js';
export * from './replay/whatif.js';
