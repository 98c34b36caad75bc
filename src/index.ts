/**
 * Keel's public API. Everything a user imports comes from here; nothing reaches into internals.
 * The AI SDK and OpenAI adapters live at `keel/providers/ai-sdk` and `keel/providers/openai` so that
 * their SDKs stay optional.
 */

// ── runtime ─────────────────────────────────────────────────────────────────────────────────────
export { createRuntime } from './runtime.js';
export type {
  Runtime,
  RuntimeConfig,
  RuntimeEvents,
  RuntimeStats,
  RunOptions,
  WorkflowResult,
  ReplayOptions,
  ReplayReport,
} from './runtime.js';

// ── time and randomness ─────────────────────────────────────────────────────────────────────────
export { realClock, simulatedClock, clockScheduler } from './core/clock.js';
export type { Clock, SimulatedClock, TimerHandle } from './core/clock.js';
export { seededRandom, hashSeed } from './core/random.js';
export type { Random } from './core/random.js';
export { canonicalJson } from './core/json.js';
export { KeelError, isKeelError, ConfigError, isConfigError } from './core/errors.js';

// ── topologies ──────────────────────────────────────────────────────────────────────────────────
export { agent, AgentError, isAgentError, isUsage } from './supervisor/agent.js';
export type {
  Agent,
  AgentConfig,
  AgentContext,
  AgentOutput,
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
export * from './runtime/errors.js';
export { IllFormedUnicodeError, isIllFormedUnicodeError } from './core/unicode.js';
export { JsonValueError, isJsonValueError } from './core/json.js';

// ── breakers ────────────────────────────────────────────────────────────────────────────────────
export {
  createBreaker,
  resolveBreakerConfig,
  breakerRestoreFrom,
  CircuitOpenError,
  isCircuitOpenError,
  BREAKER_IGNORED_CATEGORIES,
} from './supervisor/breaker.js';
export type {
  Breaker,
  BreakerPermit,
  BreakerDeps,
  BreakerTransitionInfo,
  BreakerRestoreInput,
} from './supervisor/breaker.js';
export { circuitBreakerMachine } from '../machines/circuitBreaker.machine.js';
export { agentMachine } from '../machines/agent.machine.js';
export { budgetMachine } from '../machines/budget.machine.js';

// ── providers ───────────────────────────────────────────────────────────────────────────────────
export { ProviderError, isProviderError } from './providers/types.js';
export { classifyError } from './providers/classify.js';
export type { ErrorClassification } from './providers/classify.js';
export type {
  ModelProvider,
  ModelRequest,
  ModelResponse,
  CallContext,
  ChatMessage,
} from './providers/types.js';
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
} from './providers/simulated.js';

// ── event log ───────────────────────────────────────────────────────────────────────────────────
export * from './eventlog/events.js';
export type * from './eventlog/store.js';
export { collectEvents, withEvents } from './eventlog/store.js';
export * from './eventlog/errors.js';
export { openSqliteStore } from './eventlog/sqlite.js';
export type { SqliteStoreOptions, SqliteEventStore } from './eventlog/sqlite.js';

// ── replay ──────────────────────────────────────────────────────────────────────────────────────
export { recordedSource, decisionsOf, compareDecisions } from './replay/recorded.js';
export type { Divergence, Decision, RecordedSource } from './replay/recorded.js';
export {
  whatIfCascade,
  whatIfVote,
  whatIfCache,
  createCascadeWhatIf,
  createVoteWhatIf,
  createCacheWhatIf,
  projectVolume,
  WEEKS_PER_YEAR,
} from './replay/whatif.js';
export type {
  CascadeWhatIf,
  CascadeWhatIfFold,
  CascadeWhatIfOptions,
  CascadeThresholdRow,
  VoteWhatIf,
  VoteWhatIfFold,
  VoteWhatIfOptions,
  VoteStop,
  VoteStopRow,
  CacheWhatIf,
  CacheWhatIfFold,
  CacheWhatIfOptions,
  CacheTtlRow,
  VolumeProjection,
  Accuracy,
} from './replay/whatif.js';

// ── report ──────────────────────────────────────────────────────────────────────────────────────
export { buildReport, createReportFold, foldEvents, formatReport, renderHtml } from './report/index.js';
export type * from './report/index.js';

// ── cost ────────────────────────────────────────────────────────────────────────────────────────
export { createPricing, DEFAULT_PRICING, SEED_PRICING, PRICING_AS_OF } from './cost/pricing.js';
export type { ModelPrice, PricingTable, Pricing, PricingOptions } from './cost/pricing.js';
export { createCostTracker } from './cost/tracker.js';
export type { CostTracker, CostTrackerOptions, CostSummary } from './cost/tracker.js';
export { formatCostDashboard } from './cost/dashboard.js';
export { createBudgets, RESTORED_BUDGET_EVENTS } from './cost/budget.js';
export { estimateTokens, CHARS_PER_TOKEN } from './cost/estimate.js';
export { createReservationLearner } from './cost/reservations.js';
export type { ReservationLearner, ReservationLearnerOptions } from './cost/reservations.js';
export { createOverrunAlerts } from './cost/overrun.js';
export type { OverrunAlerts } from './cost/overrun.js';
export type { BudgetConfig, Budgets, ReserveRequest, ReserveResult, Reservation } from './cost/budget.js';
export {
  UnknownModelError,
  isUnknownModelError,
  InvalidUsageError,
  isInvalidUsageError,
  BudgetExceededError,
  isBudgetExceededError,
  BudgetsClosedError,
  isBudgetsClosedError,
  BudgetUnavailableError,
  isBudgetUnavailableError,
  UnrecordedCallError,
  isUnrecordedCallError,
} from './cost/errors.js';

// ── cache and compliance ────────────────────────────────────────────────────────────────────────
export { createCache } from './cache/cache.js';
export type {
  Cache,
  LocalCache,
  CacheConfig,
  CacheHit,
  CacheGetOptions,
  CacheInvalidation,
} from './cache/cache.js';
// Scale-out: `keel/postgres` (event store) and `keel/redis` (cache, budget) implement these.
export type { CacheBackend, BudgetBackend } from './backends.js';
export { cacheKey, cacheKeyer } from './cache/key.js';
export type { CacheKeyer } from './cache/key.js';
export { fingerprinter, RedactionKeyFileError, isRedactionKeyFileError } from './compliance/key.js';
export { IdentifierPiiError, isIdentifierPiiError } from './compliance/identifiers.js';
export type { Fingerprint } from './compliance/key.js';
export * from './cache/errors.js';
export { createRedactor } from './compliance/redact.js';
export type { Redactor, RedactionResult, RedactedText, RedactionCounts } from './compliance/redact.js';
export type {
  RedactorConfig,
  NameRedactionConfig,
  PhoneRedactionConfig,
  CustomPattern,
} from './compliance/config.js';
export { findOpenWorkflows, DEFAULT_INTERRUPTED_REASON } from './compliance/interrupted.js';
export type {
  OpenWorkflow,
  FindOpenWorkflowsOptions,
  MarkInterruptedOptions,
  MarkInterruptedResult,
  InterruptedWorkflow,
} from './compliance/interrupted.js';

// ── monitoring ──────────────────────────────────────────────────────────────────────────────────
export * from './monitor/index.js';

// ── observability ───────────────────────────────────────────────────────────────────────────────
export { createMetrics, BREAKER_STATE_VALUE } from './observability/metrics.js';
export type { MetricsOptions, KeelMetrics } from './observability/metrics.js';
export { serveMetrics } from './observability/serve.js';
export type { ServeMetricsOptions, MetricsServer } from './observability/serve.js';
export { createTracing } from './observability/tracing.js';
export type { TracingOptions, KeelTracing, TraceIds } from './observability/tracing.js';
export { toEcs, toEsBulk, createEcsLogSink, ECS_VERSION } from './observability/ecs.js';
export type { EcsDocument, EcsLabels, EcsLogLevel, EcsOutcome, EcsLogSink } from './observability/ecs.js';
export * from './observability/genai.js';
