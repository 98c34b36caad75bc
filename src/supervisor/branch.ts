/** `branch(predicate, then, else)`: route an input to one of two topologies. */
import { defer, of } from 'rxjs';
import { childContext } from './children.js';
import type { Executor } from './execute.js';
import type { Topology } from './topology.js';
import { composite, type AnyTopology, type Composite } from './topology.js';

/**
 * Runs `then` when `predicate(input)` is true, else `otherwise` (or passes the input through).
 *
 * @example
 * const route = branch((inv: Invoice) => inv.amount > 10_000, seniorApproval, autoApprove);
 */
export function branch<I, O>(
  predicate: (input: I) => boolean,
  then: Topology<I, O>,
  otherwise?: Topology<I, O>,
): Composite<I, O> {
  if (typeof predicate !== 'function') throw new TypeError('branch(): predicate must be a function');
  const children = (otherwise ? [then, otherwise] : [then]) as unknown as AnyTopology[];
  return composite('branch', children, { predicate });
}

/** Runs a `branch` node (its entry in `execute.ts`'s executor map). */
export const executeBranch: Executor = (node, input, ctx, exec) =>
  defer(() => {
    const predicate = node.options.predicate as (input: unknown) => boolean;
    const index = predicate(input) ? 0 : 1;
    const child = node.children[index];
    return child ? exec(child, input, childContext(ctx, node.children, index)) : of({ value: input });
  });
