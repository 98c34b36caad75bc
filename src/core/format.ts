/**
 * Number and duration formatting shared by alert titles, RCA reports, canary reasons and the
 * report. Internal: not part of the public surface.
 */

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
