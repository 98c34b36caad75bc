/**
 * Cache step: an agent with a `cache` policy is answered from the cache when it can be; on a miss,
 * identical calls in flight share one call (single-flight), whose leader writes the answer; when
 * that call fails, a stale entry may answer instead (`staleIfError`). A shared cache (Redis)
 * answers asynchronously, and an unreachable one counts as a miss.
 */
import type { ErrorCategory } from '../../eventlog/events.js';
import type { CachePolicy } from '../agent.js';
import { AgentFailedError, WorkflowCancelledError, categoryOf, messageOf } from '../errors.js';
import type { CacheLike, CachedLike, NodeContext } from '../scope.js';
import type { NodeResult } from '../topology.js';
import { estimateUsd, sharedFailure, succeeded } from './record.js';
import type {
  AnyAgent,
  CallCacheStep,
  CallResult,
  CallState,
  Cancellable,
  InvocationState,
  StartCall,
} from './types.js';
import { ZERO_USAGE, isPromise } from './types.js';

type Policy = Exclude<CachePolicy<never>, false>;

/**
 * Answers `inv` through the cache: a hit, another workflow's identical call, or a call of its own
 * (started with `startCall`) whose answer is written. False when the agent has no cache here (no
 * policy, no cache configured, or a replay): nothing was done.
 */
export function serveCached(inv: InvocationState, input: unknown, startCall: StartCall): boolean {
  const { agent, ctx } = inv;
  const policy = agent.cache;
  const cache = policy && !ctx.scope.replay ? ctx.scope.services.cache : undefined;
  if (!cache || !policy) return false;
  let key: string;
  try {
    key = cacheKeyOf(cache, agent, policy, input);
  } catch (e) {
    unkeyable(inv, e);
    return true;
  }
  const hit = cache.get(key);
  if (!isPromise(hit)) {
    if (hit) {
      serveHit(agent, ctx, key, hit);
      inv.resolve({ value: hit.value });
      return true;
    }
    inv.follow(afterMiss(inv, input, cache, policy, key, startCall));
    return true;
  }
  // A shared cache (Redis) answers asynchronously; an unreachable one resolves as a miss.
  inv.follow(
    hit.then(
      (found) => {
        if (inv.cancelReason !== undefined) {
          sharedFailure(agent, ctx, 'cancelled', 'cancelled during the cache lookup');
          throw new WorkflowCancelledError(inv.cancelReason);
        }
        if (found) {
          serveHit(agent, ctx, key, found);
          return Promise.resolve({ value: found.value });
        }
        return afterMiss(inv, input, cache, policy, key, startCall);
      },
      () => afterMiss(inv, input, cache, policy, key, startCall),
    ),
  );
  return true;
}

/**
 * The cache key of this invocation: agent name and version with the policy's `key(input)`, or with
 * the whole input. Throws when `key` throws or returns `undefined`, or the key is not JSON.
 */
function cacheKeyOf(cache: CacheLike, agent: AnyAgent, policy: Policy, input: unknown): string {
  if (policy.key === undefined) return cache.key(agent.name, agent.version, input);
  const part = policy.key(input as never);
  if (part === undefined) throw new TypeError('cache.key returned undefined');
  return cache.key(agent.name, agent.version, part);
}

/** The input could not be keyed (the policy's `key` threw or returned `undefined`): no call is made. */
function unkeyable(inv: InvocationState, error: unknown): void {
  const { agent, ctx } = inv;
  const message = `agent "${agent.name}": the cache key could not be built from the input (${messageOf(error)}); fix cache.key or the input`;
  sharedFailure(agent, ctx, 'validation_error', message);
  inv.reject(
    new AgentFailedError('validation_error', message, {
      agent: agent.name,
      path: ctx.path,
      attempts: 0,
      cause: error,
    }),
  );
}

/** Logs a cache hit and its success (no call of its own). */
function serveHit(agent: AnyAgent, ctx: NodeContext, key: string, hit: CachedLike): void {
  const { scope, path } = ctx;
  scope.emit({
    ts: scope.services.clock.now(),
    workflowId: scope.workflowId,
    type: 'cache.hit',
    payload: { path, agent: agent.name, key, ageMs: hit.ageMs, savedUsd: estimateUsd(ctx, agent) },
  });
  succeeded(agent, ctx, { value: hit.value }, 0, 0, ZERO_USAGE, 0, true);
}

/** The cache has nothing for `key`: make the call, or share another workflow's identical one. */
function afterMiss(
  inv: InvocationState,
  input: unknown,
  cache: CacheLike,
  policy: Policy,
  key: string,
  startCall: StartCall,
): Promise<NodeResult> {
  const { agent, ctx } = inv;
  const { scope, path } = ctx;
  const { services } = scope;
  scope.emit({
    ts: services.clock.now(),
    workflowId: scope.workflowId,
    type: 'cache.miss',
    payload: { path, agent: agent.name, key },
  });
  const cacheWrite = { key, ttlMs: policy.ttlMs, staleIfError: policy.staleIfError !== false };
  let leader = false;
  const flight = cache.singleFlight(
    key,
    () =>
      new Promise<NodeResult>((resolve, reject) => {
        leader = true;
        startCall(inv, input, { resolve, reject }, cacheWrite);
      }),
  );
  // When another workflow is making this exact call, share its answer, unless this workflow is
  // cancelled first (the other call goes on for its own workflow). The leader's own cancellation
  // reaches its call.
  return new Promise<NodeResult>((resolve, reject) => {
    let done = false;
    const waiting: Cancellable = {
      cancel: () => {
        if (done || leader) return;
        done = true;
        sharedFailure(agent, ctx, 'cancelled', 'cancelled while sharing an identical in-flight call');
        reject(new WorkflowCancelledError(inv.cancelReason ?? 'cancelled'));
      },
    };
    if (!leader) inv.target = waiting;
    flight.then(
      (result) => {
        if (done) return;
        done = true;
        if (!leader) {
          scope.emit({
            ts: services.clock.now(),
            workflowId: scope.workflowId,
            type: 'cache.hit',
            payload: { path, agent: agent.name, key, ageMs: 0, savedUsd: estimateUsd(ctx, agent) },
          });
          succeeded(agent, ctx, result, 0, 0, ZERO_USAGE, 0, true);
        }
        resolve(result);
      },
      (error: unknown) => {
        if (done) return;
        done = true;
        if (!leader) sharedFailure(agent, ctx, categoryOf(error), messageOf(error));
        reject(error instanceof Error ? error : new Error(messageOf(error)));
      },
    );
    if (inv.cancelReason !== undefined) waiting.cancel(inv.cancelReason);
  });
}

function remember(call: CallState, result: CallResult): void {
  const { cacheWrite } = call;
  const cache = call.ctx.scope.services.cache;
  if (cacheWrite && cache) cache.set(cacheWrite.key, call.agent.name, result.value, cacheWrite.ttlMs);
}

function serveStale(
  call: CallState,
  attempts: number,
  latencyMs: number,
  category: ErrorCategory,
  fallback: () => void,
): boolean {
  const { cacheWrite, agent, ctx } = call;
  const cache = ctx.scope.services.cache;
  if (!cacheWrite?.staleIfError || !cache) return false;
  const serve = (stale: CachedLike | undefined): void => {
    if (!stale) return fallback();
    call.emit({
      ts: call.now(),
      workflowId: ctx.scope.workflowId,
      type: 'cache.stale_served',
      payload: {
        path: ctx.path,
        agent: agent.name,
        key: cacheWrite.key,
        ageMs: stale.ageMs,
        reason: category,
      },
    });
    succeeded(agent, ctx, { value: stale.value }, attempts, latencyMs, call.usageTotal, call.costUsd, true);
    call.outcome.resolve({ value: stale.value });
  };
  const stale = cache.get(cacheWrite.key, { allowStale: true });
  if (isPromise(stale)) stale.then(serve, () => serve(undefined));
  else serve(stale);
  return true;
}

/** The cache's part in a call. */
export const callCache: CallCacheStep = { remember, serveStale };
