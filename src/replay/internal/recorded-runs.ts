/**
 * Reading recorded runs of one kind of node (cascade, vote) back out of a log, for what-if
 * analysis: where those nodes sit in each workflow's recorded topology, which events belong to
 * which of their children, and each workflow's ground truth — pushed one event at a time, holding
 * the workflows running at once. Internal to src/replay.
 */
import { canonicalJson } from '../../core/json.js';
import type { KeelEvent } from '../../eventlog/events.js';

/** A node of a recorded topology description (`workflow.started.topology`). */
export interface DescribedNode {
  kind: string;
  name?: string;
  model?: string;
  options?: Record<string, unknown>;
  children: DescribedNode[];
}

/** A cascade or vote node found in a recorded topology, with its children's path segments. */
export interface Site {
  path: string;
  node: DescribedNode;
  /** Path segment of each child, in child order (`cheap`, `seq[1]`, `s1[0]`). */
  segments: string[];
  /** Child index by path segment. */
  indexOf: ReadonlyMap<string, number>;
}

function asNode(value: unknown): DescribedNode | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.kind !== 'string') return undefined;
  const children: DescribedNode[] = [];
  if (Array.isArray(v.children)) {
    for (const c of v.children as unknown[]) {
      const n = asNode(c);
      if (!n) return undefined;
      children.push(n);
    }
  }
  return {
    kind: v.kind,
    ...(typeof v.name === 'string' ? { name: v.name } : {}),
    ...(typeof v.model === 'string' ? { model: v.model } : {}),
    ...(typeof v.options === 'object' && v.options !== null
      ? { options: v.options as Record<string, unknown> }
      : {}),
    children,
  };
}

/** The path segment of child `index`, as the supervisor names it (see `childSegment`). */
function segment(siblings: readonly DescribedNode[], index: number): string {
  const child = siblings[index] as DescribedNode;
  if (child.kind === 'agent') {
    const dup = siblings.some((s, i) => i !== index && s.name === child.name);
    return dup ? `${child.name ?? ''}[${index}]` : (child.name ?? '');
  }
  return `${child.name ?? child.kind}[${index}]`;
}

/** One child of a site as what-if tables name it. */
export interface SiteChild {
  index: number;
  name: string;
  model?: string;
}

/** The children of a recorded site (cascade stages, voters). */
export function siteChildren(site: Site): SiteChild[] {
  return site.node.children.map((c, index) => ({
    index,
    name: c.name ?? c.kind,
    ...(c.kind === 'agent' && c.model !== undefined ? { model: c.model } : {}),
  }));
}

/**
 * The `kind` sites of a started workflow (only `path` when given), each with its accumulator:
 * sites with the same path and shape share one, made by `create` on first sight.
 */
export function trackSites<A>(
  started: KeelEvent<'workflow.started'>,
  kind: 'cascade' | 'vote',
  path: string | undefined,
  accumulators: Map<string, A>,
  create: (site: Site, workflow: string) => A,
): { site: Site; acc: A }[] | undefined {
  const workflow = started.payload.name;
  const found = sitesOf(started.payload.topology, workflow, kind).filter(
    (s) => path === undefined || s.path === path,
  );
  if (found.length === 0) return undefined;
  return found.map((site) => {
    const key = `${site.path}\u0000${site.segments.join('\u0000')}`;
    let acc = accumulators.get(key);
    if (!acc) {
      acc = create(site, workflow);
      accumulators.set(key, acc);
    }
    return { site, acc };
  });
}

/** Every node of `kind` in a recorded topology, with its path (the root's path is `rootPath`). */
export function sitesOf(topology: unknown, rootPath: string, kind: 'cascade' | 'vote'): Site[] {
  const root = asNode(topology);
  const out: Site[] = [];
  const walk = (node: DescribedNode, path: string): void => {
    const segments = node.children.map((_, i) => segment(node.children, i));
    if (node.kind === kind) {
      out.push({ path, node, segments, indexOf: new Map(segments.map((s, i) => [s, i])) });
    }
    node.children.forEach((child, i) => walk(child, `${path}/${segments[i] as string}`));
  };
  if (root) walk(root, rootPath);
  return out;
}

/**
 * Where an event's path falls under a site: the child index and whether the event is the child
 * itself (exact) or something inside it; `undefined` when it is not under the site.
 */
export function childOf(site: Site, path: string): { index: number; exact: boolean } | undefined {
  const base = site.path;
  if (path.length <= base.length + 1 || !path.startsWith(base) || path.charCodeAt(base.length) !== 47) {
    return undefined;
  }
  const slash = path.indexOf('/', base.length + 1);
  const seg = slash < 0 ? path.slice(base.length + 1) : path.slice(base.length + 1, slash);
  const index = site.indexOf.get(seg);
  return index === undefined ? undefined : { index, exact: slash < 0 };
}

/** Ground truth recorded for a workflow (the latest `feedback.recorded` wins). */
export interface Feedback {
  correct: boolean;
  /** Canonical JSON of the `expected` answer, when the feedback gave one. */
  expectedJson?: string;
}

/**
 * A tracked workflow's ground truth, filled in whenever its `feedback.recorded` arrives (usually
 * after the workflow ended). Runs keep a reference and read it at the end of the log.
 */
export interface Label {
  feedback: Feedback | undefined;
  /** Set by the fold when it keeps a run that reads this label; others are dropped at the end. */
  kept: boolean;
}

/** How a workflow ended, for the runs it holds. */
export type WorkflowEnd = 'completed' | 'failed' | 'cancelled' | 'unfinished';

/** What a what-if does with each recorded workflow. */
export interface WorkflowFold<S> {
  /** A workflow started: returns its state, or `undefined` to skip its events. */
  start(event: KeelEvent<'workflow.started'>, label: Label): S | undefined;
  /** One of the workflow's events, in log order. */
  event(state: S, event: KeelEvent): void;
  /** The workflow ended (or the log ended first, or a crash cut it off: `unfinished`). */
  end(state: S, how: WorkflowEnd): void;
}

const IGNORED = new Set<string>([
  'agent.invoked',
  'agent.retried',
  'agent.timed_out',
  'cost.reserved',
  'budget.alert',
  'budget.overrun',
  'budget.downgraded',
  'pricing.unknown_model',
  'breaker.transitioned',
  'alert.raised',
  'alert.resolved',
  'redaction.applied',
  'log.anchor',
  'canary.rolled_back',
  'canary.promoted',
]);

/**
 * Routes each event of a log, pushed in order, to its workflow's state, and each
 * `feedback.recorded` to the label of a workflow the fold keeps runs of. Holds the state of the
 * workflows running at once, and one label per workflow whose runs the fold kept.
 */
export class WorkflowRouter<S> {
  private readonly live = new Map<string, S>();
  private readonly labels = new Map<string, Label>();

  constructor(private readonly fold: WorkflowFold<S>) {}

  /** Workflows started and not yet ended: whose state is held. */
  get openWorkflows(): number {
    return this.live.size;
  }

  apply(e: KeelEvent): void {
    if (IGNORED.has(e.type)) return;
    switch (e.type) {
      case 'workflow.started': {
        const label = this.labels.get(e.workflowId) ?? { feedback: undefined, kept: false };
        const s = this.fold.start(e, label);
        if (s === undefined) return;
        this.live.set(e.workflowId, s);
        this.labels.set(e.workflowId, label);
        return;
      }
      case 'workflow.completed':
      case 'workflow.failed':
      case 'workflow.cancelled':
      case 'workflow.interrupted': {
        const s = this.live.get(e.workflowId);
        if (s === undefined) return;
        this.live.delete(e.workflowId);
        // An interrupted run was cut off by a crash: as if the log had ended first.
        this.fold.end(
          s,
          e.type === 'workflow.completed'
            ? 'completed'
            : e.type === 'workflow.failed'
              ? 'failed'
              : e.type === 'workflow.cancelled'
                ? 'cancelled'
                : 'unfinished',
        );
        if (this.labels.get(e.workflowId)?.kept === false) this.labels.delete(e.workflowId);
        return;
      }
      case 'feedback.recorded': {
        const label = this.labels.get(e.workflowId);
        if (label === undefined) return;
        const { correct, expected } = e.payload;
        label.feedback =
          expected !== undefined ? { correct, expectedJson: canonicalJson(expected) } : { correct };
        return;
      }
      default: {
        const s = this.live.get(e.workflowId);
        if (s !== undefined) this.fold.event(s, e);
      }
    }
  }

  /** The log ended: workflows still running end `unfinished`. */
  finish(): void {
    for (const s of this.live.values()) this.fold.end(s, 'unfinished');
    this.live.clear();
  }
}

/** Mean of `total` over `n`, or `null` when there is nothing to average. */
export function perRun(total: number, n: number): number | null {
  return n > 0 ? total / n : null;
}
