/**
 * Workflows cut off by a crash: `findOpenWorkflows` finds what a killed process left open (a real
 * SIGKILLed child's log, and recorded logs cut where a crash would cut them), and
 * `rt.markInterrupted` closes them with one `workflow.interrupted` each — never one this runtime is
 * running, never twice — without moving error rates, latency or cost.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findOpenWorkflows, type MarkInterruptedOptions } from '../../src/compliance/interrupted.js';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { isConfigError } from '../../src/core/errors.js';
import { SEED_PRICING } from '../../src/cost/pricing.js';
import { SYSTEM_WORKFLOW_ID, type KeelEvent } from '../../src/eventlog/events.js';
import { openSqliteStore, type SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { buildReport } from '../../src/report/build.js';
import { formatReport } from '../../src/report/terminal.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent, AgentError, type AgentOutput } from '../../src/supervisor/agent.js';
import { seq } from '../../src/supervisor/sequential.js';
import { named } from '../../src/supervisor/topology.js';
import { CHILD_PRICING } from '../chaos/child-config.js';
import { logHealth } from '../chaos/harness.js';
import { openRuntime, perTestScratch, USAGE } from '../cli/logs.js';
import { appendAll, cutOff } from './crash-log.js';

const CHILD = fileURLToPath(new URL('../chaos/workflow-child.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));

const scratch = perTestScratch();

interface Doc {
  id: string;
  bad: boolean;
}

/** `seq(ocr, route)`: ocr fails on bad documents (an `ocr_error` of task type vendor). */
const invoice = named(
  'invoice',
  seq(
    agent({
      name: 'ocr',
      taskType: 'vendor',
      model: 'gpt-3.5-turbo',
      run: (d: Doc) =>
        d.bad
          ? Promise.reject(new AgentError('ocr_error', `${d.id}: page 2 unreadable`))
          : Promise.resolve({ value: d.id, usage: USAGE }),
    }),
    agent({
      name: 'route',
      taskType: 'routing',
      model: 'gpt-4',
      run: (id: string) => Promise.resolve({ value: `queue-${id}`, usage: USAGE }),
    }),
  ),
);

/**
 * Ten invoices a second apart (three fail at ocr), recorded, then copied into `crash.db` with the
 * first `dead` successful ones cut off before their end, as a killed process leaves them.
 */
async function crashLog(dead = 3): Promise<{ db: string; dead: string[]; lastTs: number }> {
  const recorded = scratch.dir().path('recorded.db');
  const docs = Array.from({ length: 10 }, (_, i) => ({ id: `INV-${i}`, bad: i % 3 === 1 }));
  const rt = openRuntime(recorded);
  const ok: string[] = [];
  for (const d of docs) {
    const r = await rt.run(invoice, d).catch(() => undefined);
    if (r) ok.push(r.workflowId);
    (rt.clock as SimulatedClock).advance(1_000);
  }
  const events = rt.store.query();
  await rt.close();
  const cut = ok.slice(0, dead);
  const db = scratch.dir().path('crash.db');
  const store = openSqliteStore({ path: db });
  await appendAll(store, cutOff(events, new Set(cut)));
  await store.close();
  return { db, dead: cut, lastTs: (events[events.length - 1] as KeelEvent).ts };
}

/** A runtime on `db` whose clock reads `nowMs`. */
function runtimeAt(db: string, nowMs: number): Runtime<SqliteEventStore> {
  const rt = createRuntime({
    db,
    clock: simulatedClock(nowMs),
    seed: 3,
    pricing: { ...SEED_PRICING, ...CHILD_PRICING },
    cache: false,
    metrics: false,
    tracing: false,
  });
  scratch.keep(rt);
  return rt;
}

const ids = (list: readonly { workflowId: string }[]): string[] => list.map((w) => w.workflowId).sort();

/** Runs the chaos suite's child until it acknowledged `n` workflows, then SIGKILLs it. */
function killChildAfter(file: string, n: number): Promise<NodeJS.Signals | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, file], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let done = 0;
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      for (let i = chunk.indexOf('done '); i >= 0; i = chunk.indexOf('done ', i + 1)) done++;
      if (done >= n) child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      clearTimeout(guard);
      resolve(signal);
    });
  });
}

describe('findOpenWorkflows', () => {
  it('finds exactly what a SIGKILLed process left open; marking them closes every one', async () => {
    const file = scratch.dir().path('killed.db');
    expect(await killChildAfter(file, 40)).toBe('SIGKILL');

    const store = openSqliteStore({ path: file });
    const health = logHealth(store);
    const open = await findOpenWorkflows(store);
    const lastTs = store.query({ afterSeq: store.lastSeq() - 1 })[0]?.ts ?? 0;
    await store.close();
    expect(health.verified).toBe(true);
    // The child keeps 32 workflows in flight: the kill cuts some of them off.
    expect(open.length).toBeGreaterThan(0);
    expect(ids(open)).toEqual([...health.open].sort());
    for (const w of open) {
      expect(w.name).toBe('seq');
      expect(w.lastSeq).toBeGreaterThanOrEqual(w.startedSeq);
    }

    const rt = runtimeAt(file, lastTs + 1);
    const { marked, running } = await rt.markInterrupted({
      startedBefore: rt.clock.now(),
      reason: 'SIGKILL in the chaos test',
      markedBy: 'test',
    });
    expect(running).toEqual([]);
    expect(ids(marked)).toEqual(ids(open));
    const marks = rt.store
      .query({ type: 'workflow.interrupted' })
      .filter((e): e is KeelEvent<'workflow.interrupted'> => e.type === 'workflow.interrupted');
    expect(marks.map((e) => e.seq)).toEqual(marked.map((w) => w.seq));
    expect(marks.map((e) => e.payload).sort((a, b) => a.startedSeq - b.startedSeq)).toEqual(
      open.map((w) => ({
        reason: 'SIGKILL in the chaos test',
        startedSeq: w.startedSeq,
        lastSeq: w.lastSeq,
        markedBy: 'test',
      })),
    );
    expect(rt.store.verify()).toMatchObject({ ok: true });
    expect(await findOpenWorkflows(rt.store)).toEqual([]);
  });

  it('says where each one stopped, and keeps only those started before the cutoff', async () => {
    const { db, dead } = await crashLog(3);
    const store = openSqliteStore({ path: db, readonly: true });
    try {
      const all = await findOpenWorkflows(store);
      expect(all.map((w) => w.workflowId)).toEqual(dead);
      const first = all[0];
      const trail = store.query({ workflowId: first?.workflowId ?? '' });
      expect(first).toEqual({
        workflowId: trail[0]?.workflowId,
        name: 'invoice',
        startedTs: trail[0]?.ts,
        startedSeq: trail[0]?.seq,
        lastSeq: trail[trail.length - 1]?.seq,
        lastTs: trail[trail.length - 1]?.ts,
        lastType: trail[trail.length - 1]?.type,
        events: trail.length,
      });
      expect(first?.lastType).toBe('agent.succeeded');
      // Started one second apart: a cutoff at the second one's start keeps the first only.
      const second = all[1]?.startedTs ?? 0;
      expect((await findOpenWorkflows(store, { startedBefore: second })).map((w) => w.workflowId)).toEqual([
        dead[0],
      ]);
    } finally {
      await store.close();
    }
  });

  it('rejects a cutoff that is not a time, naming startedBefore', async () => {
    const { db } = await crashLog(1);
    const store = openSqliteStore({ path: db, readonly: true });
    try {
      await expect(findOpenWorkflows(store, { startedBefore: Number.NaN })).rejects.toSatisfy(
        (e: unknown) => isConfigError(e) && e.field === 'startedBefore',
      );
    } finally {
      await store.close();
    }
  });
});

describe('rt.markInterrupted', () => {
  it('appends one workflow.interrupted per dead workflow, tells rt.on("workflow"), and marks nothing twice', async () => {
    const { db, dead, lastTs } = await crashLog(3);
    const rt = runtimeAt(db, lastTs + 60_000);
    const ended: string[] = [];
    rt.on('workflow', (e) => ended.push(`${e.type} ${e.workflowId}`));
    const before = rt.store.lastSeq();

    const first = await rt.markInterrupted({ startedBefore: rt.clock.now() });

    expect(first.marked.map((w) => w.workflowId)).toEqual(dead);
    expect(first.marked.map((w) => w.seq)).toEqual([before + 1, before + 2, before + 3]);
    const marks = rt.store.query({ afterSeq: before });
    expect(marks.map((e) => `${e.type} ${e.workflowId}`)).toEqual(
      dead.map((id) => `workflow.interrupted ${id}`),
    );
    expect(marks.every((e) => e.class === 'audit' && e.v === 1 && e.ts === rt.clock.now())).toBe(true);
    expect(marks[0]?.payload).toMatchObject({ markedBy: 'runtime', startedSeq: first.marked[0]?.startedSeq });
    expect(ended).toEqual(dead.map((id) => `workflow.interrupted ${id}`));
    expect(rt.store.verify()).toMatchObject({ ok: true, events: before + 3 });

    const second = await rt.markInterrupted({ startedBefore: rt.clock.now() });
    expect(second).toEqual({ marked: [], running: [] });
    expect(rt.store.lastSeq()).toBe(before + 3);
  });

  it('serialises concurrent calls: each dead workflow is marked once', async () => {
    const { db, dead, lastTs } = await crashLog(2);
    const rt = runtimeAt(db, lastTs + 60_000);
    const [a, b] = await Promise.all([
      rt.markInterrupted({ startedBefore: rt.clock.now() }),
      rt.markInterrupted({ startedBefore: rt.clock.now() }),
    ]);
    expect([...(a?.marked ?? []), ...(b?.marked ?? [])].map((w) => w.workflowId)).toEqual(dead);
    expect(rt.store.query({ type: 'workflow.interrupted' })).toHaveLength(2);
  });

  it('leaves the workflows this runtime is running alone, even with a cutoff of now', async () => {
    const { db, dead, lastTs } = await crashLog(2);
    const clock = simulatedClock(lastTs + 60_000);
    const rt = createRuntime({
      db,
      clock,
      seed: 4,
      pricing: SEED_PRICING,
      cache: false,
      metrics: false,
      tracing: false,
    });
    scratch.keep(rt);
    let release: ((out: AgentOutput<string>) => void) | undefined;
    const slow = agent({
      name: 'slow',
      model: 'gpt-4',
      run: () => new Promise<AgentOutput<string>>((resolve) => (release = resolve)),
    });
    const started = new Promise<void>((resolve) =>
      rt.on('event', (e) => {
        if (e.type === 'workflow.started' && e.workflowId === 'wf-live') resolve();
      }),
    );
    const run = rt.run(slow, {}, { workflowId: 'wf-live' });
    run.catch(() => undefined); // awaited below; closed by afterEach if an expectation fails first
    await started;
    clock.advance(1_000);

    const { marked, running } = await rt.markInterrupted({ startedBefore: clock.now() });

    expect(running.map((w) => w.workflowId)).toEqual(['wf-live']);
    expect(marked.map((w) => w.workflowId)).toEqual(dead);
    release?.({ value: 'done', usage: USAGE });
    await expect(run).resolves.toMatchObject({ workflowId: 'wf-live', value: 'done' });
    expect(rt.store.query({ workflowId: 'wf-live' }).map((e) => e.type)).not.toContain(
      'workflow.interrupted',
    );
    expect(await findOpenWorkflows(rt.store)).toEqual([]);
  });

  it('refuses a cutoff in the future or none at all, naming startedBefore, and writes nothing', async () => {
    const { db, lastTs } = await crashLog(1);
    const rt = runtimeAt(db, lastTs + 60_000);
    const before = rt.store.lastSeq();
    const names = (e: unknown, field: string): boolean =>
      isConfigError(e) && e.field === field && /startedBefore|reason/.test(e.message);
    await expect(rt.markInterrupted({ startedBefore: rt.clock.now() + 1 })).rejects.toSatisfy((e: unknown) =>
      names(e, 'startedBefore'),
    );
    await expect(rt.markInterrupted({} as MarkInterruptedOptions)).rejects.toSatisfy((e: unknown) =>
      names(e, 'startedBefore'),
    );
    await expect(rt.markInterrupted({ startedBefore: rt.clock.now(), reason: ' ' })).rejects.toSatisfy(
      (e: unknown) => names(e, 'reason'),
    );
    // @ts-expect-error startedBefore is required: the caller says which workflows are dead
    await rt.markInterrupted({ reason: 'x' }).catch(() => undefined);
    expect(rt.store.lastSeq()).toBe(before);
    // The refused calls do not block the next one.
    expect((await rt.markInterrupted({ startedBefore: rt.clock.now() })).marked).toHaveLength(1);
  });

  it('moves no error rate, latency or cost: only the report counts them, as interrupted', async () => {
    const { db, dead, lastTs } = await crashLog(3);
    // A breaker left open by the crashed process: the report counts its open time to the end of the log.
    const store = openSqliteStore({ path: db });
    await store.append([
      {
        ts: lastTs,
        workflowId: SYSTEM_WORKFLOW_ID,
        type: 'breaker.transitioned',
        payload: { breaker: 'ocr', from: 'closed', to: 'open', reason: 'failures', failures: 3 },
      },
    ]);
    await store.close();
    const rt = runtimeAt(db, lastTs + 60_000);
    const report = (): ReturnType<typeof buildReport> => buildReport(rt.store.iterate());
    // A restarted runtime holds per-workflow state for the workflows it found open.
    expect(rt.stats().latency.openWorkflows).toBe(3);
    // Someone marks them two days later: the marks must not age the report's windows either.
    (rt.clock as SimulatedClock).advance(2 * 86_400_000);
    const stats = rt.stats();
    const was = report();
    expect(stats.errorRates.find((t) => t.taskType === 'vendor')?.failures).toBe(3);
    expect(was.breakers[0]).toMatchObject({ state: 'open', openMs: 0 });

    await rt.markInterrupted({ startedBefore: rt.clock.now() });

    const now = rt.stats();
    expect(now.errorRates).toEqual(stats.errorRates);
    expect(now.latency).toEqual({ ...stats.latency, openWorkflows: 0 });
    expect(now.cost).toEqual(stats.cost);
    const is = report();
    expect(is.errors).toEqual(was.errors);
    expect(is.latency).toEqual(was.latency);
    expect(is.rootCauses).toEqual(was.rootCauses);
    expect(is.cost).toEqual(was.cost);
    expect(is.breakers).toEqual(was.breakers);
    const row = was.workflows.find((w) => w.name === 'invoice');
    expect(row).toMatchObject({ started: 10, completed: 4, failed: 3, interrupted: 0, running: 3 });
    expect(is.workflows).toEqual([{ ...row, interrupted: dead.length, running: 0 }]);
    expect(formatReport(is)).toMatch(
      /cancelled\s+interrupted\s+running\s+waiting\s+resumed\n.*invoice\s+10\s+4\s+3\s+0\s+3\s+0\s+0\s+0/s,
    );
  });
});
