/**
 * Just enough SVG to draw the report's charts without a library or a network: escaping, scales,
 * "nice" ticks, axes, legends and the chart frame. Every chart is an `<svg class="chart">` whose
 * data marks carry `class="mark"`. Internal: not part of the public surface.
 */

/** Escapes text for HTML/SVG content and attribute values (double- or single-quoted). */
export function esc(text: string): string {
  let out = '';
  let last = 0;
  for (let i = 0; i < text.length; i++) {
    let rep: string | undefined;
    switch (text.charCodeAt(i)) {
      case 38:
        rep = '&amp;';
        break;
      case 60:
        rep = '&lt;';
        break;
      case 62:
        rep = '&gt;';
        break;
      case 34:
        rep = '&quot;';
        break;
      case 39:
        rep = '&#39;';
        break;
      default:
        if (text.charCodeAt(i) < 0x20 && text.charCodeAt(i) !== 0x0a && text.charCodeAt(i) !== 0x09)
          rep = '\ufffd';
    }
    if (rep !== undefined) {
      out += text.slice(last, i) + rep;
      last = i + 1;
    }
  }
  return last === 0 ? text : out + text.slice(last);
}

/** A number for an SVG attribute: at most one decimal. */
export function n(x: number): string {
  return String(Math.round(x * 10) / 10);
}

/** Colour-blind-safe series colours (Okabe–Ito), then greys. */
export const PALETTE: readonly string[] = [
  '#0072B2',
  '#E69F00',
  '#009E73',
  '#CC79A7',
  '#56B4E9',
  '#D55E00',
  '#F0E442',
  '#999999',
];

/** Colour of series `i`. */
export function colour(i: number): string {
  return PALETTE[i % PALETTE.length] ?? '#999999';
}

/** Signals: SLA / budget / target lines and bad states. */
export const RED = '#C62828';
export const GREEN = '#2E7D32';
export const AMBER = '#F9A825';
export const INK = '#222222';
export const MUTED = '#666666';
export const GRID = '#E3E3E3';

/** A mapping from data values to pixels. */
export interface Scale {
  (value: number): number;
  readonly domain: readonly [number, number];
}

/** A linear scale; a zero-width domain maps to the middle of the range. */
export function linear(domain: readonly [number, number], range: readonly [number, number]): Scale {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
  const f = (v: number): number => (d1 === d0 ? (r0 + r1) / 2 : r0 + (v - d0) * k);
  return Object.assign(f, { domain: [d0, d1] as const });
}

/** A log10 scale (domain values must be > 0; smaller values are clamped to the domain start). */
export function log(domain: readonly [number, number], range: readonly [number, number]): Scale {
  const l0 = Math.log10(domain[0]);
  const l1 = Math.log10(domain[1]);
  const inner = linear([l0, l1], range);
  const f = (v: number): number => inner(Math.log10(Math.max(v, domain[0])));
  return Object.assign(f, { domain: [domain[0], domain[1]] as const });
}

/** About `count` round ticks covering [min, max] (steps of 1, 2 or 5 × 10^k). */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(min / step - 1e-9) * step; v <= max + step * 1e-9; v += step) {
    out.push(Math.round(v / step) * step + 0); // + 0 turns -0 into 0
  }
  return out;
}

/** The smallest round number >= `max` that {@link niceTicks} ends on (at least `floor`). */
export function niceMax(max: number, floor = 1): number {
  if (!(max > 0)) return floor;
  const ticks = niceTicks(0, max, 5);
  const last = ticks[ticks.length - 1] ?? max;
  return Math.max(floor, last >= max ? last : max);
}

/** Ticks at 1, 2 and 5 × 10^k inside [min, max] (min > 0). */
export function logTicks(min: number, max: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * Math.pow(10, e);
      if (v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9)) out.push(v);
    }
  }
  return out;
}

/** The drawing area of a chart: outer size and the plot inside its margins. */
export interface Frame {
  width: number;
  height: number;
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/** A frame of `width` × `height` with room for a title, a legend and both axes. */
export function frame(
  width: number,
  height: number,
  margins: Partial<Omit<Frame, 'width' | 'height'>> = {},
): Frame {
  const left = margins.left ?? 64;
  const top = margins.top ?? 56;
  return {
    width,
    height,
    left,
    top,
    right: width - (margins.right ?? 24),
    bottom: height - (margins.bottom ?? 44),
  };
}

/** A bottom axis: baseline, ticks with labels, light vertical grid lines, and a label. */
export function axisX(
  f: Frame,
  scale: Scale,
  ticks: readonly number[],
  fmt: (v: number) => string,
  label: string,
): string {
  let out = `<g class="axis axis-x"><line x1="${n(f.left)}" y1="${n(f.bottom)}" x2="${n(f.right)}" y2="${n(f.bottom)}" stroke="${INK}"/>`;
  let prevRight = -Infinity;
  for (const t of ticks) {
    const x = scale(t);
    if (x < f.left - 0.5 || x > f.right + 0.5) continue;
    out +=
      `<line x1="${n(x)}" y1="${n(f.top)}" x2="${n(x)}" y2="${n(f.bottom)}" stroke="${GRID}"/>` +
      `<line x1="${n(x)}" y1="${n(f.bottom)}" x2="${n(x)}" y2="${n(f.bottom + 5)}" stroke="${INK}"/>`;
    // Labels stay inside the chart (anchored at their tick's far side near an edge) and never overlap.
    const text = fmt(t);
    const w = textWidth(text) * LABEL_SLACK;
    let anchor = 'middle';
    let l = x - w / 2;
    if (x + w / 2 > f.width - EDGE_PAD) {
      anchor = 'end';
      l = x - w;
    } else if (l < EDGE_PAD) {
      anchor = 'start';
      l = x;
    }
    if (l < prevRight + 6) continue;
    prevRight = anchor === 'end' ? x : anchor === 'start' ? x + w : x + w / 2;
    out += `<text x="${n(x)}" y="${n(f.bottom + 18)}" text-anchor="${anchor}">${esc(text)}</text>`;
  }
  out += `<text class="axis-label" x="${n((f.left + f.right) / 2)}" y="${n(f.height - 6)}" text-anchor="middle">${esc(label)}</text></g>`;
  return out;
}

/** Estimated widths may run short by this factor (digits are wider than the average glyph). */
const LABEL_SLACK = 1.15;
/** Room kept between an axis label and the chart's edge, px. */
const EDGE_PAD = 2;

/** A left axis: baseline, ticks with labels, light horizontal grid lines, and a rotated label. */
export function axisY(
  f: Frame,
  scale: Scale,
  ticks: readonly number[],
  fmt: (v: number) => string,
  label: string,
): string {
  let out = `<g class="axis axis-y"><line x1="${n(f.left)}" y1="${n(f.top)}" x2="${n(f.left)}" y2="${n(f.bottom)}" stroke="${INK}"/>`;
  for (const t of ticks) {
    const y = scale(t);
    if (y < f.top - 0.5 || y > f.bottom + 0.5) continue;
    out +=
      `<line x1="${n(f.left)}" y1="${n(y)}" x2="${n(f.right)}" y2="${n(y)}" stroke="${GRID}"/>` +
      `<text x="${n(f.left - 8)}" y="${n(y + 4)}" text-anchor="end">${esc(fmt(t))}</text>`;
  }
  const cy = (f.top + f.bottom) / 2;
  out += `<text class="axis-label" x="14" y="${n(cy)}" text-anchor="middle" transform="rotate(-90 14 ${n(cy)})">${esc(label)}</text></g>`;
  return out;
}

/** One legend entry: a swatch (box or dashed line) and a label. */
export interface LegendItem {
  label: string;
  colour: string;
  /** Drawn as a line (dashed when true) instead of a box. */
  line?: 'solid' | 'dashed';
}

/** A legend in one row just above the plot, left-aligned with it. */
export function legend(f: Frame, items: readonly LegendItem[]): string {
  let x = f.left;
  const y = f.top - 16;
  let out = '<g class="legend">';
  for (const item of items) {
    const swatch =
      item.line === undefined
        ? `<rect x="${n(x)}" y="${n(y - 9)}" width="12" height="12" fill="${item.colour}"/>`
        : `<line x1="${n(x)}" y1="${n(y - 3)}" x2="${n(x + 16)}" y2="${n(y - 3)}" stroke="${item.colour}" stroke-width="2.5"${item.line === 'dashed' ? ' stroke-dasharray="5 3"' : ''}/>`;
    out += `${swatch}<text x="${n(x + 20)}" y="${n(y + 1)}">${esc(item.label)}</text>`;
    x += 20 + textWidth(item.label) + 18;
  }
  return `${out}</g>`;
}

/** Approximate width of `text` at the charts' 12 px font (for layout only). */
export function textWidth(text: string, px = 12): number {
  return [...text].length * px * 0.58;
}

/** `text` cut to about `maxPx` wide at `px` font size, with an ellipsis when cut. */
export function fit(text: string, maxPx: number, px = 12): string {
  const chars = [...text];
  const max = Math.floor(maxPx / (px * 0.58));
  return chars.length <= max ? text : `${chars.slice(0, Math.max(1, max - 1)).join('')}…`;
}

/**
 * The chart element: an accessible `<svg class="chart">` with a title (and an optional muted
 * subtitle under it; give such charts a frame `top` of 72) at the top and `body` inside. Titles too
 * wide for the chart are cut with an ellipsis; the full text stays in the SVG `<title>`. `kind`
 * names the chart (`data-chart`), for styling and tests.
 */
export function chart(kind: string, f: Frame, title: string, body: string, subtitle?: string): string {
  const room = f.width - f.left - 8;
  const description = subtitle === undefined ? title : `${title}: ${subtitle}`;
  return (
    `<svg class="chart" data-chart="${esc(kind)}" role="img" viewBox="0 0 ${f.width} ${f.height}" ` +
    `width="${f.width}" height="${f.height}">` +
    `<title>${esc(description)}</title>` +
    `<text class="chart-title" x="${n(f.left)}" y="20">${esc(fit(title, room, 14))}</text>` +
    (subtitle === undefined
      ? ''
      : `<text class="chart-subtitle" x="${n(f.left)}" y="38" fill="${MUTED}">${esc(fit(subtitle, room, 12))}</text>`) +
    `${body}</svg>`
  );
}

/** A percentage tick label with as many decimals as the tick step needs: 0%, 0.5%, 1%. */
export function pctTicks(ticks: readonly number[]): (ratio: number) => string {
  const step = ticks.length > 1 ? Math.abs((ticks[1] ?? 0) - (ticks[0] ?? 0)) : 1;
  const decimals = Math.max(0, Math.min(3, Math.ceil(-Math.log10(step * 100) + 1e-9)));
  return (ratio) => `${(ratio * 100).toFixed(decimals)}%`;
}

/** A message drawn in place of a chart that has no data. */
export function empty(kind: string, f: Frame, title: string, message: string): string {
  return chart(
    kind,
    f,
    title,
    `<text x="${n(f.width / 2)}" y="${n(f.height / 2)}" text-anchor="middle" fill="${MUTED}">${esc(message)}</text>`,
  );
}
