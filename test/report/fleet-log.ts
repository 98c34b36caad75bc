/**
 * A large synthetic fleet log, generated lazily, for the streaming tests: `workflows` workflows,
 * `concurrency` of them running at once with their events interleaved, half of them a two-stage
 * cascade whose cheap stage is cached, half a three-screener vote. About 9 events per workflow;
 * nothing is held but the running workflows' next events.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  DEFAULT_EVENT_CLASS,
  EVENT_VERSIONS,
  type EventPayloads,
  type KeelEvent,
  type KeelEventType,
} from '../../src/eventlog/events.js';

export const FLEET_T0 = Date.UTC(2026, 5, 1, 8);
const USAGE = { inputTokens: 500, outputTokens: 500 };

type Draft = { [K in KeelEventType]: { type: K; payload: EventPayloads[K] } }[KeelEventType];

const CASCADE = {
  kind: 'cascade',
  name: 'triage',
  options: { threshold: 0.9 },
  children: [
    { kind: 'agent', name: 'screen', model: 'gpt-3.5-turbo', taskType: 'screen' },
    { kind: 'agent', name: 'escalate', model: 'gpt-4', taskType: 'escalate' },
  ],
};
const VOTE = {
  kind: 'vote',
  name: 'fraud',
  options: { stop: 'decided' },
  children: [1, 2, 3].map((n) => ({
    kind: 'agent',
    name: `screener_${n}`,
    model: 'gpt-4',
    taskType: 'fraud',
  })),
};

/** Workflow `i` of the fleet: even ones cascade, odd ones vote. */
export function isCascade(i: number): boolean {
  return i % 2 === 0;
}

/** The cheap stage's confidence in cascade workflow `i`: escalated when below 0.9 (two in five). */
export function screenConfidence(i: number): number {
  return [0.95, 0.7, 0.92, 0.85, 0.99][(i / 2) % 5] ?? 0.95;
}

/** Cascade workflow `i` looks up cache key `k{i mod 50}`: a miss (a written call) one time in three. */
export function screenIsCached(i: number): boolean {
  return (i / 2) % 3 !== 0;
}

function succeeded(path: string, agent: string, model: string, output: unknown, costUsd: number): Draft {
  return {
    type: 'agent.succeeded',
    payload: {
      path,
      agent,
      taskType: agent,
      model,
      output,
      attempts: 1,
      latencyMs: 40,
      usage: USAGE,
      costUsd,
    },
  };
}

function cost(path: string, agent: string, model: string, costUsd: number): Draft {
  return {
    type: 'cost.incurred',
    payload: { path, agent, model, taskType: agent, attempt: 1, usage: USAGE, costUsd, estimateUsd: costUsd },
  };
}

function cascadeRun(i: number): Draft[] {
  const out: Draft[] = [
    {
      type: 'workflow.started',
      payload: { name: 'triage', topology: CASCADE, input: { i }, inputHash: 'h' },
    },
  ];
  const key = `k${i % 50}`;
  const confidence = screenConfidence(i);
  if (screenIsCached(i)) {
    out.push({
      type: 'cache.hit',
      payload: { path: 'triage/screen', agent: 'screen', key, ageMs: 1_000, savedUsd: 0.002 },
    });
  } else {
    out.push(
      { type: 'cache.miss', payload: { path: 'triage/screen', agent: 'screen', key } },
      cost('triage/screen', 'screen', 'gpt-3.5-turbo', 0.002),
    );
  }
  out.push(succeeded('triage/screen', 'screen', 'gpt-3.5-turbo', `v${i % 7}`, screenIsCached(i) ? 0 : 0.002));
  if (confidence >= 0.9) {
    out.push({
      type: 'cascade.accepted',
      payload: { path: 'triage', stage: 0, agent: 'screen', confidence, savedUsd: 0.03 },
    });
  } else {
    out.push(
      {
        type: 'cascade.escalated',
        payload: {
          path: 'triage',
          fromStage: 0,
          toStage: 1,
          fromAgent: 'screen',
          toAgent: 'escalate',
          confidence,
          reason: 'low confidence',
        },
      },
      cost('triage/escalate', 'escalate', 'gpt-4', 0.03),
      succeeded('triage/escalate', 'escalate', 'gpt-4', `v${i % 7}`, 0.03),
      {
        type: 'cascade.accepted',
        payload: { path: 'triage', stage: 1, agent: 'escalate', confidence: 0.99, savedUsd: 0 },
      },
    );
  }
  out.push(
    {
      type: 'workflow.completed',
      payload: { output: `v${i % 7}`, latencyMs: 80, costUsd: 0, agentsCalled: 2 },
    },
    {
      type: 'feedback.recorded',
      payload: { correct: confidence >= 0.9 || i % 3 === 0, expected: `v${i % 7}` },
    },
  );
  return out;
}

function voteRun(i: number): Draft[] {
  const verdicts = i % 4 === 1 ? ['ok', 'fraud', 'ok'] : ['ok', 'ok', 'ok'];
  const out: Draft[] = [
    { type: 'workflow.started', payload: { name: 'fraud', topology: VOTE, input: { i }, inputHash: 'h' } },
  ];
  const used = verdicts[0] === verdicts[1] ? 2 : 3;
  for (let v = 0; v < used; v++) {
    const agent = `screener_${v + 1}`;
    const path = `fraud/${agent}`;
    out.push(cost(path, agent, 'gpt-4', 0.03), succeeded(path, agent, 'gpt-4', verdicts[v], 0.03), {
      type: 'vote.cast',
      payload: { path: 'fraud', agent, value: verdicts[v], weight: 1, index: v },
    });
  }
  out.push(
    {
      type: 'vote.decided',
      payload: { path: 'fraud', value: 'ok', confidence: 1, agentsUsed: used, total: 3, savedUsd: 0 },
    },
    { type: 'workflow.completed', payload: { output: 'ok', latencyMs: 90, costUsd: 0, agentsCalled: used } },
  );
  return out;
}

/**
 * Yields the fleet's events in log order, `concurrency` workflows interleaved. `beforeYield` runs
 * before each event is handed out, with how many were handed out before it.
 */
export function* fleetLog(
  workflows: number,
  concurrency: number,
  beforeYield: (yielded: number) => void = () => undefined,
): Generator<KeelEvent> {
  const running: { id: string; drafts: Draft[]; next: number }[] = [];
  let started = 0;
  let seq = 0;
  const start = (): void => {
    const i = started++;
    running.push({ id: `wf-${i}`, drafts: isCascade(i) ? cascadeRun(i) : voteRun(i), next: 0 });
  };
  while (started < Math.min(concurrency, workflows)) start();
  for (let turn = 0; running.length > 0; turn++) {
    const slot = turn % running.length;
    const w = running[slot]!;
    const d = w.drafts[w.next++]!;
    if (w.next === w.drafts.length) {
      running.splice(slot, 1);
      if (started < workflows) start();
    }
    beforeYield(seq);
    seq++;
    yield {
      seq,
      ts: FLEET_T0 + seq * 10,
      workflowId: w.id,
      type: d.type,
      v: EVENT_VERSIONS[d.type],
      class: DEFAULT_EVENT_CLASS[d.type],
      payload: d.payload,
    } as KeelEvent;
  }
}

/** {@link fleetLog} as an asynchronous stream, like a Postgres store's `iterate()`. */
export async function* asyncFleetLog(
  workflows: number,
  concurrency: number,
  beforeYield?: (yielded: number) => void,
): AsyncGenerator<KeelEvent> {
  for (const e of fleetLog(workflows, concurrency, beforeYield)) {
    await Promise.resolve();
    yield e;
  }
}

/** Any events as an asynchronous stream that hands out one event per turn of the event loop. */
export async function* asAsync(events: Iterable<KeelEvent>): AsyncGenerator<KeelEvent> {
  for (const e of events) {
    await Promise.resolve();
    yield e;
  }
}

/**
 * How many of `refs` still reach their object after a full garbage collection: the objects a
 * fold still holds. (Exposes V8's `gc` for the test process.)
 */
export async function reachableAfterGc(refs: readonly WeakRef<object>[]): Promise<number> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // WeakRef targets stay alive until the job that made them ends.
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  return refs.filter((r) => r.deref() !== undefined).length;
}
