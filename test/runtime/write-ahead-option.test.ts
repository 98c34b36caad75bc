/**
 * `writeAhead` (issue 26): which model calls wait for the log before they are made. The default
 * (`'always'`) keeps the promise "if the log cannot record it, the model is not called" for every
 * priced call; `'reservations'` keeps it only for calls holding a budget reservation, and starts
 * the others one durable commit sooner. A store the test holds and fails on demand stands in for a
 * locked or full log, on a simulated clock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import { ConfigError } from '../../src/core/errors.js';
import { DatabaseLockedError } from '../../src/eventlog/errors.js';
import type { KeelEvent, NewEvent } from '../../src/eventlog/events.js';
import { openSqliteStore, type SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { createRuntime, type Runtime, type RuntimeConfig } from '../../src/runtime.js';
import { agent, type AgentContext, type AgentOutput } from '../../src/supervisor/agent.js';

const PRICING = { m: { inputPer1K: 0.001, outputPer1K: 0.002 } };
const USAGE = { inputTokens: 100, outputTokens: 50 };

/**
 * A real in-memory store whose appends the test can hold (they wait, in order, until `release()`)
 * or refuse (`refuse(error)`: every held and later append rejects with `error`).
 */
class HeldStore {
  readonly real: SqliteEventStore = openSqliteStore({ path: ':memory:' });
  private held: {
    events: readonly NewEvent[];
    resolve: (v: KeelEvent[]) => void;
    reject: (e: unknown) => void;
  }[] = [];
  private holding = false;
  private refusal: Error | undefined;
  readonly store: SqliteEventStore;

  constructor() {
    const append = (events: readonly NewEvent[]): Promise<KeelEvent[]> => {
      if (this.refusal !== undefined) return Promise.reject(this.refusal);
      if (!this.holding) return this.real.append(events);
      return new Promise<KeelEvent[]>((resolve, reject) => this.held.push({ events, resolve, reject }));
    };
    // Everything else (queries, commit listeners, close) is the real store's.
    this.store = new Proxy(this.real, {
      get(target, key) {
        if (key === 'append') return append;
        if (key === 'appendOne') return (e: NewEvent) => append([e]).then(() => undefined);
        const v = Reflect.get(target, key) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  }

  hold(): void {
    this.holding = true;
  }

  /** Appends held so far. */
  get waiting(): number {
    return this.held.length;
  }

  /** Forwards the held appends to the real store, in order, and stops holding. */
  release(): void {
    this.holding = false;
    for (const h of this.held.splice(0)) this.real.append(h.events).then(h.resolve, h.reject);
  }

  /** Refuses every held and later append with `error`. */
  refuse(error: Error): void {
    this.refusal = error;
    for (const h of this.held.splice(0)) h.reject(error);
  }
}

const runtimes: Runtime[] = [];
const stores: HeldStore[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close().catch(() => undefined);
  for (const s of stores.splice(0)) await s.real.close().catch(() => undefined);
});

function setup(config: Partial<RuntimeConfig>) {
  const held = new HeldStore();
  stores.push(held);
  const clock = simulatedClock(Date.UTC(2026, 0, 5, 9));
  const rt = createRuntime({ store: held.store, clock, seed: 1, pricing: PRICING, ...config });
  runtimes.push(rt);
  return { held, clock, rt };
}

/** A priced agent that counts its calls and answers when the test says (`answer()`), or at once. */
function pricedAgent(options: { hang?: boolean } = {}) {
  const calls: { signal: AbortSignal; reservedCommitted?: boolean }[] = [];
  let answer: ((out: AgentOutput<string>) => void) | undefined;
  const a = agent({
    name: 'priced',
    model: 'm',
    run: (_input: unknown, ctx: AgentContext) => {
      calls.push({ signal: ctx.signal });
      if (!options.hang) return Promise.resolve({ value: 'ok', usage: USAGE });
      return new Promise<AgentOutput<string>>((resolve) => (answer = resolve));
    },
  });
  return { agent: a, calls, answer: (out: AgentOutput<string>) => answer?.(out) };
}

const LOCKED = new DatabaseLockedError('keel.db', 50);

/** Lets microtasks and the store's next tick run. */
async function settle(clock: ReturnType<typeof simulatedClock>): Promise<void> {
  for (let i = 0; i < 5; i++) await clock.advanceAsync(0);
}

describe('writeAhead: the option is validated', () => {
  it('refuses an unknown mode with the field and the modes', () => {
    expect(() => createRuntime({ db: ':memory:', writeAhead: 'never' as 'always' })).toThrow(ConfigError);
    expect(() => createRuntime({ db: ':memory:', writeAhead: 'never' as 'always' })).toThrow(
      /writeAhead.*'always'.*'reservations'/,
    );
  });
});

describe("writeAhead: 'always' (default)", () => {
  it('a call whose agent.invoked the log refuses is never made; the run rejects with the log error', async () => {
    const { held, clock, rt } = setup({});
    await rt.ready();
    const { agent: priced, calls } = pricedAgent();
    held.hold();
    const run = rt.run(priced, 'x').catch((e: unknown) => e);
    await settle(clock);
    expect(held.waiting).toBeGreaterThan(0);
    expect(calls).toHaveLength(0); // waits for workflow.started + agent.invoked
    held.refuse(LOCKED);
    await settle(clock);
    expect(await run).toBe(LOCKED);
    expect(calls).toHaveLength(0); // never made
  });

  it('the call starts once agent.invoked is committed, and finds it in the log', async () => {
    const { held, clock, rt } = setup({});
    await rt.ready();
    const { agent: priced, calls } = pricedAgent();
    held.hold();
    const run = rt.run(priced, 'x');
    await settle(clock);
    expect(calls).toHaveLength(0);
    held.release();
    const result = await run;
    expect(calls).toHaveLength(1);
    expect(held.real.query({ workflowId: result.workflowId, type: 'agent.invoked' })).toHaveLength(1);
  });
});

describe("writeAhead: 'reservations'", () => {
  it('without a budget the call starts before anything is committed', async () => {
    const { held, clock, rt } = setup({ writeAhead: 'reservations' });
    await rt.ready();
    const { agent: priced, calls } = pricedAgent();
    held.hold();
    const run = rt.run(priced, 'x');
    await settle(clock);
    expect(calls).toHaveLength(1); // made while workflow.started and agent.invoked are uncommitted
    expect(held.real.query({ type: 'workflow.started' })).toHaveLength(0);
    held.release();
    const result = await run; // acknowledged only once its events are committed
    expect(held.real.query({ workflowId: result.workflowId }).map((e) => e.type)).toEqual([
      'workflow.started',
      'agent.invoked',
      'cost.incurred',
      'agent.succeeded',
      'workflow.completed',
    ]);
  });

  it('a log failure after the call answered: the run rejects with the log error, nothing acknowledged is lost', async () => {
    const { held, clock, rt } = setup({ writeAhead: 'reservations' });
    await rt.ready();
    const { agent: priced, calls } = pricedAgent();
    const first = await rt.run(priced, 'first'); // acknowledged: committed
    held.hold();
    const run = rt.run(priced, 'second').catch((e: unknown) => e);
    await settle(clock);
    expect(calls).toHaveLength(2); // the second call was made (and answered) before any commit
    held.refuse(LOCKED);
    expect(await run).toBe(LOCKED); // not acknowledged: the caller learns the log refused it
    const types = held.real.query({ workflowId: first.workflowId }).map((e) => e.type);
    expect(types).toContain('workflow.completed'); // what was acknowledged is still there
    expect(held.real.verify().ok).toBe(true);
  });

  it('a log failure while the call is out cancels it and fails the run with the log error', async () => {
    const { held, clock, rt } = setup({ writeAhead: 'reservations' });
    await rt.ready();
    const { agent: priced, calls, answer } = pricedAgent({ hang: true });
    held.hold();
    const run = rt.run(priced, 'x').catch((e: unknown) => e);
    await settle(clock);
    expect(calls).toHaveLength(1);
    held.refuse(LOCKED);
    await settle(clock);
    expect(calls[0]?.signal.aborted).toBe(true); // the call is cancelled
    answer({ value: 'late', usage: USAGE }); // an answer after that changes nothing
    expect(await run).toBe(LOCKED);
  });

  it('with a budget the call still waits for its cost.reserved; a refused reservation means no call', async () => {
    const { held, clock, rt } = setup({ writeAhead: 'reservations', budget: { dailyUsd: 1 } });
    await rt.ready();
    const { agent: priced, calls } = pricedAgent();
    held.hold();
    const run = rt.run(priced, 'x');
    await settle(clock);
    expect(calls).toHaveLength(0); // waits for workflow.started, agent.invoked, cost.reserved
    held.release();
    const result = await run;
    expect(calls).toHaveLength(1);
    expect(held.real.query({ workflowId: result.workflowId, type: 'cost.reserved' })).toHaveLength(1);

    held.hold();
    const refused = rt.run(priced, 'y').catch((e: unknown) => e);
    await settle(clock);
    held.refuse(LOCKED);
    await settle(clock);
    expect(await refused).toBe(LOCKED);
    expect(calls).toHaveLength(1); // never made
  });
});

describe('writeAhead: the model turns of a tool loop', () => {
  /** An agent making two metered turns; the first answers when the test says. */
  function twoTurns() {
    const made: number[] = [];
    let answerFirst: (() => void) | undefined;
    const a = agent({
      name: 'loop',
      model: 'm',
      run: async (_input: unknown, ctx: AgentContext) => {
        const turn = ctx.turn;
        if (turn === undefined) throw new Error('no turn in a live attempt');
        await turn(1, () => {
          made.push(1);
          return new Promise<{ usage: typeof USAGE }>((resolve) => {
            answerFirst = () => resolve({ usage: USAGE });
          });
        });
        await turn(2, () => {
          made.push(2);
          return Promise.resolve({ usage: USAGE });
        });
        return { value: 'done' };
      },
    });
    return { agent: a, made, answerFirst: () => answerFirst?.() };
  }

  it("'always': the second turn waits until the first turn's charge is committed", async () => {
    const { held, clock, rt } = setup({});
    await rt.ready();
    const loop = twoTurns();
    const run = rt.run(loop.agent, 'x');
    for (let i = 0; i < 20 && loop.made.length === 0; i++) await clock.advanceAsync(0);
    expect(loop.made).toEqual([1]);
    held.hold();
    loop.answerFirst();
    await settle(clock);
    expect(loop.made).toEqual([1]); // its cost.incurred is not committed yet
    held.release();
    await run;
    expect(loop.made).toEqual([1, 2]);
  });

  it("'reservations' without a budget: the second turn goes out at once", async () => {
    const { held, clock, rt } = setup({ writeAhead: 'reservations' });
    await rt.ready();
    const loop = twoTurns();
    const run = rt.run(loop.agent, 'x');
    for (let i = 0; i < 20 && loop.made.length === 0; i++) await clock.advanceAsync(0);
    held.hold();
    loop.answerFirst();
    await settle(clock);
    expect(loop.made).toEqual([1, 2]); // nothing committed since the first turn
    held.release();
    const result = await run;
    expect(held.real.query({ workflowId: result.workflowId, type: 'cost.incurred' })).toHaveLength(2);
  });
});
