/**
 * `keel demo invoice --approve-above N`: large invoices wait for a person; the demo prints the exact
 * `keel signal` command, which — run as a second CLI call, i.e. after a restart — completes the
 * workflow; unanswered past the timeout, `keel resume` fails it with category `timeout`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoRegistry } from '../../demos/index.js';
import { APPROVAL_TIMEOUT_MS } from '../../demos/invoice-approval.js';
import { EXIT } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/main.js';
import { simulatedClock } from '../../src/core/clock.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { captureIo } from '../cli/io.js';

const T = Date.UTC(2026, 6, 1, 9);
const HOUR = 3_600_000;
let dir = '';
let db = '';
let demoOut = '';

/** `keel <args>` at virtual time `at`: its exit code and output. */
async function keel(args: string[], at: number): Promise<{ code: number; stdout: string; stderr: string }> {
  const c = captureIo();
  const code = await runCli(args, c.io, { demos: demoRegistry, clock: simulatedClock(at) });
  return { code, stdout: c.stdout(), stderr: c.stderr() };
}

/** The `keel signal` commands the demo printed, as argv. */
function printedSignals(): string[][] {
  return [...demoOut.matchAll(/^ {4}keel signal --db (\S+) (\S+) approval '(\{"approved":true\})'$/gm)].map(
    (m) => ['signal', '--db', m[1] ?? '', m[2] ?? '', 'approval', m[3] ?? ''],
  );
}

function events(workflowId: string): KeelEvent[] {
  const store = openSqliteStore({ path: db, readonly: true });
  try {
    return store.query({ workflowId });
  } finally {
    void store.close();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keel-approval-'));
  db = join(dir, 'approval.db');
  const r = await keel(
    ['demo', 'invoice', '--approve-above', '1500', '--count', '24', '--db', db, '--quiet'],
    T,
  );
  expect(r.stderr).toBe('');
  expect(r.code).toBe(EXIT.ok);
  demoOut = r.stdout;
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('keel demo invoice --approve-above', () => {
  it('leaves the invoices above the amount waiting and prints the exact command that approves each', async () => {
    expect(demoOut).toMatch(/invoices above 1,500 wait for a person \(72 h to answer\)/);
    const [, auto, waiting] =
      /24 invoices: (\d+) approved automatically, (\d+) waiting for approval, 0 failed/.exec(demoOut) ?? [];
    expect(Number(auto) + Number(waiting)).toBe(24);
    expect(Number(waiting)).toBeGreaterThanOrEqual(3);
    const signals = printedSignals();
    expect(signals).toHaveLength(Number(waiting));
    for (const argv of signals) {
      expect(argv[2]).toBe(db);
      const log = events(argv[3] ?? '');
      const wait = log.find((e): e is KeelEvent<'workflow.waiting'> => e.type === 'workflow.waiting');
      expect(wait?.payload).toMatchObject({ name: 'approval', timeoutAt: expect.any(Number) as number });
      expect(wait?.payload.timeoutAt).toBeGreaterThanOrEqual(T + APPROVAL_TIMEOUT_MS);
      expect(log.some((e) => e.type === 'workflow.completed' || e.type === 'workflow.failed')).toBe(false);
      // Its amount is above the threshold, and it says so next to its id.
      const line = demoOut.split('\n').find((l) => l.trimStart().startsWith(`${argv[3]}  `)) ?? '';
      expect(Number(/ ([\d,]+\.\d\d) /.exec(line)?.[1]?.replaceAll(',', ''))).toBeGreaterThan(1500);
    }
    const listed = await keel(['workflows', '--db', db, '--status', 'waiting'], T + HOUR);
    expect(listed.code).toBe(EXIT.ok);
    expect(listed.stdout).toContain(`${Number(waiting)} workflow(s): ${Number(waiting)} waiting`);
  });

  it('the printed keel signal, in a new CLI call an hour later, completes the workflow with the approval', async () => {
    const [argv] = printedSignals();
    const id = argv?.[3] ?? '';
    const r = await keel(argv ?? [], T + HOUR);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(EXIT.ok);
    expect(r.stdout).toContain(`${id}: signal "approval" recorded at seq`);
    expect(r.stdout).toMatch(
      new RegExp(`${id}: completed: .*"tier":"\\w+".*"approval":\\{"approved":true\\}`),
    );
    const log = events(id);
    expect(log.filter((e) => e.type === 'workflow.signalled')).toHaveLength(1);
    expect(log.filter((e) => e.type === 'workflow.completed')).toHaveLength(1);
    // The pipeline's agents were not called again: one success each, all before the wait.
    const waitSeq = log.find((e) => e.type === 'workflow.waiting')?.seq ?? 0;
    expect(log.filter((e) => e.type === 'agent.invoked' && e.seq > waitSeq)).toEqual([]);

    // Signalled again: the workflow is finished — a named error, exit 2.
    const again = await keel(argv ?? [], T + 2 * HOUR);
    expect(again.code).toBe(EXIT.usage);
    expect(again.stderr).toMatch(
      /WorkflowFinishedError: workflow "[^"]+" already ended \(workflow\.completed\)/,
    );
  });

  it('unanswered past the 72 h timeout: a late signal is refused, and keel resume fails the workflow with category timeout', async () => {
    const [, late, ...rest] = printedSignals();
    const lateId = late?.[3] ?? '';
    const after = T + APPROVAL_TIMEOUT_MS + HOUR;
    const refused = await keel(late ?? [], after);
    expect(refused.code).toBe(EXIT.usage);
    expect(refused.stderr).toMatch(/WaitTimedOutError/);
    expect(events(lateId).some((e) => e.type === 'workflow.signalled')).toBe(false);

    const resumed = await keel(['resume', '--db', db], after);
    expect(resumed.code).toBe(EXIT.ok);
    expect(resumed.stdout).toContain(`${lateId}  invoice_approval  timed_out → failed`);
    expect(resumed.stdout).toContain(`${rest.length + 1} resumed, 0 refused`);
    const failed = events(lateId).find(
      (e): e is KeelEvent<'workflow.failed'> => e.type === 'workflow.failed',
    );
    expect(failed?.payload.category).toBe('timeout');
    const none = await keel(['workflows', '--db', db, '--status', 'waiting'], after);
    expect(none.stdout).toContain('0 workflow(s): 0 waiting');
  });
});
