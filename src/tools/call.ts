/**
 * One tool call under its policies: argument validation, breaker, per-attempt timeout on the
 * runtime's clock, retries, and the `tool.called` / `tool.succeeded` / `tool.failed` events. A
 * failed call is data (a {@link ToolOutcome}), never a throw: the model is shown the error.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { hashSeed } from '../core/random.js';
import type { ErrorCategory, EventPayloads } from '../eventlog/events.js';
import { classifyError, messageOfThrown } from '../providers/classify.js';
import type { ToolCall } from '../providers/types.js';
import { DEFAULT_RETRY_ON, retryDelay } from '../../machines/agent.machine.js';
import type { BreakerConfig } from '../supervisor/agent.js';
import { createBreaker, type Breaker } from '../supervisor/breaker.js';
import type { BreakerLike } from '../supervisor/scope.js';
import type { Tool } from './tool.js';

/** The tool events, by type. */
export type ToolEventType = 'tool.called' | 'tool.succeeded' | 'tool.failed';

/** Writes one tool event of the running attempt to the workflow's log. */
export type RecordToolEvent = <T extends ToolEventType>(type: T, payload: EventPayloads[T]) => void;

/** Where a tool call runs. */
export interface ToolCallScope {
  workflowId: string;
  path: string;
  agent: string;
  clock: Clock;
  /** The agent attempt's signal: aborting it aborts every tool call in flight. */
  signal: AbortSignal;
  record: RecordToolEvent;
  /**
   * The runtime's shared breaker for a tool's config (named `tool:<name>`: its transitions are
   * logged and restored after a restart like an agent's). Absent: a breaker of the tool object's own.
   */
  breaker?: (config: BreakerConfig) => BreakerLike;
  /**
   * Resuming a tool loop cut off by a crash: the logged result of the call at `step`/`index` when
   * it succeeded before the crash and the model asks for the same tool with the same arguments.
   */
  recorded?: (step: number, index: number, tool: string, args: unknown) => { result: unknown } | undefined;
}

/** The name a tool's breaker has among the runtime's breakers: `tool:<breaker name>`. */
export function toolBreakerName(name: string): string {
  return `tool:${name}`;
}

/** How a tool call ended: what the model is shown as the `tool` message. */
export type ToolOutcome =
  | { ok: true; call: ToolCall; result: unknown; content: string }
  | { ok: false; call: ToolCall; category: ErrorCategory; message: string; content: string };

/**
 * The breaker of each tool object, per clock, for a tool loop run outside a runtime (one clock,
 * one breaker); in a runtime, tools use its shared, logged breakers (`ToolCallScope.breaker`).
 */
const breakers = new WeakMap<Tool<never, unknown>, WeakMap<Clock, Breaker>>();

function breakerOf(t: Tool<never, unknown>, scope: ToolCallScope): BreakerLike | undefined {
  if (t.breaker === undefined) return undefined;
  if (scope.breaker !== undefined) return scope.breaker(t.breaker);
  const clock = scope.clock;
  let byClock = breakers.get(t);
  if (byClock === undefined) breakers.set(t, (byClock = new WeakMap()));
  let b = byClock.get(clock);
  if (b === undefined) byClock.set(clock, (b = createBreaker(t.breaker, { clock })));
  return b;
}

/** A tool's failure as the model sees it: a JSON object naming the category. */
function errorContent(category: ErrorCategory, message: string): string {
  return JSON.stringify({ error: { category, message } });
}

/**
 * Calls `call` (the `index`-th call of model turn `step`) on `tools`, recording its events. Never
 * rejects.
 */
export async function callTool(
  tools: Readonly<Record<string, Tool<never, unknown>>>,
  call: ToolCall,
  step: number,
  index: number,
  scope: ToolCallScope,
): Promise<ToolOutcome> {
  const { clock, record, path, agent } = scope;
  // Resumed after a crash: a call that already succeeded answers from the log, not run (or logged) again.
  const logged = scope.recorded?.(step, index, call.name, call.args);
  if (logged !== undefined) {
    const content = contentOf(logged.result);
    if (content !== undefined) return { ok: true, call, result: logged.result, content };
  }
  const started = clock.now();
  const base = { path, agent, tool: call.name, callId: call.id, step };
  record('tool.called', { ...base, args: call.args });
  const fail = (category: ErrorCategory, message: string, attempts: number): ToolOutcome => {
    record('tool.failed', { ...base, category, message, latencyMs: clock.now() - started, attempts });
    return { ok: false, call, category, message, content: errorContent(category, message) };
  };

  const t = Object.prototype.hasOwnProperty.call(tools, call.name) ? tools[call.name] : undefined;
  if (t === undefined)
    return fail(
      'validation_error',
      `the model called "${call.name}", which is not a tool of this agent (its tools: ${Object.keys(tools).join(', ') || 'none'})`,
      0,
    );
  const parsed = t.schema.safeParse(call.args);
  if (!parsed.success)
    return fail(
      'validation_error',
      `the arguments do not match the tool's schema: ${parsed.error.message}`,
      0,
    );

  const breaker = breakerOf(t, scope);
  const idempotencyKey = `${scope.workflowId}/${path}/${step}/${index}`;
  const policy = {
    agent: call.name,
    timeoutMs: t.timeoutMs,
    maxAttempts: t.retry?.attempts ?? 1,
    backoff: t.retry?.backoff ?? 'exponential',
    baseDelayMs: t.retry?.baseDelayMs ?? 200,
    maxDelayMs: t.retry?.maxDelayMs ?? 30_000,
    jitter: t.retry?.jitter ?? true,
    retryOn: t.retry?.retryOn ?? DEFAULT_RETRY_ON,
  };
  for (let attempt = 1; ; attempt++) {
    if (scope.signal.aborted) return fail('cancelled', 'the agent attempt was aborted', attempt - 1);
    const permit = breaker?.acquire();
    if (breaker !== undefined && permit === undefined) {
      const inMs = breaker.retryInMs?.();
      return fail(
        'circuit_open',
        `breaker "${breaker.name}" is open${inMs !== undefined ? `; it lets a probe through in ${inMs} ms` : ''}`,
        attempt - 1,
      );
    }
    const tried = await attempt1(t, parsed.data, {
      signal: scope.signal,
      idempotencyKey,
      callId: call.id,
      step,
      attempt,
      workflowId: scope.workflowId,
      path,
      clock,
    });
    if (tried.ok) {
      const content = contentOf(tried.result);
      if (content === undefined) {
        permit?.success();
        return fail(
          'validation_error',
          "the tool's result is not JSON-serialisable; return plain data",
          attempt,
        );
      }
      permit?.success();
      record('tool.succeeded', {
        ...base,
        result: tried.result,
        latencyMs: clock.now() - started,
        attempts: attempt,
      });
      return { ok: true, call, result: tried.result, content };
    }
    if (tried.category === 'cancelled') permit?.release();
    else permit?.failure(tried.category);
    if (attempt >= policy.maxAttempts || !policy.retryOn.includes(tried.category) || scope.signal.aborted)
      return fail(tried.category, tried.message, attempt);
    const delay = retryDelay(policy, hashSeed(idempotencyKey), attempt, tried.retryAfterMs);
    if (!(await wait(clock, delay, scope.signal)))
      return fail('cancelled', 'the agent attempt was aborted', attempt);
  }
}

type Attempt =
  | { ok: true; result: unknown }
  | { ok: false; category: ErrorCategory; message: string; retryAfterMs?: number };

/** One attempt of `execute`, raced against its timeout (on the clock) and the agent's signal. */
function attempt1(
  t: Tool<never, unknown>,
  args: unknown,
  context: Parameters<Tool['execute']>[1],
): Promise<Attempt> {
  const { clock } = context;
  const outer = context.signal;
  const controller = new AbortController();
  return new Promise<Attempt>((resolve) => {
    let done = false;
    const finish = (a: Attempt): void => {
      if (done) return;
      done = true;
      clock.clearTimeout(timer);
      outer.removeEventListener('abort', onAbort);
      resolve(a);
    };
    const onAbort = (): void => {
      controller.abort(outer.reason);
      finish({ ok: false, category: 'cancelled', message: 'the agent attempt was aborted' });
    };
    const timer: TimerHandle = clock.setTimeout(() => {
      controller.abort(new Error(`tool timed out after ${t.timeoutMs} ms`));
      finish({ ok: false, category: 'timeout', message: `timed out after ${t.timeoutMs} ms` });
    }, t.timeoutMs);
    outer.addEventListener('abort', onAbort, { once: true });
    let work: Promise<unknown>;
    try {
      work = Promise.resolve(
        (t.execute as (a: unknown, c: typeof context) => unknown)(args, {
          ...context,
          signal: controller.signal,
        }),
      );
    } catch (e) {
      work = Promise.reject(e instanceof Error ? e : new Error(messageOfThrown(e)));
    }
    work.then(
      (result) => finish({ ok: true, result }),
      (e: unknown) => {
        const c = classifyError(e, clock.now());
        finish({
          ok: false,
          category: c.category,
          message: messageOfThrown(e),
          ...(c.retryAfterMs !== undefined ? { retryAfterMs: c.retryAfterMs } : {}),
        });
      },
    );
  });
}

/** The result as JSON text for the model; `undefined` when it cannot be serialised. */
function contentOf(result: unknown): string | undefined {
  try {
    const text = JSON.stringify(result === undefined ? null : result);
    return typeof text === 'string' ? text : undefined;
  } catch {
    return undefined;
  }
}

/** Waits `ms` on the clock; false when `signal` aborted first (the timer is cleared). */
function wait(clock: Clock, ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const onAbort = (): void => {
      clock.clearTimeout(timer);
      resolve(false);
    };
    const timer = clock.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
