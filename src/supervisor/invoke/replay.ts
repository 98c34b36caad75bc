/**
 * Replay step: while replaying, the log answers instead of the model. A recorded outcome arrives
 * when the record saw it (on the replay's simulated clock), so a retry's backoff, a timeout and a
 * sibling's outcome happen in the order they did live. Covers the three places a record answers:
 * an invocation that made no call of its own, a gate refusal, and each attempt's outcome.
 */
import type { Clock } from '../../core/clock.js';
import { ProviderError } from '../../providers/types.js';
import type { AgentOutput } from '../agent.js';
import { AgentFailedError } from '../errors.js';
import type { RecordedHit, RecordedOutcome } from '../scope.js';
import { sharedFailure, succeeded } from './record.js';
import type { CallState, InvocationState } from './types.js';
import { ZERO_USAGE } from './types.js';

/**
 * Replaying an invocation the record answered without a call of its own (cache, or another
 * workflow's identical call): answers it the same way, when the record did. False when the record
 * made a call (or this is no replay).
 */
export function answerIfRecordedHit(inv: InvocationState): boolean {
  const { ctx } = inv;
  const recorded = ctx.scope.replay?.cached?.(ctx.path);
  if (!recorded) return false;
  const clock = ctx.scope.services.clock;
  const wait = recorded.at === undefined ? 0 : recorded.at - clock.now();
  if (!(wait > 0)) {
    answerAsRecorded(inv, recorded);
    return true;
  }
  const timer = clock.setTimeout(() => {
    inv.target = undefined;
    answerAsRecorded(inv, recorded);
  }, wait);
  inv.target = {
    cancel: () => {
      clock.clearTimeout(timer);
      sharedFailure(inv.agent, ctx, 'cancelled', 'cancelled while waiting for the recorded answer');
    },
  };
  return true;
}

function answerAsRecorded(inv: InvocationState, recorded: RecordedHit): void {
  const { agent, ctx } = inv;
  if (!recorded.ok) {
    sharedFailure(agent, ctx, recorded.category, recorded.message);
    inv.reject(
      new AgentFailedError(recorded.category, recorded.message, { agent: agent.name, path: ctx.path }),
    );
    return;
  }
  const hit = {
    value: recorded.value,
    ...(recorded.confidence !== undefined ? { confidence: recorded.confidence } : {}),
  };
  succeeded(agent, ctx, hit, 0, 0, ZERO_USAGE, 0, true);
  inv.resolve(hit);
}

/**
 * Replay: refuses the attempt at the gate when the record refused it, at the time it did (a
 * refusal earlier than live could fail a par before a sibling's recorded success). False when the
 * record did not refuse it.
 */
export function refuseIfRecorded(call: CallState, t: number): boolean {
  const { ctx, driver } = call;
  const refused = ctx.scope.replay?.rejection?.(ctx.path);
  if (!refused) return false;
  const reject = (): void => {
    if (driver.getSnapshot().value !== 'gated') return; // cancelled meanwhile
    driver.send({ type: 'GATE.REJECT', category: refused.category, reason: refused.reason });
  };
  const wait = refused.at === undefined ? 0 : refused.at - t;
  if (wait > 0) ctx.scope.services.clock.setTimeout(reject, wait);
  else reject();
  return true;
}

/**
 * Replay: a call that failed, where the record served an answer in its place (a stale cache entry):
 * answers it the same way. False when the record has none (or this is no replay).
 */
export function answerStaleIfRecorded(call: CallState, attempts: number, latencyMs: number): boolean {
  const { agent, ctx } = call;
  const recorded = ctx.scope.replay?.cached?.(ctx.path);
  if (!recorded?.ok) return false;
  succeeded(agent, ctx, recorded, attempts, latencyMs, call.usageTotal, call.costUsd, true);
  call.outcome.resolve(recorded);
  return true;
}

/**
 * During replay: the recorded outcome of the next attempt at `path` instead of a model call,
 * delivered when the record saw it.
 */
export function replayOutcome(
  recorded: RecordedOutcome | undefined,
  agentName: string,
  path: string,
  clock: Clock,
): Promise<AgentOutput<unknown>> {
  if (!recorded) {
    return Promise.reject(
      new AgentFailedError('unknown', `replay: no recorded outcome for ${agentName} at ${path}`, {
        agent: agentName,
        path,
      }),
    );
  }
  if (!recorded.ok && recorded.category === 'cancelled') {
    // The record never saw this call finish (its workflow or a sibling ended first): in replay it
    // stays pending until the same thing cancels it again.
    return new Promise<never>(() => undefined);
  }
  const settle = (): Promise<AgentOutput<unknown>> =>
    recorded.ok
      ? Promise.resolve({
          value: recorded.value,
          ...(recorded.confidence !== undefined ? { confidence: recorded.confidence } : {}),
          usage: recorded.usage,
          model: recorded.model,
        })
      : Promise.reject(
          new ProviderError(recorded.category, recorded.message, {
            ...(recorded.retryAfterMs !== undefined ? { retryAfterMs: recorded.retryAfterMs } : {}),
          }),
        );
  const wait = recorded.at === undefined ? 0 : recorded.at - clock.now();
  if (!(wait > 0)) return settle();
  return new Promise<void>((resolve) => {
    clock.setTimeout(resolve, wait);
  }).then(settle);
}
