import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorCategory, KeelEvent } from '../../src/eventlog/events.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { buildReport } from '../../src/report/build.js';
import type { Report } from '../../src/report/report.js';
import { formatReport } from '../../src/report/terminal.js';
import { FIXTURE_SETTINGS, buildFixture, type Fixture } from './fixture.js';

let fixture: Fixture;
let events: KeelEvent[];
let report: Report;

beforeAll(async () => {
  fixture = await buildFixture();
  const store = openSqliteStore({ path: fixture.db, readonly: true });
  try {
    events = store.query();
    report = buildReport(store.iterate(), {
      slaP95Ms: FIXTURE_SETTINGS.slaP95Ms,
      budgetUsd: FIXTURE_SETTINGS.budgetUsd,
      errorTargets: FIXTURE_SETTINGS.errorTargets,
      errorWindowSize: FIXTURE_SETTINGS.windowSize,
    });
  } finally {
    await store.close();
  }
}, 120_000);

afterAll(() => {
  if (fixture) rmSync(fixture.dir, { recursive: true, force: true });
});

/** Events of one type, narrowed. */
function ofType<T extends KeelEvent['type']>(type: T): Extract<KeelEvent, { type: T }>[] {
  return events.filter((e): e is Extract<KeelEvent, { type: T }> => e.type === type);
}

/** Nearest-rank percentile of a sample. */
function nearestRank(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

describe('keel report over a log written by real topologies', () => {
  it('the fixture exercised every part: par+seq, vote, cascade, a breaker that opened, failures and alerts', () => {
    const types = report.span.byType;
    for (const t of [
      'workflow.completed',
      'workflow.failed',
      'vote.early_stop',
      'cascade.escalated',
      'breaker.transitioned',
      'agent.rejected',
      'alert.raised',
      'budget.alert',
    ] as const) {
      expect(types[t] ?? 0, t).toBeGreaterThan(0);
    }
    expect(report.span.events).toBe(events.length);
    expect(report.span.firstSeq).toBe(1);
    expect(report.span.lastSeq).toBe(events[events.length - 1]?.seq);
  });

  it('counts workflows by name and outcome as the log records them', () => {
    const names = new Map(ofType('workflow.started').map((e) => [e.workflowId, e.payload.name]));
    const expected = new Map<
      string,
      {
        started: number;
        completed: number;
        failed: number;
        cancelled: number;
        interrupted: number;
        resumed: number;
        waiting: number;
      }
    >();
    const row = (name: string) => {
      let r = expected.get(name);
      if (!r)
        expected.set(
          name,
          (r = { started: 0, completed: 0, failed: 0, cancelled: 0, interrupted: 0, resumed: 0, waiting: 0 }),
        );
      return r;
    };
    for (const e of events) {
      if (e.type === 'workflow.started') row(e.payload.name).started++;
      if (e.type === 'workflow.completed') row(names.get(e.workflowId) ?? '?').completed++;
      if (e.type === 'workflow.failed') row(names.get(e.workflowId) ?? '?').failed++;
      if (e.type === 'workflow.cancelled') row(names.get(e.workflowId) ?? '?').cancelled++;
    }
    expect(report.workflows.map(({ running: _, ...w }) => w)).toEqual(
      [...expected].map(([name, c]) => ({ name, ...c })).sort((a, b) => a.name.localeCompare(b.name)),
    );
    expect(sum(report.workflows.map((w) => w.completed + w.failed))).toBe(
      fixture.settled.ok + fixture.settled.failed,
    );
  });

  it('totals cost per model per day and savings by source exactly as the cost events add up', () => {
    const incurred = ofType('cost.incurred');
    expect(report.cost.summary.actualUsd).toBeCloseTo(sum(incurred.map((e) => e.payload.costUsd)), 9);
    expect(report.cost.summary.calls).toBe(incurred.length);
    const [day] = report.cost.days;
    expect(report.cost.days).toHaveLength(1);
    expect(day?.day).toBe('2026-03-02');
    for (const m of day?.byModel ?? []) {
      const mine = incurred.filter((e) => e.payload.model === m.model);
      expect(m.calls).toBe(mine.length);
      expect(m.usd).toBeCloseTo(sum(mine.map((e) => e.payload.costUsd)), 9);
    }
    expect(day?.budgetRatio).toBeCloseTo(report.cost.summary.actualUsd / FIXTURE_SETTINGS.budgetUsd, 12);
    const saved = report.cost.summary.savings.bySource;
    expect(saved.vote.usd).toBeCloseTo(sum(ofType('vote.decided').map((e) => e.payload.savedUsd)), 9);
    expect(saved.cascade.usd).toBeCloseTo(sum(ofType('cascade.accepted').map((e) => e.payload.savedUsd)), 9);
    expect(saved.cache.usd).toBe(sum(ofType('cache.hit').map((e) => e.payload.savedUsd)));
  });

  it('computes P95 per workflow and per agent from the recorded latencies, and SLA compliance exactly', () => {
    const names = new Map(ofType('workflow.started').map((e) => [e.workflowId, e.payload.name]));
    const byName = new Map<string, number[]>();
    for (const e of events) {
      if (e.type !== 'workflow.completed' && e.type !== 'workflow.failed') continue;
      const name = names.get(e.workflowId) ?? '?';
      byName.set(name, [...(byName.get(name) ?? []), e.payload.latencyMs]);
    }
    expect(report.latency.workflows.map((w) => w.name)).toEqual([...byName.keys()].sort());
    for (const w of report.latency.workflows) {
      const latencies = byName.get(w.name) ?? [];
      const p95 = nearestRank(latencies, 95);
      expect(w.count).toBe(latencies.length);
      expect(Math.abs(w.p95Ms - p95), `${w.name} P95`).toBeLessThanOrEqual(p95 * 0.001 + 1);
      expect(w.maxMs).toBe(Math.max(...latencies));
      expect(w.slaCompliance).toBe(
        latencies.filter((l) => l <= FIXTURE_SETTINGS.slaP95Ms).length / latencies.length,
      );
      expect(w.meetsSla).toBe(w.p95Ms <= FIXTURE_SETTINGS.slaP95Ms);
      expect(sum(w.histogram.counts) + w.histogram.instantCount).toBe(latencies.length);
    }
    const vendor = report.latency.agents.find((a) => a.name === 'vendor_extraction');
    // A cancelled call is no latency sample: it says when the cancellation came.
    const vendorLatencies = events.flatMap((e) =>
      (e.type === 'agent.succeeded' || (e.type === 'agent.failed' && e.payload.category !== 'cancelled')) &&
      e.payload.agent === 'vendor_extraction'
        ? [e.payload.latencyMs]
        : [],
    );
    const p95 = nearestRank(vendorLatencies, 95);
    expect(vendor?.count).toBe(vendorLatencies.length);
    expect(sum(vendor?.histogram.counts ?? []) + (vendor?.histogram.instantCount ?? 0)).toBe(
      vendorLatencies.length,
    );
    expect(Math.abs((vendor?.p95Ms ?? 0) - p95)).toBeLessThanOrEqual(p95 * 0.001 + 1);
    // The fixture's spike pushed some workflows past the SLA, and not others.
    expect(report.latency.workflows.some((w) => !w.meetsSla)).toBe(true);
    expect(report.latency.workflows.some((w) => w.meetsSla)).toBe(true);
  });

  it('counts outcomes and failures per task type as the monitors define them, over time buckets', () => {
    const outcomes = new Map<string, { outcomes: number; failures: number }>();
    const causes = new Map<ErrorCategory, number>();
    for (const e of events) {
      if (e.type !== 'agent.succeeded' && e.type !== 'agent.failed' && e.type !== 'agent.rejected') continue;
      if (e.type !== 'agent.succeeded' && e.payload.category === 'cancelled') continue;
      const c = outcomes.get(e.payload.taskType) ?? { outcomes: 0, failures: 0 };
      c.outcomes++;
      if (e.type !== 'agent.succeeded') {
        c.failures++;
        causes.set(e.payload.category, (causes.get(e.payload.category) ?? 0) + 1);
      }
      outcomes.set(e.payload.taskType, c);
    }
    expect(
      report.errors.taskTypes.map((t) => [t.taskType, { outcomes: t.outcomes, failures: t.failures }]),
    ).toEqual([...outcomes].sort((a, b) => a[0].localeCompare(b[0])));
    for (const t of report.errors.taskTypes) {
      expect(t.errorRate).toBeCloseTo(t.failures / t.outcomes, 12);
      expect(t.target).toBe(
        FIXTURE_SETTINGS.errorTargets[t.taskType as keyof typeof FIXTURE_SETTINGS.errorTargets],
      );
      expect(sum(t.series.map((b) => b.outcomes))).toBe(t.outcomes);
      expect(sum(t.series.map((b) => b.failures))).toBe(t.failures);
      expect(t.series.length).toBeLessThanOrEqual(48);
    }
    const vendor = report.errors.taskTypes.find((t) => t.taskType === 'vendor');
    expect(vendor?.meetsTarget).toBe(false); // OCR errors and missing fields: ~15 % against 5 %
    expect(report.rootCauses.overall.failures).toBe(sum([...causes.values()]));
    for (const [category, n] of causes) expect(report.rootCauses.overall.counts[category]).toBe(n);
  });

  it('lists exactly the alerts the runtime logged, matched by the same folds run over the log', () => {
    const raised = ofType('alert.raised');
    const resolved = ofType('alert.resolved');
    expect(report.alerts.raised).toBe(raised.length);
    expect(report.alerts.resolved).toBe(resolved.length);
    expect(report.alerts.items.map((a) => [a.id, a.status])).toEqual(
      [...raised, ...resolved]
        .sort((a, b) => a.seq - b.seq)
        .map((e) => [e.payload.id, e.type === 'alert.raised' ? 'firing' : 'resolved']),
    );
    // Every alert the report's own folds detect, the live runtime had raised too.
    expect(report.alerts.items.every((a) => a.source === 'log')).toBe(true);
    expect(Object.keys(report.alerts.byKind).sort()).toEqual(['breaker', 'budget', 'error_rate', 'sla']);
  });

  it('replays the breaker timeline transition by transition', () => {
    const moves = ofType('breaker.transitioned');
    const [openai] = report.breakers;
    expect(report.breakers).toHaveLength(1);
    expect(openai?.transitions).toEqual(
      moves.map((e) => ({
        ts: e.ts,
        from: e.payload.from,
        to: e.payload.to,
        reason: e.payload.reason,
        failures: e.payload.failures,
      })),
    );
    expect(openai?.opened).toBe(moves.filter((e) => e.payload.to === 'open').length);
    expect(openai?.state).toBe(moves[moves.length - 1]?.payload.to);
    let openMs = 0;
    moves.forEach((e, i) => {
      const next = moves[i + 1]?.ts ?? report.span.lastTs ?? 0;
      if (e.payload.to === 'open') openMs += next - e.ts;
    });
    expect(openai?.openMs).toBe(openMs);
    expect(openai?.opened).toBeGreaterThan(0);
    expect(openai?.state).toBe('closed'); // it recovered after the outage
  });

  it('derives vote and cascade shares from their decisions', () => {
    const decided = ofType('vote.decided');
    const [fraud] = report.votes;
    expect(fraud?.decided).toBe(decided.length);
    expect(fraud?.meanAgentsUsed).toBeCloseTo(
      sum(decided.map((e) => e.payload.agentsUsed)) / decided.length,
      12,
    );
    expect(fraud?.earlyStopShare).toBeCloseTo(ofType('vote.early_stop').length / decided.length, 12);
    for (const u of fraud?.agentsUsed ?? []) {
      expect(u.count).toBe(decided.filter((e) => e.payload.agentsUsed === u.agents).length);
    }
    const accepted = ofType('cascade.accepted');
    const [screening] = report.cascades;
    expect(screening?.answered).toBe(accepted.length);
    expect(screening?.escalations).toBe(ofType('cascade.escalated').length);
    for (const s of screening?.stages ?? []) {
      expect(s.share).toBeCloseTo(
        accepted.filter((e) => e.payload.stage === s.stage).length / accepted.length,
        12,
      );
    }
    expect(screening?.stages.map((s) => s.agent)).toEqual(['screen_cheap', 'screen_expensive']);
  });

  it('prints the key lines in the tutorial’s words, without colour unless asked', () => {
    const text = formatReport(report);
    const invoice = report.latency.workflows.find((w) => w.name === 'invoice');
    const seconds = (ms: number) => `${(ms / 1000).toFixed(1).replace(/\.0$/, '')} s`;
    expect(text).toContain(
      `P95 ${seconds(invoice?.p95Ms ?? 0)} vs SLA 10 s ${invoice?.meetsSla ? '✓' : '✗'}`,
    );
    const screening = report.latency.workflows.find((w) => w.name === 'screening');
    expect(screening?.meetsSla).toBe(true);
    expect(text).toMatch(/P95 [\d.]+ (s|ms) vs SLA 10 s ✓/);
    expect(text).toContain('Daily Cost Dashboard (2026-03-02, UTC)');
    expect(text).toContain(`- Total spend: $${report.cost.summary.actualUsd.toFixed(2)} / $10.00 budget`);
    const primary = report.rootCauses.overall.causes[0];
    expect(text).toMatch(new RegExp(`- [A-Za-z ]+: ${primary?.count} \\(\\d+%\\) ← PRIMARY ROOT CAUSE`));
    expect(text).toContain(`openai: CLOSED now · opened ${report.breakers[0]?.opened}×`);
    expect(text).toContain(`fraud: ${report.votes[0]?.decided} decided · 5 voters`);
    expect(text).toMatch(
      /screening: \d+ answered · stage 0 screen_cheap \d+% \(\d+\) · stage 1 screen_expensive/,
    );
    expect(text).toMatch(/vendor +\d+ +\d+ +[\d.]+% +5\.0% ✗/);
    expect(text).not.toContain('\u001b[');
    expect(formatReport(report, { color: true })).toContain('\u001b[32m');
  });
});
