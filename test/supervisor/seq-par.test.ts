/**
 * `seq` and `par` run their children through one small record per running child (no operator
 * chain, and an agent child without a policy is invoked without an Observable of its own). What a
 * caller can see must not change: results flow step to step, a failure or a cancellation stops
 * every call still running and nothing after it starts, and a cancelled invocation reports nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent, type AgentContext } from '../../src/supervisor/agent.js';
import { branch } from '../../src/supervisor/branch.js';
import { isWorkflowCancelledError } from '../../src/supervisor/errors.js';
import { map } from '../../src/supervisor/map.js';
import { par } from '../../src/supervisor/parallel.js';
import { seq } from '../../src/supervisor/sequential.js';
import { exec } from '../../src/supervisor/execute.js';
import { runChild } from '../../src/supervisor/run-child.js';
import type { NodeContext, Services } from '../../src/supervisor/scope.js';
import type { NodeResult } from '../../src/supervisor/topology.js';
import { supervise } from '../../src/supervisor/topology.js';
import type { NewEvent } from '../../src/eventlog/events.js';

let rt: Runtime<SqliteEventStore> | undefined;
afterEach(async () => {
  await rt?.close();
  rt = undefined;
});

function setup(): { rt: Runtime<SqliteEventStore>; clock: SimulatedClock } {
  const clock = simulatedClock();
  rt = createRuntime({
    db: ':memory:',
    clock,
    seed: 3,
    pricing: { sim: { inputPer1K: 0.001, outputPer1K: 0.002 } },
  });
  return { rt, clock };
}

/** An agent that waits on its abort signal (never answers on its own), tracked in `live`. */
function parked(name: string, live: Set<string>) {
  return agent({
    name,
    model: 'sim',
    timeoutMs: 60_000,
    run: (_input: unknown, ctx: AgentContext) =>
      new Promise<{ value: string }>((_resolve, reject) => {
        live.add(name);
        ctx.signal.addEventListener('abort', () => {
          live.delete(name);
          reject(new Error(`${name} aborted`));
        });
      }),
  });
}

/** An agent answering at once with `fn(input)`, recording the inputs it saw. */
function instant(name: string, fn: (input: unknown) => unknown, seen: unknown[] = []) {
  return agent({
    name,
    model: 'sim',
    run: (input: unknown) => {
      seen.push(input);
      return Promise.resolve({ value: fn(input) });
    },
  });
}

const invoked = (r: Runtime<SqliteEventStore>): string[] =>
  r.store.query({ type: 'agent.invoked' }).map((e) => (e.type === 'agent.invoked' ? e.payload.agent : ''));

describe('seq and par: results flow step to step', () => {
  it('each step gets the previous output; par gives its children’s outputs in child order', async () => {
    const { rt } = setup();
    const seen: unknown[] = [];
    const wf = seq(
      par(
        instant('vendor', () => 'ACME'),
        instant('amount', () => 120),
        instant('date', () => '2026-01-02'),
      ),
      instant('validate', (x) => ({ ok: true, fields: x }), seen),
      instant('route', (x) => ((x as { ok: boolean }).ok ? 'auto' : 'manual'), seen),
    );
    const r = await rt.run(wf, { invoice: 1 });
    expect(r.value).toBe('auto');
    expect(seen[0]).toEqual(['ACME', 120, '2026-01-02']);
    expect(seen[1]).toEqual({ ok: true, fields: ['ACME', 120, '2026-01-02'] });
    expect(r.agentsCalled).toBe(5);
  });

  it('a step that answers while it is being started (branch without else) passes its input on', async () => {
    const { rt } = setup();
    const seen: unknown[] = [];
    const never = instant('never', () => 'no');
    const wf = seq(
      branch(() => false, never),
      branch(() => false, never),
      instant('last', (x) => x, seen),
    );
    expect((await rt.run(wf, 42)).value).toBe(42);
    expect(seen).toEqual([42]);
    expect(invoked(rt)).toEqual(['last']);
  });

  it('par of steps that answer at once, in a seq of maps, in a par', async () => {
    const { rt } = setup();
    const inc = map((x: number) => x + 1);
    const wf = par(
      seq(inc, inc, inc),
      seq(
        par(inc, inc),
        map((xs: number[]) => xs[0]! + xs[1]!),
      ),
    );
    expect((await rt.run(wf, 1)).value).toEqual([4, 4]);
  });
});

describe('seq and par: failures and cancellation stop everything still running', () => {
  it('a par child throwing a plain Error (synchronously) fails the workflow, cancels its siblings, and no later step starts', async () => {
    const { rt, clock } = setup();
    const live = new Set<string>();
    const thrower = agent({
      name: 'thrower',
      model: 'sim',
      run: () => {
        throw new Error('plain failure');
      },
    });
    const wf = seq(
      par(parked('a', live), parked('b', live), thrower),
      instant('validate', (x) => x),
    );
    const err = await rt.run(wf, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain('plain failure');
    await clock.flush();
    expect(live.size).toBe(0);
    expect(invoked(rt)).not.toContain('validate');
    expect(rt.store.query({ type: 'workflow.failed' })).toHaveLength(1);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a par child throwing a string (not an Error) fails the workflow the same way', async () => {
    const { rt, clock } = setup();
    const live = new Set<string>();
    const hostile = agent({
      name: 'hostile',
      model: 'sim',
      // A user's run() rejecting with a string, not an Error: what this test is about.
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      run: () => Promise.reject('"; DROP TABLE events; --'),
    });
    const err = await rt
      .run(seq(par(parked('a', live), hostile), parked('never', live)), {})
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    await clock.flush();
    expect(live.size).toBe(0);
    expect(invoked(rt)).not.toContain('never');
  });

  it('aborting while the second step waits cancels its calls, runs no later step, leaves no timer', async () => {
    const { rt, clock } = setup();
    const live = new Set<string>();
    const ac = new AbortController();
    const wf = seq(
      instant('first', (x) => x),
      par(parked('vendor', live), parked('amount', live), parked('date', live)),
      instant('validate', (x) => x),
      instant('route', (x) => x),
    );
    const p = rt.run(wf, {}, { signal: ac.signal }).catch((e: unknown) => e);
    await clock.advanceAsync(10);
    expect([...live].sort()).toEqual(['amount', 'date', 'vendor']);
    ac.abort('caller gave up');
    expect(isWorkflowCancelledError(await p)).toBe(true);
    await clock.flush();
    expect(live.size).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
    expect(invoked(rt)).toEqual(['first', 'vendor', 'amount', 'date']);
    expect(rt.store.query({ type: 'workflow.cancelled' })).toHaveLength(1);
    expect(rt.store.query({ type: 'workflow.completed' })).toHaveLength(0);
  });

  it('unsubscribing a one-agent run$ aborts the call; the cancelled invocation reports nothing more', async () => {
    const { rt, clock } = setup();
    const live = new Set<string>();
    const items: string[] = [];
    let ended = '';
    const sub = rt.run$(parked('solo', live), {}).subscribe({
      next: (e) => items.push(e.type),
      error: () => (ended = 'error'),
      complete: () => (ended = 'complete'),
    });
    await clock.advanceAsync(10);
    expect(live.has('solo')).toBe(true);
    sub.unsubscribe();
    await clock.flush();
    expect(live.size).toBe(0);
    expect(ended).toBe('');
    expect(clock.pendingTimers()).toBe(0);
    expect(rt.store.query({ type: 'workflow.cancelled' })).toHaveLength(1);
  });

  it('an agent with a supervision policy inside par still runs under it (retry after a plain Error)', async () => {
    const { rt } = setup();
    let n = 0;
    const flaky = agent({
      name: 'flaky',
      model: 'sim',
      run: () => (++n < 2 ? Promise.reject(new Error('first try fails')) : Promise.resolve({ value: n })),
    });
    const r = await rt.run(
      par(
        instant('ok', () => 'ok'),
        supervise(flaky, { retry: 1 }),
      ),
      {},
    );
    expect(r.value).toEqual(['ok', 2]);
  });
});

describe('runChild: an agent child invoked without an Observable', () => {
  function context(clock: SimulatedClock, events: NewEvent[]): NodeContext {
    const services = {
      clock,
      inspect: undefined,
      breaker: () => {
        throw new Error('no breaker in this test');
      },
      budgets: undefined,
      cache: undefined,
      price: () => 0,
      priceCall: () => 0,
      seed: '1',
    } as unknown as Services;
    return {
      scope: {
        workflowId: 'wf-1',
        services,
        emit: (e) => void events.push(e),
        stats: { costUsd: 0, agentsCalled: 0 },
        replay: undefined,
      },
      path: 'root',
      deadlineAt: undefined,
    };
  }

  /** A sink that records what it hears. */
  const recorder = () => {
    const heard: string[] = [];
    return {
      heard,
      next: (r: NodeResult) => void heard.push(`next ${JSON.stringify(r.value)}`),
      error: (e: unknown) => void heard.push(`error ${(e as Error).message}`),
      complete: () => void heard.push('complete'),
    };
  };

  it('hears the answer then complete, one microtask after it settles', async () => {
    const clock = simulatedClock();
    const sink = recorder();
    runChild(
      exec,
      instant('a', () => 'A'),
      1,
      context(clock, []),
      sink,
    );
    expect(sink.heard).toEqual([]);
    await clock.flush();
    expect(sink.heard).toEqual(['next "A"', 'complete']);
  });

  it('once unsubscribed it hears nothing, though the call is cancelled and recorded as such', async () => {
    const clock = simulatedClock();
    const live = new Set<string>();
    const events: NewEvent[] = [];
    const sink = recorder();
    const running = runChild(exec, parked('p', live), 1, context(clock, events), sink);
    await clock.flush();
    expect(live.has('p')).toBe(true);
    running.unsubscribe();
    await clock.flush();
    expect(live.size).toBe(0);
    expect(sink.heard).toEqual([]);
    const failed = events.find((e) => e.type === 'agent.failed');
    expect(failed?.type === 'agent.failed' && failed.payload.category).toBe('cancelled');
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a throw while it is being started reaches the sink as an error', () => {
    const clock = simulatedClock();
    const sink = recorder();
    const ctx = context(clock, []);
    const broken: NodeContext = {
      ...ctx,
      scope: {
        ...ctx.scope,
        emit: () => {
          throw new Error('log refused');
        },
      },
    };
    runChild(
      exec,
      instant('a', () => 'A'),
      1,
      broken,
      sink,
    );
    expect(sink.heard).toEqual(['error log refused']);
  });
});
