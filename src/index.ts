/**
 * Keel's public API. Everything a user imports comes from here; nothing reaches into internals.
 */
export { realClock, simulatedClock, clockScheduler } from './core/clock.js';
export type { Clock, SimulatedClock, TimerHandle } from './core/clock.js';
export { seededRandom, hashSeed } from './core/random.js';
export type { Random } from './core/random.js';
export { KeelError, isKeelError, ConfigError, isConfigError } from './core/errors.js';
export * from './eventlog/events.js';
export type * from './eventlog/store.js';
export * from './eventlog/errors.js';
export { agent, AgentError, isAgentError } from './supervisor/agent.js';
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
export { ProviderError, isProviderError } from './providers/types.js';
export type {
  ModelProvider,
  ModelRequest,
  ModelResponse,
  CallContext,
  ChatMessage,
} from './providers/types.js';
