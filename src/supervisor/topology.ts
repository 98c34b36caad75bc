/**
 * The one `Topology` type every combinator returns. A topology is plain data (kind, children,
 * options) plus the agents' and user functions' code, so it can be described into the log
 * (`workflow.started.topology`) and re-run by replay.
 */
import { assertNameHasNoPii } from '../compliance/identifiers.js';
import { assertWellFormed } from '../core/unicode.js';
import type { Agent, AgentOutput } from './agent.js';

/** How a node's failure is handled by its parent. */
export type OnError<O = unknown> =
  /** Propagate the failure (default). */
  | 'fail'
  /** Resolve to `undefined` and carry on. */
  | 'skip'
  /** Resolve to this value instead. */
  | { value: O }
  /** Run the whole node again, up to `retry` more times, then fail. */
  | { retry: number };

/** Kinds of composite nodes. */
export type CompositeKind =
  'seq' | 'par' | 'vote' | 'cascade' | 'fallback' | 'branch' | 'map' | 'deadline' | 'canary' | 'waitFor';

/** A composite node. `I`/`O` are phantom: they type the combinators' inputs and outputs. */
export interface Composite<I = unknown, O = unknown> {
  readonly kind: CompositeKind;
  /** Display name; the root's name names the workflow. */
  readonly name: string | undefined;
  readonly children: readonly AnyTopology[];
  /** Kind-specific options; functions in it are code, the rest is described into the log. */
  readonly options: Readonly<Record<string, unknown>>;
  readonly onError: OnError | undefined;
  /** @internal phantom marker for input/output types. */
  // A method signature (bivariant), so a composite of any input fits where its parent infers `I`.
  __types?(input: I): O;
}

/** Any node: an agent or a composite. */
export type Topology<I = unknown, O = unknown> = Agent<I, O> | Composite<I, O>;

/** A topology with its types erased (for containers and the executor). */
// Agents are invariant in I because `run` takes I; erase through `never` so any agent fits.
export type AnyTopology = Agent<never, unknown> | Composite<never, unknown>;

/** Input type of a topology. */
export type InputOf<T> = T extends Topology<infer I, unknown> ? I : never;
/** Output type of a topology. */
export type OutputOf<T> = T extends Topology<never, infer O> ? O : never;

/** A result flowing between nodes: the value and, when known, a confidence in [0, 1]. */
export interface NodeResult<O = unknown> {
  value: O;
  confidence?: number;
}

/** What `accept` (cascade) and custom vote rules see of a stage's result. */
export type StageResult<O> = Pick<AgentOutput<O>, 'value' | 'confidence'>;

/** Builds a composite node. @internal */
export function composite<I, O>(
  kind: CompositeKind,
  children: readonly AnyTopology[],
  options: Record<string, unknown> = {},
): Composite<I, O> {
  return Object.freeze({
    kind,
    name: undefined,
    children,
    options: Object.freeze(options),
    onError: undefined,
  });
}

/** Erases a topology's types. @internal */
export function erase(t: Topology<never, unknown> | Topology<unknown, unknown>): AnyTopology {
  return t;
}

/**
 * Names a topology; the root's name becomes the workflow name and the first segment of every
 * event's path (`invoice/par[0]/vendor_extraction`).
 *
 * @example
 * const invoice = named('invoice', seq(par(vendor, amount, date), validate, route));
 */
export function named<T extends Topology<never, unknown>>(name: string, topology: T): T {
  assertNameHasNoPii('named(name)', name);
  // The workflow name is stored and hashed: no lone surrogates (IllFormedUnicodeError).
  if (typeof name === 'string') assertWellFormed('named(name)', name);
  return Object.freeze({ ...topology, name }) as unknown as T;
}

/**
 * Sets how a node's failure is handled by its parent.
 *
 * @example
 * par(vendor, supervise(date, { value: null }), amount) // a failed date extraction yields null
 */
export function supervise<T extends Topology<never, unknown>>(topology: T, onError: OnError<OutputOf<T>>): T {
  if (
    typeof onError === 'object' &&
    'retry' in onError &&
    !(Number.isInteger(onError.retry) && onError.retry >= 0)
  )
    throw new RangeError(`supervise(): onError.retry must be an integer >= 0, got ${String(onError.retry)}`);
  return Object.freeze({ ...topology, onError }) as unknown as T;
}

/** Display name of a node. */
export function nodeName(t: AnyTopology): string {
  return t.name ?? t.kind;
}

/** A serialisable description of a topology (functions replaced by their names), for the log. */
export function describe(t: AnyTopology): unknown {
  if (t.kind === 'agent') {
    return { kind: 'agent', name: t.name, version: t.version, model: t.model, taskType: t.taskType };
  }
  const options: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(t.options)) {
    if (k.startsWith('_')) continue; // runtime state, not part of the shape
    options[k] = typeof v === 'function' ? `fn:${(v as { name?: string }).name || 'anonymous'}` : v;
  }
  return {
    kind: t.kind,
    ...(t.name !== undefined ? { name: t.name } : {}),
    ...(Object.keys(options).length ? { options } : {}),
    ...(t.onError !== undefined ? { onError: t.onError } : {}),
    children: t.children.map(describe),
  };
}

/** Every agent in a topology, depth first. */
export function agentsOf(t: AnyTopology, out: Agent<never, unknown>[] = []): Agent<never, unknown>[] {
  if (t.kind === 'agent') out.push(t);
  else for (const c of t.children) agentsOf(c, out);
  return out;
}
