/**
 * Chaos at the budget's edge: 100 concurrent calls against a nearly spent daily budget, with and
 * without provider faults, retries and hangs. Overshoot is measured from the provider's side (calls
 * it actually served × their price), not from Keel's own bookkeeping, and must be 0.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { isBudgetExceededError } from '../../src/cost/errors.js';
import type { BudgetConfig } from '../../src/cost/budget.js';
import { simulated, type ErrorRates } from '../../src/providers/simulated.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import {
  drive,
  logHealth,
  missingTerminal,
  modelAgent,
  recording,
  type ModelAgentOptions,
} from './harness.js';
import { chaosSummary } from './summary.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';

const scenario = chaosSummary('budget-edge');

/** Every attempt costs exactly one cent, whatever its usage: what a call costs is known exactly. */
const CENT = 0.01;
const PRICING = { flat: { inputPer1K: 0, outputPer1K: 0, perCall: CENT } };
/** Noon, so no day boundary is crossed. */
const NOON = Date.UTC(2026, 0, 1, 12);
const EPSILON = 1e-9;

const runtimes: Runtime<SqliteEventStore>[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

interface EdgeSetup {
  clock: SimulatedClock;
  rt: Runtime<SqliteEventStore>;
  /** Runs `n` workflows at once and settles them. */
  burst: (n: number) => Promise<PromiseSettledResult<unknown>[]>;
  /** Money the provider was asked to earn: calls it started × their price. */
  providerSpendUsd: () => number;
  /** Sum of `cost.incurred` in the log. */
  loggedSpendUsd: () => number;
  /** Provider calls started so far. */
  providerCalls: () => number;
  /** Ids of the workflows run so far. */
  ids: string[];
}

function edge(
  budget: BudgetConfig,
  options: { rates?: ErrorRates; agent?: ModelAgentOptions; db?: string; clock?: SimulatedClock } = {},
): EdgeSetup {
  const clock = options.clock ?? simulatedClock(NOON);
  const provider = recording(
    simulated({
      seed: 9,
      latencyMs: { p50: 20, p95: 80 },
      ...(options.rates ? { rates: options.rates } : {}),
    }),
    clock,
  );
  const rt = createRuntime({
    db: options.db ?? ':memory:',
    clock,
    seed: 9,
    pricing: PRICING,
    budget,
    cache: false,
    metrics: false,
    tracing: false,
  });
  runtimes.push(rt);
  const call = modelAgent('call', provider, {
    model: 'flat',
    taskType: 'vendor',
    estimate: { inputTokens: 0, outputTokens: 0 },
    ...options.agent,
  });
  const ids: string[] = [];
  const start = () => {
    // Unique across runtimes on one file: a workflowId is an idempotency key.
    const id = `edge-${nextEdgeId++}`;
    ids.push(id);
    return rt.run(call, { n: ids.length }, { workflowId: id });
  };
  return {
    clock,
    rt,
    ids,
    burst: (count) => drive(clock, Array.from({ length: count }, start)),
    providerCalls: () => provider.calls.length,
    providerSpendUsd: () => provider.calls.length * CENT,
    loggedSpendUsd: () =>
      rt.store
        .query({ type: 'cost.incurred' })
        .reduce((sum, e) => sum + (e.type === 'cost.incurred' ? e.payload.costUsd : 0), 0),
  };
}

const count = (r: PromiseSettledResult<unknown>[], test: (x: PromiseSettledResult<unknown>) => boolean) =>
  r.filter(test).length;
const overBudget = (x: PromiseSettledResult<unknown>) =>
  x.status === 'rejected' && isBudgetExceededError(x.reason);

let nextEdgeId = 0;

describe('chaos: budgets at the edge under 100 concurrent calls', () => {
  it('admits exactly what fits, 0 overshoot', async () => {
    const s = scenario('100 concurrent calls, 5 cents left of $0.30');
    const { burst, providerSpendUsd, loggedSpendUsd, rt, ids } = edge({ dailyUsd: 0.3 });
    for (let i = 0; i < 5; i++) await burst(5);
    expect(providerSpendUsd()).toBeCloseTo(0.25, 10);

    const results = await burst(100);
    s.inject(100);
    s.hold('exactly the 5 calls that fit are admitted, the other 95 get BudgetExceededError', () => {
      expect(count(results, (x) => x.status === 'fulfilled')).toBe(5);
      expect(count(results, overBudget)).toBe(95);
    });
    s.hold('0 overshoot: provider spend and logged spend are within the daily limit', () => {
      expect(providerSpendUsd()).toBeLessThanOrEqual(0.3 + EPSILON);
      expect(loggedSpendUsd()).toBeLessThanOrEqual(0.3 + EPSILON);
      expect(providerSpendUsd()).toBeCloseTo(0.3, 10);
    });
    const missing = missingTerminal(rt.store, ids);
    s.lost(missing.length);
    s.hold('every workflow finished in the log', () => {
      expect(missing).toEqual([]);
      expect(logHealth(rt.store)).toMatchObject({ open: [], verified: true });
    });
  });

  it('with 5xx, 429s, hangs and retries: every attempt reserves, 0 overshoot in every scope', async () => {
    const s = scenario('100 concurrent calls, 5xx/429/hangs + 3 attempts each');
    const budget: BudgetConfig = { dailyUsd: 0.5, perModel: { flat: 0.45 }, perTaskType: { vendor: 0.4 } };
    const { burst, providerSpendUsd, loggedSpendUsd, providerCalls, clock, rt, ids } = edge(budget, {
      rates: { provider_error: 0.3, rate_limited: 0.1, timeout: 0.1 },
      agent: { timeoutMs: 500, retry: { attempts: 3, baseDelayMs: 50 } },
    });
    const results = await burst(100);
    const failedCalls = providerSpendUsd() / CENT - count(results, (x) => x.status === 'fulfilled');
    s.inject(Math.round(failedCalls));
    s.hold('the tightest scope (taskType vendor, $0.40) caps the spend: 0 overshoot', () => {
      expect(providerSpendUsd()).toBeLessThanOrEqual(0.4 + EPSILON);
      expect(loggedSpendUsd()).toBeLessThanOrEqual(0.4 + EPSILON);
    });
    s.hold('the budget is used, not starved: spend reaches the cap within one call', () => {
      expect(providerSpendUsd()).toBeGreaterThan(0.4 - CENT - EPSILON);
      expect(count(results, overBudget)).toBeGreaterThan(0);
    });
    s.hold('every attempt that reached the provider reserved its estimate first', () => {
      expect(rt.store.query({ type: 'cost.reserved' })).toHaveLength(providerCalls());
    });
    const missing = missingTerminal(rt.store, ids);
    s.lost(missing.length);
    s.hold('no hung run, no pending timer, every workflow finished in the log', () => {
      expect(clock.pendingTimers()).toBe(0);
      expect(missing).toEqual([]);
      expect(logHealth(rt.store)).toMatchObject({ open: [], verified: true });
    });
  });

  it('a restart remembers the spend of attempts that timed out (no overshoot across restarts)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-chaos-budget-'));
    dirs.push(dir);
    const db = path.join(dir, 'keel.db');
    const clock = simulatedClock(NOON);
    const budget: BudgetConfig = { dailyUsd: 0.1 };
    const hang = { rates: { timeout: 1 }, agent: { timeoutMs: 500 }, db, clock };
    const first = edge(budget, hang);
    await first.burst(20);
    expect(first.providerSpendUsd()).toBeCloseTo(0.1, 10);
    await first.rt.close();

    const second = edge(budget, { ...hang, rates: {} });
    const results = await second.burst(20);
    const spentToday = first.providerSpendUsd() + second.providerSpendUsd();
    expect(count(results, overBudget)).toBe(20);
    expect(spentToday).toBeLessThanOrEqual(0.1 + EPSILON);
  });
});
