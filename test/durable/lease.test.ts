/**
 * Lease expiry and the dead-pid shortcut, each on its own (SQLite, injected clock): an owner whose
 * pid looks alive here, or whose pid space is another machine's or container's, is taken over only
 * once its lease lapsed — at the lease's instant, not a millisecond before; an owner of this pid
 * space whose process exited is taken over at once, whatever its lease says.
 */
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { listWorkflows, newInstanceId } from '../../src/durable/engine.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import { openSqliteStore, type SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { seq } from '../../src/supervisor/sequential.js';
import { named, type AnyTopology } from '../../src/supervisor/topology.js';
import { PRICING, cleanupDirs, counting, crashedLog, settle } from './helpers.js';

const T0 = Date.UTC(2026, 5, 1);
const LEASE = 1000;
const linux = process.platform === 'linux';
/** `hostname/pidspace` of this process, as instance ids carry it. */
const HOST = newInstanceId().split(':')[0] ?? '';
/** A pid that ran on this machine and exited. */
const DEAD_PID = spawnSync(process.execPath, ['-e', '']).pid;

const runtimes: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close();
  cleanupDirs();
});

function open(db: string, clock: SimulatedClock): Runtime<SqliteEventStore> {
  const rt = createRuntime<SqliteEventStore>({
    db,
    clock,
    seed: 5,
    pricing: PRICING,
    cache: false,
    durable: { leaseMs: LEASE },
  });
  runtimes.push(rt);
  return rt;
}

function job(hangB: boolean) {
  const a = counting('a');
  const b = counting('b', undefined, { hang: hangB });
  return { a, b, topology: named('job', seq(a.agent, b.agent)) as unknown as AnyTopology };
}

/**
 * The log a process owned by `owner` leaves with `a` done and `b` in flight at T0, its lease
 * written as lapsing at `leaseUntil` (none when undefined).
 */
async function leftBy(owner: string, leaseUntil: number | undefined): Promise<string> {
  const first = job(true);
  const rt = open(':memory:', simulatedClock(T0));
  rt.run(first.topology, { n: 1 }, { workflowId: 'wf' }).catch(() => undefined);
  for (let i = 0; i < 20 && first.b.calls() === 0; i++) await settle();
  expect(first.b.calls()).toBe(1);
  const events = rt.store
    .query()
    .map((e) => (e.type === 'workflow.started' ? { ...e, payload: { ...e.payload, owner } } : e));
  const file = await crashedLog(events);
  if (leaseUntil !== undefined) {
    const store = openSqliteStore({ path: file });
    await store.ownership().heartbeat(owner, leaseUntil);
    await store.close();
  }
  return file;
}

/** A runtime on `file` at `startMs` that resumes `job`; its calls counted. */
function resumer(file: string, startMs: number) {
  const clock = simulatedClock(startMs);
  const rt = open(file, clock);
  const flow = job(false);
  rt.register('job', flow.topology);
  return { rt, clock, flow };
}

describe('lease expiry alone hands a workflow over when the owner may be alive', () => {
  const owners: [string, string][] = [
    ['a pid of this pid space that is running (our parent)', `${HOST}:${process.ppid}:0000beef`],
    [
      'another container or machine (pid space ffffffff), its pid unused here',
      `${hostname()}/ffffffff:${DEAD_PID}:0000beef`,
    ],
    ['a host that names no pid space', `${hostname()}:${DEAD_PID}:0000beef`],
  ];
  for (const [what, owner] of owners) {
    it(`${what}: not before the lease lapses, at once when it has`, async () => {
      const until = T0 + 10 * LEASE;
      const file = await leftBy(owner, until);
      const { rt, clock, flow } = resumer(file, until - 1);

      expect(await rt.resume()).toEqual({ resumed: [], refused: [] });
      expect(flow.b.calls()).toBe(0);
      expect((await listWorkflows(rt.store, clock.now())).map((w) => [w.status, w.owner])).toEqual([
        ['running', owner],
      ]);

      clock.set(until + 1);
      const report = await rt.resume();
      expect(report.resumed).toMatchObject([{ workflowId: 'wf', reason: 'orphaned', outcome: 'completed' }]);
      expect([flow.a.calls(), flow.b.calls()]).toEqual([0, 1]);
      const resumed = rt.store.query({ type: 'workflow.resumed' }) as KeelEvent<'workflow.resumed'>[];
      expect(resumed.map((e) => [e.ts, e.payload.previousOwner])).toEqual([[until + 1, owner]]);
    });
  }

  it('an owner that never wrote a lease: only after a whole lease of quiet since its last event', async () => {
    const owner = `${HOST}:${process.ppid}:0000cafe`;
    const file = await leftBy(owner, undefined);
    const reader = openSqliteStore({ path: file, readonly: true });
    const lastTs = reader.query().at(-1)?.ts ?? T0;
    await reader.close();
    const { rt, clock, flow } = resumer(file, lastTs + LEASE - 1);
    expect((await rt.resume()).resumed).toEqual([]);
    clock.set(lastTs + LEASE);
    expect((await rt.resume()).resumed).toMatchObject([{ workflowId: 'wf', outcome: 'completed' }]);
    expect(flow.b.calls()).toBe(1);
  });
});

describe('the dead-pid shortcut alone hands a workflow over before its lease', () => {
  it('an owner of this pid space whose process exited is taken over at once, its lease a day from lapsing', async () => {
    if (!linux) return; // elsewhere the pid space is unknown and only the lease can tell
    const owner = `${HOST}:${DEAD_PID}:0000dead`;
    const file = await leftBy(owner, T0 + 86_400_000);
    const { rt, clock, flow } = resumer(file, T0 + 1);

    expect((await listWorkflows(rt.store, clock.now())).map((w) => w.status)).toEqual(['interrupted']);
    const report = await rt.resume();
    expect(report.resumed).toMatchObject([{ workflowId: 'wf', reason: 'orphaned', outcome: 'completed' }]);
    expect([flow.a.calls(), flow.b.calls()]).toEqual([0, 1]);
  });
});
