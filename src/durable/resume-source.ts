/**
 * What a resumed workflow reads back from its own recorded events: the final outcome of every agent
 * invocation that finished before the crash (replayed: no call, no event, no budget or breaker
 * counting), how many attempts an invocation in flight already made (its re-run continues the
 * numbering), the values signalled to its waits, and the topology decisions (votes, cascades) it
 * already recorded (not written twice). A pure fold of the workflow's events; everything without a
 * record runs live.
 */
import { Observable } from 'rxjs';
import { canonicalJson } from '../core/json.js';
import type { KeelEvent } from '../eventlog/events.js';
import { decisionsOf } from '../replay/recorded.js';
import type { Agent } from '../supervisor/agent.js';
import { AgentFailedError } from '../supervisor/errors.js';
import type { NodeContext, RecordedFinal, RecordedWait, ResumeSource } from '../supervisor/scope.js';
import type { NodeResult } from '../supervisor/topology.js';

export type { RecordedFinal, RecordedWait, ResumeSource };

const DECISION_TYPES = new Set([
  'vote.cast',
  'vote.early_stop',
  'vote.decided',
  'cascade.escalated',
  'cascade.accepted',
]);

const decisionKey = (e: Pick<KeelEvent, 'type' | 'payload'>): string | undefined => {
  if (!DECISION_TYPES.has(e.type)) return undefined;
  const [d] = decisionsOf([e as KeelEvent]);
  return d === undefined ? undefined : `${d.path}\u0000${d.type}\u0000${d.detail}`;
};

/**
 * Builds the resume source of one workflow from its events (in seq order).
 *
 * @example
 * const source = resumeSource(await store.query({ workflowId }));
 */
export function resumeSource(events: readonly KeelEvent[]): ResumeSource {
  const finals = new Map<string, RecordedFinal[]>();
  const invoked = new Map<string, number>();
  const finished = new Map<string, number>();
  /** Attempts reserved (`cost.reserved`: written when a budget is configured) since the last final. */
  const attemptsSinceFinal = new Map<string, number>();
  /** Invocations started (`agent.invoked`) and attempts retried (`agent.retried`) since the last final. */
  const startedSinceFinal = new Map<string, number>();
  const waits = new Map<string, RecordedWait[]>();
  const decisions = new Map<string, number>();
  const costs = new Map<string, number>();
  const push = <T>(m: Map<string, T[]>, k: string, v: T): void => {
    const q = m.get(k);
    if (q) q.push(v);
    else m.set(k, [v]);
  };
  const inc = (m: Map<string, number>, k: string, by = 1): void => {
    m.set(k, (m.get(k) ?? 0) + by);
  };
  const tools = new RecordedTools();
  const final = (path: string, f: RecordedFinal): void => {
    tools.finished(path);
    push(finals, path, f);
    inc(finished, path);
    attemptsSinceFinal.set(path, 0);
    startedSinceFinal.set(path, 0);
    costs.set(path, 0);
  };
  for (const e of events) {
    switch (e.type) {
      case 'agent.invoked':
        inc(invoked, e.payload.path);
        inc(startedSinceFinal, e.payload.path);
        tools.attemptEnded(e.payload.path);
        break;
      case 'cost.reserved':
        // One per attempt; a tool loop's later turns (`step`) reserve within their attempt.
        if (e.payload.step === undefined) inc(attemptsSinceFinal, e.payload.path);
        break;
      case 'agent.retried':
        inc(startedSinceFinal, e.payload.path);
        tools.attemptEnded(e.payload.path);
        break;
      case 'agent.timed_out':
        tools.attemptEnded(e.payload.path);
        break;
      case 'tool.called':
        tools.called(e.payload);
        break;
      case 'tool.succeeded':
        tools.succeeded(e.payload);
        break;
      case 'agent.succeeded':
        final(e.payload.path, {
          ok: true,
          value: e.payload.output,
          ...(e.payload.confidence !== undefined ? { confidence: e.payload.confidence } : {}),
          costUsd: e.payload.costUsd,
        });
        break;
      case 'agent.failed':
        // A cancellation is not the agent's outcome (a sibling failed, or a wait suspended the
        // workflow): the invocation runs again, its attempts numbered after the cancelled ones
        // (their reservations and charges are in the log under those numbers).
        if (e.payload.category === 'cancelled') {
          inc(invoked, e.payload.path, -1);
          break;
        }
        final(e.payload.path, {
          ok: false,
          category: e.payload.category,
          message: e.payload.message,
          costUsd: e.payload.costUsd,
        });
        break;
      case 'agent.rejected':
        final(e.payload.path, {
          ok: false,
          category: e.payload.category,
          message: e.payload.reason,
          costUsd: 0,
        });
        break;
      case 'workflow.resumed':
        // An earlier resume abandoned whatever was in flight before it (it ran again after it).
        for (const path of invoked.keys()) invoked.set(path, finished.get(path) ?? 0);
        break;
      case 'workflow.waiting':
        push(waits, e.payload.path, {
          name: e.payload.name,
          ...(e.payload.timeoutAt !== undefined ? { timeoutAt: e.payload.timeoutAt } : {}),
        });
        break;
      case 'workflow.signalled': {
        const w = waits.get(e.payload.path)?.findLast((x) => x.signalled === undefined);
        if (w) w.signalled = { value: e.payload.value };
        break;
      }
      default: {
        const key = decisionKey(e);
        if (key !== undefined) inc(decisions, key);
      }
    }
  }
  const inFlight: string[] = [];
  for (const [path, n] of invoked) if (n > (finished.get(path) ?? 0)) inFlight.push(path);
  const source: ResumeSource = {
    runAgent: (agent, input, ctx, live) => resumeAgent(agent, input, ctx, source, live),
    take(path) {
      return finals.get(path)?.shift();
    },
    toolResult(path, step, index, tool, args) {
      return tools.result(path, step, index, tool, args);
    },
    priorAttempts(path) {
      // Without a budget no attempt is reserved: each invocation the log saw start made at least
      // one attempt, and each retry one more (the count may run one ahead, never behind).
      if ((finals.get(path)?.length ?? 0) > 0) return 0;
      return Math.max(attemptsSinceFinal.get(path) ?? 0, startedSinceFinal.get(path) ?? 0);
    },
    wait(path) {
      return waits.get(path)?.shift();
    },
    recorded(event) {
      const key = decisionKey(event);
      if (key === undefined) return false;
      const n = decisions.get(key) ?? 0;
      if (n === 0) return false;
      decisions.set(key, n - 1);
      return true;
    },
    hasToolResults(path) {
      return tools.has(path);
    },
    inFlight,
  };
  return source;
}

/**
 * The tool calls a tool loop in flight at the crash already made, by path: each `tool.succeeded`
 * by its call's position (`step`, index in the turn — the order of its `tool.called`), from the
 * invocation's latest attempt. A later attempt's calls replace an earlier one's.
 */
class RecordedTools {
  /** By path: `step/index` → the recorded call (name, arguments, result once it succeeded). */
  private readonly calls = new Map<string, Map<string, { tool: string; args: string; result?: unknown }>>();
  /** By path: `step/callId` → `step/index`, and the next index in each step, of the current attempt. */
  private readonly positions = new Map<string, Map<string, string>>();
  private readonly counts = new Map<string, Map<number, number>>();

  /** A new attempt (or invocation) at `path`: its calls are numbered afresh. */
  attemptEnded(path: string): void {
    this.positions.delete(path);
    this.counts.delete(path);
  }

  /** The invocation at `path` finished: nothing of it is fed to a later one. */
  finished(path: string): void {
    this.attemptEnded(path);
    this.calls.delete(path);
  }

  called(p: { path: string; step: number; callId: string; tool: string; args: unknown }): void {
    let counts = this.counts.get(p.path);
    if (!counts) this.counts.set(p.path, (counts = new Map<number, number>()));
    const index = counts.get(p.step) ?? 0;
    counts.set(p.step, index + 1);
    let positions = this.positions.get(p.path);
    if (!positions) this.positions.set(p.path, (positions = new Map<string, string>()));
    const at = `${p.step}/${index}`;
    positions.set(`${p.step}/${p.callId}`, at);
    let calls = this.calls.get(p.path);
    if (!calls)
      this.calls.set(p.path, (calls = new Map<string, { tool: string; args: string; result?: unknown }>()));
    calls.set(at, { tool: p.tool, args: canonicalJson(p.args) });
  }

  succeeded(p: { path: string; step: number; callId: string; result: unknown }): void {
    const at = this.positions.get(p.path)?.get(`${p.step}/${p.callId}`);
    const call = at === undefined ? undefined : this.calls.get(p.path)?.get(at);
    if (call) call.result = p.result;
  }

  has(path: string): boolean {
    for (const c of this.calls.get(path)?.values() ?? []) if ('result' in c) return true;
    return false;
  }

  /**
   * The recorded result of the call at `step`/`index` when it succeeded and the re-run asks for the
   * same tool with the same arguments (as logged); else undefined (the call runs live).
   */
  result(
    path: string,
    step: number,
    index: number,
    tool: string,
    args: unknown,
  ): { result: unknown } | undefined {
    const call = this.calls.get(path)?.get(`${step}/${index}`);
    if (call === undefined || !('result' in call) || call.tool !== tool) return undefined;
    let asked: string;
    try {
      asked = canonicalJson(args);
    } catch {
      return undefined;
    }
    if (call.args !== asked) return undefined;
    return { result: call.result };
  }
}

/**
 * Runs an agent node of a resumed workflow: its recorded outcome when the log has one (one
 * microtask later, as a live invocation settles; counted in the workflow's totals, nothing
 * emitted), else `live` — with `AgentContext.attempt` continuing after the attempts the crashed run
 * already made, so a provider or tool can tell a repeated attempt.
 */
export function resumeAgent(
  agent: Agent<never, unknown>,
  input: unknown,
  ctx: NodeContext,
  source: ResumeSource,
  live: (agent: Agent<never, unknown>, input: unknown, ctx: NodeContext) => Observable<NodeResult>,
): Observable<NodeResult> {
  const recorded = source.take(ctx.path);
  if (recorded === undefined) {
    const prior = source.priorAttempts(ctx.path);
    const path = ctx.path;
    const toolResults = source.toolResult !== undefined && source.hasToolResults?.(path) === true;
    if (prior === 0 && !toolResults) return live(agent, input, ctx);
    // The re-run is a new attempt: numbered after the ones already made (see NodeContext.priorAttempts).
    const numbered: NodeContext = prior > 0 ? { ...ctx, priorAttempts: prior } : ctx;
    if (!toolResults) return live(agent, input, numbered);
    const run = agent.run;
    const fed: Agent<never, unknown> = Object.freeze({
      ...agent,
      run: (i: never, context: Parameters<typeof run>[1]) =>
        run(i, {
          ...context,
          // A tool loop cut off mid-way: the tool calls it already made answer from the log.
          recordedToolResult: (step: number, index: number, tool: string, args: unknown) =>
            source.toolResult?.(path, step, index, tool, args),
        }),
    });
    return live(fed, input, numbered);
  }
  return new Observable<NodeResult>((subscriber) => {
    let active = true;
    queueMicrotask(() => {
      if (!active) return;
      const stats = ctx.scope.stats;
      stats.agentsCalled++;
      stats.costUsd += recorded.costUsd;
      if (recorded.ok) {
        subscriber.next({
          value: recorded.value,
          ...(recorded.confidence !== undefined ? { confidence: recorded.confidence } : {}),
        });
        subscriber.complete();
      } else {
        subscriber.error(
          new AgentFailedError(recorded.category, recorded.message, { agent: agent.name, path: ctx.path }),
        );
      }
    });
    return () => {
      active = false;
    };
  });
}
