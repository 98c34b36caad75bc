/**
 * `keel workflows`, `keel resume` and `keel signal` through runCli on temporary logs: the success
 * paths, and every bad input (bad JSON, an unknown, finished or not-waiting workflow, a value the
 * schema refuses, a bad --status, a changed topology, a missing file) as a named error with its exit
 * code. Then `keel report --html` counts the resumed and waiting workflows as the terminal report does.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/main.js';
import { simulatedClock } from '../../src/core/clock.js';
import { isWorkflowWaitingError } from '../../src/durable/errors.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import { openSqliteStore, type SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { createRuntime } from '../../src/runtime.js';
import { captureIo } from '../cli/io.js';
import { approveTopology, jobTopology, WAIT_TIMEOUT_MS } from './fixtures/cli-topologies.js';
import { PRICING, cleanupDirs, crashedLog, settle, tempDb } from './helpers.js';

const TOPOLOGIES = fileURLToPath(new URL('./fixtures/cli-topologies.ts', import.meta.url));
const CHANGED = fileURLToPath(new URL('./fixtures/cli-topologies-changed.ts', import.meta.url));
const T0 = Date.UTC(2026, 5, 1);
const calls = globalThis as { keelDurableCliCalls?: Record<string, number> };

let db = '';
afterEach(cleanupDirs);

/**
 * A log as a crashed process left it: `wf-done` (job) completed, `wf-wait` (approve) waiting for
 * `ok` until T0 + 1 h, `wf-crash` (job) with `a` done and `b` in flight.
 */
beforeEach(async () => {
  calls.keelDurableCliCalls = {};
  const rt = createRuntime<SqliteEventStore>({
    db: ':memory:',
    clock: simulatedClock(T0),
    seed: 1,
    pricing: PRICING,
    cache: false,
  });
  await rt.run(jobTopology(), { n: 1 }, { workflowId: 'wf-done' });
  const waiting: unknown = await rt
    .run(approveTopology(), { n: 2 }, { workflowId: 'wf-wait' })
    .catch((e: unknown) => e);
  expect(isWorkflowWaitingError(waiting)).toBe(true);
  rt.run(jobTopology(true), { n: 3 }, { workflowId: 'wf-crash' }).catch(() => undefined);
  const bInFlight = (): boolean =>
    rt.store
      .query({ workflowId: 'wf-crash', type: 'agent.invoked' })
      .some((e) => (e.payload as { path: string }).path === 'job/b');
  for (let i = 0; i < 50 && !bInFlight(); i++) await settle();
  expect(bInFlight()).toBe(true);
  db = await crashedLog(rt.store.query());
  await rt.close();
  calls.keelDurableCliCalls = {};
});

/** `keel <args>` at virtual time `at` (default a minute after the log). */
async function keel(
  args: string[],
  at = T0 + 60_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const c = captureIo();
  const code = await runCli(args, c.io, { clock: simulatedClock(at) });
  return { code, stdout: c.stdout(), stderr: c.stderr() };
}

function events(workflowId: string): KeelEvent[] {
  const store = openSqliteStore({ path: db, readonly: true });
  try {
    return store.query({ workflowId });
  } finally {
    void store.close();
  }
}

describe('keel workflows', () => {
  it('lists every workflow with its status, age and owner, and counts them', async () => {
    const r = await keel(['workflows', '--db', db]);
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/^wf-done {2}job {2}completed {2}60s {2}\S+$/m);
    expect(r.stdout).toMatch(/^wf-wait {2}approve {2}waiting \(ok\) {2}60s {2}\S+$/m);
    expect(r.stdout).toMatch(/^wf-crash {2}job {2}interrupted {2}60s {2}\S+:\d+:[0-9a-f]{8}$/m);
    expect(r.stdout).toContain('3 workflow(s): 1 waiting, 1 interrupted, 0 running');
  });

  it('--status filters; --json gives the rows with the wait and its deadline', async () => {
    const r = await keel(['workflows', '--db', db, '--status', 'waiting', '--json']);
    expect(r.code).toBe(EXIT.ok);
    expect(JSON.parse(r.stdout)).toEqual([
      expect.objectContaining({
        workflowId: 'wf-wait',
        name: 'approve',
        status: 'waiting',
        waitingFor: 'ok',
        timeoutAt: expect.any(Number) as number,
        resumes: 0,
      }),
    ]);
    const interrupted = await keel(['workflows', '--db', db, '--status', 'interrupted']);
    expect(interrupted.stdout.split('\n').filter((l) => l.startsWith('wf-'))).toEqual([
      expect.stringMatching(/^wf-crash /),
    ]);
  });

  it('a bad --status is exit 2 naming the statuses; a missing log is exit 3 naming the file', async () => {
    const bad = await keel(['workflows', '--db', db, '--status', 'stuck']);
    expect(bad.code).toBe(EXIT.usage);
    expect(bad.stderr).toContain(
      '--status must be one of running, waiting, interrupted, completed, failed, cancelled; got "stuck"',
    );
    const missing = await keel(['workflows', '--db', `${db}.nope`]);
    expect(missing.code).toBe(EXIT.error);
    expect(missing.stderr).toContain(`${db}.nope`);
  });
});

describe('keel signal', () => {
  const signal = (id: string, name: string, json: string, at?: number) =>
    keel(['signal', '--db', db, '--topologies', TOPOLOGIES, id, name, json], at);

  it('delivers a valid value: the workflow continues from the log (a not called again) and completes', async () => {
    const r = await signal('wf-wait', 'ok', '{"ok":true}');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/^wf-wait: signal "ok" recorded at seq \d+$/m);
    expect(r.stdout).toContain('wf-wait: completed: {"b":{"ok":true}}');
    expect(calls.keelDurableCliCalls).toEqual({ b: 1 });
    expect(events('wf-wait').map((e) => e.type)).toContain('workflow.completed');
  });

  it('bad JSON, an unknown workflow, a finished one, the wrong wait, a value the schema refuses: exit 2, named, nothing recorded', async () => {
    const cases: [string, string, string, RegExp][] = [
      [
        'wf-wait',
        'ok',
        '{ok: true}',
        /the value must be JSON, e\.g\. '\{"approved":true\}'; got \{ok: true\}/,
      ],
      ['wf-nope', 'ok', '{"ok":true}', /UnknownWorkflowError: no workflow "wf-nope" in this log/],
      [
        'wf-done',
        'ok',
        '{"ok":true}',
        /WorkflowFinishedError: workflow "wf-done" already ended \(workflow\.completed\)/,
      ],
      [
        'wf-wait',
        'approval',
        '{"ok":true}',
        /WorkflowNotWaitingError: workflow "wf-wait" waits for "ok", not "approval"/,
      ],
      [
        'wf-wait',
        'ok',
        '{"ok":"yes"}',
        /SignalValidationError: .*ok: Invalid input: expected boolean, received string/,
      ],
    ];
    for (const [id, name, json, message] of cases) {
      const r = await signal(id, name, json);
      expect([id, name, json, r.code]).toEqual([id, name, json, EXIT.usage]);
      expect(r.stderr).toMatch(message);
    }
    expect(events('wf-wait').some((e) => e.type === 'workflow.signalled')).toBe(false);
    expect(calls.keelDurableCliCalls).toEqual({});
  });

  it('after the timeout: WaitTimedOutError, exit 2; keel resume then fails it with category timeout', async () => {
    const late = T0 + WAIT_TIMEOUT_MS + 1;
    const r = await signal('wf-wait', 'ok', '{"ok":true}', late);
    expect(r.code).toBe(EXIT.usage);
    expect(r.stderr).toMatch(/WaitTimedOutError/);
    const resumed = await keel(['resume', '--db', db, '--topologies', TOPOLOGIES], late);
    expect(resumed.stdout).toContain('wf-wait  approve  timed_out → failed');
    const failed = events('wf-wait').find(
      (e): e is KeelEvent<'workflow.failed'> => e.type === 'workflow.failed',
    );
    expect(failed?.payload.category).toBe('timeout');
  });
});

describe('keel resume', () => {
  it('continues the interrupted workflow (b once, a replayed), exit 0; a second run finds nothing', async () => {
    const r = await keel(['resume', '--db', db, '--topologies', TOPOLOGIES]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toBe('wf-crash  job  orphaned → completed\n1 resumed, 0 refused\n');
    expect(calls.keelDurableCliCalls).toEqual({ b: 1 });
    const again = await keel(['resume', '--db', db, '--topologies', TOPOLOGIES, '--json']);
    expect(JSON.parse(again.stdout)).toEqual({ resumed: [], refused: [] });
    const listed = await keel(['workflows', '--db', db, '--status', 'completed']);
    expect(listed.stdout).toContain('2 workflow(s)');
  });

  it('a changed topology is refused (exit 1, TopologyChangedError naming the fix); --mark-failed closes it', async () => {
    const r = await keel(['resume', '--db', db, '--topologies', CHANGED]);
    expect(r.code).toBe(EXIT.failed);
    expect(r.stderr).toMatch(
      /^wf-crash {2}job {2}not resumed: workflow "wf-crash" \("job"\) started with topology [0-9a-f]{12}, but "job" is registered as [0-9a-f]{12} now/m,
    );
    expect(r.stderr).toContain('keel resume --mark-failed wf-crash');
    expect(r.stdout).toContain('0 resumed, 1 refused');
    expect(calls.keelDurableCliCalls).toEqual({});

    const marked = await keel(['resume', '--db', db, '--topologies', CHANGED, '--mark-failed', 'wf-crash']);
    expect(marked.code).toBe(EXIT.ok);
    expect(marked.stdout).toBe('wf-crash: marked failed\n');
    const failed = await keel(['workflows', '--db', db, '--status', 'failed']);
    expect(failed.stdout).toMatch(/^wf-crash {2}job {2}failed/m);
  });

  it('a topologies module that does not exist is exit 3 naming it', async () => {
    const r = await keel(['resume', '--db', db, '--topologies', `${TOPOLOGIES}.missing`]);
    expect(r.code).toBe(EXIT.error);
    expect(r.stderr).toContain(`${TOPOLOGIES}.missing does not exist`);
  });
});

describe('keel report counts resumed and waiting workflows, in the terminal and in HTML alike', () => {
  it('after a resume (job) and with one workflow still waiting (approve)', async () => {
    expect((await keel(['resume', '--db', db, '--topologies', TOPOLOGIES])).code).toBe(EXIT.ok);
    const html = tempDb('report.html');
    const r = await keel(['report', '--db', db, '--html', html]);
    expect(r.code).toBe(EXIT.ok);
    // Terminal: name, started, completed, failed, cancelled, interrupted, running, waiting, resumed.
    const terminal = (name: string): string[] =>
      (r.stdout.split('\n').find((l) => new RegExp(`^\\s*${name}\\s+\\d`).test(l)) ?? '')
        .trim()
        .split(/\s+/)
        .slice(1);
    expect(terminal('job')).toEqual(['2', '2', '0', '0', '0', '0', '0', '1']);
    expect(terminal('approve')).toEqual(['1', '0', '0', '0', '0', '1', '1', '0']);
    const page = readFileSync(html, 'utf8');
    const section = /<section id="workflows">.*?<\/section>/s.exec(page)?.[0] ?? '';
    const row = (name: string): string[] =>
      [
        ...(new RegExp(`<tr><td>${name}</td>(.*?)</tr>`).exec(section)?.[1] ?? '').matchAll(
          /<td[^>]*>([^<]*)<\/td>/g,
        ),
      ].map((m) => m[1] ?? '');
    expect(row('job')).toEqual(terminal('job'));
    expect(row('approve')).toEqual(terminal('approve'));
    expect(page).toMatch(/2 completed · 0 failed · 1 waiting · 1 resumed/);
  });
});
