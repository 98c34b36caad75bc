/**
 * The chaos suite's summary table: each test file opens scenarios (one per injected fault), counts
 * the faults it injected and the invariants it checked under them, and records committed events
 * that went missing (must be 0). After the file's tests, the table is printed with `console.log`.
 *
 * Vitest runs each file in its own process, so rows are also appended to a small JSON-lines file
 * shared by the files of one `vitest` run (keyed by the parent pid): every table printed holds the
 * rows of all chaos files that finished so far, and the last one printed is the whole suite.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';

/** One line of the table. */
export interface ChaosRow {
  /** The test file (basename). */
  file: string;
  /** What was injected, e.g. `5xx burst`. */
  fault: string;
  /** How many faults were injected (failed calls, lock waits, refused writes ...). */
  injected: number;
  /** Invariants checked under this fault. */
  invariants: number;
  /** Invariants that held (equal to `invariants` when the file passed). */
  held: number;
  /** Committed events (or acknowledged workflows) missing from the log afterwards: must be 0. */
  eventsLost: number;
}

/** A scenario of the table: a fault and what was checked under it. */
export interface ChaosScenario {
  /** Counts `n` injected faults (default 1). */
  inject(n?: number): void;
  /**
   * Checks one invariant: `check` runs `expect` calls; it counts as held when it returns. A failure
   * is recorded and rethrown, so the test fails as usual.
   */
  hold(name: string, check: () => void): void;
  /** Records events (or acknowledged workflows) that the log lost; must stay 0. */
  lost(n: number): void;
}

/** Where the rows of this vitest run go (one file per run, in the OS temp directory). */
const SHARED = path.join(os.tmpdir(), `keel-chaos-summary-${process.ppid}.jsonl`);

/**
 * Opens the summary of one chaos test file and prints it after the file's tests.
 *
 * @example
 * const scenario = chaosSummary('provider-faults.test.ts');
 * const s = scenario('5xx burst');
 * s.inject(5);
 * s.hold('breaker opens at the threshold', () => expect(breaker.state()).toBe('open'));
 */
export function chaosSummary(file: string): (fault: string) => ChaosScenario {
  const rows: ChaosRow[] = [];
  afterAll(() => {
    const lines = rows.map((r) => JSON.stringify(r)).join('\n');
    let all = rows;
    try {
      if (lines) fs.appendFileSync(SHARED, `${lines}\n`);
      all = fs
        .readFileSync(SHARED, 'utf8')
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as ChaosRow);
    } catch {
      // The shared file is a convenience: print this file's rows alone if it cannot be used.
    }
    console.log(formatTable(all));
  });
  return (fault) => {
    const row: ChaosRow = { file, fault, injected: 0, invariants: 0, held: 0, eventsLost: 0 };
    rows.push(row);
    return {
      inject(n = 1) {
        row.injected += n;
      },
      hold(name, check) {
        row.invariants++;
        try {
          check();
        } catch (e) {
          throw new Error(`chaos invariant "${name}" broke under "${fault}": ${String(e)}`, { cause: e });
        }
        row.held++;
      },
      lost(n) {
        row.eventsLost += n;
      },
    };
  };
}

/** The rows as an aligned text table with a totals line. */
function formatTable(rows: readonly ChaosRow[]): string {
  const header = ['file', 'fault injected', 'faults', 'invariants held', 'events lost'];
  const body = rows.map((r) => [
    r.file,
    r.fault,
    String(r.injected),
    `${r.held}/${r.invariants}`,
    String(r.eventsLost),
  ]);
  const total = rows.reduce(
    (t, r) => ({
      injected: t.injected + r.injected,
      held: t.held + r.held,
      invariants: t.invariants + r.invariants,
      lost: t.lost + r.eventsLost,
    }),
    { injected: 0, held: 0, invariants: 0, lost: 0 },
  );
  const footer = [
    'total',
    `${rows.length} scenarios`,
    String(total.injected),
    `${total.held}/${total.invariants}`,
    String(total.lost),
  ];
  const table = [header, ...body, footer];
  const widths = header.map((_, i) => Math.max(...table.map((row) => (row[i] ?? '').length)));
  const line = (row: readonly string[]): string =>
    row.map((cell, i) => (i >= 2 ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0))).join('  ');
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return ['', 'Keel chaos summary', rule, line(header), rule, ...body.map(line), rule, line(footer), ''].join(
    '\n',
  );
}
