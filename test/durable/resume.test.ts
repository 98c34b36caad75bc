import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import { isTopologyChangedError, isTopologyNotRegisteredError } from '../../src/durable/errors.js';
import { openSqliteStore, type SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { createRuntime, type Runtime, type RuntimeConfig } from '../../src/runtime.js';
import { par } from '../../src/supervisor/parallel.js';
import { seq } from '../../src/supervisor/sequential.js';
import { named, type AnyTopology } from '../../src/supervisor/topology.js';
import { PRICING, cleanupDirs, counting, crashedLog, settle, tempDb } from './helpers.js';

const T0 = Date.UTC(2026, 5, 1);
const runtimes: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close();
  cleanupDirs();
});

function open(
  db: string,
  config: RuntimeConfig = {},
  startMs = T0,
  budgeted = true,
): Runtime<SqliteEventStore> {
  const rt = createRuntime({
    db,
    clock: simulatedClock(startMs),
    seed: 7,
    pricing: PRICING,
    cache: false,
    ...(budgeted ? { budget: { dailyUsd: 100 } } : {}),
    ...config,
  }) as Runtime<SqliteEventStore>;
  runtimes.push(rt);
  return rt;
}

/** seq(a, par(b, c), d): d sees [b, c]. */
function invoice(hangC = false) {
  const a = counting('a', (i) => ({ a: i }));
  const b = counting('b', (i) => ({ b: i }));
  const c = counting('c', (i) => ({ c: i }), { hang: hangC });
  const d = counting('d', (i) => ({ d: i }));
  const topology = named('inv', seq(a.agent, par(b.agent, c.agent), d.agent)) as unknown as AnyTopology;
  return { a, b, c, d, topology };
}

/** Runs the workflow until `b` is done and `c` in flight, then "kills" the process: its log as left. */
async function crashMidway(budgeted = true): Promise<{ file: string; workflowId: string; lastTs: number }> {
  const first = invoice(true);
  const rt1 = open(tempDb(), {}, T0, budgeted);
  const run = rt1.run(first.topology, { n: 1 }, { workflowId: 'wf-1' });
  run.catch(() => undefined);
  for (let i = 0; i < 10; i++) await settle();
  const events = rt1.store.query({ workflowId: 'wf-1' });
  expect(
    events.filter((e) => e.type === 'agent.succeeded').map((e) => 'path' in e.payload && e.payload.path),
  ).toEqual(['inv/a', 'inv/par[1]/b']);
  expect(first.c.calls()).toBe(1);
  // Every event of the log, as the disk holds it at the kill (budget and system events too).
  const all = rt1.store.query();
  const file = await crashedLog(all);
  return { file, workflowId: 'wf-1', lastTs: all.at(-1)?.ts ?? T0 };
}

/** The event types of a log file. */
async function eventTypesOf(file: string): Promise<string[]> {
  const store = openSqliteStore({ path: file });
  try {
    return store.query().map((e) => e.type);
  } finally {
    await store.close();
  }
}

describe('rt.resume(): a workflow cut off by a crash', () => {
  it('without a budget (no cost.reserved in the log) the re-run still continues the attempt count: 2, then 3 after a second crash', async () => {
    const { file, workflowId } = await crashMidway(false);
    expect(await eventTypesOf(file)).not.toContain('cost.reserved');
    // The first resumer crashes too, with c in flight again.
    const again = invoice(true);
    const rt2 = open(file, {}, T0 + 120_000, false);
    rt2.register('inv', again.topology);
    void rt2.resume().catch(() => undefined);
    for (let i = 0; i < 10 && again.c.calls() === 0; i++) await settle();
    expect(again.c.attempts).toEqual([2]);
    const second = await crashedLog(rt2.store.query());

    const last = invoice();
    const rt3 = open(second, {}, T0 + 240_000, false);
    rt3.register('inv', last.topology);
    const report = await rt3.resume();
    expect(report.resumed).toMatchObject([{ workflowId, rerun: ['inv/par[1]/c'], outcome: 'completed' }]);
    expect([last.a.calls(), last.b.calls(), last.c.attempts, last.d.attempts]).toEqual([0, 0, [3], [1]]);
  });

  it('replays a and b, runs c once (attempt 2) and d once, and ends like a run that never crashed', async () => {
    const { file, workflowId } = await crashMidway();
    const second = invoice();
    const rt2 = open(file, {}, T0 + 120_000);
    rt2.register('inv', second.topology);

    const report = await rt2.resume();

    expect(report.refused).toEqual([]);
    expect(report.resumed).toMatchObject([
      { workflowId, name: 'inv', reason: 'orphaned', rerun: ['inv/par[1]/c'], outcome: 'completed' },
    ]);
    expect([second.a.calls(), second.b.calls(), second.c.calls(), second.d.calls()]).toEqual([0, 0, 1, 1]);
    expect(second.c.attempts).toEqual([2]);

    // The same result as an uncrashed run.
    const clean = invoice();
    const rt3 = open(':memory:');
    const expected = await rt3.run(clean.topology, { n: 1 });
    const result = await rt2.result(workflowId);
    expect(result.value).toEqual(expected.value);
    expect(result.agentsCalled).toBe(expected.agentsCalled);
    expect(result.costUsd).toBeCloseTo(expected.costUsd, 10);

    // The log: one success per agent, one resume, one end; the chain verifies.
    const events = rt2.store.query({ workflowId });
    const succeeded = events
      .filter((e) => e.type === 'agent.succeeded')
      .map((e) => (e.payload as { path: string }).path);
    expect(succeeded.sort()).toEqual(['inv/a', 'inv/d', 'inv/par[1]/b', 'inv/par[1]/c']);
    expect(events.filter((e) => e.type === 'workflow.resumed')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'workflow.completed')).toHaveLength(1);
    expect(rt2.store.verify().ok).toBe(true);
    // Budgets count a and b once: every priced attempt is in the spend exactly once.
    const incurred = rt2.store.query({ type: 'cost.incurred' });
    const byPath = new Map<string, number>();
    for (const e of incurred) {
      const p = (e.payload as { path: string }).path;
      byPath.set(p, (byPath.get(p) ?? 0) + 1);
    }
    expect(byPath.get('inv/a')).toBe(1);
    expect(byPath.get('inv/par[1]/b')).toBe(1);
    const spent = incurred.reduce((s, e) => s + (e.payload as { costUsd: number }).costUsd, 0);
    expect(rt2.stats().cost.actualUsd).toBeCloseTo(spent, 10);
  });

  it('answers a second rt.run under the same id with the resumed result, and a second resume finds nothing', async () => {
    const { file, workflowId } = await crashMidway();
    const second = invoice();
    const rt2 = open(file, {}, T0 + 120_000);
    rt2.register('inv', second.topology);
    await rt2.resume();
    const again = await rt2.run(second.topology, { n: 1 }, { workflowId });
    expect(again.recorded).toBe(true);
    expect(await rt2.resume()).toEqual({ resumed: [], refused: [] });
    expect(second.d.calls()).toBe(1);
  });

  it('refuses a workflow whose topology changed, naming the fix; markFailed closes it', async () => {
    const { file, workflowId } = await crashMidway();
    const changed = counting('e');
    const rt2 = open(file, {}, T0 + 120_000);
    rt2.register('inv', named('inv', seq(changed.agent)));
    const report = await rt2.resume();
    expect(report.resumed).toEqual([]);
    const refusal = report.refused[0]?.error;
    expect(isTopologyChangedError(refusal)).toBe(true);
    expect(refusal?.message).toMatch(/rt\.markFailed\('wf-1'\)/);
    expect(changed.calls()).toBe(0);
    await rt2.markFailed(workflowId);
    await expect(rt2.result(workflowId)).rejects.toThrow(/already ended: failed/);
    expect(await rt2.resume()).toEqual({ resumed: [], refused: [] });
  });

  it('refuses without a registered topology, and leaves it for a process that has one', async () => {
    const { file, workflowId } = await crashMidway();
    const rt2 = open(file, {}, T0 + 120_000);
    const report = await rt2.resume();
    expect(isTopologyNotRegisteredError(report.refused[0]?.error)).toBe(true);
    const second = invoice();
    rt2.register('inv', second.topology);
    const next = await rt2.resume();
    expect(next.resumed.map((r) => r.workflowId)).toEqual([workflowId]);
  });

  it('does not take a workflow whose owner is alive (a live lease), in this process or another', async () => {
    const first = invoice(true);
    const file = tempDb();
    const rt1 = open(file);
    const run = rt1.run(first.topology, { n: 1 }, { workflowId: 'wf-live' });
    run.catch(() => undefined);
    for (let i = 0; i < 10; i++) await settle();
    const rt2 = open(file);
    rt2.register('inv', invoice().topology);
    expect((await rt2.resume()).resumed).toEqual([]);
  });

  it("ends a resumed workflow as failed when the re-run agent is the user's own run() throwing a plain Error", async () => {
    const { file, workflowId } = await crashMidway();
    const a = counting('a', (i) => ({ a: i }));
    const b = counting('b', (i) => ({ b: i }));
    const c = counting('c', (i) => ({ c: i }), { fail: true });
    const d = counting('d', (i) => ({ d: i }));
    const rt2 = open(file, {}, T0 + 120_000);
    rt2.register('inv', named('inv', seq(a.agent, par(b.agent, c.agent), d.agent)));

    const report = await rt2.resume();

    expect(report.resumed).toMatchObject([{ workflowId, rerun: ['inv/par[1]/c'], outcome: 'failed' }]);
    expect([a.calls(), b.calls(), d.calls()]).toEqual([0, 0, 0]);
    expect(c.calls()).toBeGreaterThanOrEqual(1);
    const ends = rt2.store
      .query({ workflowId })
      .filter((e) => e.type.startsWith('workflow.') && e.type !== 'workflow.started');
    expect(ends.map((e) => e.type)).toEqual(['workflow.resumed', 'workflow.failed']);
    const failed = rt2.store.query({ workflowId, type: 'agent.failed' }).at(-1);
    expect(failed?.payload).toMatchObject({ path: 'inv/par[1]/c' });
    expect(JSON.stringify(failed?.payload)).toContain('c exploded');
    await expect(rt2.result(workflowId)).rejects.toThrow();
    expect(rt2.store.verify().ok).toBe(true);
    expect((await rt2.resume()).resumed).toEqual([]);
  });
});
