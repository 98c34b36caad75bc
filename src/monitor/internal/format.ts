/**
 * Number and duration formatting shared by alert titles, RCA reports and canary reasons.
 * Internal: not part of the public surface.
 */
import type { ErrorCategory } from '../../eventlog/events.js';

/**
 * Rounds half to even (banker's rounding), like Python's `round`, so percentages match the
 * tutorial's output (45 / 72 = 62.5 % prints as "62%").
 */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** A ratio as a percentage with one decimal: 0.072 → "7.2%". */
export function percent1(ratio: number): string {
  return `${(ratio * 100).toFixed(1)}%`;
}

/** A percentage (already ×100) as a whole number, half to even: 62.5 → "62%". */
export function percent0(percentage: number): string {
  return `${roundHalfEven(percentage)}%`;
}

/** An integer with thousands separators, locale-independent: 10000 → "10,000". */
export function grouped(n: number): string {
  const sign = n < 0 ? '-' : '';
  const [int = '0', frac] = Math.abs(n).toString().split('.');
  const withCommas = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return frac === undefined ? `${sign}${withCommas}` : `${sign}${withCommas}.${frac}`;
}

/** Milliseconds as `12,400 ms`. */
export function formatMs(ms: number): string {
  return `${grouped(Math.round(ms))} ms`;
}

const UNITS: readonly [number, string][] = [
  [3_600_000, 'hour'],
  [60_000, 'minute'],
  [1_000, 'second'],
];

/** A duration in words: 7_200_000 → "2 hours", 90_000 → "1.5 minutes", 250 → "250 ms". */
export function formatDuration(ms: number): string {
  for (const [unit, name] of UNITS) {
    if (ms >= unit) {
      const value = Math.round((ms / unit) * 10) / 10;
      return `${value} ${name}${value === 1 ? '' : 's'}`;
    }
  }
  return `${Math.round(ms)} ms`;
}

/** Human labels of the error categories, in the tutorial's words. */
export const CATEGORY_LABELS: { readonly [K in ErrorCategory]: string } = {
  hallucination: 'Hallucinations',
  timeout: 'Timeouts',
  validation_error: 'Validation errors',
  ocr_error: 'OCR errors',
  missing_field: 'Missing field',
  rate_limited: 'Rate limited',
  provider_error: 'Provider errors',
  malformed_output: 'Malformed output',
  circuit_open: 'Circuit open',
  budget_exceeded: 'Budget exceeded',
  cancelled: 'Cancelled',
  unknown: 'Unknown',
  log_unavailable: 'Event log unavailable',
};

/**
 * The tutorial's alert line: "Error rate 7.2% exceeds threshold 5.0% over last 100 tasks"
 * (time windows add "in 2 hours").
 */
export function errorRateMessage(
  errorRate: number,
  threshold: number,
  samples: number,
  windowMs?: number,
  word: 'threshold' | 'target' = 'threshold',
): string {
  const verb = errorRate > threshold ? 'exceeds' : 'within';
  const span = windowMs === undefined ? '' : ` in ${formatDuration(windowMs)}`;
  return `Error rate ${percent1(errorRate)} ${verb} ${word} ${percent1(threshold)} over last ${grouped(samples)} task${samples === 1 ? '' : 's'}${span}`;
}
