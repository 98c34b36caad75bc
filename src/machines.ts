/**
 * `keel/machines`: the XState machines behind an agent call, a budget and a circuit breaker, and
 * the stateful parts `createRuntime` composes from its config — breakers, budgets, reservations,
 * error-rate monitors, the alert router, the canary judge, the cache and the redactor — each usable
 * on its own (with an injected clock, so tests run in virtual time).
 */
export { agentMachine } from '../machines/agent.machine.js';
export { budgetMachine } from '../machines/budget.machine.js';
export { circuitBreakerMachine } from '../machines/circuitBreaker.machine.js';

// ── breakers ────────────────────────────────────────────────────────────────────────────────────
export {
  createBreaker,
  resolveBreakerConfig,
  breakerRestoreFrom,
  BREAKER_IGNORED_CATEGORIES,
} from './supervisor/breaker.js';
export type {
  Breaker,
  BreakerPermit,
  BreakerDeps,
  BreakerTransitionInfo,
  BreakerRestoreInput,
} from './supervisor/breaker.js';

// ── budgets ─────────────────────────────────────────────────────────────────────────────────────
export { createBudgets, RESTORED_BUDGET_EVENTS } from './cost/budget.js';
export type { Budgets, ReserveRequest, ReserveResult, Reservation } from './cost/budget.js';
export { createReservationLearner } from './cost/reservations.js';
export type { ReservationLearner, ReservationLearnerOptions } from './cost/reservations.js';
export { createOverrunAlerts } from './cost/overrun.js';
export type { OverrunAlerts } from './cost/overrun.js';
export { CHARS_PER_TOKEN } from './cost/estimate.js';

// ── monitors, alert routing, canary judgement ───────────────────────────────────────────────────
export { ErrorRateMonitor } from './monitor/error-rate-monitor.js';
export type {
  ErrorRateMonitorConfig,
  ErrorRateCheck,
  ErrorRateReading,
  InsufficientData,
} from './monitor/error-rate-monitor.js';
export { TimeWindowErrorRateMonitor } from './monitor/time-window-error-rate-monitor.js';
export type {
  TimeWindowErrorRateMonitorConfig,
  TimeWindowErrorRateCheck,
  TimeWindowErrorRateReading,
} from './monitor/time-window-error-rate-monitor.js';
export { createAlertRouter } from './monitor/router.js';
export type { AlertRouter, AlertRouterConfig } from './monitor/router.js';
export { createCanaryJudge } from './monitor/canary-judge.js';
export type {
  CanaryJudge,
  CanaryJudgeConfig,
  CanaryTargets,
  CanaryArm,
  CanaryOutcome,
  CanaryMetric,
  CanaryVerdict,
  CanaryArmStats,
} from './monitor/canary-judge.js';

// ── cache and redaction ─────────────────────────────────────────────────────────────────────────
export { createCache } from './cache/cache.js';
export type { LocalCache } from './cache/cache.js';
export { cacheKey, cacheKeyer } from './cache/key.js';
export type { CacheKeyer } from './cache/key.js';
export { createRedactor } from './compliance/redact.js';
export type { Redactor, RedactionResult, RedactedText, RedactionCounts } from './compliance/redact.js';
export { fingerprinter } from './compliance/key.js';
export type { Fingerprint } from './compliance/key.js';
