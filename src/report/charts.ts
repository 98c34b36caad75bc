/**
 * The report's charts, each a function from a part of the {@link Report} to one inline SVG:
 * latency histograms with P50/P95/P99 and the SLA, cost per model per day against the budget,
 * error rate against target over time, breaker state timelines, vote and cascade statistics, and
 * root causes. Internal: not part of the public surface.
 *
 * Size (~630 lines, over the ~600 rule): one function per chart sharing one set of scales and
 * label rules (the Chromium layout test checks them together).
 */
import type { FailureBreakdown } from '../monitor/rca.js';
import {
  BREAKER_LABELS,
  CATEGORY_LABELS,
  causePct,
  count,
  duration,
  pct0,
  pct1,
  usd,
  type TimeFormat,
} from './format.js';
import type {
  BreakerTimeline,
  CascadeStats,
  CostSection,
  ErrorBucket,
  LatencyReport,
  SeriesVariant,
  TaskTypeErrors,
  VoteStats,
} from './report.js';
import {
  AMBER,
  GREEN,
  INK,
  RED,
  axisX,
  axisY,
  chart,
  colour,
  MUTED,
  empty,
  esc,
  fit,
  frame,
  legend,
  linear,
  log,
  logTicks,
  n,
  niceMax,
  niceTicks,
  pctTicks,
  textWidth,
  type Frame,
  type LegendItem,
  type Scale,
} from './svg.js';

const BAR = '#8FB8DE';
const P50 = '#009E73';
const P95 = '#E69F00';
const P99 = '#CC79A7';
const STATE_COLOURS = { closed: GREEN, open: RED, halfOpen: AMBER } as const;

/** A vertical marker line across the plot. */
function vline(f: Frame, x: number, stroke: string, dashed: boolean, title: string): string {
  return (
    `<line class="mark marker" x1="${n(x)}" y1="${n(f.top)}" x2="${n(x)}" y2="${n(f.bottom)}" stroke="${stroke}" ` +
    `stroke-width="2.5"${dashed ? ' stroke-dasharray="6 4"' : ''}><title>${esc(title)}</title></line>`
  );
}

/** A horizontal marker line across the plot, labelled at its right end. */
function hline(f: Frame, y: number, stroke: string, label: string): string {
  return (
    `<line class="mark marker" x1="${n(f.left)}" y1="${n(y)}" x2="${n(f.right)}" y2="${n(y)}" stroke="${stroke}" ` +
    `stroke-width="2" stroke-dasharray="6 4"><title>${esc(label)}</title></line>` +
    `<text x="${n(f.right - 4)}" y="${n(y - 5)}" text-anchor="end" fill="${stroke}" class="marker-label">${esc(label)}</text>`
  );
}

/** Fill of the column of cache hits and sub-millisecond answers. */
const INSTANT = '#BDBDBD';
/** Width of that column and the room between it and the log-scale plot, px. */
const INSTANT_W = 56;
const INSTANT_GAP = 16;

/**
 * Latency histogram of one workflow or agent: log-spaced buckets of the model latencies,
 * P50/P95/P99 markers from the latency projection, and the SLA line. Cache hits and answers under
 * 1 ms have no place on a log scale: they get a column of their own at the left, apart from the
 * model latencies, and do not set the bars' scale (a column taller than the bars is drawn broken,
 * with its count written in it).
 */
export function latencyChart(
  l: LatencyReport,
  slaMs: number,
  kind: 'workflow' | 'agent',
  width: number,
): string {
  const f = frame(width, 280);
  const verdict = l.meetsSla ? '✓' : '✗';
  const title = `${kind === 'workflow' ? 'Workflow' : 'Agent'} ${l.name}: P95 ${duration(l.p95Ms)} vs SLA ${duration(slaMs)} ${verdict}`;
  const { edgesMs, counts, instantCount, cachedCount } = l.histogram;
  const firstEdge = edgesMs[0];
  const lastEdge = edgesMs[edgesMs.length - 1];
  const timed = counts.length > 0 && firstEdge !== undefined && lastEdge !== undefined;
  if (!timed && instantCount === 0) return empty('latency', f, title, 'No latencies recorded.');
  let lo = timed ? firstEdge : 1;
  let hi = timed ? lastEdge : 10;
  const slaShown = slaMs <= hi * 20 && slaMs >= lo / 20;
  if (slaShown) {
    lo = Math.min(lo, slaMs / 1.2);
    hi = Math.max(hi, slaMs * 1.2);
  }
  lo /= 1.1;
  hi *= 1.1;
  const plot: Frame = instantCount > 0 ? { ...f, left: f.left + INSTANT_W + INSTANT_GAP } : f;
  const x = log([lo, hi], [plot.left, plot.right]);
  const peak = timed ? Math.max(...counts) : instantCount;
  const yMax = niceMax(peak);
  const y = linear([0, yMax], [f.bottom, f.top]);

  let bars = '';
  counts.forEach((c, i) => {
    if (c === 0) return;
    const x0 = x(Math.max(edgesMs[i] ?? lo, lo));
    const x1 = x(edgesMs[i + 1] ?? hi);
    const w = Math.max(1.5, x1 - x0 - 1);
    bars +=
      `<rect class="mark bar" x="${n(x0 + 0.5)}" y="${n(y(c))}" width="${n(w)}" height="${n(f.bottom - y(c))}" fill="${BAR}">` +
      `<title>${esc(`${duration(edgesMs[i] ?? 0)}–${duration(edgesMs[i + 1] ?? 0)}: ${count(c)}`)}</title></rect>`;
  });

  const columnX = f.left + INSTANT_W / 2;
  let column = '';
  if (instantCount > 0) {
    const other = instantCount - cachedCount;
    const what =
      cachedCount === 0
        ? `${count(instantCount)} under 1 ms (no model time: fast-fails, steps without a model call)`
        : `${count(cachedCount)} cache hits` +
          (other > 0 ? ` and ${count(other)} other answers under 1 ms` : '');
    const broken = instantCount > yMax;
    const top = broken ? f.top : y(instantCount);
    const bx = f.left + 8;
    const bw = INSTANT_W - 16;
    column +=
      `<rect class="mark bar instant" x="${n(bx)}" y="${n(top)}" width="${n(bw)}" height="${n(f.bottom - top)}" fill="${INSTANT}">` +
      `<title>${esc(`${what}: drawn apart from the model latencies`)}</title></rect>`;
    if (broken) {
      // Two white slashes across the bar: it is cut, its height is not to scale.
      const by = f.top + (f.bottom - f.top) * 0.3;
      column +=
        `<path d="M${n(bx - 2)} ${n(by + 4)}L${n(bx + bw + 2)} ${n(by - 4)}M${n(bx - 2)} ${n(by + 10)}L${n(bx + bw + 2)} ${n(by + 2)}" stroke="#FFFFFF" stroke-width="3"/>` +
        `<text x="${n(columnX)}" y="${n(f.top + 14)}" text-anchor="middle" font-size="11" class="instant-count">${esc(count(instantCount))}</text>`;
    } else {
      column += `<text x="${n(columnX)}" y="${n(top - 4)}" text-anchor="middle" font-size="11" class="instant-count">${esc(count(instantCount))}</text>`;
    }
    column +=
      `<line x1="${n(f.left)}" y1="${n(f.bottom)}" x2="${n(f.left + INSTANT_W)}" y2="${n(f.bottom)}" stroke="${INK}"/>` +
      `<text x="${n(columnX)}" y="${n(f.bottom + 18)}" text-anchor="middle">${cachedCount > 0 ? 'cached' : '&lt; 1 ms'}</text>`;
  }

  /** A percentile's x: on the log scale, or the column when it is under 1 ms (cache hits). */
  const at = (ms: number): number => (ms < 1 && instantCount > 0 ? columnX : x(Math.max(ms, lo)));
  const markers =
    vline(f, at(l.p50Ms), P50, false, `P50 ${duration(l.p50Ms)}`) +
    vline(f, at(l.p95Ms), P95, false, `P95 ${duration(l.p95Ms)}`) +
    vline(f, at(l.p99Ms), P99, false, `P99 ${duration(l.p99Ms)}`) +
    (slaShown ? vline(f, x(slaMs), RED, true, `SLA: P95 ≤ ${duration(slaMs)}`) : '');
  const items: LegendItem[] = [
    { label: `${count(l.count)} requests`, colour: BAR },
    { label: `P50 ${duration(l.p50Ms)}`, colour: P50, line: 'solid' },
    { label: `P95 ${duration(l.p95Ms)}`, colour: P95, line: 'solid' },
    { label: `P99 ${duration(l.p99Ms)}`, colour: P99, line: 'solid' },
    {
      label: slaShown ? `SLA ${duration(slaMs)}` : `SLA ${duration(slaMs)} (off scale)`,
      colour: RED,
      line: 'dashed',
    },
  ];
  let xt = logTicks(lo, hi);
  if (xt.length > 9) xt = xt.filter((t) => Math.abs(Math.log10(t) - Math.round(Math.log10(t))) < 1e-9);
  const body =
    axisY(f, y, niceTicks(0, yMax, 4), count, 'requests') +
    axisX(plot, x, xt, duration, instantCount > 0 ? 'model latency (log scale)' : 'latency (log scale)') +
    column +
    bars +
    markers +
    legend(f, items);
  return chart('latency', f, title, body);
}

/** Cost per model per day, stacked, with the daily budget line. At most the last 31 days. */
export function costChart(c: CostSection, width: number): string {
  const f = frame(width, 320, { left: 72 });
  const days = c.days.slice(-31);
  const title =
    c.budgetUsd === undefined
      ? `Cost per model per day (total ${usd(c.summary.actualUsd)})`
      : `Cost per model per day vs budget ${usd(c.budgetUsd)}/day (total ${usd(c.summary.actualUsd)})`;
  if (days.length === 0 || c.summary.calls === 0) return empty('cost', f, title, 'No cost recorded.');
  const top = c.models.slice(0, 6);
  const hasOther = c.models.length > top.length;
  const series = hasOther ? [...top, 'other models'] : top;
  const peak = Math.max(...days.map((d) => d.usd), c.budgetUsd ?? 0);
  const yMax = niceMax(peak * 1.08, 0.01);
  const y = linear([0, yMax], [f.bottom, f.top]);
  const band = (f.right - f.left) / days.length;
  const barW = Math.min(64, band * 0.7);
  let bars = '';
  days.forEach((d, i) => {
    const cx = f.left + band * (i + 0.5);
    let base = 0;
    const byModel = new Map(d.byModel.map((m) => [m.model, m]));
    series.forEach((model, s) => {
      const v =
        model === 'other models' && hasOther
          ? d.byModel.filter((m) => !top.includes(m.model)).reduce((sum, m) => sum + m.usd, 0)
          : (byModel.get(model)?.usd ?? 0);
      if (v <= 0) return;
      const y0 = y(base);
      const y1 = y(base + v);
      base += v;
      bars +=
        `<rect class="mark bar" x="${n(cx - barW / 2)}" y="${n(y1)}" width="${n(barW)}" height="${n(Math.max(1, y0 - y1))}" fill="${colour(s)}">` +
        `<title>${esc(`${d.day} ${model}: ${usd(v)}`)}</title></rect>`;
    });
  });
  const every = Math.ceil(days.length / 12);
  let labels = '<g class="axis axis-x">';
  labels += `<line x1="${n(f.left)}" y1="${n(f.bottom)}" x2="${n(f.right)}" y2="${n(f.bottom)}" stroke="${INK}"/>`;
  days.forEach((d, i) => {
    if (i % every !== 0) return;
    labels += `<text x="${n(f.left + band * (i + 0.5))}" y="${n(f.bottom + 18)}" text-anchor="middle">${esc(days.length > 1 ? d.day.slice(5) : d.day)}</text>`;
  });
  labels += `<text class="axis-label" x="${n((f.left + f.right) / 2)}" y="${n(f.height - 6)}" text-anchor="middle">day (${esc(c.summary.timeZone)})</text></g>`;
  const budget =
    c.budgetUsd !== undefined ? hline(f, y(c.budgetUsd), RED, `budget ${usd(c.budgetUsd)}/day`) : '';
  const items: LegendItem[] = series.map((s, i) => ({ label: s, colour: colour(i) }));
  if (c.budgetUsd !== undefined) items.push({ label: 'daily budget', colour: RED, line: 'dashed' });
  const body =
    axisY(f, y, niceTicks(0, yMax, 4), usd, 'spend (USD)') + labels + bars + budget + legend(f, items);
  return chart('cost', f, title, body);
}

const TIME_STEPS = [1, 2, 5, 10, 15, 30]
  .map((s) => s * 1_000)
  .concat(
    [1, 2, 5, 10, 15, 30].map((m) => m * 60_000),
    [1, 2, 3, 6, 12].map((h) => h * 3_600_000),
    [1, 2, 7, 14, 30].map((d) => d * 86_400_000),
  );

/** Round time ticks in [t0, t1] and a label format that fits their step. */
function timeTicks(
  t0: number,
  t1: number,
  time: TimeFormat,
  max = 7,
  multiDay = time(t0).slice(0, 10) !== time(t1).slice(0, 10),
): { ticks: number[]; label: (ms: number) => string } {
  const spanMs = Math.max(1, t1 - t0);
  const step = TIME_STEPS.find((s) => spanMs / s <= max) ?? spanMs / max;
  const ticks: number[] = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) ticks.push(t);
  const label = (ms: number): string => {
    const full = time(ms);
    if (step >= 86_400_000) return full.slice(5, 10);
    if (step < 60_000) return multiDay ? full.slice(5, 19) : full.slice(11, 19);
    return multiDay ? full.slice(5, 16) : full.slice(11, 16);
  };
  return { ticks, label };
}

/** Width of a time bucket in words ("1 min", "15 min", "1 h"). */
function bucketLabel(ms: number): string {
  if (ms < 60_000) return `${ms / 1_000} s`;
  if (ms < 3_600_000) return `${ms / 60_000} min`;
  if (ms < 86_400_000) return `${ms / 3_600_000} h`;
  return `${ms / 86_400_000} d`;
}

/** A stretch of time drawn on a stretch of the x axis. */
interface Piece {
  t0: number;
  t1: number;
  px0: number;
  px1: number;
}

/** Room between two pieces of a cut time axis, px. */
const CUT_PX = 18;

/**
 * A time axis cut at idle stretches: each active span of the series (buckets at most `bucketMs`
 * apart) gets a piece of the axis as wide as its share of the active time.
 */
function cutAxis(
  series: readonly ErrorBucket[],
  bucketMs: number,
  left: number,
  right: number,
): { x: Scale; pieces: Piece[] } {
  const spans: { t0: number; t1: number }[] = [];
  for (const b of series) {
    const last = spans[spans.length - 1];
    if (last !== undefined && b.startMs <= last.t1) last.t1 = b.startMs + bucketMs;
    else spans.push({ t0: b.startMs, t1: b.startMs + bucketMs });
  }
  const active = spans.reduce((a, s) => a + (s.t1 - s.t0), 0);
  const room = right - left - CUT_PX * (spans.length - 1);
  let px = left;
  const pieces = spans.map((s) => {
    const w = (room * (s.t1 - s.t0)) / Math.max(1, active);
    const piece = { ...s, px0: px, px1: px + w };
    px += w + CUT_PX;
    return piece;
  });
  const x = (t: number): number => {
    const p = pieces.find((q) => t <= q.t1) ?? pieces[pieces.length - 1];
    if (p === undefined) return left;
    const c = Math.min(Math.max(t, p.t0), p.t1);
    return p.px0 + ((c - p.t0) / Math.max(1, p.t1 - p.t0)) * (p.px1 - p.px0);
  };
  const first = pieces[0]?.t0 ?? 0;
  const last = pieces[pieces.length - 1]?.t1 ?? 0;
  return { x: Object.assign(x, { domain: [first, last] as const }), pieces };
}

/** Height of one row of the variant strip above an error-rate plot, px. */
const VARIANT_ROW = 16;
/** Most rows of variants drawn (concurrent variants stack). */
const VARIANT_ROWS = 3;

/** Stacks the variants' spans into rows where they do not overlap on the axis. */
function variantRows(
  variants: readonly SeriesVariant[],
  x: Scale,
): { v: SeriesVariant; x0: number; x1: number; row: number }[] {
  const ends: number[] = [];
  const out: { v: SeriesVariant; x0: number; x1: number; row: number }[] = [];
  for (const v of variants) {
    const x0 = x(v.firstTs);
    const x1 = Math.max(x0 + 4, x(v.lastTs));
    const row = ends.findIndex((end) => end + 6 <= x0);
    const r = row >= 0 ? row : ends.length;
    if (r >= VARIANT_ROWS) continue;
    ends[r] = x1;
    out.push({ v, x0, x1, row: r });
  }
  return out;
}

/**
 * Error rate of one task type per time bucket, against its target. The buckets are as wide as the
 * span this task type's outcomes cover needs (not the log's), the time axis is cut where it was
 * idle, and when several workflows (a demo's variants) produced the outcomes, a strip above the
 * plot shows which ran when.
 */
export function errorChart(t: TaskTypeErrors, time: TimeFormat, width: number): string {
  const bucketMs = t.bucketMs;
  const f0 = frame(width, 260);
  const verdict = t.meetsTarget === undefined ? '' : t.meetsTarget ? ' ✓' : ' ✗';
  const title =
    t.target === undefined
      ? `${t.taskType}: error rate ${pct1(t.errorRate)} (no target)`
      : `${t.taskType}: error rate ${pct1(t.errorRate)} vs target ${pct1(t.target)}${verdict}`;
  const first = t.series[0];
  const last = t.series[t.series.length - 1];
  if (first === undefined || last === undefined || t.outcomes === 0) {
    return empty('error-rate', f0, title, 'No outcomes recorded.');
  }
  const { x, pieces } = cutAxis(t.series, bucketMs, f0.left, f0.right);
  const rows = t.variants.length > 1 ? variantRows(t.variants, x) : [];
  const nRows = rows.reduce((m, r) => Math.max(m, r.row + 1), 0);
  const f = frame(width, 260 + nRows * VARIANT_ROW, { top: 56 + nRows * VARIANT_ROW });
  let peak = 0;
  let peakVolume = 0;
  for (const b of t.series) {
    if (b.outcomes > 0) peak = Math.max(peak, b.failures / b.outcomes);
    peakVolume = Math.max(peakVolume, b.outcomes);
  }
  const yMax = Math.min(1, niceMax(Math.max(peak, (t.target ?? 0) * 1.5, 0.01) * 1.05, 0.01));
  const y = linear([0, yMax], [f.bottom, f.top]);
  const volumeH = (f.bottom - f.top) * 0.25;
  const colourOf = (rate: number): string => (t.target !== undefined && rate > t.target ? RED : colour(0));

  let volume = '';
  let path = '';
  let dots = '';
  let prevEnd: number | undefined;
  for (const b of t.series) {
    const bx = x(b.startMs);
    const bw = Math.max(1, x(b.startMs + bucketMs) - bx - 1);
    const cut = prevEnd !== undefined && b.startMs > prevEnd;
    prevEnd = b.startMs + bucketMs;
    if (b.outcomes === 0) continue;
    const vh = (b.outcomes / Math.max(1, peakVolume)) * volumeH;
    volume += `<rect class="volume" x="${n(bx + 0.5)}" y="${n(f.bottom - vh)}" width="${n(bw)}" height="${n(vh)}" fill="#EEEEEE"/>`;
    const rate = b.failures / b.outcomes;
    const px = x(b.startMs + bucketMs / 2);
    const py = y(rate);
    // Empty buckets inside a span join their neighbours (no outcome, no rate); a cut breaks the line.
    path += `${path === '' || cut ? 'M' : 'L'}${n(px)} ${n(py)}`;
    dots +=
      `<circle class="mark point" cx="${n(px)}" cy="${n(py)}" r="3" fill="${colourOf(rate)}">` +
      `<title>${esc(`${time(b.startMs)}: ${count(b.failures)} of ${count(b.outcomes)} failed (${pct1(rate)})`)}</title></circle>`;
  }
  const line =
    path === ''
      ? ''
      : `<path class="mark line" d="${path}" fill="none" stroke="${colour(0)}" stroke-width="2"/>`;
  const target = t.target !== undefined ? hline(f, y(t.target), RED, `target ${pct1(t.target)}`) : '';

  // Ticks per piece, as many as its width holds; cuts marked on the axis with the idle time.
  const multiDay = time(first.startMs).slice(0, 10) !== time(last.startMs + bucketMs).slice(0, 10);
  const ticks: number[] = [];
  const labels = new Map<number, string>();
  let cuts = '';
  pieces.forEach((p, i) => {
    const room = Math.max(1, Math.floor((p.px1 - p.px0) / (multiDay ? 110 : 64)));
    const tt = timeTicks(p.t0, p.t1, time, room, multiDay);
    for (const tick of tt.ticks) {
      ticks.push(tick);
      labels.set(tick, tt.label(tick));
    }
    const next = pieces[i + 1];
    if (next === undefined) return;
    const cx = (p.px1 + next.px0) / 2;
    cuts +=
      `<g class="cut"><title>${esc(`no ${t.taskType} outcomes for ${duration(next.t0 - p.t1)}`)}</title>` +
      `<rect x="${n(p.px1 + 2)}" y="${n(f.top)}" width="${n(CUT_PX - 4)}" height="${n(f.bottom - f.top)}" fill="#F4F5F7"/>` +
      `<rect x="${n(cx - 5)}" y="${n(f.bottom - 3)}" width="10" height="6" fill="#FFFFFF"/>` +
      `<path d="M${n(cx - 6)} ${n(f.bottom + 4)}L${n(cx - 1)} ${n(f.bottom - 4)}M${n(cx + 1)} ${n(f.bottom + 4)}L${n(cx + 6)} ${n(f.bottom - 4)}" stroke="${INK}"/></g>`;
  });

  let strip = '';
  for (const r of rows) {
    const ly = f.top - 6 - r.row * VARIANT_ROW;
    const wPx = r.x1 - r.x0;
    const name = wPx >= 24 ? fit(r.v.name, Math.max(24, wPx), 11) : '';
    strip +=
      `<g class="variant"><title>${esc(`${r.v.name}: ${count(r.v.outcomes)} outcomes, ${time(r.v.firstTs)} → ${time(r.v.lastTs)}`)}</title>` +
      `<path d="M${n(r.x0)} ${n(ly + 4)}V${n(ly)}H${n(r.x1)}V${n(ly + 4)}" fill="none" stroke="${MUTED}"/>` +
      (name === ''
        ? ''
        : `<text x="${n((r.x0 + r.x1) / 2)}" y="${n(ly - 3)}" text-anchor="middle" font-size="11" fill="${MUTED}">${esc(name)}</text>`) +
      '</g>';
  }

  const items: LegendItem[] = [
    { label: `error rate per ${bucketLabel(bucketMs)}`, colour: colour(0), line: 'solid' },
    { label: 'tasks per bucket', colour: '#DDDDDD' },
  ];
  if (t.target !== undefined) items.push({ label: 'target', colour: RED, line: 'dashed' });
  const yTicks = niceTicks(0, yMax, 4);
  const legendFrame = { ...f, top: f.top - nRows * VARIANT_ROW };
  const axisName =
    pieces.length > 1
      ? `time (${bucketLabel(bucketMs)} buckets; idle stretches cut)`
      : `time (${bucketLabel(bucketMs)} buckets)`;
  const body =
    axisY(f, y, yTicks, pctTicks(yTicks), 'error rate') +
    cuts +
    axisX(f, x, ticks, (v) => labels.get(v) ?? '', axisName) +
    volume +
    line +
    dots +
    target +
    strip +
    legend(legendFrame, items);
  return chart('error-rate', f, title, body);
}

/** One lane per breaker, coloured by state over the span of the log. */
export function breakerChart(
  breakers: readonly BreakerTimeline[],
  startTs: number,
  endTs: number,
  time: TimeFormat,
  width: number,
): string {
  const lane = 30;
  const names = breakers.map((b) => b.name);
  const left = Math.min(260, Math.max(90, ...names.map((s) => textWidth(s) + 24)));
  const f = frame(width, 56 + breakers.length * (lane + 10) + 44, { left });
  const title = 'Circuit breaker state over time';
  if (breakers.length === 0) return empty('breakers', f, title, 'No breaker changed state.');
  // The span the transitions cover, with as much again on each side (at least a minute), inside the
  // log: a breaker that tripped for a minute in a three-hour log is not drawn as a sliver.
  const first = Math.min(...breakers.map((b) => b.transitions[0]?.ts ?? b.sinceTs));
  const lastChange = Math.max(
    ...breakers.map((b) => b.transitions[b.transitions.length - 1]?.ts ?? b.sinceTs),
  );
  const pad = Math.max(60_000, lastChange - first);
  const t0 = Math.max(Math.min(startTs, first), first - pad);
  const t1 = Math.max(Math.min(endTs, lastChange + pad), lastChange, t0 + 1);
  const x = linear([t0, t1], [f.left, f.right]);
  let body = '';
  breakers.forEach((b, i) => {
    const top = f.top + i * (lane + 10);
    body += `<text x="${n(f.left - 10)}" y="${n(top + lane / 2 + 4)}" text-anchor="end">${esc(b.name)}</text>`;
    const truncated = b.transitions.length < b.transitionCount;
    let at = truncated ? (b.transitions[0]?.ts ?? b.sinceTs) : t0;
    let state = truncated ? (b.transitions[0]?.from ?? b.initialState) : b.initialState;
    const segment = (from: number, to: number, s: typeof state): void => {
      const x0 = x(from);
      const w = Math.max(2, x(to) - x0);
      body +=
        `<rect class="mark segment" x="${n(x0)}" y="${n(top)}" width="${n(w)}" height="${lane}" fill="${STATE_COLOURS[s]}">` +
        `<title>${esc(`${b.name} ${BREAKER_LABELS[s]} from ${time(from)} for ${duration(to - from)}`)}</title></rect>`;
    };
    for (const t of b.transitions) {
      segment(at, t.ts, state);
      at = t.ts;
      state = t.to;
    }
    segment(at, t1, state);
  });
  const { ticks, label } = timeTicks(t0, t1, time);
  body += axisX({ ...f, top: f.top - 4 }, x, ticks, label, `time (${time(t0)} → ${time(t1)})`);
  body += legend(f, [
    { label: 'closed', colour: GREEN },
    { label: 'open', colour: RED },
    { label: 'half-open', colour: AMBER },
  ]);
  return chart('breakers', f, title, body);
}

/** How many agents each vote called: the saving of adaptive early termination. */
export function voteChart(v: VoteStats, width: number): string {
  const f = frame(width, 280, { top: 72 });
  const title = `Vote ${v.path}: agents called per vote`;
  const subtitle = `${v.meanAgentsUsed.toFixed(1)} of ${v.voters} on average · early stop ${pct0(v.earlyStopShare)} · saved ${usd(v.savedUsd)}`;
  if (v.decided === 0) return empty('votes', f, title, 'No decided votes.');
  const cats = Array.from({ length: Math.max(1, v.voters) }, (_, i) => i + 1);
  const byAgents = new Map(v.agentsUsed.map((u) => [u.agents, u.count]));
  const yMax = niceMax(Math.max(...v.agentsUsed.map((u) => u.count)) * 1.12);
  const y = linear([0, yMax], [f.bottom, f.top]);
  const band = (f.right - f.left) / cats.length;
  const barW = Math.min(70, band * 0.6);
  let bars = '<g class="axis axis-x">';
  bars += `<line x1="${n(f.left)}" y1="${n(f.bottom)}" x2="${n(f.right)}" y2="${n(f.bottom)}" stroke="${INK}"/>`;
  cats.forEach((k, i) => {
    bars += `<text x="${n(f.left + band * (i + 0.5))}" y="${n(f.bottom + 18)}" text-anchor="middle">${k}</text>`;
  });
  bars += `<text class="axis-label" x="${n((f.left + f.right) / 2)}" y="${n(f.height - 6)}" text-anchor="middle">agents called per vote</text></g>`;
  cats.forEach((k, i) => {
    const c = byAgents.get(k) ?? 0;
    if (c === 0) return;
    const cx = f.left + band * (i + 0.5);
    const fill = k < v.voters ? colour(2) : colour(7);
    bars +=
      `<rect class="mark bar" x="${n(cx - barW / 2)}" y="${n(y(c))}" width="${n(barW)}" height="${n(f.bottom - y(c))}" fill="${fill}">` +
      `<title>${esc(`${count(c)} votes called ${k} agents`)}</title></rect>` +
      `<text x="${n(cx)}" y="${n(y(c) - 5)}" text-anchor="middle">${count(c)}</text>`;
  });
  const body =
    axisY(f, y, niceTicks(0, yMax, 4), count, 'votes') +
    bars +
    legend(f, [
      { label: 'stopped early', colour: colour(2) },
      { label: 'heard every voter', colour: colour(7) },
    ]);
  return chart('votes', f, title, body, subtitle);
}

/** A horizontal bar chart: one labelled row per item. */
function rows(
  kind: string,
  f: Frame,
  title: string,
  items: readonly { label: string; value: number; text: string; fill: string; tip: string }[],
  maxValue: number,
  axisLabel: string,
  fmt: (v: number) => string,
  textRoomPx: number,
  subtitle?: string,
): string {
  const rowH = (f.bottom - f.top) / Math.max(1, items.length);
  const x = linear([0, maxValue], [f.left, f.right - textRoomPx]);
  let body = axisX(f, x, niceTicks(0, maxValue, 4), fmt, axisLabel);
  items.forEach((item, i) => {
    const top = f.top + i * rowH + rowH * 0.18;
    const h = rowH * 0.64;
    const w = Math.max(2, x(item.value) - f.left);
    body +=
      `<text x="${n(f.left - 10)}" y="${n(top + h / 2 + 4)}" text-anchor="end">${esc(item.label)}</text>` +
      `<rect class="mark bar" x="${n(f.left)}" y="${n(top)}" width="${n(w)}" height="${n(h)}" fill="${item.fill}"><title>${esc(item.tip)}</title></rect>` +
      `<text x="${n(f.left + w + 6)}" y="${n(top + h / 2 + 4)}">${esc(item.text)}</text>`;
  });
  return chart(kind, f, title, body, subtitle);
}

/** Which stage of a cascade answered, as shares of the answered cascades. */
export function cascadeChart(c: CascadeStats, width: number): string {
  const labels = c.stages.map((s) => `stage ${s.stage} · ${s.agent}`);
  const left = Math.min(300, Math.max(110, ...labels.map((l) => textWidth(l) + 24)));
  const f = frame(width, 56 + Math.max(1, c.stages.length) * 40 + 44, { left, top: 56 });
  const title = `Cascade ${c.path}: which stage answered`;
  const subtitle = `${count(c.answered)} answered · ${count(c.escalations)} escalations · saved ${usd(c.savedUsd)}`;
  if (c.answered === 0 && c.escalations === 0) return empty('cascade', f, title, 'No cascades decided.');
  const items = c.stages.map((s, i) => ({
    label: labels[i] ?? '',
    value: s.share,
    text: `${pct0(s.share)} (${count(s.answered)})`,
    fill: colour(i),
    tip: `stage ${s.stage} (${s.agent}) answered ${count(s.answered)} of ${count(c.answered)}`,
  }));
  return rows('cascade', f, title, items, 1, 'share of answers', pct0, 90, subtitle);
}

/** Failures by root-cause category, the primary cause marked. */
export function rcaChart(overall: FailureBreakdown, width: number): string {
  const causes = overall.causes;
  const f = frame(width, 56 + Math.max(1, causes.length) * 34 + 44, { left: 160, top: 40 });
  const title = `Root causes: ${count(overall.failures)} failures of ${count(overall.outcomes)} tasks (${pct1(overall.errorRate)})`;
  if (causes.length === 0) return empty('rca', f, title, 'No failures.');
  const items = causes.map((c) => ({
    label: CATEGORY_LABELS[c.category],
    value: c.count,
    text: `${count(c.count)} (${causePct(c.percentage)})${c.category === overall.primary ? ' ← PRIMARY ROOT CAUSE' : ''}`,
    fill: c.category === overall.primary ? RED : colour(0),
    tip: `${CATEGORY_LABELS[c.category]}: ${count(c.count)} failures`,
  }));
  const max = niceMax(causes[0]?.count ?? 1);
  return rows('rca', f, title, items, max, 'failures', count, 230);
}
