/**
 * Nothing is called that the log cannot record (issue 18): a call that can cost money starts only
 * once its reservation is committed; a log that cannot commit it (locked by another connection)
 * means no model call and no reservation left held; and a restart counts a call that was made
 * but never charged (the process died during it).
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AnyActorRef, InspectionEvent } from 'xstate';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { isBudgetExceededError } from '../../src/cost/errors.js';
import { DatabaseLockedError } from '../../src/eventlog/errors.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent, type AgentContext, type AgentOutput } from '../../src/supervisor/agent.js';

const PRICING = { m: { inputPer1K: 0.001, outputPer1K: 0.002 }, free: { inputPer1K: 0, outputPer1K: 0 } };
const USAGE = { inputTokens: 100, outputTokens: 50 };

let dir: string | undefined;
const open: Runtime<SqliteEventStore>[] = [];
const lockers: Database.Database[] = [];
afterEach(async () => {
  for (const l of lockers.splice(0)) if (l.open) l.close();
  for (const r of open.splice(0)) await r.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function dbFile(): string {
  dir = mkdtempSync(join(tmpdir(), 'keel-wal-'));
  return join(dir, 'keel.db');
}

/** A runtime with a $1 budget whose budget actors the test can read. */
function runtime(db: string, clock: SimulatedClock, busyTimeoutMs?: number) {
  let system: AnyActorRef['system'] | undefined;
  const rt = createRuntime({
    db,
    clock,
    seed: 1,
    pricing: PRICING,
    budget: { dailyUsd: 1 },
    ...(busyTimeoutMs !== undefined ? { busyTimeoutMs } : {}),
    inspect: (e: InspectionEvent) => {
      system ??= (e.actorRef as AnyActorRef).system;
    },
  });
  open.push(rt);
  const budget = () =>
    (
      (system?.get('budget:global') as AnyActorRef).getSnapshot() as {
        context: { spentUsd: number; reservedUsd: number };
      }
    ).context;
  return { rt, budget };
}

describe('write-ahead: a call that costs money starts only once its reservation is committed', () => {
  it('run() is invoked after the cost.reserved of its attempt is in the log; a free call does not wait', async () => {
    const clock = simulatedClock(Date.UTC(2026, 0, 5, 9));
    const { rt } = runtime(':memory:', clock);
    const seen: { reservedInLog: number }[] = [];
    const priced = agent({
      name: 'priced',
      model: 'm',
      retry: { attempts: 2, baseDelayMs: 10, jitter: false, retryOn: ['unknown', 'provider_error'] },
      run: (_i: unknown, ctx: AgentContext) => {
        seen.push({
          reservedInLog: rt.store
            .query({ workflowId: ctx.workflowId, type: 'cost.reserved' })
            .filter((e) => e.type === 'cost.reserved' && e.payload.attempt === ctx.attempt).length,
        });
        return ctx.attempt === 1
          ? Promise.reject(Object.assign(new Error('upstream 503'), { status: 503 }))
          : Promise.resolve({ value: 'ok', usage: USAGE });
      },
    });
    let freeCalls = 0;
    const free = agent({
      name: 'free',
      model: 'free',
      run: () => {
        freeCalls++;
        return Promise.resolve({ value: 'ok', usage: USAGE });
      },
    });
    const run = rt.run(priced, {}).catch((e: unknown) => e);
    expect(seen).toHaveLength(0); // not called synchronously: its reservation is not committed yet
    const freeRun = rt.run(free, {});
    expect(freeCalls).toBe(1); // no money at stake: no wait
    for (let i = 0; i < 10 && seen.length < 2; i++) await clock.advanceAsync(10);
    await run;
    await freeRun;
    // both attempts (the retry too) found their own reservation committed when run() was called
    expect(seen).toEqual([{ reservedInLog: 1 }, { reservedInLog: 1 }]);
  });

  it('while another connection holds the write lock: no model call, nothing held, runs fail with DatabaseLockedError; later runs work', async () => {
    const file = dbFile();
    const clock = simulatedClock(Date.UTC(2026, 0, 5, 9));
    const { rt, budget } = runtime(file, clock, 50);
    let calls = 0;
    const priced = agent({
      name: 'priced',
      model: 'm',
      run: () => {
        calls++;
        return Promise.resolve({ value: 'ok', usage: USAGE });
      },
    });
    await rt.run(priced, {});
    expect(calls).toBe(1);

    const locker = new Database(file, { timeout: 0 });
    lockers.push(locker);
    locker.exec('BEGIN IMMEDIATE');
    const refused = await Promise.allSettled(Array.from({ length: 5 }, () => rt.run(priced, {})));
    expect(refused.map((r) => r.status === 'rejected' && r.reason instanceof DatabaseLockedError)).toEqual(
      Array(5).fill(true),
    );
    expect(calls).toBe(1); // the model was not called
    expect(budget().reservedUsd).toBe(0); // the reservations were returned
    locker.exec('ROLLBACK');

    // the log works again: so do runs (the runtime waits for each workflow's start to commit first)
    await rt.run(priced, {});
    expect(calls).toBe(2);
    const charged = rt.store.query({ type: 'cost.incurred' });
    expect(charged).toHaveLength(2); // every call made is in the log
  });
});

describe('a restart counts every call that was made', () => {
  it('a call whose reservation was committed but whose process died mid-call is charged its reservation after restart', async () => {
    const file = dbFile();
    const clock = simulatedClock(Date.UTC(2026, 0, 5, 9));
    const first = runtime(file, clock);
    let started = 0;
    const hangs = agent({
      name: 'hangs',
      model: 'm',
      estimate: { inputTokens: 100_000, outputTokens: 200_000 }, // $0.50
      run: () => {
        started++;
        return new Promise<AgentOutput<string>>(() => undefined); // the process "dies" during the call
      },
    });
    const done = agent({
      name: 'done',
      model: 'm',
      run: () => Promise.resolve({ value: 'ok', usage: USAGE }),
    });
    await first.rt.run(done, {}); // $0.0002, reserved and charged: counted once
    void first.rt.run(hangs, {}).catch(() => undefined);
    for (let i = 0; i < 10 && started === 0; i++) await clock.advanceAsync(0);
    expect(started).toBe(1);

    // A second runtime opens the same file as a restarted process would (the first never closes).
    const second = runtime(file, clock);
    const fitsOnlyIfForgotten = agent({
      name: 'big',
      model: 'm',
      estimate: { inputTokens: 200_000, outputTokens: 200_000 }, // $0.60: fits in $1 only if the $0.50 is forgotten
      run: () => Promise.resolve({ value: 'ok', usage: USAGE }),
    });
    const error = await second.rt.run(fitsOnlyIfForgotten, {}).catch((e: unknown) => e);
    expect(isBudgetExceededError(error)).toBe(true);
    expect(second.budget().spentUsd).toBeCloseTo(0.5 + 0.0002, 9);
  });
});
