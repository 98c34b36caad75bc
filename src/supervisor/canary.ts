/**
 * `canary(stable, candidate, { share, targets })`: send a deterministic share of workflows to a
 * candidate, judge it against targets on the same outcomes the monitors see, and roll back on the
 * first breach (the seed's "canary deployment: 10% of traffic, automatic rollback").
 */
import { defer, tap, type Observable } from 'rxjs';
import { ConfigError } from '../core/errors.js';
import { hashSeed } from '../core/random.js';
import { createCanaryJudge, type CanaryArm, type CanaryTargets } from '../monitor/canary-judge.js';
import type { CanaryControl, CanarySpec } from '../monitor/canary-fold.js';
import { childContext } from './children.js';
import type { Executor } from './execute.js';
import type { NodeResult, Topology } from './topology.js';
import { composite, type AnyTopology, type Composite } from './topology.js';

export type { CanaryControl } from '../monitor/canary-fold.js';

/** Options of {@link canary}. */
export interface CanaryOptions {
  /** Name in events and alerts (default `canary`). */
  name?: string;
  /** Share of workflows routed to the candidate, in [0, 1] (default 0.1), chosen by workflow id hash. */
  share?: number;
  /** Limits the candidate must hold: error rate, P95 latency (ms), cost per workflow (USD). */
  targets: CanaryTargets;
  /** Candidate outcomes needed before it is judged (default 20). */
  minSamples?: number;
}

/** A canary node. Its judgement belongs to the runtime that runs it: `rt.canary(path)`. */
export type CanaryNode<I, O> = Composite<I, O>;

/**
 * Routes `share` of workflows (deterministically, by workflow id) to `candidate` and the rest to
 * `stable`; rolls back automatically (event, alert, share → 0) when the candidate breaches a target.
 * Each runtime judges the canary on its own log, keyed by the node's path: `rt.canary(path)` (or
 * its name) reads the verdict and promotes.
 *
 * @example
 * const extract = canary(gpt4Extract, newPromptExtract, { name: 'extract_v2', share: 0.1, targets: { errorRate: 0.05, p95Ms: 10_000 } });
 * // later, after a quiet day: rt.canary('extract_v2')?.promote();
 */
export function canary<I, O>(
  stable: Topology<I, O>,
  candidate: Topology<I, O>,
  options: CanaryOptions,
): CanaryNode<I, O> {
  const share = options.share ?? 0.1;
  if (!(share >= 0 && share <= 1)) throw new ConfigError('canary.share', `must be in [0, 1], got ${share}`);
  const spec: CanarySpec = {
    name: options.name ?? 'canary',
    share,
    targets: { ...options.targets },
    ...(options.minSamples !== undefined ? { minSamples: options.minSamples } : {}),
  };
  // Checks the targets now (a ConfigError at build time, not on the first run).
  checkSpec(spec);
  return composite<I, O>('canary', [stable, candidate], {
    share,
    targets: { ...options.targets },
    _spec: spec,
  });
}

/** Runs a `canary` node (its entry in `execute.ts`'s executor map). */
export const executeCanary: Executor = (node, input, ctx, exec): Observable<NodeResult> =>
  defer(() => {
    const spec = node.options._spec as CanarySpec;
    const { scope } = ctx;
    const control: CanaryControl = scope.services.canaries.at(ctx.path, spec);
    const draw = hashSeed(`${scope.workflowId}:${ctx.path}`) / 4294967296;
    const arm: CanaryArm = draw < control.share() ? 'candidate' : 'stable';
    const index = arm === 'candidate' ? 1 : 0;
    const clock = scope.services.clock;
    const startedAt = clock.now();
    const costBefore = scope.stats.costUsd;
    let observed = false;
    // The outcome is an event: the runtime's canary fold judges it once committed.
    const observe = (success: boolean): void => {
      if (observed || control.status() !== 'running') return;
      observed = true;
      scope.emit({
        ts: clock.now(),
        workflowId: scope.workflowId,
        type: 'canary.observed',
        payload: {
          canary: spec.name,
          path: ctx.path,
          arm,
          success,
          latencyMs: clock.now() - startedAt,
          costUsd: scope.stats.costUsd - costBefore,
        },
      });
    };
    return exec(node.children[index] as AnyTopology, input, childContext(ctx, node.children, index)).pipe(
      tap({ next: () => observe(true), error: () => observe(false) }),
    );
  });

/** Throws the judge's ConfigError for bad targets or `minSamples`, naming the field. */
function checkSpec(spec: CanarySpec): void {
  createCanaryJudge({
    targets: spec.targets,
    ...(spec.minSamples !== undefined ? { minSamples: spec.minSamples } : {}),
  });
}
