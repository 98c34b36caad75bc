/**
 * The agent machine runs two ways: stepped through its transition function (no inspector) or as an
 * XState actor (an inspector is configured). Both must be the same machine: the same snapshots in
 * the same order, the same delays on the clock, and — through the runtime — the same log.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_RETRY_ON,
  type AgentMachineEvent,
  type AgentMachineInput,
} from '../../machines/agent.machine.js';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import { ProviderError } from '../../src/providers/types.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent, type AgentOutput } from '../../src/supervisor/agent.js';
import { driveAgent, type AgentDriver, type AgentSnapshot } from '../../src/supervisor/agent-driver.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';

const POLICY: AgentMachineInput = {
  agent: 'vendor',
  timeoutMs: 1_000,
  maxAttempts: 3,
  backoff: 'exponential',
  baseDelayMs: 200,
  maxDelayMs: 30_000,
  jitter: true,
  retryOn: DEFAULT_RETRY_ON,
};

/** What the runtime answers in each state: the next reply to `gated` / `calling`, in order. */
type Reply = AgentMachineEvent | 'wait';

interface Step {
  /** `enter <state>` when the listener is handed a snapshot, `leave <state>` when it returns. */
  at: string;
  atMs: number;
  value: string;
  attempt: number;
  category: string | undefined;
  message: string | undefined;
  retryDelayMs: number;
  retryAfterMs: number | undefined;
  status: string;
  timers: number;
}

/**
 * Plays one invocation: answers the machine from `gate` and `call` as it enters those states,
 * advances the clock by `advanceMs` steps, and records every snapshot the listener was handed.
 */
function play(
  inspected: boolean,
  script: { gate: Reply[]; call: Reply[]; advanceMs: number[]; cancelAtMs?: number; seeded?: boolean },
): Step[] {
  const clock: SimulatedClock = simulatedClock(0);
  const steps: Step[] = [];
  const gate = [...script.gate];
  const call = [...script.call];
  const answer = (replies: Reply[]): void => {
    const next = replies.shift() ?? 'wait';
    if (next !== 'wait') driver.send(next);
  };
  const driver: AgentDriver = driveAgent(
    POLICY,
    { clock, inspect: inspected ? () => undefined : undefined },
    {
      onSnapshot: (s: AgentSnapshot) => {
        const c = s.context;
        steps.push({
          at: `enter ${s.value}`,
          atMs: clock.now(),
          value: s.value,
          attempt: c.attempt,
          category: c.category,
          message: c.message,
          retryDelayMs: c.retryDelayMs,
          retryAfterMs: c.retryAfterMs,
          status: s.status,
          timers: clock.pendingTimers(),
        });
        if (s.value === 'gated') answer(gate);
        else if (s.value === 'calling') answer(call);
        // An event sent from the handler waits until it returns (an actor's mailbox).
        steps.push({ ...(steps.at(-1) as Step), at: `leave ${s.value}` });
      },
      onError: (e) => {
        throw e;
      },
    },
  );
  driver.send(script.seeded === false ? { type: 'START' } : { type: 'START', jitterSeed: 12345 });
  for (const ms of script.advanceMs) {
    clock.advance(ms);
    if (script.cancelAtMs !== undefined && clock.now() === script.cancelAtMs) {
      driver.send({ type: 'CANCEL', reason: 'workflow cancelled: unsubscribed' });
    }
  }
  expect(clock.pendingTimers()).toBe(0);
  return steps;
}

const failed = (category: 'provider_error' | 'rate_limited', retryAfterMs?: number): AgentMachineEvent => ({
  type: 'CALL.FAILED',
  category,
  message: `${category} from the provider`,
  ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
});

const SCRIPTS = {
  'succeeds at once': { gate: [{ type: 'GATE.PASS' }], call: [{ type: 'CALL.SUCCEEDED' }], advanceMs: [] },
  'fails, backs off, then succeeds': {
    gate: [{ type: 'GATE.PASS' }, { type: 'GATE.PASS' }],
    call: [failed('provider_error'), { type: 'CALL.SUCCEEDED' }],
    advanceMs: [100, 100, 100],
  },
  'honours a longer retry-after': {
    gate: [{ type: 'GATE.PASS' }, { type: 'GATE.PASS' }],
    call: [failed('rate_limited', 5_000), { type: 'CALL.SUCCEEDED' }],
    advanceMs: [4_999, 1],
  },
  'times out on every attempt': {
    gate: [{ type: 'GATE.PASS' }, { type: 'GATE.PASS' }, { type: 'GATE.PASS' }],
    call: ['wait', 'wait', 'wait'],
    advanceMs: [1_000, 300, 1_000, 600, 1_000],
  },
  'is rejected at the gate': {
    gate: [{ type: 'GATE.REJECT', category: 'circuit_open', reason: 'breaker open' }],
    call: [],
    advanceMs: [],
  },
  'is cancelled while calling': {
    gate: [{ type: 'GATE.PASS' }],
    call: ['wait'],
    advanceMs: [250, 250],
    cancelAtMs: 250,
  },
} satisfies Record<string, Parameters<typeof play>[1]>;

describe('the agent machine, stepped and as an actor', () => {
  for (const [name, script] of Object.entries(SCRIPTS)) {
    it(`${name}: the same snapshots, at the same times, with the same timers`, () => {
      const stepped = play(false, script);
      const actor = play(true, script);
      expect(stepped).toEqual(actor);
      // Without a jitter seed, steps from shared snapshots are computed once and then looked up:
      // the second run takes them from the cache, and both still match the actor.
      const unseeded = { ...script, seeded: false };
      const actorUnseeded = play(true, unseeded);
      expect(play(false, unseeded)).toEqual(actorUnseeded);
      expect(play(false, unseeded)).toEqual(actorUnseeded);
      expect(stepped.at(-1)?.status).toBe('done');
      expect(stepped.slice(0, 4).map((s) => s.at)).toEqual([
        'enter idle',
        'leave idle',
        'enter gated',
        'leave gated',
      ]);
    });
  }

  it('reaches the final states the scripts aim at', () => {
    const last = (script: Parameters<typeof play>[1]): string | undefined =>
      play(false, script).at(-1)?.value;
    expect(last(SCRIPTS['succeeds at once'])).toBe('succeeded');
    expect(last(SCRIPTS['fails, backs off, then succeeds'])).toBe('succeeded');
    expect(last(SCRIPTS['times out on every attempt'])).toBe('timedOut');
    expect(last(SCRIPTS['is rejected at the gate'])).toBe('rejected');
    expect(last(SCRIPTS['is cancelled while calling'])).toBe('cancelled');
    const retryAfter = play(false, SCRIPTS['honours a longer retry-after']);
    expect(retryAfter.find((s) => s.value === 'retrying')?.retryDelayMs).toBe(5_000);
  });

  it('ignores events once finished, as a stopped actor does', () => {
    const seen: string[] = [];
    const driver = driveAgent(
      POLICY,
      { clock: simulatedClock(0), inspect: undefined },
      { onSnapshot: (s) => seen.push(s.value), onError: (e) => expect.fail(String(e)) },
    );
    driver.send({ type: 'START', jitterSeed: 1 });
    driver.send({ type: 'GATE.REJECT', category: 'budget_exceeded', reason: 'over budget' });
    driver.send({ type: 'GATE.PASS' });
    expect(seen).toEqual(['idle', 'gated', 'rejected']);
    expect(driver.getSnapshot().value).toBe('rejected');
  });
});

describe('a runtime with and without an inspector', () => {
  let runtimes: Runtime<SqliteEventStore>[] = [];
  afterEach(async () => {
    for (const rt of runtimes) await rt.close();
    runtimes = [];
  });

  /** Runs a flaky, slow agent (failures, a timeout, retries with backoff) and returns the log. */
  async function logOf(inspect: boolean): Promise<unknown[]> {
    const clock = simulatedClock();
    const rt = createRuntime({
      db: ':memory:',
      clock,
      seed: 7,
      pricing: { sim: { inputPer1K: 0.01, outputPer1K: 0.02 } },
      ...(inspect ? { inspect: () => undefined } : {}),
    });
    runtimes.push(rt);
    let calls = 0;
    const flaky = agent({
      name: 'flaky',
      model: 'sim',
      timeoutMs: 500,
      retry: { attempts: 4, baseDelayMs: 100 },
      breaker: { name: 'sim', failureThreshold: 10 },
      run: (_input: unknown, { signal }): Promise<AgentOutput<number>> => {
        calls++;
        if (calls % 4 === 1) return Promise.reject(new ProviderError('provider_error', '503 from upstream'));
        if (calls % 4 === 2)
          return new Promise<never>((_, reject) => signal.addEventListener('abort', reject));
        return new Promise((resolve) =>
          clock.setTimeout(() => resolve({ value: calls, usage: { inputTokens: 10, outputTokens: 5 } }), 50),
        );
      },
    });
    const runs = [rt.run(flaky, { n: 1 }), rt.run(flaky, { n: 2 })];
    for (let i = 0; i < 40; i++) await clock.advanceAsync(100);
    const results = await Promise.allSettled(runs);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
    return rt.store
      .query()
      .map((e: KeelEvent) => ({ ts: e.ts, wf: e.workflowId, type: e.type, p: withoutOwner(e.payload) }));
  }

  /** `workflow.started` names the runtime instance that owns the run: one per runtime, by design. */
  function withoutOwner(payload: KeelEvent['payload']): unknown {
    if (!('owner' in payload)) return payload;
    const { owner, ...rest } = payload;
    expect(owner).toMatch(/:/);
    return rest;
  }

  it('writes the same events, payloads and times either way', async () => {
    const stepped = await logOf(false);
    const inspected = await logOf(true);
    expect(stepped.length).toBeGreaterThan(10);
    expect(stepped).toEqual(inspected);
    expect(stepped.map((e) => (e as { type: string }).type)).toEqual(
      expect.arrayContaining(['agent.retried', 'agent.timed_out', 'agent.succeeded']),
    );
  });
});
