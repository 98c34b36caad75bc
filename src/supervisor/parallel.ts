/** `par(a, b, …)`: run children at the same time on the same input. */
import { Observable, type Subscriber, type Unsubscribable } from 'rxjs';
import { childContext } from './children.js';
import type { Exec, Executor } from './execute.js';
import { runChild, type ChildSink } from './run-child.js';
import type { NodeContext } from './scope.js';
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

/**
 * Runs a `par` node (its entry in `execute.ts`'s executor map): one {@link ParRun} per subscription
 * and one small record per child (no closures per child).
 */
export const executePar: Executor = (node, input, ctx, exec) =>
  new Observable<NodeResult>((subscriber) => {
    const run = new ParRun(node, input, ctx, exec, subscriber);
    run.launchAll();
    return () => run.cancel();
  });

/** One subscription of a `par` node: its children's results and subscriptions. */
class ParRun {
  readonly values: unknown[];
  private readonly subs: (Unsubscribable | undefined)[];
  private readonly limit: number;
  private confidence: number | undefined;
  private next = 0;
  private done = 0;
  failed = false;

  constructor(
    private readonly node: Composite<never, unknown>,
    private readonly input: unknown,
    private readonly ctx: NodeContext,
    private readonly exec: Exec,
    readonly subscriber: Subscriber<NodeResult>,
  ) {
    const n = node.children.length;
    this.limit = Math.min((node.options.concurrency as number | undefined) ?? n, n);
    this.values = new Array<unknown>(n);
    this.subs = new Array<Unsubscribable | undefined>(n);
  }

  launchAll(): void {
    while (this.next < this.limit && !this.failed) this.launch(this.next++);
  }

  private launch(i: number): void {
    const { node, ctx } = this;
    const child = new ParChild(this, i);
    const running = runChild(
      this.exec,
      node.children[i] as AnyTopology,
      this.input,
      childContext(ctx, node.children, i),
      child,
    );
    if (!child.settled) this.subs[i] = running; // (a child may answer while it is being started)
  }

  /** Child `i` answered `r`. */
  answered(i: number, r: NodeResult): void {
    this.values[i] = r.value;
    if (r.confidence !== undefined) this.confidence = Math.min(this.confidence ?? 1, r.confidence);
  }

  /** Child `i` completed: the node answers once all have, else the next waiting child starts. */
  completed(i: number): void {
    this.subs[i] = undefined;
    const n = this.values.length;
    this.done++;
    if (this.done === n) {
      const join = this.node.options.join as ((outputs: unknown[]) => unknown) | undefined;
      let value: unknown = this.values;
      try {
        if (join) value = join(this.values);
      } catch (e) {
        this.subscriber.error(e);
        return;
      }
      const confidence = this.confidence;
      this.subscriber.next(confidence === undefined ? { value } : { value, confidence });
      this.subscriber.complete();
    } else if (this.next < n) {
      this.launch(this.next++);
    }
  }

  cancel(): void {
    const subs = this.subs;
    for (let i = 0; i < subs.length; i++) {
      const s = subs[i];
      subs[i] = undefined;
      s?.unsubscribe();
    }
  }
}

/** Where child `index` of a {@link ParRun} reports. */
class ParChild implements ChildSink {
  private got = false;
  /** Completed or failed. */
  settled = false;

  constructor(
    private readonly run: ParRun,
    private readonly index: number,
  ) {}

  next(r: NodeResult): void {
    if (this.run.failed) return;
    this.got = true;
    this.run.answered(this.index, r);
  }

  error(err: unknown): void {
    this.settled = true;
    if (this.run.failed) return;
    this.run.failed = true;
    this.run.subscriber.error(err);
  }

  complete(): void {
    this.settled = true;
    if (this.run.failed) return;
    if (!this.got) this.run.values[this.index] = undefined;
    this.run.completed(this.index);
  }
}
