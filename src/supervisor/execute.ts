/**
 * Turns a topology into a cold Observable: subscribing runs it, unsubscribing cancels whatever is
 * still in flight (each agent's AbortSignal fires). Each kind's executor lives in its own file.
 */
import { Observable, catchError, of, retry, throwError } from 'rxjs';
import type { Agent } from './agent.js';
import { isWorkflowCancelledError } from './errors.js';
import { invokeAgent } from './invoke.js';
import type { NodeContext } from './scope.js';
import type { AnyTopology, Composite, NodeResult } from './topology.js';

/** Runs a child node: what executors call for their children. */
export type Exec = (node: AnyTopology, input: unknown, ctx: NodeContext) => Observable<NodeResult>;

/** A composite kind's executor. */
export type Executor = (
  node: Composite<never, unknown>,
  input: unknown,
  ctx: NodeContext,
  exec: Exec,
) => Observable<NodeResult>;

const executors = new Map<string, Executor>();

/** Registers the executor of a composite kind (each topology file registers its own). @internal */
export function registerExecutor(kind: Composite['kind'], executor: Executor): void {
  executors.set(kind, executor);
}

/** The path segment of child `index` among `siblings`. */
export function childSegment(siblings: readonly AnyTopology[], index: number): string {
  const child = siblings[index] as AnyTopology;
  if (child.kind === 'agent') {
    let dup = false;
    for (let i = 0; i < siblings.length && !dup; i++) dup = i !== index && siblings[i]?.name === child.name;
    return dup ? `${child.name}[${index}]` : child.name;
  }
  return `${child.name ?? child.kind}[${index}]`;
}

/** The context of child `index` of the node running in `ctx`. */
export function childContext(ctx: NodeContext, siblings: readonly AnyTopology[], index: number): NodeContext {
  return { ...ctx, path: `${ctx.path}/${childSegment(siblings, index)}` };
}

function runAgent(agent: Agent<never, unknown>, input: unknown, ctx: NodeContext): Observable<NodeResult> {
  // Unsubscribing cancels the invocation (a no-op once it has settled).
  return new Observable<NodeResult>((subscriber) => invokeAgent(agent, input, ctx, subscriber));
}

/** Runs any node under its supervision policy (`onError`). */
export const exec: Exec = (node, input, ctx) => {
  let run: Observable<NodeResult>;
  if (node.kind === 'agent') {
    run = runAgent(node, input, ctx);
  } else {
    const executor = executors.get(node.kind);
    if (!executor)
      return throwError(() => new TypeError(`no executor registered for topology kind "${node.kind}"`));
    run = executor(node, input, ctx, exec);
  }
  const policy = node.onError;
  if (policy === undefined || policy === 'fail') return run;
  if (typeof policy === 'object' && 'retry' in policy) {
    return run.pipe(retry({ count: policy.retry, resetOnSuccess: false, delay: retryUnlessCancelled }));
  }
  const fallbackValue = policy === 'skip' ? undefined : policy.value;
  return run.pipe(
    catchError((err: unknown) =>
      isWorkflowCancelledError(err) ? throwError(() => err) : of({ value: fallbackValue }),
    ),
  );
};

function retryUnlessCancelled(err: unknown): Observable<number> {
  return isWorkflowCancelledError(err) ? throwError(() => err) : of(0);
}
