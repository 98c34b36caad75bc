/**
 * Smoke test of the benchmark scripts: each bench module's measuring functions run for a tiny
 * iteration count and return finite figures. Nothing here asserts a speed — benchmarks print
 * ratios, they are not timed tests.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  benchAgent,
  benchRuntime,
  cleanup,
  freshFile,
  lightContenders,
  measureCall,
  measureHandWired,
  measureKeel,
  work,
} from '../../bench/agent.bench.js';
import { createCommitFloor, createHandWired } from '../../bench/baseline.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { goal, verdict, type Cost } from '../../bench/harness.js';
import { flatness, heapPerInFlight } from '../../bench/memory.bench.js';
import { RUNNERS, measureRuntimePar, measureWorkflow } from '../../bench/supervisor.bench.js';
import { measureRuntime, replaysPerSec, workflowsPerSec } from '../../bench/workflows.bench.js';

afterAll(cleanup);

function expectFiniteCost(c: Cost): void {
  expect(Number.isFinite(c.wallUs) && c.wallUs > 0).toBe(true);
  expect(Number.isFinite(c.cpuUs) && c.cpuUs >= 0).toBe(true);
}

describe('agent bench', () => {
  it('measures rt.run(agent) on both runtime presets, sequential and concurrent', async () => {
    expectFiniteCost(await measureKeel('default', 10, 1));
    expectFiniteCost(await measureKeel('lean', 10, 4));
    expectFiniteCost(await measureKeel('limited', 10, 4));
    expectFiniteCost(await measureKeel('reservations', 10, 4));
    expectFiniteCost(await measureKeel('default', 10, 4, undefined, 'caller'));
    expectFiniteCost(await measureKeel('tenants', 10, 4));
  });

  it('measures the hand-wired baseline with 2 and 5 events, and the raw commit floor', async () => {
    expectFiniteCost(await measureHandWired(2, 10, 1));
    expectFiniteCost(await measureHandWired(5, 10, 4));
    expectFiniteCost(await measureHandWired('floor', 10, 4));
    expectFiniteCost(await measureHandWired(2, 10, 1, true));
    expectFiniteCost(await measureHandWired(5, 10, 4, true));
  });

  it('the written-ahead hand-wired baseline calls only once agent.invoked is committed', async () => {
    const file = freshFile();
    let committedAtCall = -1;
    const hw = await createHandWired(
      file,
      (input) => {
        committedAtCall = hw.events();
        return work(input);
      },
      5,
      true,
    );
    const plain = await createHandWired(freshFile(), work, 5, false);
    try {
      await hw.invoke('a');
      expect(committedAtCall).toBe(2); // workflow.started and agent.invoked, before the call
      expect(hw.events()).toBe(5);
      let plainCalls = 0;
      const pending = plain.invoke('b').then(() => plainCalls++);
      expect(plain.events()).toBe(0); // the plain one calls before anything is committed
      await pending;
      expect(plainCalls).toBe(1);
    } finally {
      hw.close();
      plain.close();
    }
  });

  it("commits the floor's 2 rows per call before the call resolves", async () => {
    const file = freshFile();
    const floor = await createCommitFloor(file, work);
    try {
      await Promise.all([floor.invoke('a'), floor.invoke('b'), floor.invoke('c')]);
      await floor.invoke('d');
      expect(floor.events()).toBe(8);
      const store = openSqliteStore({ path: file, readonly: true });
      expect(store.query().map((e) => e.workflowId)).toEqual([
        'wf-0',
        'wf-0',
        'wf-1',
        'wf-1',
        'wf-2',
        'wf-2',
        'wf-3',
        'wf-3',
      ]);
      await store.close();
    } finally {
      floor.close();
    }
  });

  it('measures the bare call and each breaker alone', async () => {
    const calls = lightContenders();
    for (const call of Object.values(calls)) expectFiniteCost(await measureCall(call, 20, 2));
  });
});

describe('supervisor bench', () => {
  it('measures every runner through the executor, and par through the runtime', async () => {
    for (const runner of Object.keys(RUNNERS) as (keyof typeof RUNNERS)[]) {
      expectFiniteCost(await measureWorkflow(runner, 3, 5, 'actor'));
      expectFiniteCost(await measureWorkflow(runner, 3, 5, 'cached'));
    }
    expectFiniteCost(await measureRuntimePar(2, 3));
  });
});

describe('workflows bench', () => {
  it('measures throughput with the durable-before-ack check, and replays', async () => {
    const r = await measureRuntime('lean', 'normal', benchAgent, 20, 5);
    expect(Number.isFinite(r.perSec) && r.perSec > 0).toBe(true);
    const rt = benchRuntime('default');
    try {
      const direct = await workflowsPerSec(rt, benchAgent, 10, 3);
      expect(Number.isFinite(direct.perSec)).toBe(true);
    } finally {
      await rt.close();
    }
    const replays = await replaysPerSec(3);
    expect(Number.isFinite(replays.perSec) && replays.perSec > 0).toBe(true);
  });
});

describe('memory bench', () => {
  it('measures heap per in-flight workflow and heap at checkpoints', async () => {
    const m = await heapPerInFlight(20);
    expect(m.workflows).toBe(20);
    expect(Number.isFinite(m.bytesPerWorkflow)).toBe(true);
    const inv = await heapPerInFlight(10, 'invoice');
    expect(inv.workflows).toBe(10);
    expect(Number.isFinite(inv.bytesPerWorkflow)).toBe(true);
    const cps = await flatness([20, 40], 5);
    expect(cps.map((c) => c.workflows)).toEqual([20, 40]);
    for (const c of cps) expect(Number.isFinite(c.heapBytes) && c.heapBytes > 0).toBe(true);
  });
});

describe('goal verdicts', () => {
  it('judges a goal by its target, and prints a row without one as info, never as met', () => {
    expect(verdict(goal('a <= 50 us', 51, '<=', 50, String, 49))).toBe('MISSED');
    expect(verdict(goal('a <= 50 us', 51, '<=', 50, String, 49), true)).toBe('met');
    expect(verdict(goal('b >= 0.8x', 0.9, '>=', 0.8, String))).toBe('met');
    const context = goal('(context) above the floor', 183, '<=', Infinity, String, 176);
    expect(verdict(context)).toBe('info');
    expect(verdict(context, true)).toBe('info');
  });
});
