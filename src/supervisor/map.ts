/** `map(fn)`: reshape a value between steps (no model call, no events). */
import { defer, from, map as rxMap, type Observable } from 'rxjs';
import type { Executor } from './execute.js';
import type { NodeResult } from './topology.js';
import { composite, type Composite } from './topology.js';

/**
 * A step that transforms its input with a (sync or async) function.
 *
 * @example
 * seq(par(vendor, amount, date), map(([vendor, amount, date]) => ({ vendor, amount, date })), validate);
 */
export function map<I, O>(fn: (input: I) => O | Promise<O>): Composite<I, O> {
  if (typeof fn !== 'function') throw new TypeError('map(): give a function');
  return composite('map', [], { fn });
}

/** Runs a `map` node (its entry in `execute.ts`'s executor map). */
export const executeMap: Executor = (node, input): Observable<NodeResult> =>
  defer(() => from(Promise.resolve((node.options.fn as (i: unknown) => unknown)(input)))).pipe(
    rxMap((value) => ({ value })),
  );
