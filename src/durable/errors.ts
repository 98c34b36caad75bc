/**
 * Errors of durable execution: each names the workflow, what is wrong, and the fix.
 */
import { KeelError, isKeelError } from '../core/errors.js';
import { AgentFailedError } from '../supervisor/errors.js';

/**
 * The topology registered under a workflow's name is not the one it started with (its structure
 * hash differs): resuming it could feed recorded outcomes to the wrong nodes. Nothing was run.
 */
export class TopologyChangedError extends KeelError {
  constructor(
    readonly workflowId: string,
    readonly workflowName: string,
    /** Structure hash recorded at its start. */
    readonly recordedHash: string,
    /** Hash of the topology registered now. */
    readonly registeredHash: string,
  ) {
    const name = workflowName;
    super(
      'TOPOLOGY_CHANGED',
      `workflow ${JSON.stringify(workflowId)} ("${name}") started with topology ${recordedHash.slice(0, 12)}, but "${name}" is registered as ${registeredHash.slice(0, 12)} now: it is not resumed. Resume it from a process that registers the old version (rt.register('${name}', oldTopology)), or close it with rt.markFailed('${workflowId}') / keel resume --mark-failed ${workflowId}.`,
    );
  }
}

/** True when `e` is a {@link TopologyChangedError}. */
export function isTopologyChangedError(e: unknown): e is TopologyChangedError {
  return isKeelError(e) && e.code === 'TOPOLOGY_CHANGED';
}

/** A workflow id the log does not know (never started here, or pruned by retention). */
export class UnknownWorkflowError extends KeelError {
  constructor(readonly workflowId: string) {
    super(
      'UNKNOWN_WORKFLOW',
      `no workflow ${JSON.stringify(workflowId)} in this log (a typo, another log, or pruned by retention); list them with keel workflows --db <file>`,
    );
  }
}

/** True when `e` is an {@link UnknownWorkflowError}. */
export function isUnknownWorkflowError(e: unknown): e is UnknownWorkflowError {
  return isKeelError(e) && e.code === 'UNKNOWN_WORKFLOW';
}

/** A signal (or a resume) reached a workflow that already ended. */
export class WorkflowFinishedError extends KeelError {
  constructor(
    readonly workflowId: string,
    /** Its end event: `workflow.completed`, `.failed`, `.cancelled` or `.interrupted`. */
    readonly endType: string,
  ) {
    super(
      'WORKFLOW_FINISHED',
      `workflow ${JSON.stringify(workflowId)} already ended (${endType}): there is nothing to signal; read its outcome with rt.result('${workflowId}')`,
    );
  }
}

/** True when `e` is a {@link WorkflowFinishedError}. */
export function isWorkflowFinishedError(e: unknown): e is WorkflowFinishedError {
  return isKeelError(e) && e.code === 'WORKFLOW_FINISHED';
}

/** A signal named a wait the workflow is not in (another name, or it is not waiting at all). */
export class WorkflowNotWaitingError extends KeelError {
  constructor(
    readonly workflowId: string,
    readonly signal: string,
    /** The wait it is in, if any. */
    readonly waitingFor: string | undefined,
  ) {
    super(
      'WORKFLOW_NOT_WAITING',
      waitingFor === undefined
        ? `workflow ${JSON.stringify(workflowId)} is not waiting for a signal (it is running or was never suspended); signal "${signal}" was not delivered`
        : `workflow ${JSON.stringify(workflowId)} waits for "${waitingFor}", not "${signal}": send rt.signal('${workflowId}', '${waitingFor}', value)`,
    );
  }
}

/** True when `e` is a {@link WorkflowNotWaitingError}. */
export function isWorkflowNotWaitingError(e: unknown): e is WorkflowNotWaitingError {
  return isKeelError(e) && e.code === 'WORKFLOW_NOT_WAITING';
}

/** A signal's value failed the wait's schema: nothing was recorded, the workflow still waits. */
export class SignalValidationError extends KeelError {
  constructor(
    readonly workflowId: string,
    readonly signal: string,
    readonly problem: string,
  ) {
    super(
      'SIGNAL_INVALID',
      `signal "${signal}" for workflow ${JSON.stringify(workflowId)} does not match the schema of waitFor('${signal}'): ${problem}. Nothing was recorded; the workflow still waits.`,
    );
  }
}

/** True when `e` is a {@link SignalValidationError}. */
export function isSignalValidationError(e: unknown): e is SignalValidationError {
  return isKeelError(e) && e.code === 'SIGNAL_INVALID';
}

/** The wait passed its timeout: a late signal is refused (the workflow fails with `timeout` on resume). */
export class WaitTimedOutError extends AgentFailedError {
  constructor(
    readonly workflowId: string,
    readonly signal: string,
    readonly timeoutAt: number,
    path?: string,
  ) {
    super(
      'timeout',
      `waitFor('${signal}') of workflow ${JSON.stringify(workflowId)} timed out at ${new Date(timeoutAt).toISOString()} without a signal`,
      path !== undefined ? { path } : {},
    );
  }
}

/** True when `e` is a {@link WaitTimedOutError}. */
export function isWaitTimedOutError(e: unknown): e is WaitTimedOutError {
  return isKeelError(e) && e instanceof WaitTimedOutError;
}

/**
 * What `rt.run()` rejects with when its workflow reached a `waitFor` node: it is suspended in the
 * log (`workflow.waiting`), not failed. Deliver the value with `rt.signal(workflowId, signal, value)`
 * (any process sharing the log); then `rt.result(workflowId)` answers with its result.
 */
export class WorkflowWaitingError extends KeelError {
  constructor(
    readonly workflowId: string,
    readonly signal: string,
    readonly timeoutAt: number | undefined,
  ) {
    super(
      'WORKFLOW_WAITING',
      `workflow ${JSON.stringify(workflowId)} is waiting for signal "${signal}"${timeoutAt !== undefined ? ` until ${new Date(timeoutAt).toISOString()}` : ''}: send it with rt.signal('${workflowId}', '${signal}', value) or keel signal --db <file> ${workflowId} ${signal} '<json>', then read the result with rt.result('${workflowId}')`,
    );
  }
}

/** True when `e` is a {@link WorkflowWaitingError}. */
export function isWorkflowWaitingError(e: unknown): e is WorkflowWaitingError {
  return isKeelError(e) && e.code === 'WORKFLOW_WAITING';
}

/** Another live runtime holds the workflow (it runs or resumes it): try again once it has let go. */
export class WorkflowBusyError extends KeelError {
  constructor(readonly workflowId: string) {
    super(
      'WORKFLOW_BUSY',
      `workflow ${JSON.stringify(workflowId)} is held by another live runtime (running, resuming or being signalled): try again in a moment`,
    );
  }
}

/** True when `e` is a {@link WorkflowBusyError}. */
export function isWorkflowBusyError(e: unknown): e is WorkflowBusyError {
  return isKeelError(e) && e.code === 'WORKFLOW_BUSY';
}

/** No topology is registered under the workflow's name in this runtime. */
export class TopologyNotRegisteredError extends KeelError {
  constructor(
    readonly workflowId: string,
    readonly workflowName: string,
  ) {
    const name = workflowName;
    super(
      'TOPOLOGY_NOT_REGISTERED',
      `workflow ${JSON.stringify(workflowId)} runs topology "${name}", which this runtime has not registered: call rt.register('${name}', topology) before rt.resume() or rt.signal()`,
    );
  }
}

/** True when `e` is a {@link TopologyNotRegisteredError}. */
export function isTopologyNotRegisteredError(e: unknown): e is TopologyNotRegisteredError {
  return isKeelError(e) && e.code === 'TOPOLOGY_NOT_REGISTERED';
}

/** The event store has no `ownership()` (a custom store): durable execution needs it. */
export class OwnershipUnsupportedError extends KeelError {
  constructor() {
    super(
      'OWNERSHIP_UNSUPPORTED',
      'this event store has no ownership() (leases and claims), which resume and signals need: use the SQLite or Postgres store',
    );
  }
}
