/**
 * Turns a topology into a cold Observable: subscribing runs it, unsubscribing cancels whatever is
 * still in flight (each agent's AbortSignal fires). Each kind's executor lives in its own file; the
 * map below names them all, so importing this module is enough to run any topology.
 */
import { Observable, catchError, of, retry, throwError } from 'rxjs';
import type { Agent } from './agent.js';
import { executeBranch } from './branch.js';
import { executeCanary } from './canary.js';
import { executeCascade } from './cascade.js';
import { executeDeadline } from './deadline.js';
import { isWorkflowCancelledError } from './errors.js';
import { executeFallback } from './fallback.js';
import { invokeAgent } from './invoke.js';
import { executeMap } from './map.js';
import { executePar } from './parallel.js';
import type { NodeContext } from './scope.js';
import { executeSeq } from './sequential.js';
import type { AnyTopology, Composite, CompositeKind, NodeResult } from './topology.js';
import { executeVote } from './vote.js';
import { executeWaitFor } from '../durable/wait.js';

export { childContext, childSegment } from './children.js';

/** Runs a child node: what executors call for their children. */
export type Exec = (node: AnyTopology, input: unknown, ctx: NodeContext) => Observable<NodeResult>;

/** A composite kind's executor. */
export type Executor = (
  node: Composite<never, unknown>,
  input: unknown,
  ctx: NodeContext,
  exec: Exec,
) => Observable<NodeResult>;

/** Every composite kind's executor (a kind without one does not type-check). */
const EXECUTORS: Readonly<Record<CompositeKind, Executor>> = Object.freeze({
  seq: executeSeq,
  par: executePar,
  vote: executeVote,
  cascade: executeCascade,
  fallback: executeFallback,
  branch: executeBranch,
  map: executeMap,
  deadline: executeDeadline,
  canary: executeCanary,
  waitFor: executeWaitFor,
});

function runAgent(agent: Agent<never, unknown>, input: unknown, ctx: NodeContext): Observable<NodeResult> {
  // A resumed workflow replays what its record holds and runs the rest live (src/durable).
  const resume = ctx.scope.resume;
  return resume ? resume.runAgent(agent, input, ctx, runAgentLive) : runAgentLive(agent, input, ctx);
}

function runAgentLive(
  agent: Agent<never, unknown>,
  input: unknown,
  ctx: NodeContext,
): Observable<NodeResult> {
  // Unsubscribing cancels the invocation (a no-op once it has settled).
  return new Observable<NodeResult>((subscriber) => invokeAgent(agent, input, ctx, subscriber));
}

/** Runs any node under its supervision policy (`onError`). */
export const exec: Exec = (node, input, ctx) => {
  let run: Observable<NodeResult>;
  if (node.kind === 'agent') {
    run = runAgent(node, input, ctx);
  } else {
    // A node built by hand (not by a combinator) may name a kind that does not exist.
    const executor = Object.hasOwn(EXECUTORS, node.kind) ? EXECUTORS[node.kind] : undefined;
    if (!executor)
      return throwError(
        () =>
          new TypeError(
            `no executor for topology kind "${node.kind}"; build nodes with the combinators (seq, par, vote, ...)`,
          ),
      );
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
