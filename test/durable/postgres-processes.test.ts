/**
 * Issue 22's Postgres done-when, with real processes: 3 OS processes start at once over 100
 * interrupted workflows on one Postgres log — each workflow is resumed exactly once (counted by the
 * provider calls each process writes to its own side file) — and SIGKILLing one resumer mid-way
 * hands its claims over once its lease lapsed, not before.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { realClock } from '../../src/core/clock.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import { openPostgresStore, type PostgresEventStore } from '../../src/eventlog/postgres.js';
import { describePostgres, freshDatabase } from '../support/scaleout.js';
import { cleanupDirs, tempDb } from './helpers.js';
import { seedInterrupted } from './pg-helpers.js';

const CHILD = fileURLToPath(new URL('./pg-resume-child.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const N = 100;
const LEASE_MS = 2000;
/** Every wait on an observable condition gives up after this long. */
const DEADLINE_MS = 40_000;

const children: ChildProcessWithoutNullStreams[] = [];
const stores: PostgresEventStore[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const s of stores.splice(0)) await s.close();
  cleanupDirs();
});

interface Call {
  proc: string;
  agent: string;
  workflowId: string;
  attempt: number;
  answered: boolean;
}

const callsIn = (file: string): Call[] =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [proc = '', agent = '', workflowId = '', attempt = '', how = ''] = line.split(' ');
          return { proc, agent, workflowId, attempt: Number(attempt), answered: how === 'answer' };
        })
    : [];

/** Polls `check` every 50 ms until it holds; fails naming `what` after {@link DEADLINE_MS}. */
async function until(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  const giveUpAt = realClock.now() + DEADLINE_MS;
  while (!(await check())) {
    if (realClock.now() > giveUpAt) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function resumer(url: string, calls: string, name: string, batch: number, answerFirst?: number) {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      CHILD,
      url,
      calls,
      name,
      String(batch),
      String(LEASE_MS),
      String(N),
      ...(answerFirst === undefined ? [] : [String(answerFirst)]),
    ],
    { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  children.push(child);
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  const ready = Promise.race([
    until(`${name} to be ready`, () => out.startsWith('ready\n')),
    exited.then(({ code }) => {
      throw new Error(`${name} exited (${String(code)}) before ready: ${err}`);
    }),
  ]);
  return {
    child,
    ready,
    exited,
    report: () => JSON.parse(out.trim().split('\n').at(-1) ?? '') as { resumed: string[] },
    stderr: () => err,
  };
}

describePostgres('3 resumer processes on one Postgres log', () => {
  it('start at once over 100 interrupted workflows: each is resumed exactly once; a SIGKILLed resumer hands its claims over after its lease', async () => {
    const url = await freshDatabase();
    // a done, b in flight, for job-0…job-99, an hour ago.
    await seedInterrupted(url, N, realClock.now() - 3_600_000);
    const files = {
      victim: tempDb('victim.calls'),
      left: tempDb('left.calls'),
      right: tempDb('right.calls'),
    };

    // The victim claims 20 at a time; its first 10 calls answer, every later one hangs.
    const victim = resumer(url, files.victim, 'victim', 20, 10);
    const left = resumer(url, files.left, 'left', 5);
    const right = resumer(url, files.right, 'right', 5);
    await Promise.all([victim.ready, left.ready, right.ready]);
    for (const p of [victim, left, right]) p.child.stdin.end('go\n');

    const store = openPostgresStore({ url });
    stores.push(store);
    const completed = async (): Promise<Set<string>> =>
      new Set((await store.query({ type: 'workflow.completed' })).map((e) => e.workflowId));

    // Mid-way: the victim completed the workflows it answered and holds others with b in flight.
    await until('the victim to hang with its answered workflows completed', async () => {
      const calls = callsIn(files.victim);
      if (!calls.some((c) => !c.answered)) return false;
      const done = await completed();
      return calls.filter((c) => c.answered).every((c) => done.has(c.workflowId));
    });
    victim.child.kill('SIGKILL');
    expect(await victim.exited).toEqual({ code: null, signal: 'SIGKILL' });

    const [l, r] = await Promise.all([left.exited, right.exited]);
    expect([l, r, left.stderr(), right.stderr()]).toEqual([
      { code: 0, signal: null },
      { code: 0, signal: null },
      '',
      '',
    ]);

    const victimCalls = callsIn(files.victim);
    const survivorCalls = [...callsIn(files.left), ...callsIn(files.right)];
    const all = [...victimCalls, ...survivorCalls];
    // a's result was in the log: never called again. b answered exactly once per workflow.
    expect(all.filter((c) => c.agent !== 'b')).toEqual([]);
    const answered = all.filter((c) => c.answered).map((c) => c.workflowId);
    expect(answered).toHaveLength(N);
    expect(new Set(answered).size).toBe(N);
    expect(survivorCalls.every((c) => c.answered)).toBe(true);

    // Each workflow completed once; every process did part of the work.
    const ends = (await store.query({ type: 'workflow.completed' })).map((e) => e.workflowId);
    expect(ends).toHaveLength(N);
    expect(new Set(ends).size).toBe(N);
    const victimDone = victimCalls.filter((c) => c.answered).map((c) => c.workflowId);
    const leftResumed = left.report().resumed;
    const rightResumed = right.report().resumed;
    expect(victimDone.length).toBeGreaterThan(0);
    expect(leftResumed.length).toBeGreaterThan(0);
    expect(rightResumed.length).toBeGreaterThan(0);
    expect([...victimDone, ...leftResumed, ...rightResumed].sort()).toEqual([...new Set(ends)].sort());

    // The victim's in-flight workflows went to a survivor only once the victim's lease had lapsed,
    // as a re-run of b's attempt (2 at the first resume, 3 now).
    const resumedEvents = (await store.query({
      type: 'workflow.resumed',
    })) as KeelEvent<'workflow.resumed'>[];
    const hung = victimCalls.filter((c) => !c.answered);
    const victimOwner = resumedEvents.find((e) => e.workflowId === hung[0]?.workflowId)?.payload.owner;
    const lease = (await store.ownership().leases()).find((x) => x.owner === victimOwner);
    expect(lease).toBeDefined();
    const handedOver = resumedEvents.filter((e) => e.payload.previousOwner === victimOwner);
    expect(handedOver.map((e) => e.workflowId).sort()).toEqual(
      expect.arrayContaining(hung.map((c) => c.workflowId).sort()),
    );
    for (const e of handedOver) expect(e.ts).toBeGreaterThanOrEqual(lease?.expiresAt ?? Infinity);
    for (const c of hung) {
      expect(survivorCalls.filter((s) => s.workflowId === c.workflowId)).toEqual([
        expect.objectContaining({ attempt: c.attempt + 1, answered: true }),
      ]);
    }
    // Nobody holds a claim any more, and the chain of every process's events verifies.
    expect(await store.ownership().claims()).toEqual([]);
    expect(await store.verify()).toMatchObject({ ok: true });
  }, 60_000);
});
