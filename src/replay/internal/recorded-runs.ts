/**
 * Reading recorded runs of one kind of node (cascade, vote) back out of a log, for what-if
 * analysis: where those nodes sit in each workflow's recorded topology, which events belong to
 * which of their children, and each workflow's ground truth. Internal to src/replay.
 */
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
  expected?: unknown;
}

/** How a workflow ended, for the runs it holds. */
export type WorkflowEnd = 'completed' | 'failed' | 'cancelled' | 'unfinished';

/** What a what-if does with each recorded workflow. */
export interface WorkflowFold<S> {
  /** A workflow started: returns its state, or `undefined` to skip its events. */
  start(event: KeelEvent<'workflow.started'>): S | undefined;
  /** One of the workflow's events, in log order. */
  event(state: S, event: KeelEvent): void;
  /** The workflow ended (or the log ended first: `unfinished`). */
  end(state: S, how: WorkflowEnd): void;
}

const IGNORED = new Set<string>([
  'agent.invoked',
  'agent.retried',
  'agent.timed_out',
  'cost.reserved',
  'budget.alert',
  'budget.downgraded',
  'breaker.transitioned',
  'alert.raised',
  'alert.resolved',
  'redaction.applied',
  'log.anchor',
  'canary.rolled_back',
  'canary.promoted',
]);

/**
 * One pass over a log: routes each event to its workflow's state, and collects every
 * workflow's ground truth. Memory is bounded by the workflows running at once, not the log.
 */
export function foldWorkflows<S>(events: Iterable<KeelEvent>, fold: WorkflowFold<S>): Map<string, Feedback> {
  const live = new Map<string, S>();
  const feedback = new Map<string, Feedback>();
  for (const e of events) {
    if (IGNORED.has(e.type)) continue;
    switch (e.type) {
      case 'workflow.started': {
        const s = fold.start(e);
        if (s !== undefined) live.set(e.workflowId, s);
        continue;
      }
      case 'workflow.completed':
      case 'workflow.failed':
      case 'workflow.cancelled': {
        const s = live.get(e.workflowId);
        if (s === undefined) continue;
        live.delete(e.workflowId);
        fold.end(
          s,
          e.type === 'workflow.completed'
            ? 'completed'
            : e.type === 'workflow.failed'
              ? 'failed'
              : 'cancelled',
        );
        continue;
      }
      case 'feedback.recorded':
        feedback.set(e.workflowId, {
          correct: e.payload.correct,
          ...(e.payload.expected !== undefined ? { expected: e.payload.expected } : {}),
        });
        continue;
      default: {
        const s = live.get(e.workflowId);
        if (s !== undefined) fold.event(s, e);
      }
    }
  }
  for (const s of live.values()) fold.end(s, 'unfinished');
  return feedback;
}

/** Mean of `total` over `n`, or `null` when there is nothing to average. */
export function perRun(total: number, n: number): number | null {
  return n > 0 ? total / n : null;
}
