/**
 * `keel/errors`: every error Keel raises, with its guard (`isXxxError(e)`, true across copies of
 * the package). Each error is a named class with a stable `code`; the ones a caller of `rt.run`
 * usually catches are also exported by `keel` itself.
 */
export { KeelError, isKeelError, ConfigError, isConfigError } from './core/errors.js';
export { IllFormedUnicodeError, isIllFormedUnicodeError } from './core/unicode.js';
export { JsonValueError, isJsonValueError } from './core/json.js';

// ── agents and workflows ────────────────────────────────────────────────────────────────────────
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
export { ProviderError, isProviderError } from './providers/types.js';
export { RateLimitedError, isRateLimitedError } from './limits/limiter.js';
export { BulkheadRejectedError, isBulkheadRejectedError } from './limits/bulkheads.js';
export * from './runtime/errors.js';
export * from './durable/errors.js';

// ── cost ────────────────────────────────────────────────────────────────────────────────────────
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
export type { BudgetExceededDetails } from './cost/errors.js';

// ── rate limits ─────────────────────────────────────────────────────────────────────────────────
export { RateLimitsUnavailableError, isRateLimitsUnavailableError } from './limits/backend.js';

// ── the event log, the cache, redaction ─────────────────────────────────────────────────────────
export * from './eventlog/errors.js';
export * from './cache/errors.js';
export { RedactionKeyFileError, isRedactionKeyFileError } from './compliance/key.js';
export { IdentifierPiiError, isIdentifierPiiError } from './compliance/identifiers.js';

// ── alert delivery ──────────────────────────────────────────────────────────────────────────────
export {
  AlertDeliveryError,
  isAlertDeliveryError,
  SinkTimeoutError,
  isSinkTimeoutError,
  WebhookStatusError,
  isWebhookStatusError,
} from './monitor/errors.js';
export type { DeliveryFailureReason } from './monitor/errors.js';
