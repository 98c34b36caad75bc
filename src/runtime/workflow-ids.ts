/**
 * Workflow ids at `rt.run` / `rt.run$`: what a caller may pass (well-formed, not reserved), the
 * strings of a topology that end up in the log, and what the log already says about an id — a
 * `workflowId` is an idempotency key, so a run under a recorded id gets the recorded outcome.
 */
import { tenantIdProblem } from '../core/tenant.js';
import { assertWellFormed } from '../core/unicode.js';
import type { KeelEvent } from '../eventlog/events.js';
import type { AnyTopology } from '../supervisor/topology.js';
import {
  InvalidTenantError,
  InvalidWorkflowIdError,
  RESERVED_WORKFLOW_ID_PREFIX,
  RecordedWorkflowFailureError,
  ReservedWorkflowIdError,
  WorkflowIdConflictError,
  WorkflowInProgressError,
  WorkflowTenantConflictError,
} from './errors.js';

/**
 * Checks a caller's `workflowId`: a non-empty, well-formed string outside the reserved set (ids
 * starting with `_`). NUL and astral characters are allowed.
 *
 * @throws InvalidWorkflowIdError, IllFormedUnicodeError or ReservedWorkflowIdError.
 */
export function checkWorkflowId(id: unknown): string {
  if (typeof id !== 'string') throw new InvalidWorkflowIdError(`is ${typeof id}, not a string`);
  if (id.length === 0) throw new InvalidWorkflowIdError('is empty');
  assertWellFormed('RunOptions.workflowId', id);
  if (id.startsWith(RESERVED_WORKFLOW_ID_PREFIX)) throw new ReservedWorkflowIdError(id);
  return id;
}

/**
 * Checks a caller's `tenant`: 1 to 64 letters, digits, `_`, `-`, `.` or `:`, starting with a letter
 * or digit (so no NUL, spaces, `@` or lone surrogates). PII is checked apart, by the detectors.
 *
 * @throws InvalidTenantError naming the problem and the fix.
 */
export function checkTenant(tenant: unknown, field = 'RunOptions.tenant'): string {
  const problem = tenantIdProblem(tenant);
  if (problem !== undefined) throw new InvalidTenantError(field, problem);
  return tenant as string;
}

/**
 * Checks every string of a topology that is stored or hashed — composite names, agent names,
 * versions, task types, models, breaker names — for lone surrogates.
 *
 * @throws IllFormedUnicodeError naming the node and field.
 */
export function checkTopologyStrings(t: AnyTopology): void {
  if (t.kind === 'agent') {
    const where = `agent ${JSON.stringify(t.name)}`;
    assertWellFormed(`${where}.name`, t.name);
    assertWellFormed(`${where}.taskType`, t.taskType);
    assertWellFormed(`${where}.version`, t.version);
    assertWellFormed(`${where}.model`, t.model);
    if (t.breaker) assertWellFormed(`${where}.breaker.name`, t.breaker.name);
    return;
  }
  if (t.name !== undefined) assertWellFormed(`${t.kind} topology name`, t.name);
  for (const c of t.children) checkTopologyStrings(c);
}

/** A workflow as the log records it: the run that ended, or why a run under its id cannot go ahead. */
export type RecordedWorkflow =
  | {
      kind: 'completed';
      output: unknown;
      confidence: number | undefined;
      costUsd: number;
      latencyMs: number;
      agentsCalled: number;
    }
  | { kind: 'refused'; error: Error };

/**
 * What the log says about `workflowId`, given the events recorded under it: `undefined` when it
 * never started (a fresh id); its recorded result when it completed; otherwise an error to refuse
 * the run with — another workflow's id ({@link WorkflowIdConflictError}), another tenant's (with
 * `requested`: {@link WorkflowTenantConflictError}), one still running
 * elsewhere or cut off by a crash ({@link WorkflowInProgressError}), or one that failed, was
 * cancelled or interrupted ({@link RecordedWorkflowFailureError}). A pure fold of the events.
 */
export function recordedWorkflow(
  workflowId: string,
  requestedName: string,
  events: readonly KeelEvent[],
  requested?: { tenant?: string | undefined },
): RecordedWorkflow | undefined {
  let started: KeelEvent<'workflow.started'> | undefined;
  let end:
    | KeelEvent<'workflow.completed' | 'workflow.failed' | 'workflow.cancelled' | 'workflow.interrupted'>
    | undefined;
  for (const e of events) {
    switch (e.type) {
      case 'workflow.started':
        started ??= e;
        break;
      case 'workflow.completed':
      case 'workflow.failed':
      case 'workflow.cancelled':
        // A real end wins over an interrupted mark (a process that was still running when marked).
        if (end === undefined || end.type === 'workflow.interrupted') end = e;
        break;
      case 'workflow.interrupted':
        end ??= e;
        break;
      default:
        break;
    }
  }
  if (started === undefined && end === undefined) return undefined;
  // Retention may have pruned the start of a very old workflow: its end still answers.
  if (started !== undefined && started.payload.name !== requestedName) {
    return {
      kind: 'refused',
      error: new WorkflowIdConflictError(workflowId, started.payload.name, requestedName),
    };
  }
  if (requested !== undefined) {
    // Every event of a tenant's workflow carries its tenant; an untenanted one carries none.
    const recordedTenant = (started ?? end)?.payload.tenant;
    if (recordedTenant !== requested.tenant) {
      return {
        kind: 'refused',
        error: new WorkflowTenantConflictError(workflowId, recordedTenant, requested.tenant),
      };
    }
  }
  if (end === undefined) {
    return { kind: 'refused', error: new WorkflowInProgressError(workflowId, started?.seq ?? 0) };
  }
  switch (end.type) {
    case 'workflow.completed':
      return {
        kind: 'completed',
        output: end.payload.output,
        confidence: end.payload.confidence,
        costUsd: end.payload.costUsd,
        latencyMs: end.payload.latencyMs,
        agentsCalled: end.payload.agentsCalled,
      };
    case 'workflow.failed':
      return {
        kind: 'refused',
        error: new RecordedWorkflowFailureError(
          workflowId,
          end.type,
          end.seq,
          end.payload.category,
          end.payload.message,
        ),
      };
    case 'workflow.cancelled':
      return {
        kind: 'refused',
        error: new RecordedWorkflowFailureError(
          workflowId,
          end.type,
          end.seq,
          'cancelled',
          end.payload.reason,
        ),
      };
    case 'workflow.interrupted':
      return {
        kind: 'refused',
        error: new RecordedWorkflowFailureError(
          workflowId,
          end.type,
          end.seq,
          'unknown',
          `interrupted (${end.payload.reason})`,
        ),
      };
  }
}
