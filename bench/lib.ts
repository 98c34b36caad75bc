/**
 * Tiny helpers shared by the benchmarks: a monotonic stopwatch and a plain-text table printer.
 * Benchmarks print figures and ratios; they are scripts, not tests.
 */
import { performance } from 'node:perf_hooks';

/** Wall and CPU time of one measured run. */
export interface Timing {
  /** Elapsed wall time, ms (monotonic). */
  wallMs: number;
  /** CPU time this process spent (user + system), ms: steadier than wall time on a shared machine. */
  cpuMs: number;
}

/** Runs `fn` (awaiting it) and returns how long it took. */
export async function measure(fn: () => unknown): Promise<Timing> {
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  await fn();
  const wallMs = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** Throughput of `n` items in a timing: per second of wall time, and CPU µs per item. */
export function rate(n: number, t: Timing): { perSec: number; cpuUsEach: number } {
  return { perSec: (n / t.wallMs) * 1000, cpuUsEach: (t.cpuMs * 1000) / n };
}

/** One row of a benchmark table. */
export interface BenchRow {
  /** What was measured. */
  name: string;
  /** The figure, already in `unit`. */
  value: number;
  /** Unit of `value`, e.g. `events/s`. */
  unit: string;
  /** Free text: a ratio against a baseline, a goal, a verdict. */
  note?: string;
}

/** Formats a number with thousands separators and no decimals (or 2 decimals below 10). */
export function fmt(n: number): string {
  return n >= 10 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2);
}

/** Prints rows as an aligned table under a title. */
export function printTable(title: string, rows: readonly BenchRow[]): void {
  const cells = rows.map((r) => [r.name, fmt(r.value), r.unit, r.note ?? '']);
  const widths = [0, 1, 2, 3].map((c) => Math.max(...cells.map((row) => (row[c] ?? '').length)));
  console.log(`\n${title}`);
  console.log('-'.repeat(widths.reduce((a, b) => a + b + 3, 0)));
  for (const row of cells) {
    console.log(
      row
        .map((cell, c) => (c === 1 ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0)))
        .join('   ')
        .trimEnd(),
    );
  }
}

/** `a / b` formatted as `0.93x`. */
export function ratio(a: number, b: number): string {
  return `${(a / b).toFixed(2)}x`;
}
