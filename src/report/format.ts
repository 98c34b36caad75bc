/**
 * How the report writes numbers, money, durations and times, shared by the terminal and HTML
 * renderers so both say the same thing. Internal: not part of the public surface.
 */
export { CATEGORY_LABELS } from '../eventlog/outcome.js';
export { percent0 as causePct } from '../core/format.js';

/** An integer with thousands separators: 10000 → "10,000". */
export function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Money with cents and thousands separators: `$1,234.50`; amounts under a cent keep 4 decimals. */
export function usd(amount: number): string {
  const digits = amount !== 0 && Math.abs(amount) < 0.01 ? 4 : 2;
  return `$${amount.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })}`;
}

/** A ratio as a percentage with one decimal: 0.072 → "7.2%". */
export function pct1(ratio: number): string {
  return `${(ratio * 100).toFixed(1)}%`;
}

/** A ratio as a whole percentage: 0.625 → "63%". */
export function pct0(ratio: number): string {
  return `${Math.round(ratio * 100)}%`;
}

/**
 * A latency the way the tutorial writes it: seconds with one decimal from 1 s ("8.2 s", "10 s"),
 * milliseconds below ("350 ms").
 */
export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (Math.abs(ms) < 1_000) return `${Math.round(ms)} ms`;
  if (Math.abs(ms) < 3_600_000) return `${trim((ms / 1_000).toFixed(1))} s`;
  return `${trim((ms / 3_600_000).toFixed(1))} h`;
}

/** A span in words: "2 h 5 min", "45 s". */
export function span(ms: number): string {
  if (ms < 60_000) return duration(ms);
  const totalMin = Math.round(ms / 60_000);
  const h = Math.floor(totalMin / 60);
  const m = totalMin % 60;
  if (h === 0) return `${m} min`;
  if (h >= 48) return `${trim((ms / 86_400_000).toFixed(1))} days`;
  return m === 0 ? `${h} h` : `${h} h ${m} min`;
}

function trim(fixed: string): string {
  return fixed.endsWith('.0') ? fixed.slice(0, -2) : fixed;
}

/** Formats ms-since-epoch as `YYYY-MM-DD HH:MM:SS` in a time zone. */
export type TimeFormat = (ms: number) => string;

/**
 * A formatter for `timeZone` (an IANA zone the caller has validated).
 */
export function timeFormat(timeZone: string): TimeFormat {
  if (timeZone === 'UTC' || timeZone === 'Etc/UTC') {
    return (ms) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
  }
  const fmt = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
  return (ms) => {
    const p: Record<string, string> = {};
    for (const part of fmt.formatToParts(ms)) p[part.type] = part.value;
    return `${p.year ?? ''}-${p.month ?? ''}-${p.day ?? ''} ${p.hour ?? ''}:${p.minute ?? ''}:${p.second ?? ''}`;
  };
}

/** Breaker states as operators say them. */
export const BREAKER_LABELS = { closed: 'CLOSED', open: 'OPEN', halfOpen: 'HALF-OPEN' } as const;
