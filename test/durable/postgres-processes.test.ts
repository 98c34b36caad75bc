/**
 * Issue 22's Postgres done-when, with real processes: 3 OS processes start at once over 100
 * interrupted workflows on one Postgres log — each workflow is resumed exactly once (counted by the
 * provider calls each process reports) — and SIGKILLing one resumer mid-way hands its claims over
 * once its lease lapsed, not before.
 *
 * Nothing here depends on how fast the machine is: the children report each call and completion as
 * a stdout line and the test waits on those lines (not on a timer); every lease lasts minutes, so
 * no stall can expire one; and the victim's lease lapses only when the test moves the survivors'
 * clocks past it, after the victim was killed and the survivors were seen leaving its workflows
 * alone.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { realClock } from '../../src/core/clock.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import { openPostgresStore, type PostgresEventStore } from '../../src/eventlog/postgres.js';
import { describePostgres, freshDatabase } from '../support/scaleout.js';
import { seedInterrupted } from './pg-helpers.js';

const CHILD = fileURLToPath(new URL('./pg-resume-child.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const N = 100;
/** The victim's lease: renewed every 40 s, so only a stall over 80 s could expire it before the kill. */
const VICTIM_LEASE_MS = 120_000;
/** The survivors' leases: renewed every 200 s, so at least 400 s left at any moment. */
const SURVIVOR_LEASE_MS = 600_000;
/**
 * How far the test moves the survivors' clocks once the victim is dead: past anything left of the
 * victim's lease (at most 120 s), short of anything left of a survivor's (at least 400 s) — so one
 * survivor moved on while the other is not yet still sees the other's lease live.
 */
const SKIP_MS = 180_000;
/** Every wait on a child's report gives up after this long (the whole test after 120 s). */
const DEADLINE_MS = 45_000;

const children: ChildProcessWithoutNullStreams[] = [];
const stores: PostgresEventStore[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const s of stores.splice(0)) await s.close();
});

interface Call {
  proc: string;
  agent: string;
  workflowId: string;
  attempt: number;
  answered: boolean;
}

/** Re-checks waiting conditions whenever any child reports a line. */
const waiters = new Set<() => void>();
const reported = (): void => waiters.forEach((w) => w());

/** Resolves once `check` holds (checked now and after every child's line); fails naming `what`. */
function until(what: string, check: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      waiters.delete(poll);
      clearTimeout(timer);
    };
    const poll = (): void => {
      try {
        if (!check()) return;
        done();
        resolve();
      } catch (e) {
        done();
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${DEADLINE_MS} ms waiting for ${what}`));
    }, DEADLINE_MS);
    waiters.add(poll);
    poll();
  });
}

function resumer(url: string, name: string, batch: number, leaseMs: number, answerFirst?: number) {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      CHILD,
      url,
      name,
      String(batch),
      String(leaseMs),
      ...(answerFirst === undefined ? [] : [String(answerFirst)]),
    ],
    { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  children.push(child);
  const lines: string[] = [];
  const calls: Call[] = [];
  const completed: string[] = [];
  let partial = '';
  let err = '';
  let exitedEarly: string | undefined;
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      const [kind = '', a = '', b = '', c = '', d2 = ''] = line.split(' ');
      if (kind === 'call')
        calls.push({ proc: name, agent: a, workflowId: b, attempt: Number(c), answered: d2 === 'answer' });
      if (kind === 'completed') completed.push(a);
    }
    reported();
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const closed = once(child, 'close').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  void closed.then(({ code, signal }) => {
    exitedEarly = `${name} exited (${String(code ?? signal)}): ${err}`;
    reported();
  });
  const alive = (): void => {
    if (exitedEarly !== undefined) throw new Error(exitedEarly);
  };
  return {
    name,
    child,
    calls,
    completed,
    closed,
    ready: until(`${name} to be ready`, () => (alive(), lines.includes('ready'))),
    /** True while the child waits for a command after a resume pass (it moves only on stdin). */
    idle: () => (alive(), lines.at(-1) === 'idle'),
    /** Sends a command; the child answers with `idle` after its next pass. */
    send: (command: string) => {
      lines.push(`> ${command}`);
      child.stdin.write(`${command}\n`);
    },
    report: () => {
      const last = lines.findLast((l) => l.startsWith('done ')) ?? 'done {}';
      return JSON.parse(last.slice('done '.length)) as { resumed: string[] };
    },
    stderr: () => err,
  };
}

describePostgres('3 resumer processes on one Postgres log', () => {
  it('start at once over 100 interrupted workflows: each is resumed exactly once; a SIGKILLed resumer hands its claims over after its lease', async () => {
    const url = await freshDatabase();
    // a done, b in flight, for job-0…job-99, an hour ago.
    await seedInterrupted(url, N, realClock.now() - 3_600_000);

    // The victim claims 20 at a time; its first 10 calls answer, every later one hangs.
    const victim = resumer(url, 'victim', 20, VICTIM_LEASE_MS, 10);
    const left = resumer(url, 'left', 5, SURVIVOR_LEASE_MS);
    const right = resumer(url, 'right', 5, SURVIVOR_LEASE_MS);
    const survivors = [left, right];
    await Promise.all([victim.ready, left.ready, right.ready]);
    for (const p of [victim, left, right]) p.send('go');
    const completions = (): string[] => [victim, left, right].flatMap((p) => p.completed);

    // Mid-way: the victim completed the workflows it answered and holds others with b in flight.
    await until('the victim to hang with its answered workflows completed', () => {
      const done = new Set(victim.completed);
      return (
        victim.calls.some((c) => !c.answered) &&
        victim.calls.filter((c) => c.answered).every((c) => done.has(c.workflowId))
      );
    });
    victim.child.kill('SIGKILL');
    expect(await victim.closed).toEqual({ code: null, signal: 'SIGKILL' });
    const victimCalls = [...victim.calls];
    const hung = victimCalls.filter((c) => !c.answered);

    // The survivors finish everything but the victim's hung workflows, then stand idle: its process
    // is gone, but its lease is live, so after the kill a pass by each still leaves them alone.
    await until('the survivors to finish all but the victim’s hung workflows', () => {
      const idle = survivors.every((p) => p.idle());
      return idle && new Set(completions()).size === N - hung.length;
    });
    for (const p of survivors) p.send('advance 0');
    await until('a pass by each survivor after the kill', () => survivors.every((p) => p.idle()));
    const hungIds = new Set(hung.map((c) => c.workflowId));
    expect(survivors.flatMap((p) => p.calls).filter((c) => hungIds.has(c.workflowId))).toEqual([]);
    expect(new Set(completions()).size).toBe(N - hung.length);

    // Past the victim's lease (on the survivors' clocks) its workflows pass on.
    for (const p of survivors) p.send(`advance ${SKIP_MS}`);
    await until('every workflow to complete', () => new Set(completions()).size >= N);
    await until('the survivors to stand idle again', () => survivors.every((p) => p.idle()));
    for (const p of survivors) p.send('stop');
    const [l, r] = await Promise.all([left.closed, right.closed]);
    expect([l, r, left.stderr(), right.stderr()]).toEqual([
      { code: 0, signal: null },
      { code: 0, signal: null },
      '',
      '',
    ]);

    const store = openPostgresStore({ url });
    stores.push(store);
    const survivorCalls = survivors.flatMap((p) => p.calls);
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
    expect(completions().sort()).toEqual([...ends].sort());
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
    // No survivor holds a claim any more. The victim may still hold one on a workflow a survivor
    // finished between the victim's scan and its claim (its pass re-reads, finds it ended, and is
    // killed before the release lands): harmless, as an ended workflow is never resumed.
    const leftover = await store.ownership().claims();
    expect(leftover.filter((c) => c.owner !== victimOwner)).toEqual([]);
    for (const c of leftover) expect(ends).toContain(c.workflowId);
    expect(leftover.filter((c) => hungIds.has(c.workflowId))).toEqual([]);
    // The chain of every process's events verifies.
    expect(await store.verify()).toMatchObject({ ok: true });
  }, 120_000);
});
