import { describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/core/errors.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import { buildReport } from '../../src/report/build.js';
import { formatReport } from '../../src/report/terminal.js';
import { Log } from './events.js';

const T0 = Date.UTC(2026, 0, 5, 8);
const S = 1_000;

/** Percentile values from HDR are within its 3 significant digits. */
function expectNear(actual: number, expected: number): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(expected * 0.001 + 1);
}

describe('buildReport: one fold over the log', () => {
  it('takes P50/P95/P99 of a known latency set (1..100 s) from the latency projection', () => {
    const log = new Log();
    for (let k = 1; k <= 100; k++) log.workflow(`wf${k}`, 'invoice', T0 + k * S, k * S);
    const report = buildReport(log.events, { slaP95Ms: 90 * S });
    const [invoice] = report.latency.workflows;
    expect(invoice?.name).toBe('invoice');
    expect(invoice?.count).toBe(100);
    expectNear(invoice?.p50Ms ?? 0, 50 * S);
    expectNear(invoice?.p95Ms ?? 0, 95 * S);
    expectNear(invoice?.p99Ms ?? 0, 99 * S);
    expect(invoice?.maxMs).toBe(100 * S);
    expect(invoice?.slaCompliance).toBe(0.9); // 90 of 100 at or under 90 s
    expect(invoice?.meetsSla).toBe(false);
    const h = invoice?.histogram;
    expect(h?.counts.reduce((a, b) => a + b, 0)).toBe(100);
    expect(h?.edgesMs.length).toBe((h?.counts.length ?? 0) + 1);
    expect(h?.edgesMs[0]).toBeLessThanOrEqual(1 * S);
    expect(h?.edgesMs[h.edgesMs.length - 1]).toBeGreaterThan(100 * S);
  });

  it('counts workflows by name and outcome; an end without its start counts as (unknown)', () => {
    const log = new Log();
    log.workflow('a1', 'invoice', T0, 10);
    log.workflow('a2', 'invoice', T0, 10);
    log.workflow('a3', 'invoice', T0, 10, 'failed');
    log.workflow('b1', 'fraud', T0, 10, 'cancelled');
    log.add('workflow.started', { name: 'fraud', topology: {}, input: {}, inputHash: 'h' }, T0, 'b2');
    log.add('workflow.completed', { output: 1, latencyMs: 5, costUsd: 0, agentsCalled: 0 }, T0, 'pruned');
    const report = buildReport(log.events);
    expect(report.workflows).toEqual([
      {
        name: '(unknown)',
        started: 0,
        completed: 1,
        failed: 0,
        cancelled: 0,
        interrupted: 0,
        running: 0,
        resumed: 0,
        waiting: 0,
      },
      {
        name: 'fraud',
        started: 2,
        completed: 0,
        failed: 0,
        cancelled: 1,
        interrupted: 0,
        running: 1,
        resumed: 0,
        waiting: 0,
      },
      {
        name: 'invoice',
        started: 3,
        completed: 2,
        failed: 1,
        cancelled: 0,
        interrupted: 0,
        running: 0,
        resumed: 0,
        waiting: 0,
      },
    ]);
  });

  it('counts resumed workflows and those still waiting for a signal, in the fold and the terminal table', () => {
    const log = new Log();
    const started = { name: 'invoice', topology: {}, input: {}, inputHash: 'h' };
    const resumed = (reason: 'orphaned' | 'signalled' | 'timed_out') => ({
      owner: 'host:2:b',
      previousOwner: 'host:1:a',
      startedSeq: 1,
      lastSeq: 1,
      reason,
      rerun: [],
    });
    const waiting = { name: 'approval', path: 'invoice/approval' };
    const done = { output: 1, latencyMs: 5, costUsd: 0, agentsCalled: 1 };
    // r1: crashed, resumed, completed. w1: waits (still at the end). w2: waits, signalled, resumed,
    // waits again, is resumed on its timeout and fails. r2: crashed and resumed twice, still running.
    log.add('workflow.started', started, T0, 'r1');
    log.add('workflow.resumed', resumed('orphaned'), T0 + S, 'r1');
    log.add('workflow.completed', done, T0 + 2 * S, 'r1');
    log.add('workflow.started', started, T0, 'w1');
    log.add('workflow.waiting', waiting, T0 + S, 'w1');
    log.add('workflow.started', started, T0, 'w2');
    log.add('workflow.waiting', waiting, T0 + S, 'w2');
    log.add(
      'workflow.signalled',
      { ...waiting, value: { approved: true }, owner: 'host:2:b' },
      T0 + 2 * S,
      'w2',
    );
    log.add('workflow.resumed', resumed('signalled'), T0 + 2 * S, 'w2');
    log.add('workflow.waiting', { ...waiting, timeoutAt: T0 + 9 * S }, T0 + 3 * S, 'w2');
    log.add('workflow.resumed', resumed('timed_out'), T0 + 9 * S, 'w2');
    log.add(
      'workflow.failed',
      { message: 'timed out', category: 'timeout', latencyMs: 9 * S, costUsd: 0, agentsCalled: 0 },
      T0 + 9 * S,
      'w2',
    );
    log.add('workflow.started', started, T0, 'r2');
    log.add('workflow.resumed', resumed('orphaned'), T0 + S, 'r2');
    log.add('workflow.resumed', resumed('orphaned'), T0 + 2 * S, 'r2');
    const report = buildReport(log.events);
    expect(report.workflows).toEqual([
      {
        name: 'invoice',
        started: 4,
        completed: 1,
        failed: 1,
        cancelled: 0,
        interrupted: 0,
        running: 2,
        resumed: 5,
        waiting: 1,
      },
    ]);
    const text = formatReport(report);
    expect(text).toMatch(
      /name\s+started\s+completed\s+failed\s+cancelled\s+interrupted\s+running\s+waiting\s+resumed/,
    );
    expect(text).toMatch(/invoice\s+4\s+1\s+1\s+0\s+0\s+2\s+1\s+5/);
  });

  it('counts a workflow marked interrupted that later really ends once, by its real end', () => {
    const log = new Log();
    const mark = { reason: 'cut off', startedSeq: 1, lastSeq: 1, markedBy: 'keel audit interrupt' };
    const started = { name: 'invoice', topology: {}, input: {}, inputHash: 'h' };
    // c1: marked too early, then completes; c2: marked and never heard of again; c3: its start is
    // before the log's window, marked, then fails.
    log.add('workflow.started', started, T0, 'c1');
    log.add('workflow.started', started, T0, 'c2');
    log.add('workflow.interrupted', mark, T0 + 60 * S, 'c1');
    log.add('workflow.interrupted', mark, T0 + 60 * S, 'c2');
    log.add('workflow.interrupted', mark, T0 + 60 * S, 'c3');
    log.add(
      'workflow.completed',
      { output: 1, latencyMs: 90 * S, costUsd: 0, agentsCalled: 1 },
      T0 + 90 * S,
      'c1',
    );
    log.add(
      'workflow.failed',
      { category: 'timeout', message: 'late', latencyMs: 5, costUsd: 0, agentsCalled: 1 },
      T0 + 91 * S,
      'c3',
    );
    const report = buildReport(log.events);
    expect(report.workflows).toEqual([
      {
        name: '(unknown)',
        started: 0,
        completed: 0,
        failed: 1,
        cancelled: 0,
        interrupted: 0,
        running: 0,
        resumed: 0,
        waiting: 0,
      },
      {
        name: 'invoice',
        started: 2,
        completed: 1,
        failed: 0,
        cancelled: 0,
        interrupted: 1,
        running: 0,
        resumed: 0,
        waiting: 0,
      },
    ]);
  });

  it('buckets error rates in time: exact counts per bucket, widening to fit, nothing lost', () => {
    const log = new Log();
    const expected = new Map<number, { outcomes: number; failures: number }>();
    for (let i = 0; i < 60; i++) {
      const ts = T0 + i * 10 * S; // 10 minutes, one outcome every 10 s
      const failed = i % 4 === 0;
      log.outcome(ts, 'vendor', failed ? 'ocr_error' : undefined);
      const b = Math.floor(ts / 15_000) * 15_000;
      const cell = expected.get(b) ?? { outcomes: 0, failures: 0 };
      cell.outcomes++;
      if (failed) cell.failures++;
      expected.set(b, cell);
    }
    const report = buildReport(log.events);
    const [vendor] = report.errors.taskTypes;
    expect(vendor?.bucketMs).toBe(15_000); // 10-s buckets would need 60 > 48 points
    expect(report.errors.bucketMs).toBe(15_000);
    expect(vendor?.series.map((b) => [b.startMs, { outcomes: b.outcomes, failures: b.failures }])).toEqual([
      ...expected,
    ]);
    expect(vendor?.outcomes).toBe(60);
    expect(vendor?.failures).toBe(15);
    expect(vendor?.errorRate).toBe(0.25);
    expect(vendor?.target).toBe(0.05);
    expect(vendor?.meetsTarget).toBe(false);
    expect(vendor?.primaryCause).toBe('ocr_error');

    // Ten days in at most 12 points: day-wide buckets, every outcome kept, no gaps.
    const long = new Log();
    for (let d = 0; d < 10; d++)
      for (let h = 0; h < 24; h += 6) long.outcome(T0 + d * 86_400_000 + h * 3_600_000, 'routing');
    const wide = buildReport(long.events, { maxTimeBuckets: 12 });
    const series = wide.errors.taskTypes[0]?.series ?? [];
    expect(wide.errors.taskTypes[0]?.bucketMs).toBe(86_400_000);
    expect(series.length).toBeLessThanOrEqual(12);
    expect(series.reduce((a, b) => a + b.outcomes, 0)).toBe(40);
    series.forEach((b, i) => expect(b.startMs).toBe((series[0]?.startMs ?? 0) + i * 86_400_000));
  });

  it("buckets each task type by the span its own outcomes cover, not the log's", () => {
    // A two-minute demo inside a three-hour log: `date` ran only in the demo, `vendor` also ran in
    // a four-minute burst three hours later (another variant, another workflow name).
    const log = new Log();
    let k = 0;
    const burst = (start: number, seconds: number, name: string, taskTypes: string[]): void => {
      for (let i = 0; i < seconds; i += 2) {
        const id = `w${k++}`;
        log.add('workflow.started', { name, topology: {}, input: {}, inputHash: 'h' }, start + i * S, id);
        for (const t of taskTypes)
          log.outcome(start + i * S, t, i % 10 === 0 ? 'ocr_error' : undefined, `${t}_agent`, 100, id);
      }
    };
    burst(T0, 120, 'invoice', ['date', 'vendor']);
    burst(T0 + 3 * 3_600_000, 240, 'chaos', ['vendor']);
    log.cost(T0 + 4 * 3_600_000, 'gpt-4', 0.01); // the log goes on for another hour
    const report = buildReport(log.events);
    const date = report.errors.taskTypes.find((t) => t.taskType === 'date');
    const vendor = report.errors.taskTypes.find((t) => t.taskType === 'vendor');

    // date: 60 outcomes over 2 minutes, drawn in 5-s buckets (24 points), not one 5-min dot.
    expect(date?.bucketMs).toBe(5_000);
    expect(date?.series.length).toBe(24);
    expect(date?.series.reduce((a, b) => a + b.outcomes, 0)).toBe(60);
    expect(date?.variants).toEqual([{ name: 'invoice', firstTs: T0, lastTs: T0 + 118 * S, outcomes: 60 }]);

    // vendor: two bursts three hours apart, the idle stretch between them cut out of the series.
    const series = vendor?.series ?? [];
    const width = vendor?.bucketMs ?? 0;
    expect(width).toBeLessThanOrEqual(15_000);
    expect(series.length).toBeGreaterThan(20);
    expect(series.length).toBeLessThanOrEqual(48);
    expect(series.reduce((a, b) => a + b.outcomes, 0)).toBe(180);
    expect(series.reduce((a, b) => a + b.failures, 0)).toBe(12 + 24);
    const cuts = series.filter((b, i) => i > 0 && b.startMs - (series[i - 1]?.startMs ?? 0) > width);
    expect(cuts.map((b) => b.startMs)).toEqual([T0 + 3 * 3_600_000]);
    expect(vendor?.variants.map((v) => [v.name, v.outcomes])).toEqual([
      ['invoice', 60],
      ['chaos', 120],
    ]);
  });

  it('does not cut a sparse series into dots: ten outcomes scattered over three hours', () => {
    const log = new Log();
    const at = [0, 7, 31, 44, 58, 90, 121, 133, 160, 179].map((m) => T0 + m * 60_000);
    for (const ts of at) log.outcome(ts, 'vendor', 'timeout');
    const [vendor] = buildReport(log.events).errors.taskTypes;
    const series = vendor?.series ?? [];
    const width = vendor?.bucketMs ?? 0;
    const spans =
      1 + series.filter((b, i) => i > 0 && b.startMs - (series[i - 1]?.startMs ?? 0) > width).length;
    expect(spans).toBeLessThanOrEqual(6);
    expect(series.length).toBeLessThanOrEqual(48);
    expect(series.reduce((a, b) => a + b.failures, 0)).toBe(10);
  });

  it('keeps memory bounded per task type: a week of outcomes, one every two minutes, widens and loses none', () => {
    const log = new Log();
    const total = 5_000;
    for (let i = 0; i < total; i++)
      log.outcome(T0 + i * 121 * S, 'routing', i % 50 === 0 ? 'timeout' : undefined);
    const [routing] = buildReport(log.events).errors.taskTypes;
    const series = routing?.series ?? [];
    expect(series.length).toBeLessThanOrEqual(48);
    expect(series.reduce((a, b) => a + b.outcomes, 0)).toBe(total);
    expect(series.reduce((a, b) => a + b.failures, 0)).toBe(total / 50);
    series.forEach((b, i) =>
      expect(b.startMs).toBe((series[0]?.startMs ?? 0) + i * (routing?.bucketMs ?? 0)),
    );
  });

  it('counts cache hits and answers under 1 ms apart from the model-latency histogram', () => {
    const log = new Log();
    for (let i = 0; i < 50; i++)
      log.outcome(T0 + i, 'vendor', undefined, 'vendor_extraction', 2_000 + i * 10);
    for (let i = 0; i < 400; i++) {
      const before = log.events.length;
      log.outcome(T0 + i, 'vendor', undefined, 'vendor_extraction', i < 399 ? 0 : 7); // a 7-ms cache read
      (log.events[before]?.payload as { cached?: boolean }).cached = true;
    }
    for (let i = 0; i < 5; i++) log.outcome(T0 + i, 'vendor', 'circuit_open', 'vendor_extraction', 0); // fast-fails
    const [agent] = buildReport(log.events).latency.agents;
    const h = agent?.histogram;
    expect(agent?.count).toBe(455);
    expect(h?.instantCount).toBe(405);
    expect(h?.cachedCount).toBe(400);
    expect(h?.counts.reduce((a, b) => a + b, 0)).toBe(50);
    expect(h?.edgesMs[0]).toBeGreaterThanOrEqual(1_000); // the bars start at the model latencies
  });

  it('lists an alert its own fold detects once, and marks it logged when the runtime recorded it', () => {
    const log = new Log();
    for (let i = 0; i < 19; i++) log.outcome(T0 + i * S, 'vendor', i < 3 ? 'ocr_error' : undefined);
    const report1 = buildReport(log.events, { errorWindowSize: 20 });
    expect(report1.alerts.raised).toBe(0); // 19 outcomes: the window is not full yet

    log.outcome(T0 + 19 * S, 'vendor');
    const twentieth = log.events.length;
    const detected = buildReport(log.events, { errorWindowSize: 20 });
    expect(detected.alerts.items).toMatchObject([
      { id: `error_rate:vendor:${twentieth}`, kind: 'error_rate', status: 'firing', source: 'report' },
    ]);

    log.add(
      'alert.raised',
      {
        id: `error_rate:vendor:${twentieth}`,
        kind: 'error_rate',
        severity: 'medium',
        title: 'vendor',
        data: {},
      },
      T0 + 19 * S,
    );
    log.add(
      'alert.raised',
      {
        id: 'budget:global:0.8:2026-01-05',
        kind: 'budget',
        severity: 'high',
        title: 'Budget <80%>',
        data: {},
      },
      T0 + 20 * S,
    );
    const logged = buildReport(log.events, { errorWindowSize: 20 });
    expect(logged.alerts.raised).toBe(2);
    expect(logged.alerts.byKind).toEqual({ error_rate: 1, budget: 1 });
    expect(logged.alerts.items.map((a) => [a.kind, a.source])).toEqual([
      ['error_rate', 'log'],
      ['budget', 'log'],
    ]);
  });

  it('keeps the newest maxAlerts alerts but counts them all', () => {
    const log = new Log();
    for (let i = 0; i < 30; i++) {
      log.add(
        'alert.raised',
        { id: `a${i}`, kind: 'custom', severity: 'low', title: `t${i}`, data: null },
        T0 + i,
      );
    }
    const report = buildReport(log.events, { maxAlerts: 5 });
    expect(report.alerts.raised).toBe(30);
    expect(report.alerts.items.map((a) => a.id)).toEqual(['a25', 'a26', 'a27', 'a28', 'a29']);
  });

  it('draws a breaker timeline: time open and half-open up to the end of the log, newest transitions kept', () => {
    const log = new Log();
    const move = (
      s: number,
      from: 'closed' | 'open' | 'halfOpen',
      to: 'closed' | 'open' | 'halfOpen',
      reason: string,
    ) => log.add('breaker.transitioned', { breaker: 'openai', from, to, reason, failures: 5 }, T0 + s * S);
    move(0, 'closed', 'open', 'consecutive_failures');
    move(60, 'open', 'halfOpen', 'reset_timeout');
    move(61, 'halfOpen', 'open', 'probe_failed');
    move(121, 'open', 'halfOpen', 'reset_timeout');
    move(122, 'halfOpen', 'closed', 'probe_succeeded');
    log.outcome(T0 + 200 * S, 'vendor');
    const [b] = buildReport(log.events, { maxBreakerTransitions: 2 }).breakers;
    expect(b).toMatchObject({
      name: 'openai',
      initialState: 'closed',
      state: 'closed',
      sinceTs: T0,
      transitionCount: 5,
      opened: 2,
      openMs: 120 * S,
      halfOpenMs: 2 * S,
    });
    expect(b?.transitions.map((t) => t.reason)).toEqual(['reset_timeout', 'probe_succeeded']);

    // Still open at the end: the open time runs to the last event.
    const stuck = new Log();
    stuck.add(
      'breaker.transitioned',
      { breaker: 'x', from: 'closed', to: 'open', reason: 'r', failures: 3 },
      T0,
    );
    stuck.outcome(T0 + 45 * S, 'vendor');
    expect(buildReport(stuck.events).breakers[0]).toMatchObject({ state: 'open', openMs: 45 * S });
  });

  it('summarises votes (agents used, early stops, savings) and cascades (stage shares, escalations)', () => {
    const log = new Log();
    const decided = (agentsUsed: number, savedUsd: number) =>
      log.add(
        'vote.decided',
        { path: 'fraud/vote', value: 'ok', confidence: 1, agentsUsed, total: 5, savedUsd },
        T0,
      );
    const early = (cast: number) =>
      log.add('vote.early_stop', { path: 'fraud/vote', cast, total: 5, leader: 'ok', skipped: 5 - cast }, T0);
    early(3);
    decided(3, 0.004);
    early(3);
    decided(3, 0.004);
    early(4);
    decided(4, 0.002);
    decided(5, 0);
    const accepted = (stage: number, agent: string) =>
      log.add(
        'cascade.accepted',
        { path: 'screening', stage, agent, confidence: 0.95, savedUsd: stage === 0 ? 0.03 : 0 },
        T0,
      );
    const escalated = () =>
      log.add(
        'cascade.escalated',
        {
          path: 'screening',
          fromStage: 0,
          toStage: 1,
          fromAgent: 'cheap',
          toAgent: 'expensive',
          reason: 'low',
        },
        T0,
      );
    accepted(0, 'cheap');
    accepted(0, 'cheap');
    accepted(0, 'cheap');
    escalated();
    accepted(1, 'expensive');
    escalated(); // the expensive stage then failed: no answer
    const report = buildReport(log.events);
    expect(report.votes).toEqual([
      {
        path: 'fraud/vote',
        decided: 4,
        voters: 5,
        agentsUsed: [
          { agents: 3, count: 2 },
          { agents: 4, count: 1 },
          { agents: 5, count: 1 },
        ],
        meanAgentsUsed: 3.75,
        earlyStops: 3,
        earlyStopShare: 0.75,
        skippedAgents: 5,
        savedUsd: 0.01,
      },
    ]);
    expect(report.cascades).toEqual([
      {
        path: 'screening',
        answered: 4,
        stages: [
          { stage: 0, agent: 'cheap', answered: 3, share: 0.75 },
          { stage: 1, agent: 'expensive', answered: 1, share: 0.25 },
        ],
        escalations: 2,
        escalationsByStage: [{ fromStage: 0, toStage: 1, count: 2 }],
        savedUsd: 0.09,
      },
    ]);
    expect(report.cost.summary.savings.bySource.vote.usd).toBeCloseTo(0.01, 10);
    expect(report.cost.summary.savings.bySource.cascade.usd).toBeCloseTo(0.09, 10);
  });

  it('attributes cost to model and day in the report time zone, against the daily budget', () => {
    const log = new Log();
    log.cost(Date.UTC(2026, 0, 5, 3), 'gpt-4', 6); // 22:00 on Jan 4 in New York
    log.cost(Date.UTC(2026, 0, 5, 15), 'gpt-4', 3);
    log.cost(Date.UTC(2026, 0, 5, 16), 'gpt-3.5-turbo', 1);
    const utc = buildReport(log.events, { budgetUsd: 8 });
    expect(utc.cost.days).toEqual([
      {
        day: '2026-01-05',
        usd: 10,
        calls: 3,
        savedUsd: 0,
        byModel: [
          { model: 'gpt-4', usd: 9, calls: 2 },
          { model: 'gpt-3.5-turbo', usd: 1, calls: 1 },
        ],
        budgetRatio: 1.25,
      },
    ]);
    const ny = buildReport(log.events, { budgetUsd: 8, timeZone: 'America/New_York' });
    expect(ny.cost.days.map((d) => [d.day, d.usd, d.budgetRatio])).toEqual([
      ['2026-01-04', 6, 0.75],
      ['2026-01-05', 4, 0.5],
    ]);
    expect(ny.cost.models).toEqual(['gpt-4', 'gpt-3.5-turbo']);
  });

  it('reads the log once and keeps memory bounded: 200,000 events over 30 days', () => {
    let opened = 0;
    const total = 200_000;
    const source: Iterable<KeelEvent> = {
      [Symbol.iterator]: () => {
        opened++;
        const log = new Log();
        let i = 0;
        return {
          next: (): IteratorResult<KeelEvent> => {
            if (i >= total) return { done: true, value: undefined };
            const ts = T0 + Math.floor((i / total) * 30 * 86_400_000);
            const k = i++;
            log.events.length = 0; // hold nothing: one event at a time
            if (k % 4 === 0)
              log.add(
                'workflow.started',
                { name: `flow${k % 3}`, topology: {}, input: {}, inputHash: 'h' },
                ts,
                `wf${k}`,
              );
            else if (k % 4 === 1)
              log.add(
                'workflow.completed',
                { output: 1, latencyMs: 1_000 + (k % 7_000), costUsd: 0, agentsCalled: 1 },
                ts,
                `wf${k - 1}`,
              );
            else if (k % 4 === 2) log.outcome(ts, `task${k % 5}`, k % 50 === 2 ? 'timeout' : undefined);
            else if (k % 400 === 3)
              log.add(
                'breaker.transitioned',
                {
                  breaker: 'b',
                  from: k % 800 === 3 ? 'closed' : 'open',
                  to: k % 800 === 3 ? 'open' : 'closed',
                  reason: 'r',
                  failures: 1,
                },
                ts,
              );
            else log.cost(ts, k % 2 ? 'gpt-4' : 'gpt-3.5-turbo', 0.01);
            const e = log.events[0] as KeelEvent;
            return { done: false, value: { ...e, seq: k + 1 } };
          },
        };
      },
    };
    const report = buildReport(source, { maxBreakerTransitions: 50, maxAlerts: 20 });
    expect(opened).toBe(1);
    expect(report.span.events).toBe(total);
    expect(report.workflows.reduce((a, w) => a + w.completed, 0)).toBe(total / 4);
    expect(report.workflows.every((w) => w.running === 0)).toBe(true);
    for (const t of report.errors.taskTypes) {
      expect(t.series.length).toBeLessThanOrEqual(48);
      expect(t.series.reduce((a, b) => a + b.outcomes, 0)).toBe(t.outcomes);
    }
    expect(report.errors.taskTypes.reduce((a, t) => a + t.outcomes, 0)).toBe(total / 4);
    expect(report.breakers[0]?.transitions.length).toBe(50);
    expect(report.breakers[0]?.transitionCount).toBe(total / 400);
    expect(report.alerts.items.length).toBeLessThanOrEqual(20);
    expect(report.cost.days).toHaveLength(31); // 30 days from 08:00 touch 31 calendar days
    expect(report.latency.workflows.map((w) => w.histogram.counts.length).every((n) => n <= 141)).toBe(true);
    expect(JSON.parse(JSON.stringify(report))).toEqual(report); // plain data: --json loses nothing
  });

  it('refuses bad options, naming the field', () => {
    const fieldOf = (options: Parameters<typeof buildReport>[1]): string | undefined => {
      try {
        buildReport([], options);
      } catch (e) {
        return isConfigError(e) ? e.field : 'not a ConfigError';
      }
      return undefined;
    };
    expect(fieldOf({ slaP95Ms: -5 })).toBe('slaP95Ms');
    expect(fieldOf({ budgetUsd: 0 })).toBe('budgetUsd');
    expect(fieldOf({ budgetUsd: Number.NaN })).toBe('budgetUsd');
    expect(fieldOf({ timeZone: 'Mars/Olympus_Mons' })).toBe('timeZone');
    expect(fieldOf({ maxTimeBuckets: 1 })).toBe('maxTimeBuckets');
    expect(fieldOf({ errorTargets: { vendor: 2 } })).toBe('targets.vendor');
    expect(fieldOf({ budgetUsd: 100, slaP95Ms: 10_000 })).toBeUndefined();
  });

  it('reports an empty log as empty', () => {
    const report = buildReport([]);
    expect(report.span).toEqual({
      events: 0,
      firstSeq: undefined,
      lastSeq: undefined,
      firstTs: undefined,
      lastTs: undefined,
      byType: {},
    });
    expect(report.workflows).toEqual([]);
    expect(report.cost.summary.actualUsd).toBe(0);
    expect(report.rootCauses.overall.failures).toBe(0);
  });
});
