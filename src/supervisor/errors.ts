/**
 * Why a workflow or an agent failed. Each carries the root-cause `category` the monitors count.
 */
import { KeelError, isKeelError } from '../core/errors.js';
import type { ErrorCategory } from '../eventlog/events.js';
import { classifyError, messageOfThrown } from '../providers/classify.js';

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

/**
 * The root-cause category of any thrown value, by Keel's one classifier (`classifyError` in
 * `src/providers/classify.ts`): a Keel error's own category, else an HTTP status, a network code,
 * an `AbortError`/`TimeoutError` on it or its `cause` chain; `unknown` when none says anything.
 */
export function categoryOf(e: unknown): ErrorCategory {
  return classifyError(e, 0).category;
}

/** A short message for any thrown value. */
export function messageOf(e: unknown): string {
  return messageOfThrown(e);
}
