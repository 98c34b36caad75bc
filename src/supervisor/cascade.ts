/**
 * `cascade([cheap, …, expensive], { accept })`: stop at the first stage whose output is accepted
 * (the seed's GPT-3.5 screening → GPT-4 escalation).
 */
import { Observable, type Subscription } from 'rxjs';
import { AgentFailedError, categoryOf, isWorkflowCancelledError, messageOf } from './errors.js';
import { childContext } from './children.js';
import type { Executor } from './execute.js';
import { estimateUsd } from './invoke.js';
import type { NodeResult, StageResult, Topology } from './topology.js';
import { composite, type AnyTopology, type Composite } from './topology.js';

/** Options of {@link cascade}. */
export interface CascadeOptions<O> {
  /** Accepts a stage's result; default: `confidence >= threshold`. The last stage is always accepted. */
  accept?: (result: StageResult<O>) => boolean;
  /** Confidence a stage needs when no `accept` is given (default 0.9). */
  threshold?: number;
}

/**
 * Tries stages from cheapest to most expensive and stops at the first accepted answer. A failed
 * stage escalates too; the last stage's failure fails the cascade.
 *
 * @example
 * const extract = cascade([gpt35, gpt4], { threshold: 0.9 }); // $110 vs $300 per 10,000 on the seed's mix
 */
export function cascade<I, O>(
  stages: readonly Topology<I, O>[],
  options: CascadeOptions<O> = {},
): Composite<I, O> {
  if (stages.length === 0) throw new RangeError('cascade(): give at least one stage');
  const threshold = options.threshold ?? 0.9;
  if (!(threshold >= 0 && threshold <= 1))
    throw new RangeError(`cascade(): threshold must be in [0, 1], got ${threshold}`);
  return composite('cascade', stages as unknown as AnyTopology[], {
    threshold,
    ...(options.accept ? { accept: options.accept } : {}),
  });
}

function stageName(t: AnyTopology): string {
  return t.kind === 'agent' ? t.name : (t.name ?? t.kind);
}

/** Runs a `cascade` node (its entry in `execute.ts`'s executor map). */
export const executeCascade: Executor = (node, input, ctx, exec) =>
  new Observable<NodeResult>((subscriber) => {
    const stages = node.children;
    const threshold = node.options.threshold as number;
    const accept =
      (node.options.accept as ((r: StageResult<unknown>) => boolean) | undefined) ??
      ((r: StageResult<unknown>) => (r.confidence ?? 0) >= threshold);
    const { scope, path } = ctx;
    let current: Subscription | undefined;
    let closed = false;

    const escalate = (from: number, reason: string, confidence?: number): void => {
      scope.emit({
        ts: scope.services.clock.now(),
        workflowId: scope.workflowId,
        type: 'cascade.escalated',
        payload: {
          path,
          fromStage: from,
          toStage: from + 1,
          fromAgent: stageName(stages[from] as AnyTopology),
          toAgent: stageName(stages[from + 1] as AnyTopology),
          ...(confidence !== undefined ? { confidence } : {}),
          reason,
        },
      });
      run(from + 1);
    };

    const run = (i: number): void => {
      if (closed) return;
      const stage = stages[i] as AnyTopology;
      const last = i === stages.length - 1;
      let result: NodeResult | undefined;
      current = exec(stage, input, childContext(ctx, stages, i)).subscribe({
        next: (r) => {
          result = r;
        },
        error: (err: unknown) => {
          if (last || isWorkflowCancelledError(err)) {
            subscriber.error(err);
            return;
          }
          escalate(i, `failed: ${categoryOf(err)}: ${messageOf(err)}`);
        },
        complete: () => {
          const r = result;
          if (!r) {
            subscriber.error(
              new AgentFailedError('unknown', `cascade stage ${i} at ${path} returned nothing`, { path }),
            );
            return;
          }
          let ok = last;
          if (!ok) {
            try {
              ok = accept({
                value: r.value,
                ...(r.confidence !== undefined ? { confidence: r.confidence } : {}),
              });
            } catch (e) {
              subscriber.error(e);
              return;
            }
          }
          if (!ok) {
            escalate(
              i,
              r.confidence !== undefined ? `confidence ${r.confidence} below acceptance` : 'not accepted',
              r.confidence,
            );
            return;
          }
          let savedUsd = 0;
          for (let j = i + 1; j < stages.length; j++) {
            const s = stages[j] as AnyTopology;
            if (s.kind === 'agent') savedUsd += estimateUsd(ctx, s);
          }
          scope.emit({
            ts: scope.services.clock.now(),
            workflowId: scope.workflowId,
            type: 'cascade.accepted',
            payload: {
              path,
              stage: i,
              agent: stageName(stage),
              ...(r.confidence !== undefined ? { confidence: r.confidence } : {}),
              savedUsd,
            },
          });
          subscriber.next(r);
          subscriber.complete();
        },
      });
    };
    run(0);
    return () => {
      closed = true;
      current?.unsubscribe();
    };
  });
