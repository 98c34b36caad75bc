/**
 * Runs one agent invocation, composed of the policy steps in ./invoke/ (each a small file behind
 * an interface in ./invoke/types.ts):
 *
 * 1. replay (./invoke/replay.ts): an invocation the record answered without a call is answered so;
 * 2. cache (./invoke/cache.ts): a hit, or one call shared by identical invocations (single-flight);
 * 3. the call (./invoke/agent-call.ts): the agent machine (machines/agent.machine.ts) decides, and
 *    its states ask for admission (breaker, budget, deadline, write-ahead), attempts (`run()`,
 *    timeout, abort signal), the outcome (validate, judge, retry or settle) and cost (charges,
 *    reservations). Every transition becomes a `KeelEvent`.
 *
 * Hot path: one invocation is one {@link AgentInvocation} and, when it calls the model, one
 * `AgentCall`; the steps are shared objects, not closures. An attempt's `AbortSignal` exists only
 * once the agent reads `context.signal`.
 */
import { WorkflowCancelledError } from './errors.js';
import { startCall } from './invoke/agent-call.js';
import { serveCached } from './invoke/cache.js';
import { answerIfRecordedHit } from './invoke/replay.js';
import type { AnyAgent, Cancellable, InvocationState } from './invoke/types.js';
import type { NodeContext } from './scope.js';
import type { NodeResult } from './topology.js';

export { estimateUsd } from './invoke/record.js';

/** The CANCEL reason of an invocation whose subscriber went away. */
const UNSUBSCRIBED = new WorkflowCancelledError('unsubscribed').message;

/**
 * Where an invocation's outcome goes: an RxJS subscriber fits. It hears nothing once the
 * invocation was unsubscribed.
 */
export interface InvocationSink {
  next(result: NodeResult): void;
  complete(): void;
  error(error: unknown): void;
}

/** A running invocation. `unsubscribe()` cancels it; once it has settled that does nothing. */
export interface Invocation {
  unsubscribe(): void;
}

/**
 * Invokes an agent under every policy it declares. The result (or an `AgentFailedError`
 * carrying the category) reaches `sink` one microtask after the invocation settles, as a promise's
 * `then` would; `unsubscribe()` on the returned invocation cancels it. All events go to
 * `ctx.scope.emit`.
 */
export function invokeAgent(
  agent: AnyAgent,
  input: unknown,
  ctx: NodeContext,
  sink: InvocationSink,
): Invocation {
  const invocation = new AgentInvocation(agent, ctx, sink);
  invocation.start(input);
  return invocation;
}

/** One invocation: its sink, whether it settled, and what a cancellation reaches. */
class AgentInvocation implements Invocation, InvocationState {
  private settled = false;
  private failure: Error | undefined;
  private result: NodeResult | undefined;
  cancelReason: string | undefined;
  target: Cancellable | undefined;

  constructor(
    readonly agent: AnyAgent,
    readonly ctx: NodeContext,
    private readonly sink: InvocationSink,
  ) {}

  start(input: unknown): void {
    const { agent, ctx } = this;
    const { scope, path } = ctx;
    scope.emit({
      ts: scope.services.clock.now(),
      workflowId: scope.workflowId,
      type: 'agent.invoked',
      payload: {
        path,
        agent: agent.name,
        agentVersion: agent.version,
        taskType: agent.taskType,
        model: agent.model,
        ...(agent.providerName !== undefined ? { provider: agent.providerName } : {}),
        ...(ctx.priorAttempts !== undefined && ctx.priorAttempts > 0
          ? { firstAttempt: ctx.priorAttempts + 1 }
          : {}),
      },
    });
    scope.stats.agentsCalled++;
    if (answerIfRecordedHit(this)) return;
    if (serveCached(this, input, startCall)) return;
    startCall(this, input, this, undefined);
  }

  unsubscribe(): void {
    if (this.settled || this.cancelReason !== undefined) return;
    this.cancelReason = UNSUBSCRIBED;
    this.target?.cancel(UNSUBSCRIBED);
  }

  /** Settles with `result`; the sink hears it one microtask later (where a promise's `then` would). */
  resolve(result: NodeResult): void {
    if (this.settled) return;
    this.settled = true;
    this.result = result;
    queueMicrotask(() => this.deliver());
  }

  reject(error: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.failure = error;
    queueMicrotask(() => this.deliver());
  }

  private deliver(): void {
    if (this.cancelReason !== undefined) return; // unsubscribed: the sink wants nothing more
    if (this.failure !== undefined) this.sink.error(this.failure);
    else {
      this.sink.next(this.result as NodeResult);
      this.sink.complete();
    }
  }

  /** Settles with what `work` settles with, delivered straight from its reaction. */
  follow(work: Promise<NodeResult>): void {
    work.then(
      (result) => {
        this.settled = true;
        if (this.cancelReason !== undefined) return;
        this.sink.next(result);
        this.sink.complete();
      },
      (error: unknown) => {
        this.settled = true;
        if (this.cancelReason !== undefined) return;
        this.sink.error(error);
      },
    );
  }
}
