import { describe, expect, it } from 'vitest';
import { DEMO_NAMES, runDemo, type DemoName } from '../../demos/index.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { buildReport } from '../../src/report/build.js';
import { tmpDb } from '../demos/helpers.js';

/** The alerts the live runtime raised (and delivered: delivery follows these events), in log order. */
function liveAlerts(db: string): string[] {
  const store = openSqliteStore({ path: db, readonly: true });
  try {
    return store
      .query({ type: ['alert.raised', 'alert.resolved'] })
      .map((e) =>
        e.type === 'alert.raised' || e.type === 'alert.resolved'
          ? `${e.type === 'alert.raised' ? 'firing' : 'resolved'} ${e.payload.id}`
          : '',
      );
  } finally {
    void store.close();
  }
}

/** What `keel report` lists for the same log, with its defaults (the runtime's defaults). */
function reportAlerts(db: string): { items: string[]; reportOnly: string[] } {
  const store = openSqliteStore({ path: db, readonly: true });
  try {
    const report = buildReport(store.iterate(), { maxAlerts: 10_000 });
    return {
      items: report.alerts.items.map((a) => `${a.status} ${a.id}`),
      reportOnly: report.alerts.items.filter((a) => a.source === 'report').map((a) => `${a.status} ${a.id}`),
    };
  } finally {
    void store.close();
  }
}

async function demo(db: string, names: readonly DemoName[], count: number): Promise<void> {
  for (const name of names) await runDemo(name, { db, count, seed: 42 });
}

describe('the live runtime and keel report list the same alerts for the same log', () => {
  it('keel demo invoice (two runtimes on one file: parallel, then sequential)', async () => {
    const db = tmpDb();
    await demo(db, ['invoice'], 400);
    const live = liveAlerts(db);
    expect(live.length).toBeGreaterThan(0);
    const report = reportAlerts(db);
    expect(report.reportOnly).toEqual([]);
    expect(report.items).toEqual(live);
  }, 120_000);

  it('keel demo all (one runtime per demo on one file, an hour apart)', async () => {
    const db = tmpDb();
    await demo(db, DEMO_NAMES, 300);
    const live = liveAlerts(db);
    expect(new Set(live.map((a) => a.split(':')[0])).size).toBeGreaterThan(1);
    const report = reportAlerts(db);
    expect(report.reportOnly).toEqual([]);
    expect(report.items).toEqual(live);
  }, 240_000);
});
