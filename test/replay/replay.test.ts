import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import { ProviderError } from '../../src/providers/types.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent, type AgentContext } from '../../src/supervisor/agent.js';
import { cascade } from '../../src/supervisor/cascade.js';
import { withDeadline } from '../../src/supervisor/deadline.js';
import { par } from '../../src/supervisor/parallel.js';
import { seq } from '../../src/supervisor/sequential.js';
import { named } from '../../src/supervisor/topology.js';
import { vote } from '../../src/supervisor/vote.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import { openSqliteStore, type SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { editPayload } from '../eventlog/raw-rows.js';
import type { Divergence } from '../../src/replay/recorded.js';

const PRICING = { sim: { inputPer1K: 0.001, outputPer1K: 0.002 } };
let dir: string | undefined;
const runtimes: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const r of runtimes.splice(0)) await r.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function open(db: string): Runtime<SqliteEventStore> {
  const rt = createRuntime({ db, clock: simulatedClock(), seed: 3, pricing: PRICING });
  runtimes.push(rt);
  return rt;
}

/** A topology with a vote, a cascade and a retried call; counts model calls. */
function invoiceFlow(calls: { n: number }) {
  let flaky = 0;
  const usage = { inputTokens: 100, outputTokens: 20 };
  const a = (name: string, value: unknown, confidence?: number) =>
    agent({
      name,
      model: 'sim',
      run: () => {
        calls.n++;
        return Promise.resolve({ value, usage, ...(confidence !== undefined ? { confidence } : {}) });
      },
    });
  const retrying = agent({
    name: 'vendor',
    model: 'sim',
    retry: { attempts: 3, baseDelayMs: 50 },
    run: () => {
      calls.n++;
      return ++flaky % 2 === 1
        ? Promise.reject(new ProviderError('provider_error', '503', { usage }))
        : Promise.resolve({ value: 'ACME', usage });
    },
  });
  return named(
    'invoice',
    seq(
      par(retrying, a('amount', 1234.5)),
      vote([a('s1', 'ok'), a('s2', 'ok'), a('s3', 'fraud'), a('s4', 'ok'), a('s5', 'ok')]),
      cascade([a('cheap', 'route-A', 0.7), a('expensive', 'route-B', 0.95)]),
    ),
  );
}

async function runAndClose(db: string): Promise<{ workflowId: string }> {
  const rt = open(db);
  const clock = rt.clock as ReturnType<typeof simulatedClock>;
  const p = rt.run(invoiceFlow({ n: 0 }), { id: 'INV-1' });
  await clock.advanceAsync(1_000);
  const r = await p;
  await rt.close();
  runtimes.splice(runtimes.indexOf(rt), 1);
  return r;
}

/**
 * Runs `topology` once on a fresh runtime over `db`, advancing its simulated clock by `advanceMs`,
 * closes it, and returns the log's events (the run may fail: that is part of the record).
 */
async function record(
  db: string,
  topology: Parameters<Runtime['run']>[0],
  input: unknown,
  advanceMs: number,
): Promise<KeelEvent[]> {
  const live = open(db);
  const clock = live.clock as ReturnType<typeof simulatedClock>;
  const p = live.run(topology, input).catch((e: unknown) => e);
  await clock.advanceAsync(advanceMs);
  await p;
  const events = live.store.query({});
  await live.close();
  runtimes.splice(runtimes.indexOf(live), 1);
  return events;
}

/** Replays `workflowId` from `db` with the topology `flow` builds; expects no model call. */
async function replayed(
  db: string,
  workflowId: string,
  name: string,
  flow: (calls: { n: number }) => Parameters<Runtime['run']>[0],
): Promise<Divergence[] | undefined> {
  const rt = open(db);
  const calls = { n: 0 };
  const [report] = await rt.replay(workflowId, { topologies: { [name]: flow(calls) } });
  expect(calls.n).toBe(0);
  return report?.divergences;
}

describe('rt.replay', () => {
  it('re-runs a recorded workflow with zero model calls and finds no divergence', async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-replay-'));
    const db = join(dir, 'k.db');
    const { workflowId } = await runAndClose(db);
    const rt = open(db);
    const calls = { n: 0 };
    const [report] = await rt.replay(workflowId, { topologies: { invoice: invoiceFlow(calls) } });
    expect(calls.n).toBe(0);
    expect(report?.divergences).toEqual([]);
    expect(report?.ok).toBe(true);
  });

  it('replays a retried call and a failing sibling in the order they happened live', async () => {
    // Live: `date` fails at +10 ms, retries after its backoff and succeeds at about +90 ms; its
    // sibling `amount` fails at +300 ms and fails the par. Replay must not let the sibling's
    // recorded failure overtake the retry (which would cancel `date` instead of letting it succeed).
    dir = mkdtempSync(join(tmpdir(), 'keel-replay-'));
    const db = join(dir, 'k.db');
    const flow = (calls: { n: number }) => {
      let dateCalls = 0;
      const after = <T>(
        ctx: { clock: { setTimeout(fn: () => void, ms: number): unknown } },
        ms: number,
        f: () => T,
      ) =>
        new Promise<T>((resolve, reject) =>
          ctx.clock.setTimeout(() => {
            try {
              resolve(f());
            } catch (e) {
              reject(e instanceof Error ? e : new Error(String(e)));
            }
          }, ms),
        );
      const date = agent({
        name: 'date',
        model: 'sim',
        retry: { attempts: 3, baseDelayMs: 50 },
        run: (_input: unknown, ctx) => {
          calls.n++;
          const n = ++dateCalls;
          return after(ctx, n === 1 ? 10 : 30, () => {
            if (n === 1) throw new ProviderError('provider_error', '503');
            return { value: '2026-11-27' };
          });
        },
      });
      const amount = agent({
        name: 'amount',
        model: 'sim',
        run: (_input: unknown, ctx) => {
          calls.n++;
          return after(ctx, 300, () => {
            throw new ProviderError('malformed_output', 'no amount');
          });
        },
      });
      return named('extract', par(date, amount));
    };
    const events = await record(db, flow({ n: 0 }), { id: 'INV-2' }, 1_000);
    const types = events.map((e) => `${e.type}:${'path' in e.payload ? String(e.payload.path) : ''}`);
    expect(types).toContain('agent.retried:extract/date');
    expect(types).toContain('agent.succeeded:extract/date');
    expect(types).toContain('agent.failed:extract/amount');
    expect(types.at(-1)).toBe('workflow.failed:');
    expect(await replayed(db, events[0]?.workflowId ?? '', 'extract', flow)).toEqual([]);
  });

  it('replays a call cancelled during its retry backoff without expecting another attempt', async () => {
    // Live: `vendor` is rate limited at +5 ms with retry-after 1 s; its sibling fails at +50 ms,
    // during the backoff, so no second attempt is made. Replay must make none either.
    dir = mkdtempSync(join(tmpdir(), 'keel-replay-'));
    const db = join(dir, 'k.db');
    const flow = (calls: { n: number }) => {
      const failAfter = (ms: number, error: () => Error) => (_input: unknown, ctx: AgentContext) => {
        calls.n++;
        return new Promise<never>((_, reject) => ctx.clock.setTimeout(() => reject(error()), ms));
      };
      const vendor = agent({
        name: 'vendor',
        model: 'sim',
        retry: { attempts: 3, baseDelayMs: 10 },
        run: failAfter(5, () => new ProviderError('rate_limited', '429', { retryAfterMs: 1_000 })),
      });
      const date = agent({
        name: 'date',
        model: 'sim',
        run: failAfter(50, () => new ProviderError('malformed_output', 'no date')),
      });
      return named('extract', par(vendor, date));
    };
    const events = await record(db, flow({ n: 0 }), { id: 'INV-3' }, 5_000);
    const vendorEnd = events.find((e) => e.type === 'agent.failed' && e.payload.path === 'extract/vendor');
    expect(vendorEnd?.payload).toMatchObject({ category: 'cancelled', attempts: 1 });
    expect(await replayed(db, vendorEnd?.workflowId ?? '', 'extract', flow)).toEqual([]);
  });

  it("replays a record whose times include the live run's own delays (a loaded event loop)", async () => {
    // On a busy event loop an answer is handled, and logged, later than it arrived: live, `date`
    // answered within its 50 ms timeout and both answers came before the 100 ms deadline, but the
    // log shows them at +60 and +120 ms. Replay must follow the record, not re-time the attempt
    // or the deadline against those logged times.
    dir = mkdtempSync(join(tmpdir(), 'keel-replay-'));
    const db = join(dir, 'k.db');
    const flow = (calls: { n: number }) => {
      const answerAfter = (ms: number, value: string) => (_input: unknown, ctx: AgentContext) => {
        calls.n++;
        return new Promise<{ value: string }>((resolve) =>
          ctx.clock.setTimeout(() => resolve({ value }), ms),
        );
      };
      const date = agent({ name: 'date', model: 'sim', timeoutMs: 50, run: answerAfter(10, '2026-11-27') });
      const amount = agent({ name: 'amount', model: 'sim', run: answerAfter(20, '12.50') });
      return named('extract', withDeadline(100, par(date, amount)));
    };
    const [started] = await record(db, flow({ n: 0 }), { id: 'INV-4' }, 1_000);
    // Stretch every logged time after the start sixfold, as a loaded process would have logged them.
    const raw = new Database(db);
    raw.exec('DROP TRIGGER events_no_update');
    const start = raw
      .prepare("SELECT ts FROM events_readable WHERE type = 'workflow.started'")
      .pluck()
      .get() as number;
    raw.prepare('UPDATE events SET ts = ? + (ts - ?) * 6').run(start, start);
    const logged = raw
      .prepare("SELECT ts - ? FROM events_readable WHERE type = 'agent.succeeded' ORDER BY seq")
      .pluck()
      .all(start) as number[];
    raw.close();
    expect(logged).toEqual([60, 120]);
    expect(await replayed(db, started?.workflowId ?? '', 'extract', flow)).toEqual([]);
  });

  it('reports a tampered output as a divergence with both values', async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-replay-'));
    const db = join(dir, 'k.db');
    const { workflowId } = await runAndClose(db);
    const raw = new Database(db);
    raw.exec('DROP TRIGGER events_no_update');
    // the cheap cascade stage now claims high confidence: replay must accept it instead of escalating
    const reader = openSqliteStore({ path: db, readonly: true });
    const cheap = reader
      .query({ workflowId, type: 'agent.succeeded' })
      .find((e) => (e.payload as { agent?: string }).agent === 'cheap');
    await reader.close();
    expect(cheap?.payload).toMatchObject({ confidence: 0.7 });
    editPayload(raw, cheap?.seq ?? 0, (p) => ({ ...p, confidence: 0.99 }));
    raw.close();
    const rt = open(db);
    const [report] = await rt.replay(workflowId, { topologies: { invoice: invoiceFlow({ n: 0 }) } });
    expect(report?.ok).toBe(false);
    const d = report?.divergences.find((x) => x.kind === 'decision');
    expect(d?.path).toContain('cascade');
    expect(d?.recorded).toBeDefined();
    expect(d?.replayed).toBeDefined();
    expect(rt.store.verify().ok).toBe(false);
  });

  it('reports a changed topology', async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-replay-'));
    const db = join(dir, 'k.db');
    const { workflowId } = await runAndClose(db);
    const rt = open(db);
    const other = named(
      'invoice',
      seq(agent({ name: 'x', model: 'sim', run: () => Promise.resolve({ value: 1 }) })),
    );
    const [report] = await rt.replay(workflowId, { topologies: { invoice: other } });
    expect(report?.divergences.map((d) => d.kind)).toContain('topology_changed');
  });

  it('explains what to do when no topology is registered', async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-replay-'));
    const db = join(dir, 'k.db');
    const { workflowId } = await runAndClose(db);
    const rt = open(db);
    const [report] = await rt.replay(workflowId);
    expect(report?.divergences[0]?.kind).toBe('not_replayable');
    expect(report?.divergences[0]?.message).toMatch(/rt\.register\('invoice'/);
  });
});
