/**
 * What a resumed workflow reads back from its own recorded events: the final outcome of every agent
 * invocation that finished before the crash (replayed: no call, no event, no budget or breaker
 * counting), how many attempts an invocation in flight already made (its re-run continues the
 * numbering), the values signalled to its waits, and the topology decisions (votes, cascades) it
 * already recorded (not written twice). A pure fold of the workflow's events; everything without a
 * record runs live.
 */
import { Observable } from 'rxjs';
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
  const final = (path: string, f: RecordedFinal): void => {
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
        break;
      case 'agent.retried':
        inc(startedSinceFinal, e.payload.path);
        break;
      case 'cost.reserved':
        inc(attemptsSinceFinal, e.payload.path);
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
        // workflow): the invocation runs again.
        if (e.payload.category === 'cancelled') {
          inc(invoked, e.payload.path, -1);
          attemptsSinceFinal.set(e.payload.path, 0);
          startedSinceFinal.set(e.payload.path, 0);
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
    inFlight,
  };
  return source;
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
    if (prior === 0) return live(agent, input, ctx);
    const run = agent.run;
    const shifted: Agent<never, unknown> = Object.freeze({
      ...agent,
      run: (i: never, context: Parameters<typeof run>[1]) =>
        run(i, { ...context, attempt: context.attempt + prior }),
    });
    return live(shifted, input, ctx);
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
