/**
 * No agent answer can crash or hang the process (issue 18): every way a user's `run()` can answer
 * badly fails that attempt with a named category, is logged, returns its budget reservation, and
 * settles its workflow — while 20 good workflows running beside them complete and are committed.
 * Runs under the suite's process-level handlers (test/support/no-unhandled.ts), which must see
 * nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { AnyActorRef, InspectionEvent } from 'xstate';
import { simulatedClock } from '../../src/core/clock.js';
import type { ErrorCategory } from '../../src/eventlog/events.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent, type Agent, type AgentConfig, type AgentOutput } from '../../src/supervisor/agent.js';
import { isAgentFailedError } from '../../src/supervisor/errors.js';
import { processLevelFailures } from '../support/no-unhandled.js';

const PRICING = { m: { inputPer1K: 0.001, outputPer1K: 0.002 } };
const USAGE = { inputTokens: 100, outputTokens: 50 };

const open: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
});

/** An agent whose run answers with `answer()` (which may throw synchronously). */
function bad(name: string, answer: () => unknown, extra: Partial<AgentConfig<unknown, unknown>> = {}): Agent {
  return agent<unknown, unknown>({
    name,
    model: 'm',
    ...extra,
    run: answer as () => Promise<AgentOutput<unknown>>,
  });
}

const circular: Record<string, unknown> = { name: 'circular' };
circular.self = circular;

/** What a thrown value is classified as is the classifier's business: any named category will do. */
const ANY = 'any' as ErrorCategory;
/** The answer is usable after all (a plain value instead of a promise). */
const OK = 'ok' as ErrorCategory;
/** Either: priced some other way (succeeds), or refused with a named error; it must settle. */
const SETTLES = 'settles' as ErrorCategory;

/** Each bad agent, and the category its attempt must fail with. */
const BAD: [Agent, ErrorCategory][] = [
  [bad('resolves_undefined', () => Promise.resolve(undefined)), 'malformed_output'],
  [bad('resolves_number', () => Promise.resolve(42)), 'malformed_output'],
  [bad('resolves_array', () => Promise.resolve([1, 2])), 'malformed_output'],
  [
    bad('nan_usage', () => Promise.resolve({ value: 1, usage: { inputTokens: NaN, outputTokens: 5 } })),
    'malformed_output',
  ],
  [
    bad('negative_usage', () => Promise.resolve({ value: 1, usage: { inputTokens: -5, outputTokens: 5 } })),
    'malformed_output',
  ],
  [
    bad('infinite_usage', () =>
      Promise.resolve({ value: 1, usage: { inputTokens: 1, outputTokens: Infinity } }),
    ),
    'malformed_output',
  ],
  [bad('string_usage', () => Promise.resolve({ value: 1, usage: 'lots' })), 'malformed_output'],
  [
    bad('confidence_above_1', () => Promise.resolve({ value: 1, confidence: 1.5, usage: USAGE })),
    'malformed_output',
  ],
  [
    bad('confidence_nan', () => Promise.resolve({ value: 1, confidence: NaN, usage: USAGE })),
    'malformed_output',
  ],
  [
    bad('model_not_a_string', () => Promise.resolve({ value: 1, model: 7, usage: USAGE })),
    'malformed_output',
  ],
  [
    bad('validate_throws', () => Promise.resolve({ value: 1, usage: USAGE }), {
      validate: () => {
        throw new TypeError("Cannot read properties of undefined (reading 'x')");
      },
    }),
    'validation_error',
  ],
  [
    bad('validate_returns_junk', () => Promise.resolve({ value: 1, usage: USAGE }), {
      validate: () => ({ category: 'not-a-category', message: 'x' }) as unknown as true,
    }),
    'validation_error',
  ],
  [
    bad('sync_throw', () => {
      throw new Error('boom before any promise');
    }),
    ANY,
  ],
  [
    bad('sync_throw_string', () => {
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- what hostile user code does
      throw 'a string';
    }),
    ANY,
  ],
  // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- what hostile user code does
  [bad('rejects_circular', () => Promise.reject(circular)), ANY],
  // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- what hostile user code does
  [bad('rejects_undefined', () => Promise.reject(undefined)), ANY],
  [bad('returns_plain_value', () => ({ value: 'not a promise', usage: USAGE })), OK],
  [
    // what OpenAI answers for 'gpt-4o': a dated id the pricing table may lack
    bad('unpriced_answer', () => Promise.resolve({ value: 1, model: 'gpt-4o-2024-08-06', usage: USAGE })),
    SETTLES,
  ],
  [bad('bigint_value', () => Promise.resolve({ value: 10n, usage: USAGE })), SETTLES],
  [
    bad('estimate_throws', () => Promise.resolve({ value: 1, usage: USAGE }), {
      maxOutputTokens: 100,
      estimateInputTokens: () => {
        throw new RangeError('tokenizer missing');
      },
    }),
    'validation_error',
  ],
  [
    bad('estimate_nan', () => Promise.resolve({ value: 1, usage: USAGE }), {
      maxOutputTokens: 100,
      estimateInputTokens: () => NaN,
    }),
    'validation_error',
  ],
];

describe('no agent answer can crash or hang the process', () => {
  it('fails each bad answer with a named category, logs it, returns its reservation; 20 good workflows beside them complete', async () => {
    const clock = simulatedClock(Date.UTC(2026, 0, 5, 9));
    let system: AnyActorRef['system'] | undefined;
    const rt = createRuntime({
      db: ':memory:',
      clock,
      seed: 1,
      pricing: PRICING,
      budget: { dailyUsd: 100 },
      // the inspector sees the budget actors: read what they still hold at the end
      inspect: (e: InspectionEvent) => {
        system ??= (e.actorRef as AnyActorRef).system;
      },
    });
    open.push(rt);
    const before = processLevelFailures().length;
    const good = agent({
      name: 'good',
      model: 'm',
      run: () =>
        new Promise<AgentOutput<string>>((resolve) =>
          clock.setTimeout(() => resolve({ value: 'fine', confidence: 0.9, usage: USAGE }), 50),
        ),
    });
    const goodRuns = Array.from({ length: 20 }, (_, i) => rt.run(good, { i }));
    const badRuns = BAD.map(([a]) =>
      rt.run(a, { a: a.name }).then(
        () => 'ok',
        (e: unknown) => e,
      ),
    );
    let settled = false;
    const all = Promise.all([Promise.all(goodRuns), Promise.all(badRuns)]).finally(() => {
      settled = true;
    });
    for (let i = 0; i < 100 && !settled; i++) await clock.advanceAsync(50);
    const [goods, bads] = await all;

    expect(goods).toHaveLength(20);
    const committed = new Set(rt.store.query({ type: 'workflow.completed' }).map((e) => e.workflowId));
    for (const g of goods)
      expect(committed.has(g.workflowId), 'good workflow acknowledged and committed').toBe(true);

    BAD.forEach(([a, category], i) => {
      const outcome = bads[i];
      if (category === OK) {
        expect(outcome, a.name).toBe('ok');
        return;
      }
      if (category === SETTLES) {
        // settled: succeeded, or rejected with a named error (whose owner decides which)
        expect(outcome === 'ok' || (outcome instanceof Error && outcome.name !== 'Error'), a.name).toBe(true);
        return;
      }
      expect(isAgentFailedError(outcome), `${a.name} rejects with a named error`).toBe(true);
      const actual = isAgentFailedError(outcome) ? outcome.category : undefined;
      if (category !== ANY) expect(actual, a.name).toBe(category);
      const logged = rt.store
        .query({ type: ['agent.failed', 'agent.rejected'] })
        .find(
          (e) => (e.type === 'agent.failed' || e.type === 'agent.rejected') && e.payload.agent === a.name,
        );
      expect(logged, `${a.name} is logged`).toBeDefined();
      const failed = rt.store
        .query({ type: 'workflow.failed' })
        .filter((e) => e.type === 'workflow.failed' && e.payload.category === actual);
      expect(failed.length, `${a.name}: its workflow.failed is logged`).toBeGreaterThan(0);
    });

    // Nothing is held: every reservation was settled or returned.
    const actor = system?.get('budget:global') as AnyActorRef | undefined;
    const held = actor?.getSnapshot() as { context: { reservedUsd: number } } | undefined;
    expect(held?.context.reservedUsd).toBe(0);
    // And the process-level handlers saw nothing.
    expect(processLevelFailures().slice(before)).toEqual([]);
  });

  it('a bad usage is charged the reservation (never $0), marked estimated', async () => {
    const clock = simulatedClock(Date.UTC(2026, 0, 5, 9));
    const rt = createRuntime({ db: ':memory:', clock, seed: 1, pricing: PRICING, budget: { dailyUsd: 100 } });
    open.push(rt);
    const nan = BAD[3]?.[0] as Agent;
    await rt.run(nan, {}).catch(() => undefined);
    const [charge] = rt.store.query({ type: 'cost.incurred' });
    expect(charge?.type === 'cost.incurred' && charge.payload.estimated).toBe(true);
    // the default estimate: 1000 in, 500 out
    expect(charge?.type === 'cost.incurred' && charge.payload.costUsd).toBeCloseTo(0.001 + 0.001, 12);
  });
});
