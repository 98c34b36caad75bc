/**
 * Runs one agent invocation: cache, then an agent actor (machines/agent.machine.ts) whose states
 * ask for the effects — gate (deadline, breaker, budget), call, and the outcome — which this file
 * performs and reports back. Every transition becomes a `KeelEvent`.
 */
import { createActor, type SnapshotFrom } from 'xstate';
import { DEFAULT_RETRY_ON, agentMachine } from '../../machines/agent.machine.js';
import { hashSeed, seededRandom, type Random } from '../core/random.js';
import type { ErrorCategory, Usage } from '../eventlog/events.js';
import { isProviderError } from '../providers/types.js';
import { isAgentError, type Agent, type AgentContext, type AgentOutput, type CachePolicy } from './agent.js';
import {
  AgentFailedError,
  AgentTimeoutError,
  ValidationError,
  WorkflowCancelledError,
  categoryOf,
  messageOf,
} from './errors.js';
import type { NodeResult } from './topology.js';
import type { NodeContext } from './scope.js';
import { CircuitOpenError } from './breaker.js';
import type {
  CacheLike,
  CachedLike,
  PermitLike,
  RecordedOutcome,
  ReservationLike,
  ReserveLikeResult,
} from './scope.js';

type AnyAgent = Agent<never, unknown>;

const ZERO_USAGE: Usage = Object.freeze({ inputTokens: 0, outputTokens: 0 });
const DEFAULT_ESTIMATE: Usage = Object.freeze({ inputTokens: 1000, outputTokens: 500 });

/** Estimated cost of one call of `agent`, USD (0 when the model has no price). */
export function estimateUsd(ctx: NodeContext, agent: AnyAgent): number {
  return ctx.scope.services.price(agent.model, agent.estimate ?? DEFAULT_ESTIMATE);
}

/** Thrown value → the outcome the machine is told. */
function classify(e: unknown): {
  category: ErrorCategory;
  message: string;
  retryAfterMs?: number;
  usage?: Usage;
} {
  if (isProviderError(e)) {
    return {
      category: e.category,
      message: e.message,
      ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}),
      ...(e.details.usage ? { usage: e.details.usage } : {}),
    };
  }
  if (isAgentError(e))
    return { category: e.category, message: e.message, ...(e.usage ? { usage: e.usage } : {}) };
  return { category: categoryOf(e), message: messageOf(e) };
}

/** Checks an output against the agent's schema and validator. */
function validate(
  agent: AnyAgent,
  value: unknown,
): { ok: true; value: unknown } | { ok: false; category: ErrorCategory; message: string } {
  let v = value;
  if (agent.schema) {
    const parsed = agent.schema.safeParse(value);
    if (!parsed.success) return { ok: false, category: 'validation_error', message: parsed.error.message };
    v = parsed.data;
  }
  if (agent.validate) {
    const verdict = agent.validate(v);
    if (verdict !== true) {
      return typeof verdict === 'string'
        ? { ok: false, category: 'validation_error', message: verdict }
        : { ok: false, category: verdict.category, message: verdict.message };
    }
  }
  return { ok: true, value: v };
}

/**
 * Invokes an agent under every policy it declares; resolves with its result or rejects with an
 * {@link AgentFailedError} carrying the category. All events go to `ctx.scope.emit`.
 */
export function invokeAgent(agent: AnyAgent, input: unknown, ctx: NodeContext): Promise<NodeResult> {
  const { scope, path } = ctx;
  const { services } = scope;
  const now = services.clock.now();
  scope.emit({
    ts: now,
    workflowId: scope.workflowId,
    type: 'agent.invoked',
    payload: {
      path,
      agent: agent.name,
      agentVersion: agent.version,
      taskType: agent.taskType,
      model: agent.model,
    },
  });
  scope.stats.agentsCalled++;

  const recordedHit = scope.replay?.cached?.(path);
  if (recordedHit) {
    // Replaying a call the record answered without a call of its own (cache, or another
    // workflow's identical call): answer it the same way.
    if (!recordedHit.ok) {
      sharedFailure(agent, ctx, recordedHit.category, recordedHit.message);
      return Promise.reject(
        new AgentFailedError(recordedHit.category, recordedHit.message, { agent: agent.name, path }),
      );
    }
    const hit = {
      value: recordedHit.value,
      ...(recordedHit.confidence !== undefined ? { confidence: recordedHit.confidence } : {}),
    };
    succeeded(agent, ctx, hit, 0, 0, ZERO_USAGE, 0, true);
    return Promise.resolve(hit);
  }
  const cache = agent.cache && !scope.replay ? services.cache : undefined;
  if (!cache || !agent.cache) return runActor(agent, input, ctx, undefined);

  const policy = agent.cache;
  const key = cache.key(agent.name, agent.version, input);
  const hit = cache.get(key);
  if (!isPromise(hit)) return afterLookup(agent, input, ctx, cache, policy, key, hit);
  // A shared cache (Redis) answers asynchronously; an unreachable one resolves as a miss.
  return hit.then(
    (found) => {
      if (ctx.signal.aborted) {
        sharedFailure(agent, ctx, 'cancelled', 'cancelled during the cache lookup');
        throw new WorkflowCancelledError(String(ctx.signal.reason ?? 'cancelled'));
      }
      return afterLookup(agent, input, ctx, cache, policy, key, found);
    },
    () => afterLookup(agent, input, ctx, cache, policy, key, undefined),
  );
}

/** The cache answered `hit` for `key`: serve it, or make (or share) the call. */
function afterLookup(
  agent: AnyAgent,
  input: unknown,
  ctx: NodeContext,
  cache: CacheLike,
  policy: Exclude<CachePolicy, false>,
  key: string,
  hit: CachedLike | undefined,
): Promise<NodeResult> {
  const { scope, path } = ctx;
  const { services } = scope;
  if (hit) {
    const savedUsd = estimateUsd(ctx, agent);
    const ts = services.clock.now();
    scope.emit({
      ts,
      workflowId: scope.workflowId,
      type: 'cache.hit',
      payload: { path, agent: agent.name, key, ageMs: hit.ageMs, savedUsd },
    });
    succeeded(agent, ctx, { value: hit.value }, 0, 0, ZERO_USAGE, 0, true);
    return Promise.resolve({ value: hit.value });
  }
  scope.emit({
    ts: services.clock.now(),
    workflowId: scope.workflowId,
    type: 'cache.miss',
    payload: { path, agent: agent.name, key },
  });
  const staleIfError = policy.staleIfError !== false;
  const ttlMs = policy.ttlMs;
  let leader = false;
  const flight = cache.singleFlight(key, () => {
    leader = true;
    return runActor(agent, input, ctx, { key, ttlMs, staleIfError });
  });
  // When another workflow is making this exact call, share its answer, unless this workflow is
  // cancelled first (the other call goes on for its own workflow). The leader's own cancellation
  // is handled by its actor.
  return new Promise<NodeResult>((resolve, reject) => {
    let done = false;
    const onAbort = (): void => {
      if (done || leader) return;
      done = true;
      sharedFailure(agent, ctx, 'cancelled', 'cancelled while sharing an identical in-flight call');
      reject(new WorkflowCancelledError(String(ctx.signal.reason ?? 'cancelled')));
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    flight.then(
      (result) => {
        ctx.signal.removeEventListener('abort', onAbort);
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
        ctx.signal.removeEventListener('abort', onAbort);
        if (done) return;
        done = true;
        if (!leader) sharedFailure(agent, ctx, categoryOf(error), messageOf(error));
        reject(error instanceof Error ? error : new Error(messageOf(error)));
      },
    );
    if (ctx.signal.aborted) onAbort();
  });
}

/** True for a promise (or any thenable) rather than a value answered at once. */
function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
}

/** Logs an invocation that failed through another workflow's identical call (0 attempts of its own). */
function sharedFailure(agent: AnyAgent, ctx: NodeContext, category: ErrorCategory, message: string): void {
  ctx.scope.emit({
    ts: ctx.scope.services.clock.now(),
    workflowId: ctx.scope.workflowId,
    type: 'agent.failed',
    payload: {
      path: ctx.path,
      agent: agent.name,
      taskType: agent.taskType,
      model: agent.model,
      category,
      message,
      attempts: 0,
      latencyMs: 0,
      costUsd: 0,
    },
  });
}

function succeeded(
  agent: AnyAgent,
  ctx: NodeContext,
  result: NodeResult & { model?: string },
  attempts: number,
  latencyMs: number,
  usage: Usage,
  costUsd: number,
  cached: boolean,
): void {
  ctx.scope.emit({
    ts: ctx.scope.services.clock.now(),
    workflowId: ctx.scope.workflowId,
    type: 'agent.succeeded',
    payload: {
      path: ctx.path,
      agent: agent.name,
      taskType: agent.taskType,
      model: result.model ?? agent.model,
      output: result.value,
      ...(result.confidence !== undefined ? { confidence: result.confidence } : {}),
      attempts,
      latencyMs,
      usage,
      costUsd,
      ...(cached ? { cached: true } : {}),
    },
  });
}

interface CacheWrite {
  key: string;
  ttlMs: number;
  staleIfError: boolean;
}

type Snapshot = SnapshotFrom<typeof agentMachine>;

/** The actor-driven part: gate, call, retry, outcome. */
function runActor(
  agent: AnyAgent,
  input: unknown,
  ctx: NodeContext,
  cacheWrite: CacheWrite | undefined,
): Promise<NodeResult> {
  const { scope, path } = ctx;
  const { services } = scope;
  const { clock } = services;
  const startedAt = clock.now();
  const workflowId = scope.workflowId;
  const retry = agent.retry;
  const remaining = ctx.deadlineAt !== undefined ? Math.max(1, ctx.deadlineAt - startedAt) : Infinity;
  const timeoutMs = Math.min(agent.timeoutMs, remaining);
  const seed = `${services.seed}:${workflowId}:${path}`;

  const actor = createActor(agentMachine, {
    clock,
    ...(services.inspect ? { inspect: services.inspect } : {}),
    input: {
      agent: agent.name,
      timeoutMs,
      maxAttempts: retry?.attempts ?? 1,
      backoff: retry?.backoff ?? 'exponential',
      baseDelayMs: retry?.baseDelayMs ?? 200,
      maxDelayMs: retry?.maxDelayMs ?? 30_000,
      jitter: retry?.jitter ?? true,
      jitterSeed: hashSeed(seed),
      retryOn: retry?.retryOn ?? DEFAULT_RETRY_ON,
    },
  });

  let model = agent.model;
  let costUsd = 0;
  let usageTotal: Usage = ZERO_USAGE;
  let permit: PermitLike | undefined;
  let reservation: ReservationLike | undefined;
  let estimate = 0;
  let attemptAbort: AbortController | undefined;
  let handledState = '';
  let handledAttempt = 0;
  let lastResult: (NodeResult & { model?: string }) | undefined;
  let lastOutput: unknown;
  let rejection: Error | undefined;

  const emitCost = (attempt: number, usage: Usage, answeredModel: string): void => {
    const usd = services.price(answeredModel, usage);
    costUsd += usd;
    scope.stats.costUsd += usd;
    usageTotal = {
      inputTokens: usageTotal.inputTokens + usage.inputTokens,
      outputTokens: usageTotal.outputTokens + usage.outputTokens,
    };
    reservation?.settle(usd);
    reservation = undefined;
    scope.emit({
      ts: clock.now(),
      workflowId,
      type: 'cost.incurred',
      payload: {
        path,
        agent: agent.name,
        model: answeredModel,
        taskType: agent.taskType,
        attempt,
        usage,
        costUsd: usd,
        estimateUsd: estimate,
      },
    });
  };

  const settleAbandoned = (attempt: number): void => {
    // The attempt ended without reported usage (timeout, cancel): charge its estimate, in the log
    // too, so the spend survives a restart (budgets restore from `cost.incurred`).
    const usd = estimate;
    reservation?.settle(usd);
    reservation = undefined;
    if (usd <= 0) return;
    costUsd += usd;
    scope.stats.costUsd += usd;
    scope.emit({
      ts: clock.now(),
      workflowId,
      type: 'cost.incurred',
      payload: {
        path,
        agent: agent.name,
        model,
        taskType: agent.taskType,
        attempt,
        usage: ZERO_USAGE,
        costUsd: usd,
        estimateUsd: estimate,
        estimated: true,
      },
    });
  };

  const onCancel = (): void =>
    actor.send({ type: 'CANCEL', reason: String(ctx.signal.reason ?? 'cancelled') });

  return new Promise<NodeResult>((resolve, reject) => {
    const finish = (snap: Snapshot): void => {
      ctx.signal.removeEventListener('abort', onCancel);
      attemptAbort?.abort('finished');
      // Whatever ended the invocation (cancel while gated, a sibling's failure), never keep a
      // breaker probe slot or a budget reservation: a held probe would leave the breaker half-open.
      permit?.release();
      permit = undefined;
      const latencyMs = clock.now() - startedAt;
      const c = snap.context;
      if (snap.value === 'succeeded' && lastResult) {
        succeeded(agent, ctx, lastResult, c.attempt, latencyMs, usageTotal, costUsd, false);
        if (cacheWrite && services.cache)
          services.cache.set(cacheWrite.key, agent.name, lastResult.value, cacheWrite.ttlMs);
        resolve(lastResult);
        return;
      }
      const category: ErrorCategory = c.category ?? 'unknown';
      const message = c.message ?? String(snap.value);
      const replayedStale = snap.value === 'failed' ? scope.replay?.cached?.(path) : undefined;
      if (replayedStale?.ok) {
        succeeded(agent, ctx, replayedStale, c.attempt, latencyMs, usageTotal, costUsd, true);
        resolve(replayedStale);
        return;
      }
      const fail = (): void => {
        if (snap.value === 'rejected') {
          scope.emit({
            ts: clock.now(),
            workflowId,
            type: 'agent.rejected',
            payload: { path, agent: agent.name, taskType: agent.taskType, category, reason: message },
          });
        } else {
          scope.emit({
            ts: clock.now(),
            workflowId,
            type: 'agent.failed',
            payload: {
              path,
              agent: agent.name,
              taskType: agent.taskType,
              model,
              category,
              message,
              attempts: c.attempt,
              latencyMs,
              costUsd,
              ...(lastOutput !== undefined ? { output: lastOutput } : {}),
            },
          });
        }
        const details = { agent: agent.name, path, attempts: c.attempt };
        if (snap.value === 'rejected' && rejection) reject(rejection);
        else if (snap.value === 'cancelled') reject(new WorkflowCancelledError(message));
        else if (category === 'timeout') reject(new AgentTimeoutError(`${agent.name}: ${message}`, details));
        else if (category === 'validation_error' || category === 'hallucination')
          reject(new ValidationError(`${agent.name}: ${message}`, details, category));
        else reject(new AgentFailedError(category, `${agent.name}: ${message}`, details));
      };
      if (snap.value !== 'cancelled' && cacheWrite?.staleIfError && services.cache) {
        const serveStale = (stale: CachedLike | undefined): void => {
          if (!stale) return fail();
          scope.emit({
            ts: clock.now(),
            workflowId,
            type: 'cache.stale_served',
            payload: { path, agent: agent.name, key: cacheWrite.key, ageMs: stale.ageMs, reason: category },
          });
          succeeded(agent, ctx, { value: stale.value }, c.attempt, latencyMs, usageTotal, costUsd, true);
          resolve({ value: stale.value });
        };
        const stale = services.cache.get(cacheWrite.key, { allowStale: true });
        if (isPromise(stale)) stale.then(serveStale, () => serveStale(undefined));
        else serveStale(stale);
        return;
      }
      fail();
    };

    /** Applies a budget's answer; false when it refused (the actor was told). */
    const admitted = (r: ReserveLikeResult, t: number): boolean => {
      if (!r.ok) {
        rejection = r.error;
        permit?.release();
        permit = undefined;
        actor.send({ type: 'GATE.REJECT', category: 'budget_exceeded', reason: r.error.message });
        return false;
      }
      reservation = r.reservation;
      if (r.estimateUsd !== undefined) estimate = r.estimateUsd;
      if (r.model !== agent.model) {
        scope.emit({
          ts: t,
          workflowId,
          type: 'budget.downgraded',
          payload: {
            path,
            agent: agent.name,
            fromModel: agent.model,
            toModel: r.model,
            scope: r.downgradeScope ?? 'global',
          },
        });
        model = r.model;
      }
      scope.emit({
        ts: t,
        workflowId,
        type: 'cost.reserved',
        payload: { path, agent: agent.name, model, taskType: agent.taskType, estimateUsd: estimate },
      });
      return true;
    };

    const gate = (): void => {
      const t = clock.now();
      if (ctx.deadlineAt !== undefined && t >= ctx.deadlineAt) {
        actor.send({ type: 'GATE.REJECT', category: 'timeout', reason: 'the workflow deadline passed' });
        return;
      }
      const refused = scope.replay?.rejection?.(path);
      if (refused) {
        actor.send({ type: 'GATE.REJECT', category: refused.category, reason: refused.reason });
        return;
      }
      if (agent.breaker && !scope.replay) {
        const breaker = services.breaker(agent.breaker);
        permit = breaker.acquire();
        if (!permit) {
          rejection = new CircuitOpenError(breaker.name, breaker.retryInMs?.());
          actor.send({ type: 'GATE.REJECT', category: 'circuit_open', reason: rejection.message });
          return;
        }
      }
      estimate = services.price(agent.model, agent.estimate ?? DEFAULT_ESTIMATE);
      if (services.budgets && !scope.replay) {
        const r = services.budgets.reserve({
          model: agent.model,
          taskType: agent.taskType,
          estimateUsd: estimate,
          usage: agent.estimate ?? DEFAULT_ESTIMATE,
        });
        if (isPromise(r)) {
          // A budget shared across processes answers asynchronously; the actor waits in `gated`.
          r.then(
            (result) => {
              if (actor.getSnapshot().value !== 'gated') {
                // Cancelled (or the deadline passed) while the reservation was on its way.
                if (result.ok) result.reservation.release();
                permit?.release();
                permit = undefined;
                return;
              }
              if (admitted(result, clock.now())) actor.send({ type: 'GATE.PASS' });
            },
            (e: unknown) => {
              if (actor.getSnapshot().value !== 'gated') return;
              permit?.release();
              permit = undefined;
              rejection = e instanceof Error ? e : new Error(messageOf(e));
              actor.send({ type: 'GATE.REJECT', category: 'budget_exceeded', reason: rejection.message });
            },
          );
          return;
        }
        if (!admitted(r, t)) return;
      }
      actor.send({ type: 'GATE.PASS' });
    };

    const call = (attempt: number): void => {
      const ac = new AbortController();
      attemptAbort = ac;
      const recorded = scope.replay ? scope.replay.next(path) : undefined;
      const work: Promise<AgentOutput<unknown>> = scope.replay
        ? replayOutcome(recorded, agent.name, path)
        : runAgent(agent, input, {
            signal: ac.signal,
            attempt,
            model,
            workflowId,
            path,
            clock,
            seed: `${seed}:${attempt}`,
          });
      work.then(
        (out) => {
          if (attemptAbort !== ac || ac.signal.aborted) return; // this attempt already timed out or was cancelled
          attemptAbort = undefined;
          const answered = out.model ?? model;
          emitCost(attempt, out.usage ?? ZERO_USAGE, answered);
          const verdict = validate(agent, out.value);
          if (!verdict.ok) {
            lastOutput = out.value;
            permit?.release();
            permit = undefined;
            actor.send({ type: 'CALL.FAILED', category: verdict.category, message: verdict.message });
            return;
          }
          lastResult = {
            value: verdict.value,
            ...(out.confidence !== undefined ? { confidence: out.confidence } : {}),
            model: answered,
          };
          permit?.success();
          permit = undefined;
          actor.send({ type: 'CALL.SUCCEEDED' });
        },
        (e: unknown) => {
          if (attemptAbort !== ac || ac.signal.aborted) return;
          attemptAbort = undefined;
          const f = classify(e);
          emitCost(attempt, f.usage ?? ZERO_USAGE, model);
          permit?.failure(f.category);
          permit = undefined;
          actor.send({
            type: 'CALL.FAILED',
            category: f.category,
            message: f.message,
            ...(f.retryAfterMs !== undefined ? { retryAfterMs: f.retryAfterMs } : {}),
          });
        },
      );
    };

    actor.subscribe({
      next: (snap) => {
        const state = snap.value;
        const attempt = snap.context.attempt;
        if (state === handledState && attempt === handledAttempt) return;
        const previous = handledState;
        handledState = state;
        handledAttempt = attempt;
        // Leaving `calling` without an outcome (timeout, cancel): abort the attempt's call.
        if (previous === 'calling' && attemptAbort) {
          attemptAbort.abort(state === 'cancelled' ? 'cancelled' : 'timeout');
          attemptAbort = undefined;
          settleAbandoned(snap.context.attempt);
          if (state !== 'cancelled') {
            permit?.failure('timeout');
            permit = undefined;
            scope.emit({
              ts: clock.now(),
              workflowId,
              type: 'agent.timed_out',
              payload: { path, agent: agent.name, attempt: snap.context.attempt, timeoutMs },
            });
          } else {
            permit?.release();
            permit = undefined;
          }
        }
        switch (state) {
          case 'gated':
            gate();
            return;
          case 'calling':
            call(attempt);
            return;
          case 'retrying':
            scope.emit({
              ts: clock.now(),
              workflowId,
              type: 'agent.retried',
              payload: {
                path,
                agent: agent.name,
                attempt,
                category: snap.context.category ?? 'unknown',
                message: snap.context.message ?? '',
                delayMs: snap.context.retryDelayMs,
                ...(snap.context.retryAfterMs !== undefined
                  ? { retryAfterMs: snap.context.retryAfterMs }
                  : {}),
              },
            });
            return;
          case 'idle':
            return;
          default:
            finish(snap);
        }
      },
      error: (err: unknown) => reject(err instanceof Error ? err : new Error(String(err))),
    });
    if (ctx.signal.aborted) {
      actor.start();
      actor.send({ type: 'CANCEL', reason: String(ctx.signal.reason ?? 'cancelled') });
      return;
    }
    ctx.signal.addEventListener('abort', onCancel, { once: true });
    actor.start();
    actor.send({ type: 'START' });
  });
}

/** Calls the agent's `run` with a lazily seeded PRNG. */
function runAgent(
  agent: AnyAgent,
  input: unknown,
  c: Omit<AgentContext, 'rng'> & { seed: string },
): Promise<AgentOutput<unknown>> {
  let rng: Random | undefined;
  const { seed, ...rest } = c;
  const context: AgentContext = {
    ...rest,
    get rng(): Random {
      return (rng ??= seededRandom(seed));
    },
  };
  try {
    return (agent.run as (input: unknown, context: AgentContext) => Promise<AgentOutput<unknown>>)(
      input,
      context,
    );
  } catch (e) {
    return Promise.reject(e instanceof Error ? e : new Error(String(e)));
  }
}

/** During replay: the recorded outcome instead of a model call. */
function replayOutcome(
  recorded: RecordedOutcome | undefined,
  agentName: string,
  path: string,
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
  if (recorded.ok) {
    return Promise.resolve({
      value: recorded.value,
      ...(recorded.confidence !== undefined ? { confidence: recorded.confidence } : {}),
      usage: recorded.usage,
      model: recorded.model,
    });
  }
  return Promise.reject(
    new AgentFailedError(recorded.category, recorded.message, { agent: agentName, path }),
  );
}
