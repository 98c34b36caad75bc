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
 * alone. What the victim held when it died is read from the log and the claims table, not guessed
 * from its calls: a workflow it claimed may not have reached its agent call yet (an earlier version
 * waited for the survivors to finish "all but the victim's hung calls' workflows" and hung when it
 * had claimed one whose call was still to come). Every wait names what it waited for and, on
 * failure, prints the log's open workflows, the claims, the leases and each child's last lines.
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
/**
 * Every wait on a child's report gives up after this long: the steps after the start take 0.1-6 s
 * each at load 18 (two copies of this test at once on 2 cores).
 */
const DEADLINE_MS = 60_000;
/**
 * Three children compiling and opening the runtime at once take 30-36 s at load 18 (a few seconds
 * on a quiet machine); a child that dies on the way fails the wait at once.
 */
const READY_DEADLINE_MS = 150_000;

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

/**
 * Resolves once `check` holds (checked now and after every child's line); fails naming `what`,
 * followed by what `explain` says about the state it found.
 */
function until(
  what: string,
  check: () => boolean,
  explain?: () => Promise<string>,
  deadlineMs = DEADLINE_MS,
): Promise<void> {
  const waited = new Promise<void>((resolve, reject) => {
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
      reject(new Error(`timed out after ${deadlineMs} ms waiting for ${what}`));
    }, deadlineMs);
    waiters.add(poll);
    poll();
  });
  if (explain === undefined) return waited;
  return waited.catch(async (e: unknown) => {
    const state = await explain().catch((x: unknown) => `(no state: ${String(x)})`);
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${state}`);
  });
}

/**
 * Spawns a resumer. `mode`: a number — only that many calls answer, later ones hang; `gated` —
 * calls answer once the test sends `open`.
 */
function resumer(url: string, name: string, batch: number, leaseMs: number, mode: number | 'gated') {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', CHILD, url, name, String(batch), String(leaseMs), String(mode)],
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
    ready: until(
      `${name} to be ready`,
      () => (alive(), lines.includes('ready')),
      undefined,
      READY_DEADLINE_MS,
    ),
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
    /** The last lines it printed (and the commands it was sent), for a failure message. */
    tail: () => `${name}: ${[...lines.slice(-8), ...(partial ? [partial] : [])].join(' | ')}`,
  };
}

describePostgres('3 resumer processes on one Postgres log', () => {
  it('start at once over 100 interrupted workflows: each is resumed exactly once; a SIGKILLed resumer hands its claims over after its lease', async () => {
    const url = await freshDatabase();
    // a done, b in flight, for job-0…job-99, an hour ago.
    await seedInterrupted(url, N, realClock.now() - 3_600_000);
    const store = openPostgresStore({ url });
    stores.push(store);

    // The victim claims 20 at a time; its first 10 calls answer, every later one hangs. The
    // survivors claim 5 at a time, at once with it, and answer only once it hung: so it surely
    // claims more than 10 (at most 10 of the 100 are the survivors'), whatever the load.
    const victim = resumer(url, 'victim', 20, VICTIM_LEASE_MS, 10);
    const left = resumer(url, 'left', 5, SURVIVOR_LEASE_MS, 'gated');
    const right = resumer(url, 'right', 5, SURVIVOR_LEASE_MS, 'gated');
    const survivors = [left, right];
    const everyone = [victim, left, right];
    await Promise.all(everyone.map((p) => p.ready));
    for (const p of everyone) p.send('go');
    const completions = (): Set<string> => new Set(everyone.flatMap((p) => p.completed));

    /** The state a failed wait explains itself by: open workflows, claims, leases, the children. */
    const explain = async (): Promise<string> => {
      const events = await store.query();
      const ended = new Set(events.filter((e) => e.type === 'workflow.completed').map((e) => e.workflowId));
      const open = new Map<string, string[]>();
      for (const e of events) {
        if (ended.has(e.workflowId) || e.workflowId.startsWith('_')) continue;
        const owner = e.type === 'workflow.resumed' ? `(${e.payload.owner})` : '';
        open.set(e.workflowId, [...(open.get(e.workflowId) ?? []), `${e.seq}:${e.type}${owner}`]);
      }
      return [
        `completed in the log: ${ended.size}, reported: ${completions().size} of ${N}`,
        `open: ${[...open].map(([id, evs]) => `${id} [${evs.join(' ')}]`).join('; ') || 'none'}`,
        `claims: ${JSON.stringify(await store.ownership().claims())}`,
        `leases: ${JSON.stringify(await store.ownership().leases())}`,
        `victim calls: ${victim.calls.map((c) => `${c.workflowId}#${c.attempt}:${c.answered ? 'answer' : 'hang'}`).join(' ')}`,
        ...everyone.map((p) => p.tail()),
      ].join('\n');
    };

    // Mid-way: the victim holds workflows with b in flight (the survivors may go on from there)
    // and completed the ones it answered.
    await until('the victim to hang', () => victim.calls.some((c) => !c.answered), explain);
    for (const p of survivors) p.send('open');
    await until(
      'the victim’s answered workflows to complete',
      () => {
        const done = new Set(victim.completed);
        return victim.calls.filter((c) => c.answered).every((c) => done.has(c.workflowId));
      },
      explain,
    );
    victim.child.kill('SIGKILL');
    expect(await victim.closed).toEqual({ code: null, signal: 'SIGKILL' });
    const victimCalls = [...victim.calls];
    const hung = victimCalls.filter((c) => !c.answered);

    // Its process is gone, but its lease is live: the survivors finish everything else and a pass
    // by each after the kill leaves its workflows alone.
    await until('the survivors’ first passes to end', () => survivors.every((p) => p.idle()), explain);
    for (const p of survivors) p.send('advance 0');
    await until('a pass by each survivor after the kill', () => survivors.every((p) => p.idle()), explain);

    // What the victim held is what is left open: every open workflow claimed by it — those whose
    // call hung, and any whose call it had not made yet — and nothing else.
    const resumedEvents = async (): Promise<KeelEvent<'workflow.resumed'>[]> =>
      (await store.query({ type: 'workflow.resumed' })) as KeelEvent<'workflow.resumed'>[];
    const victimOwner = (await resumedEvents()).find((e) => e.workflowId === hung[0]?.workflowId)?.payload
      .owner;
    expect(victimOwner).toBeDefined();
    const ended = new Set((await store.query({ type: 'workflow.completed' })).map((e) => e.workflowId));
    const openIds = Array.from({ length: N }, (_, i) => `job-${i}`).filter((id) => !ended.has(id));
    const claimedBy = new Map((await store.ownership().claims()).map((c) => [c.workflowId, c.owner]));
    const unheld = openIds.filter((id) => claimedBy.get(id) !== victimOwner);
    if (unheld.length > 0)
      throw new Error(`open workflows the victim does not hold: ${unheld.join(' ')}\n${await explain()}`);
    const held = new Set(openIds);
    expect(hung.filter((c) => !held.has(c.workflowId))).toEqual([]);
    expect(survivors.flatMap((p) => p.calls).filter((c) => held.has(c.workflowId))).toEqual([]);
    expect(completions()).toEqual(ended);

    // Past the victim's lease (on the survivors' clocks) its workflows pass on.
    for (const p of survivors) p.send(`advance ${SKIP_MS}`);
    await until('every workflow to complete', () => completions().size >= N, explain);
    await until('the survivors to stand idle again', () => survivors.every((p) => p.idle()), explain);
    for (const p of survivors) p.send('stop');
    const [l, r] = await Promise.all([left.closed, right.closed]);
    expect([l, r, left.stderr(), right.stderr()]).toEqual([
      { code: 0, signal: null },
      { code: 0, signal: null },
      '',
      '',
    ]);

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
    expect([...completions()].sort()).toEqual([...ends].sort());
    const victimDone = victimCalls.filter((c) => c.answered).map((c) => c.workflowId);
    const leftResumed = left.report().resumed;
    const rightResumed = right.report().resumed;
    expect(victimDone.length).toBeGreaterThan(0);
    expect(leftResumed.length).toBeGreaterThan(0);
    expect(rightResumed.length).toBeGreaterThan(0);
    expect([...victimDone, ...leftResumed, ...rightResumed].sort()).toEqual([...new Set(ends)].sort());

    // Every workflow the victim held went to a survivor only once the victim's lease had lapsed;
    // one whose call hung ran b again as the next attempt (2 at the first resume, 3 now).
    const lease = (await store.ownership().leases()).find((x) => x.owner === victimOwner);
    expect(lease).toBeDefined();
    const takeovers = (await resumedEvents()).filter(
      (e) => held.has(e.workflowId) && e.payload.owner !== victimOwner,
    );
    expect(takeovers.map((e) => e.workflowId).sort()).toEqual([...held].sort());
    for (const e of takeovers) expect(e.ts).toBeGreaterThanOrEqual(lease?.expiresAt ?? Infinity);
    for (const id of held) {
      expect(survivorCalls.filter((s) => s.workflowId === id)).toEqual([
        expect.objectContaining({ answered: true }),
      ]);
    }
    for (const c of hung) {
      expect(survivorCalls.find((s) => s.workflowId === c.workflowId)?.attempt).toBe(c.attempt + 1);
    }
    // No survivor holds a claim any more. The victim may still hold one on a workflow it completed
    // (killed before the release landed): harmless, as an ended workflow is never resumed.
    const leftover = await store.ownership().claims();
    expect(leftover.filter((c) => c.owner !== victimOwner)).toEqual([]);
    for (const c of leftover) expect(ends).toContain(c.workflowId);
    expect(leftover.filter((c) => held.has(c.workflowId))).toEqual([]);
    // The chain of every process's events verifies.
    expect(await store.verify()).toMatchObject({ ok: true });
  }, 420_000);
});
