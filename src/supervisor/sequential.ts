/** `seq(a, b, …)`: each step gets the previous step's output. */
import { Observable, type Subscriber, type Unsubscribable } from 'rxjs';
import { childContext } from './children.js';
import type { Exec, Executor } from './execute.js';
import { runChild, type ChildSink } from './run-child.js';
import type { NodeContext } from './scope.js';
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

/**
 * Runs a `seq` node (its entry in `execute.ts`'s executor map): each step's result starts the next
 * step on its value; the last step's result is the node's. Like a chain of `concatMap`s, but one
 * small record per running step instead of an operator subscriber and its closures per step.
 */
export const executeSeq: Executor = (node, input, ctx, exec): Observable<NodeResult> =>
  new Observable<NodeResult>((subscriber) => {
    const run: SeqRun = { node, ctx, exec, subscriber, deepest: undefined };
    new SeqStep(run, undefined, 0).start(input);
    return () => {
      // Cancels the running steps, deepest first (a step that finished holds no subscription).
      for (let s = run.deepest; s !== undefined; s = s.parent) s.cancel();
      run.deepest = undefined;
    };
  });

/** What the steps of one running `seq` share. */
interface SeqRun {
  readonly node: Composite<never, unknown>;
  readonly ctx: NodeContext;
  readonly exec: Exec;
  readonly subscriber: Subscriber<NodeResult>;
  /** The step started last (its `parent` chain holds the steps still waiting on it). */
  deepest: SeqStep | undefined;
}

/**
 * One run of step `index`. Each result it gives starts the next step (one at a time: a result
 * that arrives while the next step still runs waits for it, as in `concatMap`); the last step's
 * results go to the node's subscriber. The node completes once step 0 and everything it started
 * have completed.
 */
class SeqStep implements ChildSink {
  private running: Unsubscribable | undefined;
  private done = false;
  private closed = false;
  /** The next step started from this one's result, while it runs. */
  private child: SeqStep | undefined;
  /** Results that arrived while `child` ran (no built-in node gives more than one). */
  private waiting: NodeResult[] | undefined;

  constructor(
    private readonly run: SeqRun,
    readonly parent: SeqStep | undefined,
    private readonly index: number,
  ) {}

  start(input: unknown): void {
    const { node, ctx, exec } = this.run;
    this.run.deepest = this;
    const running = runChild(
      exec,
      node.children[this.index] as AnyTopology,
      input,
      childContext(ctx, node.children, this.index),
      this,
    );
    if (!this.done && !this.closed) this.running = running;
  }

  next(result: NodeResult): void {
    if (this.closed) return;
    const { run } = this;
    if (this.index === run.node.children.length - 1) run.subscriber.next(result);
    else if (this.child !== undefined) (this.waiting ??= []).push(result);
    else this.startChild(result);
  }

  error(error: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.running = undefined;
    this.run.subscriber.error(error);
  }

  complete(): void {
    if (this.closed) return;
    this.done = true;
    this.running = undefined;
    if (this.child === undefined) this.finished();
  }

  cancel(): void {
    this.closed = true;
    const running = this.running;
    this.running = undefined;
    running?.unsubscribe();
  }

  /** The step started from one of this step's results completed: start the next one, or finish. */
  childFinished(): void {
    this.child = undefined;
    this.run.deepest = this;
    const next = this.waiting?.shift();
    if (next !== undefined) this.startChild(next);
    else if (this.done) this.finished();
  }

  private startChild(result: NodeResult): void {
    this.child = new SeqStep(this.run, this, this.index + 1);
    this.child.start(result.value);
  }

  /** This step and everything it started completed. */
  private finished(): void {
    this.closed = true;
    if (this.parent !== undefined) this.parent.childFinished();
    else this.run.subscriber.complete();
  }
}
