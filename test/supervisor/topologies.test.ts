import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { ProviderError } from '../../src/providers/types.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent, type AgentContext } from '../../src/supervisor/agent.js';
import { branch } from '../../src/supervisor/branch.js';
import { cascade } from '../../src/supervisor/cascade.js';
import { withDeadline } from '../../src/supervisor/deadline.js';
import { isAgentTimeoutError, isWorkflowCancelledError } from '../../src/supervisor/errors.js';
import { fallback } from '../../src/supervisor/fallback.js';
import { map } from '../../src/supervisor/map.js';
import { par, parWith } from '../../src/supervisor/parallel.js';
import { seq } from '../../src/supervisor/sequential.js';
import { named, supervise } from '../../src/supervisor/topology.js';
import { vote } from '../../src/supervisor/vote.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';

let rt: Runtime<SqliteEventStore> | undefined;
afterEach(async () => {
  await rt?.close();
  rt = undefined;
});

const PRICING = {
  screener: { inputPer1K: 0, outputPer1K: 0, perCall: 0.03 },
  cheap: { inputPer1K: 0, outputPer1K: 0, perCall: 0.002 },
  expensive: { inputPer1K: 0, outputPer1K: 0, perCall: 0.03 },
  sim: { inputPer1K: 0, outputPer1K: 0 },
};

function setup(): { rt: Runtime<SqliteEventStore>; clock: SimulatedClock } {
  const clock = simulatedClock();
  rt = createRuntime({ db: ':memory:', clock, seed: 7, pricing: PRICING });
  return { rt, clock };
}

/** An agent that answers `value` after `ms` of virtual time (and honours its abort signal). */
function timed<T>(clock: SimulatedClock, name: string, ms: number, value: T, live?: Set<string>) {
  return agent({
    name,
    model: 'sim',
    timeoutMs: 60_000,
    run: (_input: unknown, ctx: AgentContext) =>
      new Promise<{ value: T }>((resolve, reject) => {
        live?.add(name);
        const t = clock.setTimeout(() => {
          live?.delete(name);
          resolve({ value });
        }, ms);
        ctx.signal.addEventListener('abort', () => {
          clock.clearTimeout(t);
          live?.delete(name);
          reject(new ProviderError('cancelled', 'aborted'));
        });
      }),
  });
}

/** An agent answering immediately with a value computed from the input. */
function instant<I, O>(name: string, model: string, fn: (input: I) => { value: O; confidence?: number }) {
  return agent({ name, model, run: (input: I) => Promise.resolve(fn(input)) });
}

describe('par and seq under virtual time', () => {
  it("par takes the slowest child (7 s), seq the sum (18 s) — the seed's numbers", async () => {
    const { rt, clock } = setup();
    const a = timed(clock, 'vendor', 5_000, 'v');
    const b = timed(clock, 'amount', 6_000, 100);
    const c = timed(clock, 'date', 7_000, '2024-01-01');
    const parallel = rt.run(par(a, b, c), {});
    await clock.advanceAsync(7_000);
    const p = await parallel;
    expect(p.value).toEqual(['v', 100, '2024-01-01']);
    expect(p.latencyMs).toBe(7_000);

    const sequential = rt.run(seq(a, b, c), {});
    await clock.advanceAsync(18_000);
    const s = await sequential;
    expect(s.value).toBe('2024-01-01');
    expect(s.latencyMs).toBe(18_000);
  });

  it('a bulkhead limits concurrency', async () => {
    const { rt, clock } = setup();
    const kids = [1, 2, 3, 4].map((i) => timed(clock, `k${i}`, 1_000, i));
    const run = rt.run(parWith({ concurrency: 2, join: (xs) => xs.length }, ...kids), {});
    await clock.advanceAsync(2_000);
    const r = await run;
    expect(r.value).toBe(4);
    expect(r.latencyMs).toBe(2_000);
  });

  it('seq passes each output on, and map reshapes it', async () => {
    const { rt } = setup();
    const double = instant('double', 'sim', (x: number) => ({ value: x * 2 }));
    const r = await rt.run(
      seq(
        double,
        map((x: number) => x + 1),
        double,
      ),
      5,
    );
    expect(r.value).toBe(22);
  });

  it('every event carries its path in the tree', async () => {
    const { rt } = setup();
    const v = instant('vendor_extraction', 'sim', () => ({ value: 'ACME' }));
    const a = instant('amount_extraction', 'sim', () => ({ value: 1 }));
    const validate = instant('validate', 'sim', () => ({ value: true }));
    const r = await rt.run(named('invoice', seq(par(v, a), validate)), {});
    const paths = rt.store
      .query({ workflowId: r.workflowId, type: 'agent.invoked' })
      .map((e) => (e.type === 'agent.invoked' ? e.payload.path : ''));
    expect(paths).toEqual([
      'invoice/par[0]/vendor_extraction',
      'invoice/par[0]/amount_extraction',
      'invoice/validate',
    ]);
  });
});

describe('deadlines and cancellation', () => {
  it('withDeadline cancels what is still running when the deadline passes', async () => {
    const { rt, clock } = setup();
    const live = new Set<string>();
    const slow = timed(clock, 'slow', 20_000, 1, live);
    const fast = timed(clock, 'fast', 1_000, 2, live);
    const p = rt.run(withDeadline(10_000, par(slow, fast)), {}).catch((e: unknown) => e);
    await clock.advanceAsync(10_000);
    const err = await p;
    expect(isAgentTimeoutError(err)).toBe(true);
    expect(live.size).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('the remaining deadline caps an agent timeout', async () => {
    const { rt, clock } = setup();
    const slow = timed(clock, 'slow', 20_000, 1);
    const p = rt.run(withDeadline(3_000, slow), {}).catch((e: unknown) => e);
    await clock.advanceAsync(3_000);
    expect(isAgentTimeoutError(await p)).toBe(true);
  });

  it('unsubscribing from run$ aborts every in-flight call and leaves no timer or live call', async () => {
    const { rt, clock } = setup();
    const live = new Set<string>();
    const kids = [1, 2, 3].map((i) => timed(clock, `k${i}`, 5_000, i, live));
    const seen: string[] = [];
    const sub = rt.run$(par(...kids), {}).subscribe({ next: (e) => seen.push(e.type) });
    await clock.advanceAsync(100);
    expect(live.size).toBe(3);
    sub.unsubscribe();
    await clock.flush();
    expect(live.size).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
    const types = rt.store.query({}).map((e) => e.type);
    expect(types).toContain('workflow.cancelled');
    expect(seen).toContain('agent.invoked');
  });

  it("run$ streams the workflow's committed events and completes", async () => {
    const { rt } = setup();
    const a = instant('a', 'sim', () => ({ value: 1 }));
    const events = await new Promise<string[]>((resolve, reject) => {
      const got: string[] = [];
      rt.run$(a, {}).subscribe({
        next: (e) => got.push(e.type),
        complete: () => resolve(got),
        error: reject,
      });
    });
    expect(events[0]).toBe('workflow.started');
    expect(events.at(-1)).toBe('workflow.completed');
  });
});

describe('supervision, fallback, branch', () => {
  const boom = agent({
    name: 'boom',
    model: 'sim',
    run: () => Promise.reject(new ProviderError('provider_error', '500')),
  });

  it('onError skip / value / fail', async () => {
    const { rt } = setup();
    const ok = instant('ok', 'sim', () => ({ value: 1 }));
    expect((await rt.run(par(ok, supervise(boom, 'skip')), {})).value).toEqual([1, undefined]);
    expect((await rt.run(par(ok, supervise(boom, { value: 0 })), {})).value).toEqual([1, 0]);
    await expect(rt.run(par(ok, boom), {})).rejects.toMatchObject({ category: 'provider_error' });
  });

  it('onError retry re-runs the node', async () => {
    const { rt } = setup();
    let n = 0;
    const twice = agent({
      name: 'twice',
      model: 'sim',
      run: () =>
        ++n < 3 ? Promise.reject(new ProviderError('provider_error', '500')) : Promise.resolve({ value: n }),
    });
    expect((await rt.run(supervise(twice, { retry: 2 }), {})).value).toBe(3);
  });

  it('fallback answers with the secondary, branch routes', async () => {
    const { rt } = setup();
    const backup = instant('backup', 'sim', () => ({ value: 'b' }));
    expect((await rt.run(fallback(boom, backup), {})).value).toBe('b');
    const big = instant('big', 'sim', () => ({ value: 'senior' }));
    const small = instant('small', 'sim', () => ({ value: 'auto' }));
    const route = branch((x: number) => x > 10_000, big, small);
    expect((await rt.run(route, 50_000)).value).toBe('senior');
    expect((await rt.run(route, 5)).value).toBe('auto');
  });
});

describe('vote', () => {
  const screeners = (answers: boolean[]) =>
    answers.map((a, i) => instant(`screener${i + 1}`, 'screener', () => ({ value: a })));

  it('stops after 3 unanimous of 5, after 4 at 3-1, and hears all 5 otherwise', async () => {
    const { rt } = setup();
    const r1 = await rt.run(vote(screeners([true, true, true, false, false])), {});
    expect(r1.value).toMatchObject({ value: true, agentsUsed: 3, confidence: 1 });
    const r2 = await rt.run(vote(screeners([true, false, true, true, false])), {});
    expect(r2.value).toMatchObject({ value: true, agentsUsed: 4, confidence: 0.75 });
    const r3 = await rt.run(vote(screeners([true, false, true, false, false])), {});
    expect(r3.value).toMatchObject({ value: false, agentsUsed: 5, confidence: 0.6 });
    expect(rt.store.query({ type: 'vote.early_stop' })).toHaveLength(2);
  });

  it('stop: decided gives the same decision as the full vote and never calls more agents than needed', async () => {
    const { rt } = setup();
    await fc.assert(
      fc.asyncProperty(fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }), async (answers) => {
        const adaptive = (await rt.run(vote(screeners(answers), { stop: 'decided' }), {})).value;
        const full = (await rt.run(vote(screeners(answers), { stop: 'all' }), {})).value;
        expect(adaptive.value).toBe(full.value);
        expect(full.agentsUsed).toBe(5);
        // the fewest voters after which the majority can no longer change
        let needed = 5;
        for (let k = 1; k <= 5; k++) {
          const yes = answers.slice(0, k).filter(Boolean).length;
          if (Math.max(yes, k - yes) > Math.min(yes, k - yes) + (5 - k)) {
            needed = k;
            break;
          }
        }
        expect(adaptive.agentsUsed).toBe(needed);
      }),
      { numRuns: 64 },
    );
  });

  it("the seed's fraud mix costs 3.4 agents and $0.102 per transaction (vs $0.15)", async () => {
    const { rt } = setup();
    const mix: boolean[][] = [
      ...Array.from({ length: 4 }, () => [false, false, false, false, false]), // 40% clear no
      ...Array.from({ length: 3 }, () => [true, true, true, true, true]), // 30% clear yes
      ...Array.from({ length: 2 }, () => [true, false, true, true, false]), // 20% decided after 4
      [true, false, true, false, true], // 10% need all 5
    ];
    let agents = 0;
    let cost = 0;
    for (const answers of mix) {
      const r = await rt.run(vote(screeners(answers), { stop: 'decided' }), {});
      agents += r.value.agentsUsed;
      cost += r.costUsd;
    }
    expect(agents / mix.length).toBeCloseTo(3.4, 10);
    expect(cost / mix.length).toBeCloseTo(0.102, 10);
    const saved = rt.store
      .query({ type: 'vote.decided' })
      .reduce((s, e) => s + (e.type === 'vote.decided' ? e.payload.savedUsd : 0), 0);
    expect(saved / mix.length).toBeCloseTo(0.15 - 0.102, 10);
  });

  it('quorum-first starts the minimum in parallel: same cost, fewer rounds', async () => {
    const { rt, clock } = setup();
    const voters = [true, true, false, true, true].map((a, i) => timed(clock, `v${i}`, 1_000, a));
    const seqRun = rt.run(vote(voters, { launch: 'sequential' }), {});
    await clock.advanceAsync(10_000);
    const s = await seqRun;
    const qRun = rt.run(vote(voters, { launch: 'quorum-first' }), {});
    await clock.advanceAsync(10_000);
    const q = await qRun;
    expect(q.value.value).toBe(true);
    expect(q.value.agentsUsed).toBe(s.value.agentsUsed);
    expect(s.latencyMs).toBe(4_000);
    expect(q.latencyMs).toBe(2_000);
  });

  it('weights count', async () => {
    const { rt } = setup();
    const r = await rt.run(vote(screeners([false, true, true]), { weights: [3, 1, 1], stop: 'all' }), {});
    expect(r.value.value).toBe(false);
  });
});

describe('cascade', () => {
  it("costs $110 per 10,000 on the seed's 70/30 easy/hard mix at threshold 0.9 (vs $300)", async () => {
    const { rt } = setup();
    const cheap = instant('gpt35_screen', 'cheap', (x: { hard: boolean }) => ({
      value: 'v',
      confidence: x.hard ? 0.6 : 0.95,
    }));
    const expensive = instant('gpt4', 'expensive', () => ({ value: 'v', confidence: 0.99 }));
    const extract = cascade([cheap, expensive], { threshold: 0.9 });
    let cost = 0;
    for (let i = 0; i < 1_000; i++) cost += (await rt.run(extract, { hard: i % 10 >= 7 })).costUsd;
    expect(cost * 10).toBeCloseTo(110, 6);
    expect(rt.store.query({ type: 'cascade.escalated' })).toHaveLength(300);
    const accepted = rt.store.query({ type: 'cascade.accepted' });
    expect(accepted.filter((e) => e.type === 'cascade.accepted' && e.payload.stage === 0)).toHaveLength(700);
  });

  it('a failed cheap stage escalates; the last stage failing fails the cascade', async () => {
    const { rt } = setup();
    const broken = agent({
      name: 'broken',
      model: 'cheap',
      run: () => Promise.reject(new ProviderError('provider_error', '500')),
    });
    const good = instant('good', 'expensive', () => ({ value: 'g', confidence: 0.5 }));
    expect((await rt.run(cascade([broken, good]), {})).value).toBe('g');
    await expect(rt.run(cascade([good, broken]), {})).rejects.toMatchObject({ category: 'provider_error' });
  });
});

describe('cancellation of a vote', () => {
  it('aborting mid-vote cancels the running voters', async () => {
    const { rt, clock } = setup();
    const live = new Set<string>();
    const voters = [1, 2, 3, 4, 5].map((i) => timed(clock, `v${i}`, 1_000, i % 2 === 0, live));
    const ac = new AbortController();
    const p = rt
      .run(vote(voters, { launch: 'parallel' }), {}, { signal: ac.signal })
      .catch((e: unknown) => e);
    await clock.advanceAsync(500);
    expect(live.size).toBe(5);
    ac.abort('stop');
    expect(isWorkflowCancelledError(await p)).toBe(true);
    expect(live.size).toBe(0);
  });
});
