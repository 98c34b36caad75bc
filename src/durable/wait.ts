/**
 * `waitFor(name, { timeoutMs, schema })`: a topology node that suspends its workflow until a person
 * or another system delivers a value with `rt.signal(workflowId, name, value)`. The wait is an
 * event (`workflow.waiting`), not a timer or a promise: the process lets go of the workflow, and any
 * process sharing the log continues it once the signal arrives — after a restart too. The timeout
 * is recorded as a time (`timeoutAt`) and honoured when the workflow is next resumed.
 */
import { Observable } from 'rxjs';
import type { ZodType } from 'zod';
import { ConfigError, isKeelError } from '../core/errors.js';
import type { Executor } from '../supervisor/execute.js';
import { WorkflowCancelledError } from '../supervisor/errors.js';
import { composite, type Composite, type NodeResult } from '../supervisor/topology.js';
import { WaitTimedOutError } from './errors.js';

/** Options of {@link waitFor}. */
export interface WaitForOptions<V> {
  /**
   * Longest wait, ms (default: no timeout). Once it passed, a late signal is refused and the
   * workflow fails with category `timeout` when it is next resumed (`rt.resume()`).
   */
  timeoutMs?: number;
  /**
   * Validates a signalled value (zod); `rt.signal` refuses one that does not match
   * (`SignalValidationError`) and the workflow keeps waiting. Default: any JSON value.
   */
  schema?: ZodType<V>;
}

/** Internal options of a `waitFor` node: `_schema` stays out of the described topology. */
interface WaitNodeOptions {
  signal: string;
  timeoutMs?: number;
  _schema?: ZodType;
}

/**
 * A node that waits for the signal `name` and outputs its value.
 *
 * @example
 * const approval = waitFor('approval', { timeoutMs: 86_400_000, schema: z.object({ approved: z.boolean() }) });
 * const invoice = named('invoice', seq(extract, approval, book));
 * // later, anywhere sharing the log:
 * await rt.signal(workflowId, 'approval', { approved: true });
 */
export function waitFor<V = unknown>(name: string, options: WaitForOptions<V> = {}): Composite<unknown, V> {
  if (typeof name !== 'string' || name.trim() === '' || !name.isWellFormed()) {
    throw new ConfigError('waitFor(name)', 'must be a non-empty string naming the signal, e.g. "approval"');
  }
  const { timeoutMs, schema } = options;
  if (
    timeoutMs !== undefined &&
    !(typeof timeoutMs === 'number' && Number.isFinite(timeoutMs) && timeoutMs > 0)
  ) {
    throw new ConfigError(
      'waitFor.timeoutMs',
      `must be a number of ms > 0, e.g. 86_400_000 (a day); got ${String(timeoutMs)}`,
    );
  }
  if (schema !== undefined && typeof (schema as { safeParse?: unknown }).safeParse !== 'function') {
    throw new ConfigError('waitFor.schema', 'must be a zod schema, e.g. z.object({ approved: z.boolean() })');
  }
  const o: WaitNodeOptions = { signal: name, ...(timeoutMs !== undefined ? { timeoutMs } : {}) };
  if (schema !== undefined) o._schema = schema;
  return Object.freeze({ ...composite<unknown, V>('waitFor', [], { ...o }), name });
}

/** The signal name and schema of a `waitFor` node (internal: `rt.signal` validates with it). */
export function waitNodeOf(node: Composite): {
  signal: string;
  schema: ZodType | undefined;
  timeoutMs?: number;
} {
  const o = node.options as unknown as WaitNodeOptions;
  return {
    signal: o.signal,
    schema: o._schema,
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
  };
}

/**
 * What a `waitFor` node throws to suspend its workflow: a cancellation to the nodes above it (so no
 * `supervise`/`fallback` swallows it; siblings in flight are cancelled and run again on resume),
 * which the runtime turns into a suspended run rather than a failure.
 */
export class WorkflowSuspension extends WorkflowCancelledError {
  constructor(
    readonly signal: string,
    readonly path: string,
    readonly timeoutAt: number | undefined,
  ) {
    super(`suspended: waiting for signal "${signal}"`);
  }
}

/** True when `e` is a {@link WorkflowSuspension}. */
export function isWorkflowSuspension(e: unknown): e is WorkflowSuspension {
  return isKeelError(e) && e instanceof WorkflowSuspension;
}

/** The executor of `waitFor` nodes (`src/supervisor/execute.ts` maps the kind to it). @internal */
export const executeWaitFor: Executor = (node, _input, ctx): Observable<NodeResult> =>
  new Observable<NodeResult>((subscriber) => {
    const { signal, timeoutMs } = waitNodeOf(node);
    const { scope, path } = ctx;
    const clock = scope.services.clock;
    const now = clock.now();
    // Replay of a finished run: the signalled value comes from the record.
    const replayed = scope.replay?.signal?.(path);
    const recorded = replayed ?? scope.resume?.wait(path);
    let timeoutAt: number | undefined;
    if (recorded !== undefined) {
      if (recorded.signalled !== undefined) {
        subscriber.next({ value: recorded.signalled.value });
        subscriber.complete();
        return;
      }
      timeoutAt = recorded.timeoutAt;
      if (timeoutAt !== undefined && now >= timeoutAt) {
        subscriber.error(new WaitTimedOutError(scope.workflowId, signal, timeoutAt, path));
        return;
      }
    } else {
      timeoutAt = timeoutMs !== undefined ? now + timeoutMs : undefined;
      scope.emit({
        ts: now,
        workflowId: scope.workflowId,
        type: 'workflow.waiting',
        payload: { name: signal, path, ...(timeoutAt !== undefined ? { timeoutAt } : {}) },
      });
    }
    subscriber.error(new WorkflowSuspension(signal, path, timeoutAt));
  });
