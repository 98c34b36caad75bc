/**
 * Errors of the workflow lifecycle at `rt.run` / `rt.run$`: bad or reserved workflow ids, a
 * `workflowId` reused for another workflow, inputs and outputs the event log cannot store, and the
 * recorded failure of a workflow that already ran under the same id.
 */
import { KEEL_ERROR, KeelError, isKeelError } from '../core/errors.js';
import { TENANT_ID_FIX } from '../core/tenant.js';
import type { ErrorCategory } from '../eventlog/events.js';
import { AgentFailedError } from '../supervisor/errors.js';

/** Ids starting with this prefix are Keel's own (`_system` holds the runtime's events). */
export const RESERVED_WORKFLOW_ID_PREFIX = '_';

/**
 * `RunOptions.workflowId` is not a non-empty string. A `TypeError`: the caller's argument is wrong.
 */
export class InvalidWorkflowIdError extends TypeError {
  readonly [KEEL_ERROR] = true;
  readonly code = 'WORKFLOW_ID_INVALID';
  constructor(problem: string) {
    super(
      `RunOptions.workflowId ${problem}; pass a non-empty string (e.g. your request id) or leave it out for a generated one. Nothing was written.`,
    );
    this.name = 'InvalidWorkflowIdError';
  }
}

/** True when `e` is an {@link InvalidWorkflowIdError}. */
export function isInvalidWorkflowIdError(e: unknown): e is InvalidWorkflowIdError {
  return isKeelError(e) && (e as { code?: unknown }).code === 'WORKFLOW_ID_INVALID';
}

/**
 * `RunOptions.tenant` is not a valid tenant id: a string of 1 to 64 letters, digits, `_`, `-`, `.`
 * or `:` (no spaces, no `@`, no control characters, no lone surrogates). A `TypeError`: the
 * caller's argument is wrong. Nothing was written.
 */
export class InvalidTenantError extends TypeError {
  readonly [KEEL_ERROR] = true;
  readonly code = 'TENANT_INVALID';
  constructor(
    /** Where the id was given, e.g. `RunOptions.tenant`. */
    readonly field: string,
    problem: string,
  ) {
    super(`${field} ${problem}; ${TENANT_ID_FIX}. Nothing was written.`);
    this.name = 'InvalidTenantError';
  }
}

/** True when `e` is an {@link InvalidTenantError}. */
export function isInvalidTenantError(e: unknown): e is InvalidTenantError {
  return isKeelError(e) && (e as { code?: unknown }).code === 'TENANT_INVALID';
}

/**
 * `RunOptions.workflowId` is reserved for Keel: every id starting with `_` (such as `_system`, which
 * holds breaker, budget and alert events). A user workflow under it would mix with the runtime's.
 */
export class ReservedWorkflowIdError extends TypeError {
  readonly [KEEL_ERROR] = true;
  readonly code = 'WORKFLOW_ID_RESERVED';
  constructor(readonly workflowId: string) {
    super(
      `RunOptions.workflowId ${JSON.stringify(workflowId)} is reserved: ids starting with "${RESERVED_WORKFLOW_ID_PREFIX}" belong to Keel (e.g. "_system"). Use an id that does not start with "${RESERVED_WORKFLOW_ID_PREFIX}". Nothing was written.`,
    );
    this.name = 'ReservedWorkflowIdError';
  }
}

/** True when `e` is a {@link ReservedWorkflowIdError}. */
export function isReservedWorkflowIdError(e: unknown): e is ReservedWorkflowIdError {
  return isKeelError(e) && (e as { code?: unknown }).code === 'WORKFLOW_ID_RESERVED';
}

/**
 * A `workflowId` already names a workflow of another name (topology): the id is an idempotency key,
 * so a second run under it must be the same workflow. Nothing was run or written.
 */
export class WorkflowIdConflictError extends KeelError {
  constructor(
    readonly workflowId: string,
    /** Name of the workflow the id already belongs to. */
    readonly recordedName: string,
    /** Name of the workflow this run asked for. */
    readonly requestedName: string,
  ) {
    super(
      'WORKFLOW_ID_CONFLICT',
      `workflowId ${JSON.stringify(workflowId)} already belongs to workflow "${recordedName}", not "${requestedName}". A workflowId is an idempotency key: reuse it only to repeat the same workflow, and give a different workflow its own id. Nothing was run.`,
    );
  }
}

/** True when `e` is a {@link WorkflowIdConflictError}. */
export function isWorkflowIdConflictError(e: unknown): e is WorkflowIdConflictError {
  return isKeelError(e) && e.code === 'WORKFLOW_ID_CONFLICT';
}

/**
 * A `workflowId` already names a workflow of another tenant (or of no tenant, or this run has none):
 * a run under it must be the same tenant's, or one tenant could read another's recorded result or
 * join its run. Checked against the log (so across restarts) and the runs this runtime holds, before
 * anything is written. Nothing was run or written.
 */
export class WorkflowTenantConflictError extends KeelError {
  constructor(
    readonly workflowId: string,
    /** The tenant the id's workflow was started with (undefined: none). */
    readonly recordedTenant: string | undefined,
    /** The tenant this run asked for (undefined: none). */
    readonly requestedTenant: string | undefined,
  ) {
    const name = (t: string | undefined): string => (t === undefined ? 'no tenant' : `tenant "${t}"`);
    super(
      'WORKFLOW_TENANT_CONFLICT',
      `workflowId ${JSON.stringify(workflowId)} already belongs to a workflow of ${name(recordedTenant)}, not of ${name(requestedTenant)}. A workflowId is an idempotency key within one tenant: give each tenant's requests their own ids (e.g. prefix the request id with the tenant, "acme:req-42"), or pass the tenant the workflow was started with. Nothing was run.`,
    );
  }
}

/** True when `e` is a {@link WorkflowTenantConflictError}. */
export function isWorkflowTenantConflictError(e: unknown): e is WorkflowTenantConflictError {
  return isKeelError(e) && e.code === 'WORKFLOW_TENANT_CONFLICT';
}

/**
 * The log holds a `workflow.started` for this id and no end event, and this runtime is not running
 * it: another process (sharing the log) is, or a crash cut it off. It cannot be joined from here.
 */
export class WorkflowInProgressError extends KeelError {
  constructor(
    readonly workflowId: string,
    /** Seq of its `workflow.started`. */
    readonly startedSeq: number,
  ) {
    super(
      'WORKFLOW_IN_PROGRESS',
      `workflow ${JSON.stringify(workflowId)} started (seq ${startedSeq}) and has not ended: another process sharing the log is running it, or a crash cut it off. Retry once it ends; if its process died, close it with rt.markInterrupted({ startedBefore }) and run the work again under a new workflowId. Nothing was run.`,
    );
  }
}

/** True when `e` is a {@link WorkflowInProgressError}. */
export function isWorkflowInProgressError(e: unknown): e is WorkflowInProgressError {
  return isKeelError(e) && e.code === 'WORKFLOW_IN_PROGRESS';
}

/**
 * A run reused the `workflowId` of a workflow that already ended without a result (failed,
 * cancelled, or marked interrupted): the recorded failure, not a new attempt. `category` is the
 * recorded one. To try the work again, run it under a new id.
 */
export class RecordedWorkflowFailureError extends AgentFailedError {
  constructor(
    readonly workflowId: string,
    /** The recorded end event. */
    readonly endType: 'workflow.failed' | 'workflow.cancelled' | 'workflow.interrupted',
    /** Its seq in the log. */
    readonly seq: number,
    category: ErrorCategory,
    /** The recorded message (or cancellation/interruption reason). */
    readonly recordedMessage: string,
  ) {
    super(
      category,
      `workflow ${JSON.stringify(workflowId)} already ended: ${endType.slice('workflow.'.length)} (${category}) at seq ${seq}: ${recordedMessage}. A workflowId is an idempotency key, so this is its recorded outcome and nothing was run; to try the work again, use a new workflowId.`,
    );
  }
}

/** True when `e` is a {@link RecordedWorkflowFailureError}. */
export function isRecordedWorkflowFailureError(e: unknown): e is RecordedWorkflowFailureError {
  return isKeelError(e) && e instanceof RecordedWorkflowFailureError;
}

/**
 * A workflow's input cannot be stored in the event log (a circular reference, a bigint, a
 * non-finite number, a `toJSON()` that throws). Refused before anything is written. A `TypeError`.
 */
export class UnstorableInputError extends TypeError {
  readonly [KEEL_ERROR] = true;
  readonly code = 'INPUT_UNSTORABLE';
  constructor(
    /** Where in the input, from `$` (the input itself), e.g. `$.order.self`. */
    readonly path: string,
    readonly problem: string,
  ) {
    super(
      `workflow input at ${path} ${problem}. The input is recorded in the event log as JSON (for audit and replay): pass plain data — finite numbers, strings, arrays, objects without cycles. Nothing was written.`,
    );
    this.name = 'UnstorableInputError';
  }
}

/** True when `e` is an {@link UnstorableInputError}. */
export function isUnstorableInputError(e: unknown): e is UnstorableInputError {
  return isKeelError(e) && (e as { code?: unknown }).code === 'INPUT_UNSTORABLE';
}

/**
 * A workflow's output (or an agent's, on its way into the log) cannot be stored: a non-finite number,
 * a bigint, a function, a circular reference. The workflow ended with `workflow.failed`, category
 * `malformed_output`.
 */
export class UnstorableOutputError extends AgentFailedError {
  constructor(
    /** Where the bad value is, e.g. `$.total` in the workflow output or an event payload path. */
    readonly path: string,
    readonly problem: string,
  ) {
    super(
      'malformed_output',
      `output at ${path} ${problem}, so the event log cannot record it; the workflow failed (malformed_output). Return plain data from agents and topologies: finite numbers, strings, arrays, objects without cycles.`,
    );
  }
}

/** True when `e` is an {@link UnstorableOutputError}. */
export function isUnstorableOutputError(e: unknown): e is UnstorableOutputError {
  return isKeelError(e) && e instanceof UnstorableOutputError;
}
