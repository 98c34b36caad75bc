/**
 * Breakers count plain errors by default: a user's `run()` that throws what SDKs, fetch wrappers and
 * axios throw — or a bare `new Error()` — opens the breaker after `failureThreshold` failures, as the
 * tutorial's breaker, opossum and cockatiel do. Only categories saying the caller's input or the
 * output's content was wrong are left out.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import type { ErrorCategory } from '../../src/eventlog/events.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent, AgentError } from '../../src/supervisor/agent.js';
import { BREAKER_IGNORED_CATEGORIES, resolveBreakerConfig } from '../../src/supervisor/breaker.js';
import { ERROR_CATEGORIES } from '../../src/eventlog/events.js';

const THRESHOLD = 3;

let rt: Runtime<SqliteEventStore> | undefined;
afterEach(async () => {
  await rt?.close();
  rt = undefined;
});

function runtime(): Runtime<SqliteEventStore> {
  rt = createRuntime({
    db: ':memory:',
    clock: simulatedClock(Date.UTC(2026, 0, 1, 12)),
    seed: 1,
    pricing: { sim: { inputPer1K: 0, outputPer1K: 0 } },
  });
  return rt;
}

/** An agent behind breaker `dep` whose every call throws `make()`; counts the calls that ran. */
function failing(make: () => unknown): { calls: () => number; agent: ReturnType<typeof agent> } {
  let calls = 0;
  return {
    calls: () => calls,
    agent: agent({
      name: 'dependency_call',
      model: 'sim',
      breaker: { name: 'dep', failureThreshold: THRESHOLD, resetTimeoutMs: 60_000 },
      run: async () => {
        calls++;
        await Promise.resolve();
        throw make();
      },
    }),
  };
}

/** Runs `a` `n` times in a row and returns each rejection's category. */
async function categories(
  rt: Runtime<SqliteEventStore>,
  a: ReturnType<typeof agent>,
  n: number,
): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < n; i++) {
    const e = await rt.run(a, {}).then(
      () => undefined,
      (x: unknown) => x as { category?: string },
    );
    seen.push(e?.category ?? 'resolved');
  }
  return seen;
}

describe('breakers count plain errors by default', () => {
  it.each([
    [
      'Object.assign(new Error("upstream 503"), { status: 503 })',
      () => Object.assign(new Error('upstream 503'), { status: 503 }),
      'provider_error',
    ],
    ['a plain new Error("boom")', () => new Error('boom'), 'unknown'],
    [
      'a fetch TypeError with cause.code ECONNRESET',
      () => new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } }),
      'provider_error',
    ],
    ['a thrown string', () => 'boom', 'unknown'],
  ])('%s opens the breaker after failureThreshold failures', async (_what, make, category) => {
    const rt = runtime();
    const dep = failing(make);
    const seen = await categories(rt, dep.agent, THRESHOLD + 2);
    expect(seen).toEqual([...Array<string>(THRESHOLD).fill(category), 'circuit_open', 'circuit_open']);
    expect(dep.calls()).toBe(THRESHOLD);
    expect(rt.breaker('dep')?.state()).toBe('open');
    const [opened] = rt.store.query({ type: 'breaker.transitioned' });
    expect(opened?.payload).toMatchObject({
      breaker: 'dep',
      from: 'closed',
      to: 'open',
      failures: THRESHOLD,
    });
    expect(rt.store.query({ type: 'agent.rejected' })).toHaveLength(2);
  });

  it.each(BREAKER_IGNORED_CATEGORIES.filter((c) => c !== 'circuit_open' && c !== 'cancelled'))(
    'an AgentError("%s") — the input or the content was wrong — does not count',
    async (category) => {
      const rt = runtime();
      const dep = failing(() => new AgentError(category, `the answer was wrong (${category})`));
      const seen = await categories(rt, dep.agent, THRESHOLD + 2);
      expect(seen).toEqual(Array<string>(THRESHOLD + 2).fill(category));
      expect(dep.calls()).toBe(THRESHOLD + 2);
      expect(rt.breaker('dep')?.state()).toBe('closed');
    },
  );

  it('an HTTP 400 from the SDK is validation_error and does not count', async () => {
    const rt = runtime();
    const dep = failing(() => Object.assign(new Error('invalid request'), { status: 400 }));
    expect(await categories(rt, dep.agent, THRESHOLD + 1)).toEqual(
      Array<string>(THRESHOLD + 1).fill('validation_error'),
    );
    expect(rt.breaker('dep')?.state()).toBe('closed');
  });

  it('the default is an exclusion list: every other category, present or future, counts', () => {
    const { countOn } = resolveBreakerConfig({ name: 'dep' });
    const expected: ErrorCategory[] = ERROR_CATEGORIES.filter((c) => !BREAKER_IGNORED_CATEGORIES.includes(c));
    expect(countOn).toEqual(expected);
    expect(countOn).toEqual(['timeout', 'rate_limited', 'provider_error', 'malformed_output', 'unknown']);
    // An explicit countOn still replaces the default.
    expect(resolveBreakerConfig({ name: 'dep', countOn: ['timeout'] }).countOn).toEqual(['timeout']);
  });
});
