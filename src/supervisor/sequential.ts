/** `seq(a, b, …)`: each step gets the previous step's output. */
import { concatMap, defer, of, type Observable } from 'rxjs';
import { childContext } from './children.js';
import type { Executor } from './execute.js';
import type { NodeResult, Topology } from './topology.js';
import { composite, type AnyTopology, type Composite } from './topology.js';

/**
 * Runs steps one after another; each step's input is the previous step's output (use `map(fn)`
 * between steps to reshape it). Latency is the sum of the steps'.
 *
 * @example
 * const invoice = seq(par(vendor, amount, date), map(([v, a, d]) => ({ v, a, d })), validate, route);
 */
export function seq<I, A>(a: Topology<I, A>): Composite<I, A>;
export function seq<I, A, B>(a: Topology<I, A>, b: Topology<A, B>): Composite<I, B>;
export function seq<I, A, B, C>(a: Topology<I, A>, b: Topology<A, B>, c: Topology<B, C>): Composite<I, C>;
export function seq<I, A, B, C, D>(
  a: Topology<I, A>,
  b: Topology<A, B>,
  c: Topology<B, C>,
  d: Topology<C, D>,
): Composite<I, D>;
export function seq<I, A, B, C, D, E>(
  a: Topology<I, A>,
  b: Topology<A, B>,
  c: Topology<B, C>,
  d: Topology<C, D>,
  e: Topology<D, E>,
): Composite<I, E>;
export function seq(...steps: Topology<never, unknown>[]): Composite<unknown, unknown>;
export function seq(...steps: Topology<never, unknown>[]): Composite<unknown, unknown> {
  if (steps.length === 0) throw new RangeError('seq(): give at least one step');
  return composite('seq', steps as AnyTopology[]);
}

/** Runs a `seq` node (its entry in `execute.ts`'s executor map). */
export const executeSeq: Executor = (node, input, ctx, exec): Observable<NodeResult> =>
  defer(() => {
    let chain: Observable<NodeResult> = of({ value: input });
    node.children.forEach((child, i) => {
      const childCtx = childContext(ctx, node.children, i);
      chain = chain.pipe(concatMap((r) => exec(child, r.value, childCtx)));
    });
    return chain;
  });
