/**
 * The schema-4 payload codec (`src/eventlog/codec.ts`, issue 26) on the invoice workflow: stored
 * payload bytes per event type before (canonical JSON, schema 3) and after (coded), and how fast
 * rows encode and decode. Runs the workflows on an in-memory log, then codes their events with an
 * in-memory dictionary (the dictionary's own rows are per file, not per workflow: listed apart).
 *
 *   npx tsx bench/codec-bytes.ts [--quick]
 *
 * Bytes do not depend on the machine's load; the timings do (best of 5 rounds).
 */
import { performance } from 'node:perf_hooks';
import { invoiceWorkflow } from '../agents/invoice-workflow.js';
import { simulatedInvoiceModel } from '../agents/invoice-model.js';
import { CLEAN_INVOICE_MIX, invoiceStream } from '../demos/invoices.js';
import { canonicalJson } from '../src/core/json.js';
import { codable, decodePayloadJson, encodePayload, type Dictionary } from '../src/eventlog/codec.js';
import type { KeelEvent } from '../src/eventlog/events.js';
import { SEED_PRICING, createRuntime, simulatedClock, type Topology } from '../src/index.js';
import { stubInvoice } from './footprint-bytes.js';
import { isMain, parseFlags } from './harness.js';

class MemoryDictionary implements Dictionary {
  readonly strings: string[] = [];
  private readonly ids = new Map<string, number>();
  code(value: string): number {
    if (!codable(value) && value.length < 100_000 && !value.startsWith('{')) throw new Error('not codable');
    let id = this.ids.get(value);
    if (id === undefined) {
      id = this.strings.push(value);
      this.ids.set(value, id);
    }
    return id;
  }
  lookup(id: number): string {
    const s = this.strings[id - 1];
    if (s === undefined) throw new Error(`no id ${id}`);
    return s;
  }
}

async function events(which: 'stub' | 'agents', n: number): Promise<KeelEvent[]> {
  const clock = simulatedClock(Date.UTC(2026, 0, 5));
  const instant = { latencyMs: { p50: 0, p95: 0 } };
  const provider = simulatedInvoiceModel({
    seed: 1,
    rates: {},
    hallucinationRate: 0,
    models: { 'gpt-4': instant, 'gpt-3.5-turbo': instant },
  });
  const workflow: Topology<unknown, unknown> = which === 'stub' ? stubInvoice : invoiceWorkflow({ provider });
  const rt = createRuntime({
    db: ':memory:',
    clock,
    seed: 1,
    pricing: { ...SEED_PRICING },
    cache: { path: ':memory:' },
  });
  const inputs: unknown[] =
    which === 'stub'
      ? Array.from({ length: n }, (_, i) => ({ invoiceId: `INV-2026-${String(i).padStart(6, '0')}` }))
      : [...invoiceStream({ seed: 1, count: n, nowMs: clock.now(), mix: CLEAN_INVOICE_MIX })];
  await Promise.all(inputs.map((input) => rt.run(workflow, input)));
  const all = rt.store.query();
  await rt.close();
  return all;
}

const utf8 = (s: string): number => Buffer.byteLength(s, 'utf8');

function best(rounds: number, fn: () => void): number {
  let min = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    fn();
    min = Math.min(min, performance.now() - t0);
  }
  return min;
}

async function report(which: 'stub' | 'agents', n: number): Promise<void> {
  const all = await events(which, n);
  const dict = new MemoryDictionary();
  const byType = new Map<string, { rows: number; before: number; after: number }>();
  const stored: string[] = [];
  for (const e of all) {
    const payload = e.payload as Record<string, unknown>;
    const text = encodePayload(e.type, payload, dict);
    stored.push(text);
    const t = byType.get(e.type) ?? { rows: 0, before: 0, after: 0 };
    t.rows++;
    t.before += utf8(canonicalJson(payload));
    t.after += utf8(text);
    byType.set(e.type, t);
  }
  console.log(
    `\n${which} invoice workflow, ${n} workflows, ${all.length} events: payload bytes per workflow`,
  );
  console.log('  rows/wf   before    after  type');
  let before = 0;
  let after = 0;
  for (const [type, t] of [...byType].sort((a, b) => a[0].localeCompare(b[0]))) {
    before += t.before;
    after += t.after;
    console.log(
      `  ${(t.rows / n).toFixed(2).padStart(7)} ${(t.before / n).toFixed(0).padStart(8)} ${(t.after / n).toFixed(0).padStart(8)}  ${type}`,
    );
  }
  console.log(
    `  ${''.padStart(7)} ${(before / n).toFixed(0).padStart(8)} ${(after / n).toFixed(0).padStart(8)}  total`,
  );
  const dictBytes = dict.strings.reduce((s, v) => s + utf8(v), 0);
  console.log(`  dictionary: ${dict.strings.length} strings, ${dictBytes} B per file (not per workflow)`);
  for (const e of all.slice(0, 6)) console.log(`  e.g. ${e.type}: ${stored[all.indexOf(e)]}`);

  const rounds = 5;
  const encodeMs = best(rounds, () => {
    for (const e of all) encodePayload(e.type, e.payload, dict);
  });
  const decodeMs = best(rounds, () => {
    for (let i = 0; i < all.length; i++)
      decodePayloadJson((all[i] as KeelEvent).type, stored[i] as string, dict);
  });
  const plain = all.map((e) => canonicalJson(e.payload));
  const parseMs = best(rounds, () => {
    for (const text of plain) canonicalJson(JSON.parse(text));
  });
  const perRow = (ms: number): string => `${((ms * 1000) / all.length).toFixed(2)} us/row`;
  const perSec = (ms: number): string =>
    `${Math.round(all.length / (ms / 1000)).toLocaleString('en-US')} rows/s`;
  console.log(`  encode:                          ${perRow(encodeMs)} (${perSec(encodeMs)})`);
  console.log(`  decode to canonical JSON:        ${perRow(decodeMs)} (${perSec(decodeMs)})`);
  console.log(`  (JSON.parse + canonicalJson of the schema-3 text: ${perRow(parseMs)})`);
}

if (isMain(import.meta.url)) {
  const { quick } = parseFlags();
  await report('stub', quick ? 20 : 500);
  await report('agents', quick ? 20 : 300);
}
