/** How a composite names its children: each child's path segment and context. */
import type { NodeContext } from './scope.js';
import type { AnyTopology } from './topology.js';

/** The path segment of child `index` among `siblings`. */
export function childSegment(siblings: readonly AnyTopology[], index: number): string {
  const child = siblings[index] as AnyTopology;
  if (child.kind === 'agent') {
    let dup = false;
    for (let i = 0; i < siblings.length && !dup; i++) dup = i !== index && siblings[i]?.name === child.name;
    return dup ? `${child.name}[${index}]` : child.name;
  }
  return `${child.name ?? child.kind}[${index}]`;
}

/** The context of child `index` of the node running in `ctx`. */
export function childContext(ctx: NodeContext, siblings: readonly AnyTopology[], index: number): NodeContext {
  return { ...ctx, path: `${ctx.path}/${childSegment(siblings, index)}` };
}
