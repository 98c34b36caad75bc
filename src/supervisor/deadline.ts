/** `withDeadline(ms, topology)`: the whole subtree must finish within `ms`. */
import { throwError, timeout } from 'rxjs';
import { clockScheduler } from '../core/clock.js';
import { AgentTimeoutError } from './errors.js';
import type { Executor } from './execute.js';
import type { Topology } from './topology.js';
import { composite, type AnyTopology, type Composite } from './topology.js';

/**
 * Gives a subtree a deadline. The remaining time caps every agent's `timeoutMs` inside it, and when
 * the deadline passes whatever is still running is cancelled (its AbortSignals fire) and the node
 * fails with category `timeout`.
 *
 * @example
 * const invoice = withDeadline(10_000, seq(par(vendor, amount, date), validate, route)); // the seed's SLA
 */
export function withDeadline<I, O>(deadlineMs: number, topology: Topology<I, O>): Composite<I, O> {
  if (!(deadlineMs > 0) || !Number.isFinite(deadlineMs))
    throw new RangeError(`withDeadline(): deadlineMs must be a positive number of ms, got ${deadlineMs}`);
  return composite('deadline', [topology], { deadlineMs });
}

/** Runs a `deadline` node (its entry in `execute.ts`'s executor map). */
export const executeDeadline: Executor = (node, input, ctx, exec) => {
  const ms = node.options.deadlineMs as number;
  const clock = ctx.scope.services.clock;
  const at = clock.now() + ms;
  const deadlineAt = ctx.deadlineAt === undefined ? at : Math.min(ctx.deadlineAt, at);
  // Replay delivers recorded answers at their recorded times, which include the live run's own
  // delays; every answer recorded under this deadline came before it fired live, so not before them.
  const settled = ctx.scope.replay?.settledBy?.(ctx.path);
  const firesAt = settled === undefined ? deadlineAt : Math.max(deadlineAt, settled + 0.0005);
  // A deadline wraps its child without adding a path segment.
  return exec(node.children[0] as AnyTopology, input, { ...ctx, deadlineAt }).pipe(
    timeout({
      first: Math.max(0, firesAt - clock.now()),
      scheduler: clockScheduler(clock),
      with: () =>
        throwError(
          () => new AgentTimeoutError(`deadline of ${ms} ms passed at ${ctx.path}`, { path: ctx.path }),
        ),
    }),
  );
};
