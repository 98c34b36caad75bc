/** `par(a, b, …)`: run children at the same time on the same input. */
import { Observable, type Subscription } from 'rxjs';
import { childContext } from './children.js';
import type { Executor } from './execute.js';
import type { NodeResult, OutputOf, Topology } from './topology.js';
import { composite, type AnyTopology, type Composite } from './topology.js';

/** Options of {@link parWith}. */
export interface ParOptions<O> {
  /** At most this many children run at once (a bulkhead); default: all. */
  concurrency?: number;
  /** Combines the children's outputs (in child order); default: the array of outputs. */
  join?: (outputs: unknown[]) => O;
}

/**
 * Runs children concurrently on the same input; resolves to their outputs in child order. Latency
 * is the slowest child's, not the sum (the seed's 5 s + 6 s + 7 s: 7 s, not 18 s).
 *
 * @example
 * const extract = par(vendor, amount, date); // → [vendorOut, amountOut, dateOut]
 */
export function par<I, T extends readonly Topology<I, unknown>[]>(
  ...children: T
): Composite<I, { -readonly [K in keyof T]: OutputOf<T[K]> }> {
  if (children.length === 0) throw new RangeError('par(): give at least one child');
  return composite('par', children as unknown as AnyTopology[]);
}

/**
 * `par` with a concurrency limit and/or a join.
 *
 * @example
 * const screened = parWith({ concurrency: 2, join: (outs) => outs.every(Boolean) }, a, b, c, d);
 */
export function parWith<I, O>(options: ParOptions<O>, ...children: Topology<I, unknown>[]): Composite<I, O> {
  if (children.length === 0) throw new RangeError('parWith(): give at least one child');
  const c = options.concurrency;
  if (c !== undefined && !(Number.isInteger(c) && c >= 1))
    throw new RangeError(`parWith(): concurrency must be an integer >= 1, got ${String(c)}`);
  return composite('par', children as unknown as AnyTopology[], { ...options });
}

/** Runs a `par` node (its entry in `execute.ts`'s executor map). */
export const executePar: Executor = (node, input, ctx, exec) =>
  new Observable<NodeResult>((subscriber) => {
    const children = node.children;
    const n = children.length;
    const limit = (node.options.concurrency as number | undefined) ?? n;
    const join = node.options.join as ((outputs: unknown[]) => unknown) | undefined;
    const values = new Array<unknown>(n);
    const subs: (Subscription | undefined)[] = new Array<Subscription | undefined>(n);
    let confidence: number | undefined;
    let next = 0;
    let done = 0;
    let failed = false;
    const launch = (i: number): void => {
      let got = false;
      subs[i] = exec(children[i] as AnyTopology, input, childContext(ctx, children, i)).subscribe({
        next: (r) => {
          got = true;
          values[i] = r.value;
          if (r.confidence !== undefined) confidence = Math.min(confidence ?? 1, r.confidence);
        },
        error: (err: unknown) => {
          failed = true;
          subscriber.error(err);
        },
        complete: () => {
          if (failed) return;
          if (!got) values[i] = undefined;
          done++;
          if (done === n) {
            let value: unknown = values;
            try {
              if (join) value = join(values);
            } catch (e) {
              subscriber.error(e);
              return;
            }
            subscriber.next(confidence === undefined ? { value } : { value, confidence });
            subscriber.complete();
          } else if (next < n) {
            launch(next++);
          }
        },
      });
    };
    while (next < Math.min(limit, n) && !failed) launch(next++);
    return () => {
      for (const s of subs) s?.unsubscribe();
    };
  });
