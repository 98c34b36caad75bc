import { afterEach, describe, expect, it } from 'vitest';
import type { KeelEvent } from '../../src/eventlog/events.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import {
  createCacheWhatIf,
  createCascadeWhatIf,
  createVoteWhatIf,
  whatIfCache,
  whatIfCascade,
  whatIfVote,
} from '../../src/replay/whatif.js';
import { foldEvents, type EventFold } from '../../src/eventlog/fold.js';
import {
  invoices,
  recordCascade,
  recordLookups,
  recordVote,
  tempDir,
  transactions,
  VENDOR_SEQUENCE,
} from '../cli/logs.js';
import { asAsync, asyncFleetLog, reachableAfterGc, screenConfidence } from '../report/fleet-log.js';

let tmp: ReturnType<typeof tempDir> | undefined;
afterEach(() => {
  tmp?.cleanup();
  tmp = undefined;
});
function dir(): ReturnType<typeof tempDir> {
  tmp = tempDir();
  return tmp;
}

async function eventsOf(db: string): Promise<KeelEvent[]> {
  const store = openSqliteStore({ path: db, readonly: true });
  try {
    return store.query();
  } finally {
    await store.close();
  }
}

/** A fold that holds at most its running workflows. */
interface Bounded<R> extends EventFold<R> {
  readonly openWorkflows: number;
}

/**
 * Streams the synthetic fleet log (20,000 workflows, 16 at a time) into `fold` and measures what
 * it held: how far the stream ran ahead of the fold, the most running workflows it held, and how
 * many of one event in a thousand it still reaches once done.
 */
async function streamFleet<R>(
  fold: Bounded<R>,
): Promise<{ result: R; applied: number; ahead: number; maxOpen: number; reachable: number }> {
  let applied = 0;
  let ahead = 0;
  let maxOpen = 0;
  const sampled: WeakRef<KeelEvent>[] = [];
  const probe: EventFold<R> = {
    apply(e) {
      applied++;
      if (e.seq % 1_000 === 0) sampled.push(new WeakRef(e));
      fold.apply(e);
    },
    result: () => fold.result(),
  };
  const result = await foldEvents(
    probe,
    asyncFleetLog(20_000, 16, (yielded) => {
      ahead = Math.max(ahead, yielded - applied);
      maxOpen = Math.max(maxOpen, fold.openWorkflows);
    }),
  );
  expect(sampled.length).toBe(Math.floor(applied / 1_000));
  return { result, applied, ahead, maxOpen, reachable: await reachableAfterGc(sampled) };
}

describe('what-if folds over an asynchronous stream (a Postgres log)', () => {
  it('give the very tables whatIfCascade, whatIfVote and whatIfCache give over the same log', async () => {
    const t = dir();
    await recordCascade(t.path('cascade.db'), 0.95, invoices(30));
    await recordVote(t.path('vote.db'), 'decided', transactions(20));
    await recordLookups(t.path('cache.db'), 3_600_000);

    const cascadeLog = await eventsOf(t.path('cascade.db'));
    const cascadeOptions = { thresholds: [0.99, 0.9, 0.8], volumePerWeek: 20_000 };
    const cascade = whatIfCascade(cascadeLog, cascadeOptions);
    expect(await foldEvents(createCascadeWhatIf(cascadeOptions), asAsync(cascadeLog))).toEqual(cascade);
    expect(cascade.sites[0]?.runs).toBe(30);
    expect(cascade.sites[0]?.rows[0]?.unknown).toBeGreaterThan(0);
    expect(cascade.sites[0]?.rows[2]?.accuracy.labeled).toBe(30);

    const voteLog = await eventsOf(t.path('vote.db'));
    const voteOptions = { stops: ['decided', 'all', 2] as const, volumePerWeek: 10_000 };
    const vote = whatIfVote(voteLog, voteOptions);
    expect(await foldEvents(createVoteWhatIf(voteOptions), asAsync(voteLog))).toEqual(vote);
    expect(vote.sites[0]?.runs).toBe(20);
    expect(vote.sites[0]?.rows[1]?.unknown).toBeGreaterThan(0); // 'all' needs votes the record never cast
    expect(vote.sites[0]?.rows[2]?.accuracy.labeled).toBe(20);

    const cacheLog = await eventsOf(t.path('cache.db'));
    const cacheOptions = { ttlsMs: [600_000, 3_600_000, 10_800_000], volumePerWeek: 10_000 };
    const cache = whatIfCache(cacheLog, cacheOptions);
    expect(await foldEvents(createCacheWhatIf(cacheOptions), asAsync(cacheLog))).toEqual(cache);
    expect(cache.recorded.lookups).toBe(VENDOR_SEQUENCE.length);
    expect(cache.rows[0]?.estimatedLookups).toBeGreaterThan(0);
  });

  it('judge each run by its latest ground truth, however long after the run it was recorded', async () => {
    const t = dir();
    const inputs = invoices(30);
    const results = await recordCascade(t.path('cascade.db'), 0.95, inputs, 'verdict');
    const log = await eventsOf(t.path('cascade.db'));
    const feedback = log.filter((e) => e.type === 'feedback.recorded');
    expect(feedback).toHaveLength(30);
    // Ground truth arrives after every workflow ended; the first run's is then corrected.
    const first = results[0]!;
    const flipped = first.value !== inputs[0]!.truth;
    const late: KeelEvent[] = [
      ...log.filter((e) => e.type !== 'feedback.recorded'),
      ...feedback,
      { ...feedback[0]!, seq: log.length + 1, payload: { correct: flipped } },
    ];
    const correct = results.filter((r, i) => r.value === inputs[i]!.truth).length + (flipped ? 1 : -1);
    const options = { thresholds: [0.95] };
    for (const r of [
      whatIfCascade(late, options),
      await foldEvents(createCascadeWhatIf(options), asAsync(late)),
    ]) {
      const site = r.sites[0]!;
      expect(site.recorded.accuracy).toEqual({ ratio: correct / 30, labeled: 30, correct, unknown: 0 });
      expect(site.rows[0]?.accuracy).toEqual(site.recorded.accuracy);
    }
  });

  it('price a call the record never made from the key’s own call, even when that call comes later in the log', async () => {
    const t = dir();
    await recordLookups(t.path('cache.db'), 3_600_000);
    const log = await eventsOf(t.path('cache.db'));
    // Drop the first workflow (acme's first call): acme's next lookup reads an entry written
    // before the log begins, and acme's next call is 80 minutes later.
    const firstId = log[0]!.workflowId;
    const dropped = log.filter((e) => e.workflowId === firstId);
    const firstCallUsd = dropped.find((e) => e.type === 'agent.succeeded')?.payload as { costUsd: number };
    const truncated = log.filter((e) => e.workflowId !== firstId);
    // Under a 10-minute TTL every lookup is a call: priced from the key's recorded call, the
    // truncated log costs exactly the dropped call less (the runtime's own estimate would differ).
    const options = { ttlsMs: [600_000] };
    const full = whatIfCache(log, options).rows[0]!;
    const part = await foldEvents(createCacheWhatIf(options), asAsync(truncated));
    expect(part).toEqual(whatIfCache(truncated, options));
    const row = part.rows[0]!;
    expect(row.hits).toBe(0);
    expect(row.estimatedLookups).toBe(full.estimatedLookups);
    expect(row.costUsd).toBeCloseTo(full.costUsd - firstCallUsd.costUsd, 12);
    const acmeHit = truncated.find((e) => e.type === 'cache.hit')?.payload as { savedUsd: number };
    expect(acmeHit.savedUsd).not.toBeCloseTo(firstCallUsd.costUsd, 6);
  });

  describe('stream 180,000 events of 20,000 workflows in lockstep, holding only the running ones', () => {
    it('the cascade what-if', async () => {
      const s = await streamFleet(createCascadeWhatIf({ thresholds: [0.9, 0.8] }));
      expect(s.ahead).toBe(0);
      expect(s.maxOpen).toBeGreaterThan(1);
      expect(s.maxOpen).toBeLessThanOrEqual(16);
      expect(s.reachable).toBeLessThanOrEqual(1);
      const site = s.result.sites[0]!;
      expect(site.runs).toBe(10_000);
      const cheap = Array.from({ length: 5 }, (_, k) => screenConfidence(2 * k)).filter((c) => c >= 0.9);
      expect(site.recorded.cheapShare).toBe(cheap.length / 5);
      expect(site.rows[1]?.cheapShare).toBe(4 / 5); // 0.85 is accepted at 0.8
      expect(site.recorded.accuracy.labeled).toBe(10_000);
    }, 60_000);

    it('the vote what-if', async () => {
      const s = await streamFleet(createVoteWhatIf({ stops: ['decided', 'all'] }));
      expect(s.ahead).toBe(0);
      expect(s.maxOpen).toBeGreaterThan(1);
      expect(s.maxOpen).toBeLessThanOrEqual(16);
      expect(s.reachable).toBeLessThanOrEqual(1);
      const site = s.result.sites[0]!;
      expect(site.runs).toBe(10_000);
      expect(site.recorded.agentsUsed).toEqual({ '2': 5_000, '3': 5_000 });
      expect(site.rows[0]?.meanAgentsUsed).toBe(2.5);
    }, 60_000);

    it('the cache what-if', async () => {
      const s = await streamFleet(createCacheWhatIf({ ttlsMs: [1_000, 3_600_000] }));
      expect(s.ahead).toBe(0);
      expect(s.maxOpen).toBeGreaterThan(1);
      expect(s.maxOpen).toBeLessThanOrEqual(16);
      expect(s.reachable).toBeLessThanOrEqual(1);
      expect(s.result.runs).toBe(10_000);
      expect(s.result.recorded.lookups).toBe(10_000);
      expect(s.result.recorded.hits).toBe(6_666);
      expect(s.result.rows[1]?.hits).toBeGreaterThan(s.result.recorded.hits);
    }, 60_000);
  });
});
