/**
 * `canary(stable, candidate, { share, targets })`: send a deterministic share of workflows to a
 * candidate, judge it against targets on the same outcomes the monitors see, and roll back on the
 * first breach (the seed's "canary deployment: 10% of traffic, automatic rollback").
 */
import { defer, tap, type Observable } from 'rxjs';
import { ConfigError } from '../core/errors.js';
import { hashSeed } from '../core/random.js';
import {
  createCanaryJudge,
  type CanaryArm,
  type CanaryArmStats,
  type CanaryJudge,
  type CanaryTargets,
} from '../monitor/canary-judge.js';
import { childContext, registerExecutor } from './execute.js';
import type { NodeResult, Topology } from './topology.js';
import { composite, type AnyTopology, type Composite } from './topology.js';

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

/** Live control of a canary. */
export interface CanaryControl {
  readonly name: string;
  /** Current candidate share (0 after a rollback, 1 after promotion). */
  share(): number;
  status(): 'running' | 'rolled_back' | 'promoted';
  /** Why it was rolled back, if it was. */
  reason(): string | undefined;
  /** Sends all traffic to the candidate from now on. Promotion is always explicit. */
  promote(): void;
  /** Outcomes seen per arm. */
  stats(arm: CanaryArm): CanaryArmStats;
}

/** A canary node: a topology plus its control. */
export type CanaryNode<I, O> = Composite<I, O> & { readonly control: CanaryControl };

interface CanaryState {
  name: string;
  share: number;
  status: 'running' | 'rolled_back' | 'promoted';
  reason: string | undefined;
  judge: CanaryJudge;
  /** Set once the rollback event was emitted. */
  announced: boolean;
}

/**
 * Routes `share` of workflows (deterministically, by workflow id) to `candidate` and the rest to
 * `stable`; rolls back automatically (event, alert, share → 0) when the candidate breaches a target.
 *
 * @example
 * const extract = canary(gpt4Extract, newPromptExtract, { share: 0.1, targets: { errorRate: 0.05, p95Ms: 10_000 } });
 * // later, after a quiet day: extract.control.promote();
 */
export function canary<I, O>(
  stable: Topology<I, O>,
  candidate: Topology<I, O>,
  options: CanaryOptions,
): CanaryNode<I, O> {
  const share = options.share ?? 0.1;
  if (!(share >= 0 && share <= 1)) throw new ConfigError('canary.share', `must be in [0, 1], got ${share}`);
  const state: CanaryState = {
    name: options.name ?? 'canary',
    share,
    status: 'running',
    reason: undefined,
    judge: createCanaryJudge({
      targets: options.targets,
      ...(options.minSamples !== undefined ? { minSamples: options.minSamples } : {}),
    }),
    announced: false,
  };
  const control: CanaryControl = {
    name: state.name,
    share: () => state.share,
    status: () => state.status,
    reason: () => state.reason,
    promote: () => {
      if (state.status === 'rolled_back') return;
      state.status = 'promoted';
      state.share = 1;
    },
    stats: (arm) => state.judge.stats(arm),
  };
  const node = composite<I, O>('canary', [stable, candidate], {
    share,
    targets: { ...options.targets },
    _state: state,
  });
  return Object.freeze({ ...node, control });
}

registerExecutor('canary', (node, input, ctx, exec): Observable<NodeResult> =>
  defer(() => {
    const state = node.options._state as CanaryState;
    const { scope } = ctx;
    const draw = hashSeed(`${scope.workflowId}:${ctx.path}`) / 4294967296;
    const arm: CanaryArm = draw < state.share ? 'candidate' : 'stable';
    const index = arm === 'candidate' ? 1 : 0;
    const clock = scope.services.clock;
    const startedAt = clock.now();
    const costBefore = scope.stats.costUsd;
    const judge = (success: boolean): void => {
      if (state.status !== 'running') return;
      const verdict = state.judge.record(arm, {
        success,
        latencyMs: clock.now() - startedAt,
        costUsd: scope.stats.costUsd - costBefore,
      });
      if (verdict.decision === 'rollback' && !state.announced) {
        state.announced = true;
        state.status = 'rolled_back';
        state.share = 0;
        state.reason = verdict.reason;
        scope.emit({
          ts: clock.now(),
          workflowId: scope.workflowId,
          type: 'canary.rolled_back',
          payload: { canary: state.name, reason: verdict.reason, data: verdict },
        });
      }
    };
    return exec(node.children[index] as AnyTopology, input, childContext(ctx, node.children, index)).pipe(
      tap({ next: () => judge(true), error: () => judge(false) }),
    );
  }),
);
