/**
 * A fleet on one Postgres log: three runtimes resume 100 interrupted workflows at once, each exactly
 * once; a resumer that dies mid-way hands its claims over once its lease lapsed.
 */
import { afterEach, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import type { KeelEvent, NewEvent } from '../../src/eventlog/events.js';
import { openPostgresStore, type PostgresEventStore } from '../../src/eventlog/postgres.js';
import { createRuntime } from '../../src/runtime.js';
import { agent, type AgentOutput } from '../../src/supervisor/agent.js';
import { seq } from '../../src/supervisor/sequential.js';
import { named, type AnyTopology } from '../../src/supervisor/topology.js';
import { describePostgres, freshDatabase } from '../support/scaleout.js';
import { PRICING } from './helpers.js';

const T0 = Date.UTC(2026, 5, 1);
const LEASE = 30_000;
const N = 100;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/**
 * seq(a, b) whose agents count their calls by workflow id; `hang` keeps b in flight. `onCall` sees
 * the count of calls after each one.
 */
function flow(calls: Map<string, number>, hang = false, onCall?: (count: number) => void): AnyTopology {
  const mk = (name: string, hangs: boolean) =>
    agent({
      name,
      model: 'sim',
      run: (input: unknown, ctx) => {
        const key = `${name}:${ctx.workflowId}`;
        calls.set(key, (calls.get(key) ?? 0) + 1);
        onCall?.(calls.size);
        if (hangs) {
          return new Promise<AgentOutput<unknown>>((_, reject) =>
            ctx.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }),
          );
        }
        return Promise.resolve({ value: { [name]: input }, usage: { inputTokens: 10, outputTokens: 1 } });
      },
    });
  return named('job', seq(mk('a', false), mk('b', hang)));
}

function runtime(store: PostgresEventStore, startMs: number) {
  const clock = simulatedClock(startMs);
  const rt = createRuntime({
    store,
    clock,
    seed: 1,
    pricing: PRICING,
    cache: false,
    durable: { leaseMs: LEASE },
  });
  closers.push(() => rt.close());
  return { rt, clock };
}

describePostgres('Postgres fleet: resuming interrupted workflows', () => {
  it('3 runtimes over 100 interrupted workflows resume each exactly once; a dead resumer hands over after its lease', async () => {
    const url = await freshDatabase();
    // The crashed process: a done, b in flight, for 100 workflows (its log as left on the server).
    const crashedCalls = new Map<string, number>();
    const crashed = createRuntime({
      db: ':memory:',
      clock: simulatedClock(T0),
      seed: 1,
      pricing: PRICING,
      cache: false,
    });
    const topo0 = flow(crashedCalls, true);
    for (let i = 0; i < N; i++) {
      crashed.run(topo0 as never, { i }, { workflowId: `job-${i}` }).catch(() => undefined);
    }
    for (let k = 0; k < 50; k++) await new Promise<void>((r) => setImmediate(r));
    const left = (crashed.store as { query(): readonly KeelEvent[] }).query();
    const seed = openPostgresStore({ url });
    closers.push(() => seed.close());
    await seed.append(
      left.map((e) => ({ ts: e.ts, workflowId: e.workflowId, type: e.type, payload: e.payload }) as NewEvent),
    );
    expect(left.filter((e) => e.type === 'workflow.started')).toHaveLength(N);
    closers.push(() => crashed.close());

    const start = T0 + 2 * LEASE;
    // A resumer that dies: it claims a batch, its b calls hang, then it can write nothing more.
    const deadCalls = new Map<string, number>();
    const deadStore = openPostgresStore({ url });
    let dead = false;
    const deadView = new Proxy(deadStore, {
      get(target, p, receiver) {
        if (dead && (p === 'append' || p === 'appendOne')) return () => Promise.reject(new Error('killed'));
        const v: unknown = Reflect.get(target, p, receiver);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    closers.push(() => deadStore.close());
    const doomed = runtime(deadView, start);
    doomed.rt.on('error', () => undefined);
    // Its batch is claimed before any b runs: once b was called 10 times, the 10 claims are held.
    const tenInFlight = new Promise<void>((resolve) => {
      doomed.rt.register(
        'job',
        flow(deadCalls, true, (n) => n === 10 && resolve()),
      );
    });
    const doomedRun = doomed.rt.resume({ batch: 10 }).then(
      () => new Error('the doomed resumer finished'),
      (e: unknown) => e,
    );
    expect(await Promise.race([tenInFlight, doomedRun])).toBeUndefined();
    expect((await deadStore.ownership().claims()).length).toBe(10);
    dead = true;

    // Three live runtimes start at once.
    const calls = new Map<string, number>();
    const fleet = [0, 1, 2].map(() => {
      const store = openPostgresStore({ url });
      closers.push(() => store.close());
      const r = runtime(store, start + 1000);
      r.rt.register('job', flow(calls));
      return r;
    });
    const reports = await Promise.all(fleet.map((f) => f.rt.resume({ batch: 7 })));
    const first = reports.flatMap((r) => r.resumed.map((w) => w.workflowId));
    expect(new Set(first).size).toBe(first.length);
    expect(first).toHaveLength(N - 10); // the dead one's claims are still leased
    expect(reports.every((r) => r.resumed.length > 0)).toBe(true);

    // Its lease lapses: the next resume takes its 10 over.
    for (const f of fleet) f.clock.set(start + 1000 + LEASE + 1);
    const later = await fleet[0]?.rt.resume();
    expect(later?.resumed).toHaveLength(10);

    // Each workflow completed exactly once; a was never called again; b once per workflow by the fleet.
    const ends = (await fleet[0]!.rt.store.query({ type: 'workflow.completed' })).map((e) => e.workflowId);
    expect(ends).toHaveLength(N);
    expect(new Set(ends).size).toBe(N);
    expect([...calls.keys()].filter((k) => k.startsWith('a:'))).toEqual([]);
    expect([...calls.values()].every((n) => n === 1)).toBe(true);
    expect(calls.size).toBe(N);
    expect((await fleet[0]!.rt.store.verify()).ok).toBe(true);
  }, 120_000);
});
