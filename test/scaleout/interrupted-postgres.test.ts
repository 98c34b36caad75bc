/**
 * Workflows cut off by a crash on a Postgres log shared by a fleet: `findOpenWorkflows` streams the
 * asynchronous store, `rt.markInterrupted` closes the dead ones once, and the cutoff the caller
 * picks keeps another process's live workflow out of it; `keel audit open|interrupt --store` agree.
 */
import { expect, it } from 'vitest';
import { EXIT } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/main.js';
import { findOpenWorkflows } from '../../src/compliance/interrupted.js';
import { simulatedClock } from '../../src/core/clock.js';
import { SEED_PRICING } from '../../src/cost/pricing.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import { openPostgresStore } from '../../src/eventlog/postgres.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent, type AgentOutput } from '../../src/supervisor/agent.js';
import { captureIo } from '../cli/io.js';
import { invoices, perTestScratch, recordCascade, USAGE } from '../cli/logs.js';
import { appendAll, cutOff, workflowsWith } from '../compliance/crash-log.js';
import { describePostgres, freshDatabase } from '../support/scaleout.js';

const HOUR = 3_600_000;

const scratch = perTestScratch();

async function keel(args: string[]): Promise<{ code: number; stdout: string }> {
  const c = captureIo();
  const code = await runCli(args, c.io);
  return { code, stdout: c.stdout() };
}

/** A runtime of the fleet: its own connection to the shared log, its own clock. */
function member(url: string, nowMs: number): Runtime {
  const rt = createRuntime({
    store: openPostgresStore({ url }),
    clock: simulatedClock(nowMs),
    seed: scratch.kept + 1,
    pricing: SEED_PRICING,
    cache: false,
    metrics: false,
    tracing: false,
  });
  scratch.keep(rt);
  return rt;
}

describePostgres('interrupted workflows on a Postgres log', () => {
  it('finds the open workflows and marks the dead ones once, sparing a live one younger than the cutoff', async () => {
    const recorded = scratch.dir().path('recorded.db');
    await recordCascade(recorded, 0.95, invoices(8));
    const lite = openSqliteStore({ path: recorded, readonly: true });
    const events = lite.query();
    await lite.close();
    const dead = workflowsWith(events, 'cascade.escalated').slice(0, 2);
    const t0 = (events[0] as KeelEvent).ts;
    const url = await freshDatabase();
    const seed = openPostgresStore({ url });
    await appendAll(seed, cutOff(events, new Set(dead)));
    await seed.close();

    // Another process of the fleet starts a workflow an hour later and is still running it.
    const other = member(url, t0 + HOUR);
    let release: ((out: AgentOutput<string>) => void) | undefined;
    const slow = agent({
      name: 'slow',
      model: 'gpt-4',
      run: () => new Promise<AgentOutput<string>>((resolve) => (release = resolve)),
    });
    const started = new Promise<void>((resolve) =>
      other.on('event', (e) => {
        if (e.type === 'workflow.started') resolve();
      }),
    );
    const live = other.run(slow, {}, { workflowId: 'wf-other' });
    live.catch(() => undefined); // awaited below; closed by afterEach if an expectation fails first
    await started;

    const operator = member(url, t0 + 2 * HOUR);
    await operator.ready();
    expect((await findOpenWorkflows(operator.store)).map((w) => w.workflowId)).toEqual([...dead, 'wf-other']);

    // The operator declares dead what started over 90 minutes ago: the crashed ones, not wf-other.
    const first = await operator.markInterrupted({ startedBefore: t0 + 30 * 60_000, markedBy: 'ops' });
    expect(first.marked.map((w) => w.workflowId)).toEqual(dead);
    expect(first.running).toEqual([]);
    expect((await operator.markInterrupted({ startedBefore: t0 + 30 * 60_000 })).marked).toEqual([]);
    expect(await operator.store.verify()).toMatchObject({ ok: true });

    release?.({ value: 'done', usage: USAGE });
    await expect(live).resolves.toMatchObject({ workflowId: 'wf-other' });
    expect(await findOpenWorkflows(operator.store)).toEqual([]);
    const marks = await operator.store.query({ type: 'workflow.interrupted' });
    expect(marks.map((e) => e.workflowId)).toEqual(dead);

    // The CLI reads the same log: nothing left open, nothing left to mark.
    const open = await keel(['audit', 'open', '--store', url, '--json']);
    expect(open.code).toBe(EXIT.ok);
    expect(JSON.parse(open.stdout)).toMatchObject({ open: [] });
    const again = await keel(['audit', 'interrupt', '--store', url, '--older-than', '1h', '--yes']);
    expect(again).toMatchObject({
      code: EXIT.ok,
      stdout: expect.stringContaining('nothing to mark') as string,
    });
  });
});
