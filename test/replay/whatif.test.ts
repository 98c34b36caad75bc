import { afterEach, describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/core/errors.js';
import { simulatedClock } from '../../src/core/clock.js';
import { SEED_PRICING } from '../../src/cost/pricing.js';
import { createRuntime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';
import { cascade } from '../../src/supervisor/cascade.js';
import { named } from '../../src/supervisor/topology.js';
import { seq } from '../../src/supervisor/sequential.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import {
  projectVolume,
  whatIfCache,
  whatIfCascade,
  whatIfVote,
  type CascadeSiteWhatIf,
  type VoteSiteWhatIf,
} from '../../src/replay/whatif.js';
import {
  CHEAP_USD,
  GPT4_USD,
  invoices,
  openRuntime,
  recordCascade,
  recordLookups,
  recordVote,
  runAll,
  vendorLookup,
  VENDOR_GAP_MS,
  VENDOR_SEQUENCE,
  tempDir,
  transactions,
  triage,
  fraud,
  type Invoice,
} from '../cli/logs.js';

let tmp: ReturnType<typeof tempDir> | undefined;
afterEach(() => {
  tmp?.cleanup();
  tmp = undefined;
});
function dir(): ReturnType<typeof tempDir> {
  tmp = tempDir();
  return tmp;
}

async function read<T>(db: string, fn: (events: Iterable<KeelEvent>) => T): Promise<T> {
  const store = openSqliteStore({ path: db, readonly: true });
  try {
    return fn(store.iterate());
  } finally {
    await store.close();
  }
}

function only<T>(sites: readonly T[]): T {
  expect(sites).toHaveLength(1);
  return sites[0] as T;
}

/** What a live run of the cascade at `threshold` actually did. */
async function liveCascade(db: string, threshold: number, inputs: readonly Invoice[]) {
  const rt = openRuntime(db);
  try {
    const results = await runAll(rt, triage(threshold), inputs);
    const cheap = rt.store
      .query({ type: 'cascade.accepted' })
      .filter((e) => e.type === 'cascade.accepted' && e.payload.stage === 0).length;
    const cost = results.reduce((a, r) => a + r.costUsd, 0);
    const correct = results.filter((r, i) => r.value === inputs[i]?.truth).length;
    return {
      cheapShare: cheap / inputs.length,
      costPerRunUsd: cost / inputs.length,
      accuracy: correct / inputs.length,
    };
  } finally {
    await rt.close();
  }
}

describe('whatIfCascade', () => {
  it("prints the tutorial's threshold table with the numbers a live re-run at each threshold gives", async () => {
    const t = dir();
    const inputs = invoices(40);
    await recordCascade(t.path('recorded.db'), 0.95, inputs);
    const site: CascadeSiteWhatIf = only(
      (
        await read(t.path('recorded.db'), (ev) =>
          whatIfCascade(ev, { thresholds: [0.95, 0.9, 0.85], volumePerWeek: 20_000 }),
        )
      ).sites,
    );
    expect(site.path).toBe('triage');
    expect(site.runs).toBe(40);
    expect(site.recordedRule).toBe(0.95);
    for (const [i, threshold] of [0.95, 0.9, 0.85].entries()) {
      const row = site.rows[i];
      const live = await liveCascade(t.path(`live-${threshold}.db`), threshold, inputs);
      expect(row?.threshold).toBe(threshold);
      expect(row?.unknown).toBe(0);
      expect(row?.cheapShare).toBeCloseTo(live.cheapShare, 12);
      expect(row?.escalatedShare).toBeCloseTo(1 - live.cheapShare, 12);
      expect(row?.costPerRunUsd).toBeCloseTo(live.costPerRunUsd, 12);
      expect(row?.accuracy.ratio).toBeCloseTo(live.accuracy, 12);
      expect(row?.volume?.costPerWeekUsd).toBeCloseTo(live.costPerRunUsd * 20_000, 4);
      expect(row?.volume?.costPerYearUsd).toBeCloseTo(live.costPerRunUsd * 20_000 * 52, 4);
    }
    // the looser the threshold, the more the cheap model answers, the cheaper and the less accurate
    const [r95, r90, r85] = site.rows;
    expect(r95!.cheapShare).toBeLessThan(r90!.cheapShare);
    expect(r90!.cheapShare).toBeLessThan(r85!.cheapShare);
    expect(r85!.costPerRunUsd!).toBeLessThan(r95!.costPerRunUsd!);
    expect(r85!.accuracy.ratio!).toBeLessThan(r95!.accuracy.ratio!);
    // the recorded threshold reproduces what was recorded
    expect(r95!.costPerRunUsd).toBeCloseTo(site.recorded.costPerRunUsd!, 12);
    expect(r95!.answeredByStage).toEqual(site.recorded.answeredByStage);
    // the baseline: every invoice on GPT-4 only
    expect(site.lastStageOnly.costPerRunUsd).toBeCloseTo(GPT4_USD, 12);
    expect(site.lastStageOnly.volume?.costPerWeekUsd).toBeCloseTo(600, 6);
  });

  it('marks cells unknown when a stricter threshold needs a stage the record never ran', async () => {
    const t = dir();
    const inputs = invoices(40);
    await recordCascade(t.path('lenient.db'), 0.85, inputs);
    const site = only(
      (
        await read(t.path('lenient.db'), (ev) =>
          whatIfCascade(ev, { thresholds: [0.95, 0.8], volumePerWeek: 1000 }),
        )
      ).sites,
    );
    const [strict, looser] = site.rows;
    const between = inputs.filter((x) => x.confidence >= 0.85 && x.confidence < 0.95).length;
    expect(between).toBeGreaterThan(0);
    expect(strict?.unknown).toBe(between);
    expect(strict?.costPerRunUsd).toBeNull();
    expect(strict?.volume).toBeNull();
    expect(strict?.accuracy.ratio).toBeNull();
    expect(strict?.accuracy.unknown).toBe(between);
    // which stage answers is still known for every run: only the cost and answer of GPT-4 are not
    expect(strict?.cheapShare).toBeCloseTo(inputs.filter((x) => x.confidence >= 0.95).length / 40, 12);
    // a looser threshold only drops recorded escalations: exact, and equal to a live run
    const live = await liveCascade(t.path('live-0.8.db'), 0.8, inputs);
    expect(looser?.unknown).toBe(0);
    expect(looser?.costPerRunUsd).toBeCloseTo(live.costPerRunUsd, 12);
    expect(looser?.accuracy.ratio).toBeCloseTo(live.accuracy, 12);
  });

  it('leaves accuracy unknown without ground truth, or when the answer changes and no expected value was given', async () => {
    const t = dir();
    const inputs = invoices(20);
    await recordCascade(t.path('none.db'), 0.95, inputs, 'none');
    const none = only(
      (await read(t.path('none.db'), (ev) => whatIfCascade(ev, { thresholds: [0.9] }))).sites,
    );
    expect(none.rows[0]?.accuracy).toEqual({ ratio: null, labeled: 0, correct: 0, unknown: 0 });
    expect(none.rows[0]?.costPerRunUsd).not.toBeNull();

    await recordCascade(t.path('verdict.db'), 0.95, inputs, 'verdict');
    const verdict = only(
      (await read(t.path('verdict.db'), (ev) => whatIfCascade(ev, { thresholds: [0.95, 0.8] }))).sites,
    );
    expect(verdict.rows[0]?.accuracy.ratio).toBe(1); // unchanged answers keep their recorded verdict
    const changed = inputs.filter((x) => x.confidence >= 0.8 && x.confidence < 0.92).length;
    expect(verdict.rows[1]?.accuracy.unknown).toBe(changed);
    expect(verdict.rows[1]?.accuracy.ratio).toBeNull();
  });

  it('judges a run whose last stage failed as failed under every threshold that reaches it, not unknown', async () => {
    const t = dir();
    const db = t.path('last-fails.db');
    const cheap = agent({
      name: 'screen',
      model: 'gpt-3.5-turbo',
      run: (inv: { conf: number }) =>
        Promise.resolve({
          value: 'cheap',
          confidence: inv.conf,
          usage: { inputTokens: 500, outputTokens: 500 },
        }),
    });
    // A plain Error, as user code throws: the cascade (and its workflow) fails at the last stage.
    const expensive = agent({
      name: 'escalate',
      model: 'gpt-4',
      run: (): Promise<{ value: string }> => Promise.reject(new Error('upstream said no')),
    });
    const rt = openRuntime(db);
    try {
      const topology = named('triage', cascade([cheap, expensive], { threshold: 0.95 }));
      for (const conf of [0.99, 0.9, 0.8]) {
        const id = `wf-${conf}`;
        await rt.run(topology, { conf }, { workflowId: id }).catch(() => undefined);
        await rt.feedback(id, { correct: conf >= 0.95, expected: 'cheap' });
      }
    } finally {
      await rt.close();
    }
    const site = only((await read(db, (ev) => whatIfCascade(ev, { thresholds: [0.95, 0.85] }))).sites);
    expect(site.recorded.failed).toBe(2);
    // 0.95: as recorded (1 right, 2 failed). 0.85: the 0.9 run is answered by the cheap stage, right.
    expect(site.rows.map((r) => [r.failed, r.accuracy.ratio])).toEqual([
      [2, 1 / 3],
      [1, 2 / 3],
    ]);
  });

  it("projects the tutorial's Exercise 3: 20,000 invoices/week, 75% screened by GPT-3.5", async () => {
    const t = dir();
    // 15 of 20 invoices clean (confidence 0.95), 5 with OCR errors (0.6)
    const inputs: Invoice[] = Array.from({ length: 20 }, (_, i) => ({
      id: `INV-${i}`,
      confidence: i < 15 ? 0.95 : 0.6,
      truth: 'acme',
      cheapAnswer: 'acme',
    }));
    await recordCascade(t.path('ex3.db'), 0.9, inputs);
    const site = only(
      (await read(t.path('ex3.db'), (ev) => whatIfCascade(ev, { thresholds: [0.9], volumePerWeek: 20_000 })))
        .sites,
    );
    const row = site.rows[0];
    expect(row?.costPerRunUsd).toBeCloseTo(0.75 * CHEAP_USD + 0.25 * (CHEAP_USD + GPT4_USD), 12);
    expect(row?.volume).toMatchObject({
      perWeek: 20_000,
      costPerWeekUsd: 190,
      costPerYearUsd: 9_880,
      baselinePerWeekUsd: 600,
    });
    expect(row?.volume?.savingPerWeekUsd).toBeCloseTo(410, 6);
    expect(row?.volume?.savingPerYearUsd).toBeCloseTo(21_320, 6);
  });

  it('rejects thresholds outside [0, 1] and a bad volume with a ConfigError naming the field', () => {
    const bad = (f: () => unknown, field: string) => {
      try {
        f();
        expect.unreachable();
      } catch (e) {
        expect(isConfigError(e) && e.field).toBe(field);
      }
    };
    bad(() => whatIfCascade([], { thresholds: [1.5] }), 'thresholds');
    bad(() => whatIfCascade([], { thresholds: [] }), 'thresholds');
    bad(() => whatIfCascade([], { thresholds: [0.9], volumePerWeek: -1 }), 'volumePerWeek');
    bad(() => whatIfVote([], { stops: [0] }), 'stops');
    bad(() => whatIfCache([], { ttlsMs: [0] }), 'ttlsMs');
  });
});

describe('projectVolume', () => {
  it("reproduces the tutorial's weekly and yearly arithmetic", () => {
    // Strategy 3: 10,000 invoices/week, 70% on GPT-3.5, baseline GPT-4 only
    const cascadeWeek = projectVolume(0.7 * 0.002 + 0.3 * 0.032, 10_000, 0.03);
    expect(cascadeWeek).toMatchObject({
      costPerWeekUsd: 110,
      baselinePerWeekUsd: 300,
      savingPerWeekUsd: 190,
      savingPerYearUsd: 9_880,
    });
    expect(cascadeWeek.savingShare).toBeCloseTo(190 / 300, 12);
    // Exercise 1: 50,000 transactions × $0.15 = $7,500/week = $390,000/year
    expect(projectVolume(0.15, 50_000)).toEqual({
      perWeek: 50_000,
      costPerWeekUsd: 7_500,
      costPerYearUsd: 390_000,
    });
    // Strategy 2: early termination, $0.102 vs $0.15 per transaction at 10,000/week
    expect(projectVolume(0.102, 10_000, 0.15)).toMatchObject({
      costPerWeekUsd: 1_020,
      savingPerWeekUsd: 480,
      savingPerYearUsd: 24_960,
    });
  });
});

describe('whatIfVote', () => {
  it('matches live runs under the other stop rules when the record heard every voter', async () => {
    const t = dir();
    const inputs = transactions(20);
    await recordVote(t.path('all.db'), 'all', inputs);
    const site: VoteSiteWhatIf = only(
      (
        await read(t.path('all.db'), (ev) =>
          whatIfVote(ev, { stops: ['decided', 3, 'all'], volumePerWeek: 10_000 }),
        )
      ).sites,
    );
    expect(site.recordedRule).toBe('all');
    const rules = [
      ['decided', 'decided'],
      [3, (tally: { votes: readonly unknown[] }) => tally.votes.length >= 3],
      ['all', 'all'],
    ] as const;
    for (const [i, [stop, live]] of rules.entries()) {
      const rt = openRuntime(t.path(`live-${i}.db`));
      const results = await runAll(rt, fraud(live), inputs);
      await rt.close();
      const row = site.rows[i];
      expect(row?.stop).toBe(stop);
      expect(row?.unknown).toBe(0);
      const used: Record<string, number> = {};
      for (const r of results) used[r.value.agentsUsed] = (used[r.value.agentsUsed] ?? 0) + 1;
      expect(row?.agentsUsed).toEqual(used);
      expect(row?.meanAgentsUsed).toBeCloseTo(results.reduce((a, r) => a + r.value.agentsUsed, 0) / 20, 12);
      expect(row?.costPerRunUsd).toBeCloseTo(results.reduce((a, r) => a + r.costUsd, 0) / 20, 12);
      const correct = results.filter((r, j) => r.value.value === inputs[j]?.truth).length;
      expect(row?.accuracy.ratio).toBeCloseTo(correct / 20, 12);
    }
    // the tutorial's mix: adaptive voting uses 3.4 agents on average, $0.102 instead of $0.15
    const decided = site.rows[0];
    expect(decided?.meanAgentsUsed).toBeCloseTo(3.4, 12);
    expect(decided?.volume?.costPerWeekUsd).toBeCloseTo(1_020, 6);
    expect(site.allVoters.costPerRunUsd).toBeCloseTo(0.15, 12);
    expect(site.allVoters.estimated).toBe(false);
    expect(decided?.volume?.savingPerYearUsd).toBeCloseTo(24_960, 6);
  });

  it('is unknown for runs the record stopped before the rule would have', async () => {
    const t = dir();
    const inputs = transactions(10);
    await recordVote(t.path('decided.db'), 'decided', inputs);
    const site = only(
      (await read(t.path('decided.db'), (ev) => whatIfVote(ev, { stops: ['all', 'decided', 4] }))).sites,
    );
    // only the 3-2 split that stays open after four votes heard all five voters
    expect(site.recorded.agentsUsed).toEqual({ '3': 7, '4': 2, '5': 1 });
    expect(site.rows[0]?.unknown).toBe(9);
    expect(site.rows[0]?.costPerRunUsd).toBeNull();
    expect(site.rows[1]?.unknown).toBe(0);
    expect(site.rows[1]?.costPerRunUsd).toBeCloseTo(site.recorded.costPerRunUsd!, 12);
    expect(site.rows[1]?.changed).toBe(0);
    // stop after 4 votes: unknown exactly where the record stopped at 3
    expect(site.rows[2]?.unknown).toBe(7);
    expect(site.rows[2]?.agentsUsed).toEqual({ '4': 3 });
    expect(site.allVoters.estimated).toBe(true);
  });
});

describe('whatIfCache', () => {
  it('models one cache per workflow name when told so: two runtimes, each with its own memory cache, as keel demo runs its variants', async () => {
    const t = dir();
    const db = t.path('two-runtimes.db');
    const hour = 3_600_000;
    for (const [i, name] of ['parallel', 'sequential'].entries()) {
      // The second runtime starts a day later, as keel demo's do after the log's last event.
      const rt = createRuntime({
        db,
        clock: simulatedClock(Date.UTC(2026, 0, 1 + i)),
        seed: 7,
        pricing: { ...SEED_PRICING },
        metrics: false,
        tracing: false,
        cache: { path: ':memory:' },
      });
      try {
        await runAll(rt, named(name, seq(vendorLookup(hour))), VENDOR_SEQUENCE, VENDOR_GAP_MS);
      } finally {
        await rt.close();
      }
    }
    const log = await read(db, (ev) => whatIfCache(ev, { ttlsMs: [hour, 2 * 86_400_000] }));
    const perWorkflow = await read(db, (ev) =>
      whatIfCache(ev, { ttlsMs: [hour, 2 * 86_400_000], scope: 'workflow' }),
    );
    expect(perWorkflow.scope).toBe('workflow');
    // At the recorded TTL, per-workflow caches reproduce the record; one shared cache would have
    // served the second runtime's first lookups from the first runtime's entries.
    expect(perWorkflow.rows[0]).toMatchObject({ hits: perWorkflow.recorded.hits, estimatedLookups: 0 });
    expect(log.scope).toBe('log');
    expect(log.rows[0]!.hits).toBe(log.recorded.hits); // a day apart, a 1 h entry is gone either way
    // With a 2-day TTL a shared cache would serve the second runtime from the first's entries.
    expect(log.rows[1]!.hits).toBe(perWorkflow.rows[1]!.hits + 4);
    expect(() => whatIfCache([], { ttlsMs: [hour], scope: 'runtime' as never })).toThrow(
      /scope.*"log".*"workflow"/,
    );
  });

  it('recomputes hits, misses and cost for another TTL exactly as a live run with that TTL', async () => {
    const t = dir();
    const hour = 3_600_000;
    await recordLookups(t.path('recorded.db'), hour);
    const r = await read(t.path('recorded.db'), (ev) =>
      whatIfCache(ev, { ttlsMs: [3 * hour, 10 * 60_000, hour], volumePerWeek: 10_000 }),
    );
    expect(r.agents).toEqual(['vendor_validation']);
    expect(r.recorded.lookups).toBe(20);
    for (const [i, ttl] of [3 * hour, 10 * 60_000, hour].entries()) {
      await recordLookups(t.path(`live-${i}.db`), ttl);
      const live = await read(t.path(`live-${i}.db`), (ev) => whatIfCache(ev, { ttlsMs: [ttl] }));
      const row = r.rows[i];
      expect(row?.ttlMs).toBe(ttl);
      expect({ hits: row?.hits, misses: row?.misses }).toEqual({
        hits: live.recorded.hits,
        misses: live.recorded.misses,
      });
      expect(row?.costUsd).toBeCloseTo(live.recorded.costUsd, 12);
    }
    // a longer TTL hits more; a shorter one needs calls the record never made (priced from the key's own
    // call, which is why the costs above still match)
    expect(r.rows[0]!.hits).toBeGreaterThan(r.recorded.hits);
    expect(r.rows[1]!.hits).toBeLessThan(r.recorded.hits);
    expect(r.rows[1]!.estimatedLookups).toBe(r.recorded.hits);
    // the recorded TTL reproduces the record
    expect(r.rows[2]).toMatchObject({
      hits: r.recorded.hits,
      misses: r.recorded.misses,
      estimatedLookups: 0,
    });
    // no cache at all: every lookup is a model call
    expect(r.noCache.hits).toBe(0);
    expect(r.noCache.costUsd).toBeCloseTo(r.rows[1]!.costUsd, 12);
    expect(r.rows[0]?.volume?.savingPerWeekUsd).toBeGreaterThan(0);
  });
});
