/**
 * Bytes on disk per invoice workflow (issue 26): runs `n` invoice workflows
 * (`named('invoice', seq(par(vendor, amount, date), validate, route))`, the real agents of
 * `agents/invoice-workflow.ts` on a simulated model that answers at once and never fails), then
 * measures the SQLite file after a full checkpoint: `page_count × page_size / n`, the bytes of each
 * table and index (`dbstat`, when SQLite was compiled with it), rows per workflow, and the stored
 * payload bytes by event type.
 *
 *   npx tsx bench/footprint-bytes.ts [--quick] [--json]
 *
 * Sizes are bytes, not times: they do not depend on the machine's load.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { invoiceWorkflow } from '../agents/invoice-workflow.js';
import { simulatedInvoiceModel } from '../agents/invoice-model.js';
import { CLEAN_INVOICE_MIX, invoiceStream } from '../demos/invoices.js';
import {
  SEED_PRICING,
  agent,
  createRuntime,
  named,
  par,
  seq,
  simulatedClock,
  type Topology,
} from '../src/index.js';
import { isMain, parseFlags } from './harness.js';

/** What {@link measureBytes} found. */
export interface BytesReport {
  /** Which workflow ({@link MeasureBytesOptions.workflow}). */
  workflow: 'stub' | 'agents';
  /** Workflows run. */
  workflows: number;
  /** File bytes (page_count × page_size after a TRUNCATE checkpoint) / workflows. */
  bytesPerWorkflow: number;
  /** Event rows / workflows. */
  rowsPerWorkflow: number;
  /** Schema version of the file measured (`PRAGMA user_version`). */
  schemaVersion: number;
  /** Bytes per workflow of each table and index (empty when SQLite has no `dbstat`). */
  objects: { name: string; bytesPerWorkflow: number }[];
  /** Stored payload bytes by event type: rows per workflow and mean payload bytes per row. */
  payloads: { type: string; rowsPerWorkflow: number; payloadBytes: number }[];
}

/** Options of {@link measureBytes}. */
export interface MeasureBytesOptions {
  /** Invoice workflows to run (default 2,000). */
  n?: number;
  /** Workflows in flight at once (default 64). */
  inFlight?: number;
  /** Keep the file at this path instead of a temp file that is deleted afterwards. */
  keepAt?: string;
  /**
   * `'stub'` (default, issue 26's measurement): five agents of the invoice shape whose `run()`
   * answers at once with a value, a confidence and token usage, no cache: 17 events a workflow.
   * `'agents'`: the real invoice agents (`agents/invoice-workflow.ts`) on a simulated model that
   * answers at once, with their 24 h caches and the invoice text as input.
   */
  workflow?: 'stub' | 'agents';
}

const usage = { inputTokens: 812, outputTokens: 196 };
const stub = (name: string, taskType: string, model: string, value: unknown): Topology<unknown, unknown> =>
  agent({ name, taskType, model, run: () => Promise.resolve({ value, confidence: 0.97, usage }) });

/** Issue 26's invoice workflow: `par(vendor, amount, date)` → validate → route, stub agents. */
export const stubInvoice: Topology<unknown, unknown> = named(
  'invoice',
  seq(
    par(
      stub('vendor_extraction', 'vendor', 'gpt-4', { vendor: 'Northwind Traders' }),
      stub('amount_extraction', 'payment', 'gpt-4', { amount: 1249.5, currency: 'EUR' }),
      stub('date_extraction', 'date', 'gpt-3.5-turbo', { date: '2026-01-02' }),
    ),
    stub('vendor_validation', 'vendor_validation', 'gpt-4', { vendorId: 'V-0042', known: true }),
    stub('approval_routing', 'routing', 'gpt-4', { tier: 'manager', approver: 'ap-manager@example.com' }),
  ),
);

/**
 * Runs `n` invoice workflows into a fresh SQLite log and measures its bytes per workflow. The model
 * answers at once (no timers: latency 0), so the run takes a second or two; its clock is simulated.
 */
export async function measureBytes(options: MeasureBytesOptions = {}): Promise<BytesReport> {
  const n = options.n ?? 2_000;
  const inFlight = options.inFlight ?? 64;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-bytes-'));
  const file = options.keepAt ?? path.join(dir, 'invoice.db');
  try {
    const clock = simulatedClock(Date.UTC(2026, 0, 5));
    const instant = { latencyMs: { p50: 0, p95: 0 } };
    const provider = simulatedInvoiceModel({
      seed: 1,
      rates: {},
      hallucinationRate: 0,
      models: { 'gpt-4': instant, 'gpt-3.5-turbo': instant },
    });
    const stubs = options.workflow !== 'agents';
    const workflow: Topology<unknown, unknown> = stubs ? stubInvoice : invoiceWorkflow({ provider });
    const rt = createRuntime({
      db: file,
      clock,
      seed: 1,
      pricing: { ...SEED_PRICING },
      cache: { path: ':memory:' },
    });
    const invoices: unknown[] = stubs
      ? Array.from({ length: n }, (_, i) => ({ invoiceId: `INV-2026-${String(i).padStart(6, '0')}` }))
      : [...invoiceStream({ seed: 1, count: n, nowMs: clock.now(), mix: CLEAN_INVOICE_MIX })];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < invoices.length) {
        const invoice = invoices[next++];
        if (invoice !== undefined) await rt.run(workflow, invoice);
      }
    };
    const before = rt.store.lastSeq();
    await Promise.all(Array.from({ length: inFlight }, worker));
    const rows = rt.store.lastSeq() - before;
    await rt.close();
    return { workflow: stubs ? 'stub' : 'agents', ...inspect(file, n, rows) };
  } finally {
    if (options.keepAt === undefined) fs.rmSync(dir, { recursive: true, force: true });
  }
}

function inspect(file: string, n: number, rows: number): Omit<BytesReport, 'workflow'> {
  const db = new Database(file);
  try {
    db.pragma('wal_checkpoint(TRUNCATE)');
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const pages = db.pragma('page_count', { simple: true }) as number;
    let objects: BytesReport['objects'] = [];
    try {
      objects = db
        .prepare<[], { name: string; bytes: number }>(
          'SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC',
        )
        .all()
        .map((o) => ({ name: o.name, bytesPerWorkflow: o.bytes / n }));
    } catch {
      // SQLite built without SQLITE_ENABLE_DBSTAT_VTAB: the total stays.
    }
    // length() of a BLOB is its bytes; of TEXT its characters, so cast to BLOB first. Schema 4
    // stores the type as a keel_strings id.
    const payloads = db
      .prepare<[], { type: string; rows: number; bytes: number }>(
        'SELECT t.value AS type, COUNT(*) AS rows, AVG(length(CAST(e.payload AS BLOB))) AS bytes FROM events e JOIN keel_strings t ON t.id = e.type GROUP BY e.type ORDER BY rows DESC, t.value',
      )
      .all()
      .map((p) => ({ type: p.type, rowsPerWorkflow: p.rows / n, payloadBytes: p.bytes }));
    return {
      workflows: n,
      bytesPerWorkflow: (pages * pageSize) / n,
      rowsPerWorkflow: rows / n,
      schemaVersion: db.pragma('user_version', { simple: true }) as number,
      objects,
      payloads,
    };
  } finally {
    db.close();
  }
}

/** Prints a {@link BytesReport}. */
export function printBytes(r: BytesReport): void {
  const f = (x: number): string => x.toFixed(0).padStart(7);
  console.log(
    `\nbytes per invoice workflow (${r.workflow === 'stub' ? 'stub agents' : 'invoice agents, cached, text input'}; schema v${r.schemaVersion}, ${r.workflows} workflows): ${r.bytesPerWorkflow.toFixed(0)} B, ${r.rowsPerWorkflow.toFixed(1)} rows (goal <= 4,000 B)`,
  );
  for (const o of r.objects) console.log(`  ${f(o.bytesPerWorkflow)} B  ${o.name}`);
  console.log('  payload bytes by type (rows/workflow × mean bytes):');
  for (const p of r.payloads) {
    console.log(`  ${p.rowsPerWorkflow.toFixed(2).padStart(6)} × ${f(p.payloadBytes)} B  ${p.type}`);
  }
}

if (isMain(import.meta.url)) {
  const flags = parseFlags();
  const n = flags.quick ? 300 : 2_000;
  const reports = [await measureBytes({ n }), await measureBytes({ n, workflow: 'agents' })];
  if (flags.json) console.log(JSON.stringify(reports));
  else for (const r of reports) printBytes(r);
}
