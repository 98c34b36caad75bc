import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeelEvent } from '../../src/eventlog/events.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { rca } from '../../src/monitor/rca.js';
import { buildReport, createReportFold } from '../../src/report/build.js';
import type { Report, ReportOptions } from '../../src/report/report.js';
import { foldEvents, type EventFold } from '../../src/eventlog/fold.js';
import { Log } from './events.js';
import { asAsync, asyncFleetLog, reachableAfterGc } from './fleet-log.js';
import { FIXTURE_SETTINGS, buildFixture, type Fixture } from './fixture.js';

let fixture: Fixture;
let events: KeelEvent[];
const options: ReportOptions = {
  slaP95Ms: FIXTURE_SETTINGS.slaP95Ms,
  budgetUsd: FIXTURE_SETTINGS.budgetUsd,
  errorTargets: FIXTURE_SETTINGS.errorTargets,
  errorWindowSize: FIXTURE_SETTINGS.windowSize,
};

beforeAll(async () => {
  fixture = await buildFixture();
  const store = openSqliteStore({ path: fixture.db, readonly: true });
  try {
    events = store.query();
  } finally {
    await store.close();
  }
}, 120_000);

afterAll(() => {
  if (fixture) rmSync(fixture.dir, { recursive: true, force: true });
});

describe('keel report as a push-based fold', () => {
  it('gives over an asynchronous stream the very report buildReport gives over the same log', async () => {
    const sync = buildReport(events, options);
    const streamed = await foldEvents(createReportFold(options), asAsync(events));
    expect(streamed).toEqual(sync);
    // a log with every section filled, so the comparison covers them all
    expect(sync.span.events).toBe(events.length);
    expect(sync.votes.length).toBeGreaterThan(0);
    expect(sync.cascades.length).toBeGreaterThan(0);
    expect(sync.breakers.length).toBeGreaterThan(0);
    expect(sync.rootCauses.overall.failures).toBeGreaterThan(0);
    // and a synchronous stream through the same driver
    expect(await foldEvents(createReportFold(options), events)).toEqual(sync);
  });

  it("finds the root causes rca() finds over the same events, names in the log's order", () => {
    const check = (log: readonly KeelEvent[]): void => {
      const causes = rca(log);
      const r = buildReport(log).rootCauses;
      expect(r.overall).toEqual(causes.overall);
      expect(r.byAgent).toEqual(causes.byAgent);
      expect(r.byTaskType).toEqual(causes.byTaskType);
      expect(Object.keys(r.byAgent)).toEqual(Object.keys(causes.byAgent));
      expect(Object.keys(r.byTaskType)).toEqual(Object.keys(causes.byTaskType));
      expect(r.text).toBe(causes.format());
    };
    check(events);
    // Outcomes out of time order, task types first seen under different agents, unknown categories.
    const T0 = Date.UTC(2026, 0, 5, 8);
    const log = new Log();
    log.outcome(T0 + 5_000, 'vendor', 'ocr_error', 'a1');
    log.outcome(T0, 'payment', undefined, 'a2');
    log.outcome(T0 + 7_200_000, 'routing', 'timeout', 'a1');
    log.outcome(T0 + 60_000, 'vendor', 'ocr_error', 'a2');
    log.outcome(T0 + 1_000, 'payment', 'mystery' as never, 'a3');
    log.outcome(T0 + 2_000, 'vendor', undefined, 'a1');
    check(log.events);
    expect(buildReport(log.events).rootCauses.text).toContain('in 2 hours');
  });

  it('streams 180,000 events of 20,000 workflows in lockstep, holding only the running ones', async () => {
    const fold = createReportFold();
    let applied = 0;
    let ahead = 0;
    let maxOpen = 0;
    const sampled: WeakRef<KeelEvent>[] = [];
    const probe: EventFold<Report> = {
      apply(e) {
        applied++;
        if (e.seq % 1_000 === 0) sampled.push(new WeakRef(e));
        fold.apply(e);
      },
      result: () => fold.result(),
    };
    const report = await foldEvents(
      probe,
      asyncFleetLog(20_000, 16, (yielded) => {
        // The stream never runs ahead of the fold: nothing collects the log first.
        ahead = Math.max(ahead, yielded - applied);
        maxOpen = Math.max(maxOpen, fold.openWorkflows);
      }),
    );
    expect(applied).toBeGreaterThan(180_000);
    expect(ahead).toBe(0);
    expect(maxOpen).toBe(16);
    expect(report.span.events).toBe(applied);
    expect(report.workflows).toEqual([
      {
        name: 'fraud',
        started: 10_000,
        completed: 10_000,
        failed: 0,
        cancelled: 0,
        interrupted: 0,
        running: 0,
        resumed: 0,
        waiting: 0,
      },
      {
        name: 'triage',
        started: 10_000,
        completed: 10_000,
        failed: 0,
        cancelled: 0,
        interrupted: 0,
        running: 0,
        resumed: 0,
        waiting: 0,
      },
    ]);
    expect(report.cascades[0]?.answered).toBe(10_000);
    expect(report.votes[0]?.decided).toBe(10_000);
    // The events read are garbage once folded: of one in a thousand, none is still reachable.
    expect(sampled.length).toBe(Math.floor(applied / 1_000));
    expect(await reachableAfterGc(sampled)).toBeLessThanOrEqual(1);
  }, 60_000);
});
