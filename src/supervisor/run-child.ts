/**
 * How a composite runs one child: into a sink of its own (an object with `next`, `error` and
 * `complete`, usually one small record per child), returning what cancels it. An agent child with
 * no `onError` policy, outside a resumed workflow, is invoked directly — no Observable, subscriber
 * and finalizer list of its own while it waits on its model; every other child runs through `exec`.
 * The sink hears the same thing either way: one result then `complete`, or `error`; nothing once
 * it has been cancelled.
 */
import type { Unsubscribable } from 'rxjs';
import type { Exec } from './execute.js';
import { invokeAgent, type InvocationSink } from './invoke.js';
import type { NodeContext } from './scope.js';
import type { AnyTopology } from './topology.js';

/** Where a child's outcome goes. */
export type ChildSink = InvocationSink;

/**
 * Runs `node` on `input` into `sink`; `unsubscribe()` on the answer cancels it. A synchronous throw
 * while starting it reaches `sink.error`, as it would through an Observable.
 *
 * @example
 * const running = runChild(exec, child, input, childContext(ctx, node.children, 0), sink);
 * running.unsubscribe(); // cancels the child
 */
export function runChild(
  exec: Exec,
  node: AnyTopology,
  input: unknown,
  ctx: NodeContext,
  sink: ChildSink,
): Unsubscribable {
  const policy = node.onError;
  if (node.kind !== 'agent' || (policy !== undefined && policy !== 'fail') || ctx.scope.resume !== undefined)
    return exec(node, input, ctx).subscribe(sink);
  try {
    return invokeAgent(node, input, ctx, sink);
  } catch (e) {
    sink.error(e);
    return NOTHING;
  }
}

const NOTHING: Unsubscribable = Object.freeze({ unsubscribe: () => undefined });
