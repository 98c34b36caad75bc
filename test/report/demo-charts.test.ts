/**
 * The HTML report of a real demo log, laid out by headless Chromium and measured: `keel demo all`
 * writes four demos an hour apart, each running a few minutes, so every task type's data covers a
 * sliver of a three-hour log — the case where 5-minute buckets drew one dot per chart, cache hits
 * piled into a "1 ms" bar that set the histograms' scale, and the last time label was clipped.
 * `KEEL_UPDATE_SCREENSHOT=1` also writes the page's screenshot to docs/report.png.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_NAMES, runDemo } from '../../demos/index.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { buildReport } from '../../src/report/build.js';
import { renderHtml } from '../../src/report/html.js';
import type { Report } from '../../src/report/report.js';
import { CHROMIUM, measureInChromium, runChromium } from './chromium.js';

const SKIP = CHROMIUM === undefined && !process.env.CI;
if (SKIP) {
  console.warn(
    'test/report/demo-charts.test.ts: Chromium is not installed, so the demo report is not laid out. ' +
      'Install it (apt-get install -y chromium) to run it; in CI it always runs.',
  );
}

/** A box in page pixels. */
interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** What the probe measures of each chart after layout. */
interface Measured {
  kind: string;
  title: string;
  box: Box;
  texts: (Box & { text: string; tick: boolean })[];
  points: number;
  tallestBar: number;
  instantBar: number;
  plotHeight: number;
  openSegments: number[];
}

/** Runs in the page: every chart's box, its texts' boxes, and the marks the assertions need. */
const PROBE = `
  const box = (r) => ({ x: r.left, y: r.top, w: r.width, h: r.height });
  return [...document.querySelectorAll('svg.chart')].map((svg) => {
    const heights = (sel) => [...svg.querySelectorAll(sel)].map((m) => m.getBoundingClientRect().height);
    const axis = svg.querySelector('g.axis-y > line');
    return {
      kind: svg.dataset.chart,
      title: svg.querySelector('title').textContent,
      box: box(svg.getBoundingClientRect()),
      texts: [...svg.querySelectorAll('text')].map((t) => ({
        text: t.textContent,
        tick: t.closest('g.axis-x') !== null && !t.classList.contains('axis-label'),
        ...box(t.getBoundingClientRect()),
      })),
      points: svg.querySelectorAll('circle.point').length,
      tallestBar: Math.max(0, ...heights('rect.bar:not(.instant)')),
      instantBar: Math.max(0, ...heights('rect.instant')),
      plotHeight: axis ? axis.getBoundingClientRect().height : 0,
      openSegments: [...svg.querySelectorAll('rect.segment')]
        .filter((r) => r.getAttribute('fill') === '#C62828')
        .map((r) => r.getBoundingClientRect().width),
    };
  });
`;

let work: string;
let report: Report;
let html: string;
let charts: Measured[] = [];
/** The same measures of `keel demo invoice` alone: a log of two and a half minutes. */
let invoiceCharts: Measured[] = [];

async function reportOf(db: string): Promise<Report> {
  const store = openSqliteStore({ path: db, readonly: true });
  try {
    return buildReport(store.iterate());
  } finally {
    await store.close();
  }
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'keel-demo-charts-'));
  const db = join(work, 'demo.db');
  for (const name of DEMO_NAMES) await runDemo(name, { db, count: 300, seed: 42 });
  report = await reportOf(db);
  html = renderHtml(report);
  const invoiceDb = join(work, 'invoice.db');
  await runDemo('invoice', { db: invoiceDb, count: 300, seed: 42 });
  const invoiceHtml = renderHtml(await reportOf(invoiceDb));
  if (!SKIP) {
    charts = await measureInChromium<Measured[]>(html, work, PROBE);
    invoiceCharts = await measureInChromium<Measured[]>(invoiceHtml, work, PROBE);
  }
}, 300_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(SKIP)('the HTML report of keel demo all, laid out by Chromium', () => {
  it('is a log hours long whose task types each ran for minutes (the case under test)', () => {
    const { firstTs = 0, lastTs = 0 } = report.span;
    expect(lastTs - firstTs).toBeGreaterThan(2 * 3_600_000);
    const date = report.errors.taskTypes.find((t) => t.taskType === 'date');
    const [firstDate] = date?.variants ?? [];
    expect(date?.variants.every((v) => v.lastTs - (firstDate?.firstTs ?? 0) < 10 * 60_000)).toBe(true);
    expect(charts.length).toBe(html.match(/<svg class="chart"/g)?.length);
  });

  it('keeps every text of every chart inside its chart (also the last time label: no "00:02:3")', () => {
    expect(invoiceCharts.some((c) => c.kind === 'error-rate')).toBe(true);
    for (const c of [...charts, ...invoiceCharts])
      for (const t of c.texts) {
        const where = `${c.kind} "${c.title}": "${t.text}"`;
        expect(t.x, where).toBeGreaterThanOrEqual(c.box.x - 0.5);
        expect(t.x + t.w, where).toBeLessThanOrEqual(c.box.x + c.box.w + 0.5);
        expect(t.y, where).toBeGreaterThanOrEqual(c.box.y - 0.5);
        expect(t.y + t.h, where).toBeLessThanOrEqual(c.box.y + c.box.h + 0.5);
      }
  });

  it('never overlaps two x-axis labels', () => {
    for (const c of [...charts, ...invoiceCharts]) {
      const ticks = c.texts.filter((t) => t.tick && t.text !== '').sort((a, b) => a.x - b.x);
      ticks.forEach((t, i) => {
        const prev = ticks[i - 1];
        if (prev !== undefined && Math.abs(prev.y - t.y) < 2)
          expect(t.x, `${c.kind} "${c.title}": "${prev.text}" / "${t.text}"`).toBeGreaterThanOrEqual(
            prev.x + prev.w,
          );
      });
    }
  });

  it('draws each task type over the span its data covers: at least 12 points per error-rate chart', () => {
    const errorCharts = charts.filter((c) => c.kind === 'error-rate');
    expect(errorCharts.length).toBe(Math.min(8, report.errors.taskTypes.length));
    for (const c of errorCharts) expect(c.points, c.title).toBeGreaterThanOrEqual(12);
  });

  it('draws cache hits apart: the model latencies, not the cache column, set the histogram scale', () => {
    const latency = charts.filter((c) => c.kind === 'latency');
    const withCache = latency.filter((c) => c.instantBar > 0);
    expect(withCache.length).toBeGreaterThan(0);
    for (const c of latency) expect(c.tallestBar, c.title).toBeGreaterThan(c.plotHeight * 0.5);
  });

  it('shows the outage breaker over the span of its transitions, not a sliver of the log', () => {
    const [breakers] = charts.filter((c) => c.kind === 'breakers');
    const open = breakers?.openSegments ?? [];
    expect(open.length).toBeGreaterThan(0);
    expect(Math.max(...open)).toBeGreaterThan((breakers?.box.w ?? 0) * 0.1);
  });

  it('takes a 1280 px wide screenshot (KEEL_UPDATE_SCREENSHOT=1 writes docs/report.png)', async () => {
    const file = join(work, 'report.html');
    writeFileSync(file, html);
    const png = join(work, 'report.png');
    // Tall enough for the latency histograms and the error-rate charts.
    const { code } = await runChromium(file, work, '--window-size=1280,3900', `--screenshot=${png}`);
    expect(code).toBe(0);
    const bytes = readFileSync(png);
    expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(bytes.readUInt32BE(16)).toBe(1280); // IHDR width
    if (process.env.KEEL_UPDATE_SCREENSHOT) copyFileSync(png, join(resolve('docs'), 'report.png'));
  }, 90_000);
});
