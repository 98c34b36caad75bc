/**
 * Spend against a daily limit when calls cost more than their estimate (issue 18): with
 * `maxOutputTokens` the reservation is the worst case and the limit holds at any concurrency;
 * without, reservations learn from real spend, overruns are events and alerts, and a run() that
 * reports no usage is charged its reservation.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { estimateTokens } from '../../src/cost/estimate.js';
import { isBudgetExceededError } from '../../src/cost/errors.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import type { Alert } from '../../src/monitor/alert.js';
import { simulated } from '../../src/providers/simulated.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent, type Agent, type AgentContext } from '../../src/supervisor/agent.js';
import { isAgentFailedError } from '../../src/supervisor/errors.js';

/** USD per 1K tokens: output ten times input, like most chat models. */
const PRICING = { m: { inputPer1K: 0.001, outputPer1K: 0.01 } };
/** The agent's declared estimate: 100 in, 500 out → $0.0051 a call. */
const ESTIMATE = { inputTokens: 100, outputTokens: 500 };
const ESTIMATE_USD = 0.0051;
/** 400 characters: the token estimator counts 100 tokens, as the user's tokenizer does below. */
const INPUT = { text: 'x'.repeat(388) };

const open: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
});

function runtime(clock: SimulatedClock, dailyUsd: number, db = ':memory:'): Runtime<SqliteEventStore> {
  const rt = createRuntime({ db, clock, seed: 1, pricing: PRICING, budget: { dailyUsd, alertAt: 0.8 } });
  open.push(rt);
  return rt;
}

/**
 * A user's agent whose calls produce `ratio` × the estimated output (and the input its request
 * really has), taking 10 ms; like a real provider it stops at the cap it is given.
 */
function spender(
  clock: SimulatedClock,
  ratio: number,
  maxOutputTokens?: number,
): Agent<typeof INPUT, string> {
  return agent({
    name: maxOutputTokens === undefined ? 'uncapped' : 'capped',
    model: 'm',
    estimate: ESTIMATE,
    ...(maxOutputTokens !== undefined ? { maxOutputTokens } : {}),
    run: (input: typeof INPUT, ctx: AgentContext) =>
      new Promise((resolve) =>
        clock.setTimeout(() => {
          const wanted = Math.round(ESTIMATE.outputTokens * ratio);
          resolve({
            value: 'ok',
            usage: {
              inputTokens: estimateTokens(input),
              outputTokens: Math.min(wanted, ctx.maxOutputTokens ?? Infinity),
            },
          });
        }, 10),
      ),
  });
}

/** Runs `n` workflows at once on the virtual clock until all settle: [ok, refused]. */
async function burst(
  rt: Runtime<SqliteEventStore>,
  clock: SimulatedClock,
  a: Agent<typeof INPUT, string>,
  n: number,
): Promise<{ ok: number; refused: number }> {
  let settled = 0;
  const runs = Array.from({ length: n }, () =>
    rt.run(a, INPUT).then(
      () => 'ok' as const,
      (e: unknown) => (isBudgetExceededError(e) ? ('refused' as const) : ('other' as const)),
    ),
  );
  for (const r of runs) void r.then(() => settled++);
  while (settled < n) await clock.advanceAsync(10);
  const outcomes = await Promise.all(runs);
  expect(outcomes.filter((o) => o === 'other')).toEqual([]);
  return {
    ok: outcomes.filter((o) => o === 'ok').length,
    refused: outcomes.filter((o) => o === 'refused').length,
  };
}

function spentUsd(rt: Runtime<SqliteEventStore>): number {
  return rt.store
    .query({ type: 'cost.incurred' })
    .reduce((s, e) => s + (e.type === 'cost.incurred' ? e.payload.costUsd : 0), 0);
}

function ofType<T extends KeelEvent['type']>(rt: Runtime<SqliteEventStore>, type: T): KeelEvent<T>[] {
  return rt.store.query({ type }) as KeelEvent<T>[];
}

describe('spend against the daily limit when calls cost more than estimated', () => {
  it('prints spend / limit for actual = 1x, 1.5x, 10x the estimate at 200 in flight, with and without a cap; the cap keeps spend <= limit', async () => {
    const limitUsd = 1;
    const rows: string[] = [];
    for (const ratio of [1, 1.5, 10]) {
      for (const cap of [undefined, 1_000]) {
        const clock = simulatedClock(Date.UTC(2026, 0, 5, 9));
        const rt = runtime(clock, limitUsd);
        const { ok, refused } = await burst(rt, clock, spender(clock, ratio, cap), 200);
        const spent = spentUsd(rt);
        const overruns = ofType(rt, 'budget.overrun').length;
        rows.push(
          `actual ${String(ratio).padStart(4)}x estimate, ${cap === undefined ? 'no cap          ' : `maxOutputTokens ${cap}`}: ` +
            `spend $${spent.toFixed(4)} / limit $${limitUsd.toFixed(2)} = ${(spent / limitUsd).toFixed(3)}  ` +
            `(${ok} ran, ${refused} refused, ${overruns} budget.overrun)`,
        );
        if (cap !== undefined) {
          expect(spent).toBeLessThanOrEqual(limitUsd + 1e-9);
          expect(overruns).toBe(0);
        } else if (ratio > 1) {
          // Without a cap the first wave overshoots, and every overshooting call says so.
          expect(overruns).toBe(ok);
        }
        await rt.close();
      }
    }
    console.log(`spend at 200 concurrent calls, $${limitUsd} daily limit:\n${rows.join('\n')}`);
  });

  it('with a cap, reserves the worst case: input estimated from the request + maxOutputTokens, priced', async () => {
    const clock = simulatedClock(Date.UTC(2026, 0, 5, 9));
    const rt = runtime(clock, 100);
    await burst(rt, clock, spender(clock, 1, 2_000), 1);
    const [reserved] = ofType(rt, 'cost.reserved');
    // 400 characters of JSON → 100 input tokens (the declared 100 is not larger) + 2,000 output
    const inputTokens = Math.max(estimateTokens(INPUT), ESTIMATE.inputTokens);
    expect(reserved?.payload.estimateUsd).toBeCloseTo((inputTokens * 0.001 + 2_000 * 0.01) / 1_000, 12);
  });

  it('without a cap, learns what the agent really spends: the next calls reserve it, and the overshoot stops at the first wave', async () => {
    const clock = simulatedClock(Date.UTC(2026, 0, 5, 9));
    const limitUsd = 2;
    const rt = runtime(clock, limitUsd);
    const alerts: Alert[] = [];
    rt.on('alert', (a) => alerts.push(a));
    const a = spender(clock, 10);
    // Wave 1: 20 calls in flight, each reserving the $0.0051 estimate, each costing ~$0.0501.
    const first = await burst(rt, clock, a, 20);
    expect(first.ok).toBe(20);
    const afterFirst = spentUsd(rt);
    const inFlightExcess = ofType(rt, 'budget.overrun').reduce((s, e) => s + e.payload.overrunUsd, 0);
    expect(inFlightExcess).toBeGreaterThan(0.8);
    // Later waves reserve what calls really cost (p95 of recent actual costs), not the estimate.
    for (let i = 0; i < 10; i++) await burst(rt, clock, a, 20);
    const reserved = ofType(rt, 'cost.reserved').map((e) => e.payload.estimateUsd);
    expect(reserved.slice(0, 20).every((usd) => Math.abs(usd - ESTIMATE_USD) < 1e-12)).toBe(true);
    expect(reserved.slice(20).every((usd) => usd > 0.05)).toBe(true);
    // The bound: spend <= limit + what the calls in flight before the agent was learned overran by.
    expect(spentUsd(rt)).toBeLessThanOrEqual(limitUsd + inFlightExcess + 1e-9);
    expect(afterFirst).toBeLessThan(limitUsd);
    // one overrun alert naming the agent (per agent, model and day), and its events
    const overrunAlerts = alerts.filter((x) => x.id.startsWith('budget:overrun:'));
    expect(overrunAlerts).toHaveLength(1);
    expect(overrunAlerts[0]?.title).toContain('uncapped');
    expect(ofType(rt, 'budget.overrun')[0]?.payload).toMatchObject({
      agent: 'uncapped',
      model: 'm',
      capped: false,
    });
  });

  it('restores learned reservations from the log after a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keel-learn-'));
    try {
      const db = join(dir, 'keel.db');
      const clock = simulatedClock(Date.UTC(2026, 0, 5, 9));
      const rt1 = runtime(clock, 100, db);
      await burst(rt1, clock, spender(clock, 10), 5);
      await rt1.close();
      const rt2 = runtime(clock, 100, db);
      await burst(rt2, clock, spender(clock, 10), 1);
      const reserved = ofType(rt2, 'cost.reserved').map((e) => e.payload.estimateUsd);
      expect(reserved).toHaveLength(6);
      expect(reserved[5]).toBeCloseTo(0.0001 + 0.05, 9);
      await rt2.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a run() that reports no usage', () => {
  const silent = (onMissingUsage?: 'estimate' | 'fail') =>
    agent({
      name: 'silent',
      model: 'm',
      estimate: ESTIMATE,
      ...(onMissingUsage ? { onMissingUsage } : {}),
      run: () => Promise.resolve({ value: 'answer' }),
    });

  it('is charged its reservation, marked estimated — never $0 — and 11 such calls cannot pass a limit sized for 10', async () => {
    const clock = simulatedClock(Date.UTC(2026, 0, 5, 9));
    const rt = runtime(clock, ESTIMATE_USD * 10 + 1e-6);
    const outcomes = await Promise.allSettled(Array.from({ length: 11 }, () => rt.run(silent(), {})));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(10);
    const charges = ofType(rt, 'cost.incurred');
    expect(charges).toHaveLength(10);
    for (const c of charges) {
      expect(c.payload.estimated).toBe(true);
      expect(c.payload.costUsd).toBeCloseTo(ESTIMATE_USD, 12);
    }
    expect(rt.stats().cost.actualUsd).toBeCloseTo(ESTIMATE_USD * 10, 9);
    expect(rt.stats().cost.unreportedUsd).toBeCloseTo(ESTIMATE_USD * 10, 9);
    expect(rt.stats().cost.unreportedCalls).toBe(10);
    // metrics keep it apart too
    const text = (await rt.metrics?.metricsText()) ?? '';
    const line = text.split('\n').find((l) => l.startsWith('llm_cost_estimated_usd_total{'));
    expect(Number(line?.split(' ').at(-1))).toBeCloseTo(ESTIMATE_USD * 10, 9);
  });

  it("with onMissingUsage: 'fail', fails with malformed_output naming the fix (still charged)", async () => {
    const clock = simulatedClock(Date.UTC(2026, 0, 5, 9));
    const rt = runtime(clock, 1);
    const error = await rt.run(silent('fail'), {}).catch((e: unknown) => e);
    expect(isAgentFailedError(error) && error.category).toBe('malformed_output');
    expect((error as Error).message).toMatch(/no usage.*return usage/);
    const [charge] = ofType(rt, 'cost.incurred');
    expect(charge?.payload.estimated).toBe(true);
    expect(charge?.payload.costUsd).toBeCloseTo(ESTIMATE_USD, 12);
  });

  it("rejects an onMissingUsage that is neither 'estimate' nor 'fail', naming the field", () => {
    expect(() =>
      agent({
        name: 'x',
        model: 'm',
        onMissingUsage: 'ignore' as 'fail',
        run: () => Promise.resolve({ value: 1 }),
      }),
    ).toThrow(/onMissingUsage.*'estimate' or 'fail'/);
    expect(() =>
      agent({ name: 'x', model: 'm', maxOutputTokens: 0, run: () => Promise.resolve({ value: 1 }) }),
    ).toThrow(/maxOutputTokens.*integer/);
  });
});

describe('the simulated provider honours maxOutputTokens', () => {
  it('never reports more output tokens than the cap', async () => {
    const provider = simulated({
      seed: 3,
      latencyMs: { p50: 1, p95: 2 },
      usage: { input: { mean: 500, stddev: 50 }, output: { mean: 3_000, stddev: 500 } },
    });
    const clock = simulatedClock();
    const signal = new AbortController().signal;
    for (let i = 0; i < 20; i++) {
      const call = provider.call({ model: 'gpt-4', input: { i }, maxOutputTokens: 256 }, { signal, clock });
      await clock.advanceAsync(100);
      const res = await call.catch(() => undefined);
      if (res) expect(res.usage.outputTokens).toBeLessThanOrEqual(256);
    }
  });
});
