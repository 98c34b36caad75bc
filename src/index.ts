/**
 * `keel`: what an application needs to run agents — the runtime, the topology combinators, the
 * providers' common types and `simulated()`, the errors a caller catches (with their guards), alert
 * sinks, pricing, the SQLite log and clocks. Everything else lives at a documented subpath, each an
 * entry file in this folder (README "Entry points"):
 *
 * - `keel/analysis` (src/analysis.ts): the report, what-ifs, replay analysis, RCA and the folds
 *   the runtime and `keel report` share;
 * - `keel/machines` (src/machines.ts): the XState machines and the stateful parts built on them
 *   (breakers, budgets, monitors, the alert router, the canary judge);
 * - `keel/observability` (src/observability.ts): metrics, tracing, ECS logs and their constants;
 * - `keel/errors` (src/errors.ts): every error class and guard (the common ones are also here);
 * - `keel/testing` (src/testing.ts): helpers for tests and simulations;
 * - `keel/providers/ai-sdk`, `keel/providers/openai`, `keel/postgres`, `keel/redis`: optional peers.
 *
 * test/package/surface.test.ts snapshots every entry's names: a change here shows up in review.
 */

// ── runtime ─────────────────────────────────────────────────────────────────────────────────────
export { createRuntime, isRunDelta } from './runtime.js';
export type {
  Runtime,
  RuntimeConfig,
  RuntimeEvents,
  RuntimeStats,
  RunOptions,
  RunDelta,
  RunItem,
  WorkflowResult,
  ReplayOptions,
  ReplayReport,
} from './runtime.js';

// ── time and randomness ─────────────────────────────────────────────────────────────────────────
export { realClock, simulatedClock } from './core/clock.js';
export type { Clock, SimulatedClock, TimerHandle } from './core/clock.js';
export { seededRandom, hashSeed } from './core/random.js';
export type { Random } from './core/random.js';

// ── topologies ──────────────────────────────────────────────────────────────────────────────────
export { agent } from './supervisor/agent.js';
export type {
  Agent,
  AgentConfig,
  AgentContext,
  AgentOutput,
  ModelTurn,
  TurnAnswer,
  TurnOptions,
  RetryConfig,
  BreakerConfig,
  CachePolicy,
  OutputValidator,
  SchemaLike,
} from './supervisor/agent.js';
export { seq } from './supervisor/sequential.js';
export { par, parWith } from './supervisor/parallel.js';
export type { ParOptions } from './supervisor/parallel.js';
export { vote } from './supervisor/vote.js';
export type { VoteOptions, VoteResult, Ballot, Tally } from './supervisor/vote.js';
export { cascade } from './supervisor/cascade.js';
export type { CascadeOptions } from './supervisor/cascade.js';
export { fallback } from './supervisor/fallback.js';
export { branch } from './supervisor/branch.js';
export { map } from './supervisor/map.js';
export { withDeadline } from './supervisor/deadline.js';
export { canary } from './supervisor/canary.js';
export type { CanaryOptions, CanaryControl, CanaryNode } from './supervisor/canary.js';
export { named, supervise, describe as describeTopology } from './supervisor/topology.js';
export type { Topology, Composite, OnError, InputOf, OutputOf, StageResult } from './supervisor/topology.js';

// ── durable execution (its errors: keel/errors) ─────────────────────────────────────────────────
export { waitFor } from './durable/wait.js';
export type { WaitForOptions } from './durable/wait.js';
export { listWorkflows } from './durable/engine.js';
export type {
  DurableConfig,
  ResumeOptions,
  ResumeReport,
  ResumedWorkflow,
  ResumeReason,
  WorkflowListing,
  WorkflowStatus,
} from './durable/engine.js';

// ── providers ───────────────────────────────────────────────────────────────────────────────────
export { simulated } from './providers/simulated.js';
export type {
  SimulatedOptions,
  SimulatedProvider,
  SimulatedModelProfile,
  LatencySpec,
  NormalSpec,
  ErrorRates,
  ConfidenceSpec,
  MixtureConfidence,
  UsageSpec,
  FaultWindow,
  FaultKind,
  SimulatedToolCall,
} from './providers/simulated.js';
export { classifyError } from './providers/classify.js';
export type { ErrorClassification } from './providers/classify.js';
export type {
  ModelProvider,
  ModelRequest,
  ModelResponse,
  CallContext,
  ChatMessage,
  ToolCall,
  ToolSpec,
  FinishReason,
} from './providers/types.js';
export { tool } from './tools/tool.js';
export type { Tool, ToolConfig, ToolContext } from './tools/tool.js';
export { isUsage } from './supervisor/agent.js';
export { estimateTokens } from './cost/estimate.js';

// ── errors a caller catches (every other one: keel/errors) ──────────────────────────────────────
export { KeelError, isKeelError, ConfigError, isConfigError } from './core/errors.js';
export { AgentError, isAgentError } from './supervisor/agent.js';
export {
  AgentFailedError,
  AgentTimeoutError,
  ValidationError,
  WorkflowCancelledError,
  isAgentFailedError,
  isAgentTimeoutError,
  isValidationError,
  isWorkflowCancelledError,
} from './supervisor/errors.js';
export { CircuitOpenError, isCircuitOpenError } from './supervisor/breaker.js';
export { BudgetExceededError, isBudgetExceededError } from './cost/errors.js';
export { ProviderError, isProviderError } from './providers/types.js';
export { EventLogError, isEventLogError } from './eventlog/errors.js';
export { CacheError, isCacheError } from './cache/errors.js';
export { RateLimitedError, isRateLimitedError } from './limits/limiter.js';
export { BulkheadRejectedError, isBulkheadRejectedError } from './limits/bulkheads.js';

// ── alert sinks ─────────────────────────────────────────────────────────────────────────────────
export type { Alert, AlertStatus } from './monitor/alert.js';
export type { AlertSink, SinkContext, DeliveryRetry } from './monitor/sink.js';
export type { AlertRule, AlertMatch, SinkFailure } from './monitor/router.js';
export { consoleSink } from './monitor/sinks/console.js';
export type { ConsoleSinkOptions } from './monitor/sinks/console.js';
export { jsonLinesSink } from './monitor/sinks/json-lines.js';
export type { JsonLinesSinkOptions } from './monitor/sinks/json-lines.js';
export { webhookSink } from './monitor/sinks/webhook.js';
export type { WebhookSinkOptions } from './monitor/sinks/webhook.js';
export { functionSink } from './monitor/sinks/function.js';
export type { FunctionSinkOptions } from './monitor/sinks/function.js';
export { pagerDutySink } from './monitor/sinks/pagerduty.js';
export type { PagerDutyOptions, PagerDutySeverity, PagerDutySinkOptions } from './monitor/sinks/pagerduty.js';
export { slackSink } from './monitor/sinks/slack.js';
export type { SlackSinkOptions } from './monitor/sinks/slack.js';

// ── policies' configuration ─────────────────────────────────────────────────────────────────────
export { createPricing, DEFAULT_PRICING, SEED_PRICING, PRICING_AS_OF } from './cost/pricing.js';
export type { ModelPrice, PricingTable, Pricing, PricingOptions } from './cost/pricing.js';
export type { BudgetConfig } from './cost/budget.js';
export { DEFAULT_ERROR_TARGETS, DEFAULT_BUDGET_ALERT_AT } from './monitor/error-budget.js';
export type { ErrorTarget, ErrorTargets } from './monitor/error-budget.js';
export type { CacheConfig, Cache, CacheHit, CacheGetOptions, CacheInvalidation } from './cache/cache.js';
export type { CacheBackend, BudgetBackend } from './backends.js';
export type { LimitSpec } from './limits/limiter.js';
export type {
  RedactorConfig,
  NameRedactionConfig,
  PhoneRedactionConfig,
  CustomPattern,
} from './compliance/config.js';

// ── the event log ───────────────────────────────────────────────────────────────────────────────
export { openSqliteStore } from './eventlog/sqlite.js';
export type { SqliteStoreOptions, SqliteEventStore } from './eventlog/sqlite.js';
export { SYSTEM_WORKFLOW_ID, ERROR_CATEGORIES } from './eventlog/events.js';
export type {
  KeelEvent,
  KeelEventType,
  NewEvent,
  EventPayloads,
  EventPayloadFields,
  TenantStamp,
  EventClass,
  ErrorCategory,
  Usage,
  BreakerState,
  AlertKind,
  AlertSeverity,
  NodePath,
} from './eventlog/events.js';
export type {
  EventStore,
  EventStream,
  EventFilter,
  ChainedEvent,
  ChainHeads,
  CommitInfo,
  CommitListener,
  PruneResult,
  VerifyResult,
  Awaitable,
} from './eventlog/store.js';
export { withoutPassword } from './core/url.js';
