/** `fallback(primary, secondary)`: when the primary fails, the secondary answers. */
import { catchError, throwError } from 'rxjs';
import { isWorkflowCancelledError } from './errors.js';
import { childContext } from './children.js';
import type { Executor } from './execute.js';
import type { Topology } from './topology.js';
import { composite, type AnyTopology, type Composite } from './topology.js';

/**
 * Runs `primary`; if it fails (for any reason but cancellation), runs `secondary` on the same input.
 *
 * @example
 * const extract = fallback(openaiVendor, anthropicVendor);
 */
export function fallback<I, O>(primary: Topology<I, O>, secondary: Topology<I, O>): Composite<I, O> {
  return composite('fallback', [primary, secondary]);
}

/** Runs a `fallback` node (its entry in `execute.ts`'s executor map). */
export const executeFallback: Executor = (node, input, ctx, exec) => {
  const [primary, secondary] = node.children as [AnyTopology, AnyTopology];
  return exec(primary, input, childContext(ctx, node.children, 0)).pipe(
    catchError((err: unknown) =>
      isWorkflowCancelledError(err)
        ? throwError(() => err)
        : exec(secondary, input, childContext(ctx, node.children, 1)),
    ),
  );
};
