/**
 * What a `run()` that throws is charged. Usage the error reports — a Keel error's, the AI SDK's
 * (`NoObjectGeneratedError.usage`), the wire's (`response.usage` with `prompt_tokens`) — is charged.
 * Without usage: an error that shows the provider refused the call (an HTTP error status, a
 * connection that never opened) is $0; anything else (a plain `Error`, a reset connection) may have
 * been served and billed, so it is charged its reservation, marked `estimated` — and the daily
 * budget holds over such failures. Before, every throw without usage was charged $0.
 */
import { NoObjectGeneratedError } from 'ai';
import { APIError } from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import { isBudgetExceededError } from '../../src/cost/errors.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { createRuntime, type Runtime, type RuntimeConfig } from '../../src/runtime.js';
import { agent, AgentError } from '../../src/supervisor/agent.js';

/** $0.01 per 1K input tokens, $0.03 per 1K output: the estimate (1,000 in, 500 out) reserves $0.025. */
const PRICING = { 'gpt-4': { inputPer1K: 0.01, outputPer1K: 0.03 } };
const RESERVED = 0.025;

const open: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
});

function runtime(extra: Omit<RuntimeConfig, 'store'> = {}) {
  const rt = createRuntime<SqliteEventStore>({
    db: ':memory:',
    clock: simulatedClock(Date.UTC(2026, 0, 1, 12)),
    seed: 1,
    pricing: PRICING,
    cache: false,
    ...extra,
  });
  open.push(rt);
  return rt;
}

const failing = (thrown: () => Error) =>
  agent<string, string>({
    name: 'extract',
    model: 'gpt-4',
    estimate: { inputTokens: 1_000, outputTokens: 500 },
    run: () => Promise.reject(thrown()),
  });

/** Runs one workflow whose `run()` throws `thrown`, and returns its charge. */
async function chargeOf(thrown: () => Error): Promise<KeelEvent<'cost.incurred'>['payload']> {
  const rt = runtime();
  await rt.run(failing(thrown), 'x').catch(() => undefined);
  await rt.ready();
  const charges = rt.store.query({ type: 'cost.incurred' }) as KeelEvent<'cost.incurred'>[];
  expect(charges).toHaveLength(1);
  return charges[0]!.payload;
}

describe('a run() that throws', () => {
  it('a plain Error without usage: charged its reservation, marked estimated', async () => {
    const c = await chargeOf(() => new Error('could not parse the answer'));
    expect(c).toMatchObject({ costUsd: RESERVED, estimated: true });
  });

  it('a connection reset mid-request (may have been served): charged its reservation', async () => {
    const c = await chargeOf(() => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    expect(c).toMatchObject({ costUsd: RESERVED, estimated: true });
  });

  it("the AI SDK's NoObjectGeneratedError with usage: charged that usage, priced", async () => {
    const c = await chargeOf(
      () =>
        new NoObjectGeneratedError({
          message: 'No object generated: could not parse the response.',
          text: '{"vendor": ',
          response: { id: 'r1', timestamp: new Date(0), modelId: 'gpt-4' },
          usage: {
            inputTokens: 2_000,
            outputTokens: 100,
            totalTokens: 2_100,
            inputTokenDetails: { noCacheTokens: 2_000, cacheReadTokens: 0, cacheWriteTokens: 0 },
            outputTokenDetails: { textTokens: 100, reasoningTokens: 0 },
          },
          finishReason: 'stop',
        }),
    );
    expect(c.usage).toEqual({ inputTokens: 2_000, outputTokens: 100 });
    expect(c.costUsd).toBeCloseTo(0.02 + 0.003, 12);
    expect(c.estimated).toBeUndefined();
  });

  it('an error carrying the wire response (response.usage with prompt_tokens): charged it', async () => {
    const c = await chargeOf(() =>
      Object.assign(new Error('length limit reached'), {
        response: { usage: { prompt_tokens: 500, completion_tokens: 1_000, total_tokens: 1_500 } },
      }),
    );
    expect(c.usage).toEqual({ inputTokens: 500, outputTokens: 1_000 });
    expect(c.costUsd).toBeCloseTo(0.005 + 0.03, 12);
  });

  it('usage on a cause: charged it', async () => {
    const c = await chargeOf(
      () =>
        new Error('agent step failed', {
          cause: { usage: { input_tokens: 100, output_tokens: 10 } },
        }),
    );
    expect(c.usage).toEqual({ inputTokens: 100, outputTokens: 10 });
  });

  it("the openai SDK's APIError 500 (the provider refused it): $0", async () => {
    const c = await chargeOf(
      () => new APIError(500, { message: 'server error' }, 'server error', new Headers()),
    );
    expect(c).toMatchObject({ costUsd: 0 });
    expect(c.estimated).toBeUndefined();
  });

  it('a connection that never opened (ECONNREFUSED): $0', async () => {
    const c = await chargeOf(() =>
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:443'), { code: 'ECONNREFUSED' }),
    );
    expect(c.costUsd).toBe(0);
  });

  it('a Keel error: its own usage, or $0 without (Keel providers attach the usage of billed calls)', async () => {
    expect((await chargeOf(() => new AgentError('malformed_output', 'bad JSON'))).costUsd).toBe(0);
  });

  it('the daily budget holds over failures: reservations of throws without usage are spent', async () => {
    const rt = runtime({ budget: { dailyUsd: 0.1 } });
    const a = failing(() => new Error('boom'));
    const outcomes: string[] = [];
    for (let i = 0; i < 6; i++)
      outcomes.push(
        await rt.run(a, `x${i}`).then(
          () => 'ok',
          (e: unknown) => (isBudgetExceededError(e) ? 'over' : 'failed'),
        ),
      );
    // $0.1 holds 4 reservations of $0.025; before, every failure was charged $0 and all 6 ran.
    expect(outcomes).toEqual(['failed', 'failed', 'failed', 'failed', 'over', 'over']);
    expect(rt.stats().cost.unreportedUsd).toBeCloseTo(0.1, 12);
  });
});
