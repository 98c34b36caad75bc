/**
 * Shared fixtures of the chaos suite: agents that call a model provider, a provider wrapper that
 * records every call in clock time, a driver that moves virtual time until a run settles (and
 * fails loudly when it never does), and checks of the log after a run.
 */
import type { Clock, SimulatedClock } from '../../src/core/clock.js';
import { SYSTEM_WORKFLOW_ID, type ErrorCategory, type KeelEventType } from '../../src/eventlog/events.js';
import { isProviderError, type ModelProvider, type ModelResponse } from '../../src/providers/types.js';
import { agent, type Agent, type BreakerConfig, type RetryConfig } from '../../src/supervisor/agent.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';

/** The model every chaos agent uses. */
export const MODEL = 'sim';

/** Prices of {@link MODEL}: per token, so failures without usage cost nothing. */
export const PRICING = { [MODEL]: { inputPer1K: 0.001, outputPer1K: 0.002 } };

/** Policies of a {@link modelAgent}. */
export interface ModelAgentOptions {
  /** Per-attempt timeout, ms (default 1_000). */
  timeoutMs?: number;
  retry?: RetryConfig;
  breaker?: BreakerConfig;
  taskType?: string;
  /** Model id (default {@link MODEL}). */
  model?: string;
  /** Expected usage, for budget reservations. */
  estimate?: { inputTokens: number; outputTokens: number };
}

/** An agent whose every attempt is one call of `provider`, with the attempt's signal and clock. */
export function modelAgent(name: string, provider: ModelProvider, options: ModelAgentOptions = {}): Agent {
  return agent<unknown, unknown>({
    name,
    model: options.model ?? MODEL,
    timeoutMs: options.timeoutMs ?? 1_000,
    ...(options.retry ? { retry: options.retry } : {}),
    ...(options.breaker ? { breaker: options.breaker } : {}),
    ...(options.taskType ? { taskType: options.taskType } : {}),
    ...(options.estimate ? { estimate: options.estimate } : {}),
    run: async (input, ctx) => {
      const r = await provider.call({ model: ctx.model, input }, { signal: ctx.signal, clock: ctx.clock });
      return {
        value: r.output,
        usage: r.usage,
        model: r.model,
        ...(r.confidence !== undefined ? { confidence: r.confidence } : {}),
      };
    },
  });
}

/** One provider call as the recorder saw it. */
export interface CallRecord {
  /** Canonical key of the request's input (one per workflow when inputs are distinct). */
  key: string;
  /** Clock time the call started. */
  startMs: number;
  /** Clock time it settled (undefined while in flight). */
  endMs?: number;
  /** `ok`, or the category of the failure (`cancelled` when its signal aborted it). */
  outcome?: 'ok' | ErrorCategory;
  /** `retryAfterMs` the failure carried. */
  retryAfterMs?: number;
}

/** A provider that records every call of the one it wraps. */
export interface RecordingProvider extends ModelProvider {
  /** Every call so far, in start order. */
  readonly calls: readonly CallRecord[];
  /** Calls started but not settled: a hung promise shows up here. */
  inFlight(): number;
}

/** Wraps `inner`, recording each call's start, end and outcome in `clock` time. */
export function recording(inner: ModelProvider, clock: Clock): RecordingProvider {
  const calls: CallRecord[] = [];
  let pending = 0;
  return {
    name: inner.name,
    calls,
    inFlight: () => pending,
    call(request, context) {
      const record: CallRecord = { key: JSON.stringify(request.input ?? null), startMs: clock.now() };
      calls.push(record);
      pending++;
      const settled = (outcome: CallRecord['outcome'], retryAfterMs?: number): void => {
        pending--;
        record.endMs = clock.now();
        record.outcome = outcome;
        if (retryAfterMs !== undefined) record.retryAfterMs = retryAfterMs;
      };
      return inner.call(request, context).then(
        (r: ModelResponse) => {
          settled('ok');
          return r;
        },
        (e: unknown) => {
          settled(
            isProviderError(e) ? e.category : 'unknown',
            isProviderError(e) ? e.retryAfterMs : undefined,
          );
          throw e;
        },
      );
    },
  };
}

/** How {@link drive} moves time. */
export interface DriveOptions {
  /** Virtual ms per step (default 50). */
  stepMs?: number;
  /** Give up after this much virtual time, ms (default 10 minutes): the promise is then hung. */
  maxMs?: number;
}

/**
 * Advances `clock` step by step until every promise settled, and returns their outcomes. Throws
 * when some promise is still pending after `maxMs` of virtual time: a hung run.
 */
export async function drive<T>(
  clock: SimulatedClock,
  promises: readonly Promise<T>[],
  options: DriveOptions = {},
): Promise<PromiseSettledResult<T>[]> {
  const stepMs = options.stepMs ?? 50;
  const maxMs = options.maxMs ?? 600_000;
  let pending = promises.length;
  const results = new Array<PromiseSettledResult<T>>(promises.length);
  promises.forEach((p, i) => {
    p.then(
      (value) => {
        results[i] = { status: 'fulfilled', value };
        pending--;
      },
      (reason: unknown) => {
        results[i] = { status: 'rejected', reason };
        pending--;
      },
    );
  });
  await clock.flush();
  for (let elapsed = 0; pending > 0 && elapsed < maxMs; elapsed += stepMs) await clock.advanceAsync(stepMs);
  // Durable before acknowledged: the last commit may still be one I/O tick away.
  for (let i = 0; pending > 0 && i < 10; i++) await clock.flush();
  if (pending > 0)
    throw new Error(`${pending} of ${promises.length} run(s) still pending after ${maxMs} virtual ms`);
  return results;
}

/** The failure category an error carries (`category` field), if any. */
export function categoryOf(e: unknown): string | undefined {
  const c = (e as { category?: unknown } | null)?.category;
  return typeof c === 'string' ? c : undefined;
}

const TERMINAL: readonly KeelEventType[] = ['workflow.completed', 'workflow.failed', 'workflow.cancelled'];

/** What the log says about its workflows. */
export interface LogHealth {
  /** Workflows with a `workflow.started` event. */
  started: number;
  /** Workflows with a terminal event (completed, failed, cancelled). */
  terminal: number;
  /** Started but never finished: must be empty once every run settled. */
  open: string[];
  /** Workflows with more than one terminal event. */
  doubleFinished: string[];
  /** Workflows with events but no `workflow.started` (a half-written workflow). */
  orphans: string[];
  /** The hash chain verifies. */
  verified: boolean;
  /** Events in the log. */
  events: number;
}

/** Reads the log: started vs finished workflows, and the hash chain. */
export function logHealth(store: SqliteEventStore): LogHealth {
  const started = new Set(store.query({ type: 'workflow.started' }).map((e) => e.workflowId));
  const finished = new Map<string, number>();
  // A workflow closed after a crash (`workflow.interrupted`) is no longer open either.
  for (const e of store.iterate({ type: [...TERMINAL, 'workflow.interrupted'] }))
    finished.set(e.workflowId, (finished.get(e.workflowId) ?? 0) + 1);
  const orphans = new Set<string>();
  for (const e of store.iterate()) {
    if (e.workflowId !== SYSTEM_WORKFLOW_ID && !started.has(e.workflowId)) orphans.add(e.workflowId);
  }
  const verify = store.verify();
  return {
    orphans: [...orphans],
    started: started.size,
    terminal: finished.size,
    open: [...started].filter((id) => !finished.has(id)),
    doubleFinished: [...finished].filter(([, n]) => n > 1).map(([id]) => id),
    verified: verify.ok,
    events: verify.events,
  };
}

/** Ids among `workflowIds` that have no terminal event in the log. */
export function missingTerminal(store: SqliteEventStore, workflowIds: readonly string[]): string[] {
  const finished = new Set<string>();
  for (const e of store.iterate({ type: TERMINAL })) finished.add(e.workflowId);
  return workflowIds.filter((id) => !finished.has(id));
}

/** `from>to` of every `breaker.transitioned` event of breaker `name`, in log order. */
export function breakerMoves(store: SqliteEventStore, name: string): string[] {
  const out: string[] = [];
  for (const e of store.iterate({ type: 'breaker.transitioned' })) {
    if (e.type === 'breaker.transitioned' && e.payload.breaker === name)
      out.push(`${e.payload.from}>${e.payload.to}`);
  }
  return out;
}
