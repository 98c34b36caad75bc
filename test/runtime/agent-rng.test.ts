/**
 * `AgentContext.rng`: seeded per (runtime seed, workflow, path, attempt), made on the first draw.
 * The same run draws the same numbers; a retry draws others; its methods work detached and survive
 * a spread of the context (as `rt.resume()` and tool calls spread it).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import { seededRandom } from '../../src/core/random.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent, type AgentContext } from '../../src/supervisor/agent.js';

const open: Runtime[] = [];
afterEach(async () => {
  for (const rt of open.splice(0)) await rt.close();
});

/** A runtime on its own simulated clock; `run` runs a topology to its end on that clock. */
function runtime(seed: number) {
  const clock = simulatedClock(Date.UTC(2026, 0, 5, 9));
  const rt = createRuntime({
    db: ':memory:',
    seed,
    clock,
    pricing: { 'free-model': { inputPer1K: 0, outputPer1K: 0 } },
  });
  open.push(rt);
  return {
    // The retry's backoff is a timer: advance the clock until the run settled.
    run: async <T>(p: Promise<T>): Promise<T> => {
      let done = false;
      const settled = p.finally(() => (done = true));
      for (let i = 0; i < 100 && !done; i++) await clock.advanceAsync(10);
      return settled;
    },
    rt,
  };
}

/** An agent failing its first attempt, recording what each attempt drew. */
function drawing() {
  const draws: { attempt: number; workflowId: string; path: string; values: number[] }[] = [];
  const a = agent({
    name: 'draws',
    model: 'free-model',
    retry: { attempts: 2, baseDelayMs: 0, jitter: false, retryOn: ['unknown'] },
    run: (_input: unknown, ctx: AgentContext) => {
      // eslint-disable-next-line @typescript-eslint/unbound-method -- detached on purpose: they must work so
      const { next, int } = ctx.rng;
      const spread = { ...ctx }; // a spread context keeps the same stream
      draws.push({
        attempt: ctx.attempt,
        workflowId: ctx.workflowId,
        path: ctx.path,
        values: [next(), int(1, 1000), spread.rng.next(), ctx.rng.chance(0.5) ? 1 : 0],
      });
      if (ctx.attempt === 1) return Promise.reject(new Error('first attempt fails'));
      return Promise.resolve({ value: 'ok' });
    },
  });
  return { agent: a, draws };
}

describe('AgentContext.rng', () => {
  it('is seeded by the runtime seed, workflow id, path and attempt, and made on first draw', async () => {
    const first = drawing();
    const second = drawing();
    const a = runtime(7);
    const b = runtime(7);
    const ra = await a.run(a.rt.run(first.agent, 'x'));
    const rb = await b.run(b.rt.run(second.agent, 'x'));
    expect(ra.workflowId).toBe(rb.workflowId); // ids come from the same seed
    expect(first.draws).toEqual(second.draws); // the same run draws the same numbers
    expect(first.draws.map((d) => d.attempt)).toEqual([1, 2]);
    const [one, two] = first.draws;
    expect(one?.values).not.toEqual(two?.values); // a retry draws others

    // The recipe: seededRandom(`${seed}:${workflowId}:${path}:${attempt}`), drawn in order.
    const expected = seededRandom(`7:${ra.workflowId}:${one?.path ?? ''}:1`);
    expect(one?.values.slice(0, 3)).toEqual([expected.next(), expected.int(1, 1000), expected.next()]);

    const other = drawing();
    const c = runtime(8);
    await c.run(c.rt.run(other.agent, 'x'));
    expect(other.draws[0]?.values).not.toEqual(one?.values); // another seed, another stream
  });
});
