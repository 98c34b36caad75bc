/**
 * Bytes and rows on disk per invoice workflow (issue 26, goal <= 4,000 B), as a bench report for
 * `bench/index.ts`: the measurement is `measureBytes()` of `bench/footprint-bytes.ts` (stub agents,
 * issue 26's figure; and the real invoice agents, for context).
 *
 *   npx tsx bench/bytes.bench.ts [--quick] [--json]
 */
import { measureBytes, type BytesReport } from './footprint-bytes.js';
import { goal, isMain, parseFlags, printReport, type BenchFlags, type BenchReport } from './harness.js';
import type { BenchRow } from './lib.js';

const rowsOf = (r: BytesReport): BenchRow[] => [
  {
    name: `bytes per workflow (${r.workflow === 'stub' ? 'stub agents' : 'invoice agents'})`,
    value: r.bytesPerWorkflow,
    unit: 'B',
    note: `${r.rowsPerWorkflow.toFixed(1)} rows; schema v${r.schemaVersion}; ${r.workflows.toLocaleString('en-US')} workflows`,
  },
  ...r.objects.map((o) => ({ name: `  ${o.name}`, value: o.bytesPerWorkflow, unit: 'B' })),
];

/** Runs the measurement and returns its report. */
export async function runBench(flags: BenchFlags): Promise<BenchReport> {
  const n = flags.quick ? 300 : 2_000;
  const stub = await measureBytes({ n });
  const agents = await measureBytes({ n, workflow: 'agents' });
  return {
    bench: 'bytes',
    method: [
      'measureBytes() of bench/footprint-bytes.ts: file bytes (page_count x page_size after a TRUNCATE checkpoint) / workflows',
      'stub = issue 26 invoice shape, agents answering at once; agents = the real invoice agents on a simulated model',
    ],
    tables: [{ title: 'bytes and rows per invoice workflow', rows: [...rowsOf(stub), ...rowsOf(agents)] }],
    goals: [
      goal(
        'bytes per invoice workflow <= 4,000 B',
        stub.bytesPerWorkflow,
        '<=',
        4_000,
        (v) => `${v.toFixed(0)} B`,
      ),
      goal(
        '(context) rows per invoice workflow',
        stub.rowsPerWorkflow,
        '<=',
        Infinity,
        (v) => `${v.toFixed(1)} rows`,
      ),
    ],
  };
}

if (isMain(import.meta.url)) {
  const flags = parseFlags();
  printReport(await runBench(flags), flags);
}
