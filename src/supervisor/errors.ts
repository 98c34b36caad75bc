/**
 * Why a workflow or an agent failed. Each carries the root-cause `category` the monitors count.
 */
import { KeelError, isKeelError } from '../core/errors.js';
import type { ErrorCategory } from '../eventlog/events.js';

/** An agent (or a whole node) failed; `category` is its root cause. */
export class AgentFailedError extends KeelError {
  constructor(
    readonly category: ErrorCategory,
    message: string,
    readonly details: { agent?: string; path?: string; attempts?: number; cause?: unknown } = {},
  ) {
    super(`AGENT_FAILED_${category.toUpperCase()}`, message, { cause: details.cause });
  }
}

/** The last attempt ran past its `timeoutMs` (or the workflow's deadline). */
export class AgentTimeoutError extends AgentFailedError {
  constructor(message: string, details: AgentFailedError['details'] = {}) {
    super('timeout', message, details);
  }
}

/** The agent's output failed its schema or validator. */
export class ValidationError extends AgentFailedError {
  constructor(
    message: string,
    details: AgentFailedError['details'] = {},
    category: ErrorCategory = 'validation_error',
  ) {
    super(category, message, details);
  }
}

/** The workflow was cancelled (unsubscribed, aborted or its runtime closed). */
export class WorkflowCancelledError extends AgentFailedError {
  constructor(reason: string) {
    super('cancelled', `workflow cancelled: ${reason}`);
  }
}

/** True for any {@link AgentFailedError} (timeouts, validation, cancellation included). */
export function isAgentFailedError(e: unknown): e is AgentFailedError {
  return isKeelError(e) && e instanceof AgentFailedError;
}
/** True for {@link AgentTimeoutError}. */
export function isAgentTimeoutError(e: unknown): e is AgentTimeoutError {
  return isKeelError(e) && e instanceof AgentTimeoutError;
}
/** True for {@link ValidationError}. */
export function isValidationError(e: unknown): e is ValidationError {
  return isKeelError(e) && e instanceof ValidationError;
}
/** True for {@link WorkflowCancelledError}. */
export function isWorkflowCancelledError(e: unknown): e is WorkflowCancelledError {
  return isKeelError(e) && e instanceof WorkflowCancelledError;
}

/** The root-cause category of any thrown value (`unknown` for foreign errors). */
export function categoryOf(e: unknown): ErrorCategory {
  if (isKeelError(e)) {
    const c = (e as { category?: unknown }).category;
    if (typeof c === 'string') return c as ErrorCategory;
  }
  if (e instanceof Error && e.name === 'AbortError') return 'cancelled';
  return 'unknown';
}

/** A short message for any thrown value. */
export function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  return typeof e === 'string' ? e : (JSON.stringify(e) ?? String(e));
}
