/**
 * Where the heap of an in-flight workflow goes (issue 26): starts `n` workflows whose agents park on
 * a promise that never resolves, takes a V8 heap snapshot before and while they wait, and prints
 * the difference by node kind and constructor (count and self bytes per workflow).
 *
 *   node --expose-gc --import tsx bench/heap-profile.ts [invoice|one-agent] [n]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { agent } from '../src/supervisor/agent.js';
import { par } from '../src/supervisor/parallel.js';
import { seq } from '../src/supervisor/sequential.js';
import type { Topology } from '../src/supervisor/topology.js';
import { benchRuntime, cleanup } from './agent.bench.js';
import { drain, getGc } from './harness.js';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Count and self size by `type:name` in a heap snapshot file. */
function histogram(file: string): Map<string, { count: number; bytes: number }> {
  const snap = JSON.parse(fs.readFileSync(file, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType] ?? 0] ?? '?';
    let name = snap.strings[snap.nodes[i + iName] ?? 0] ?? '?';
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '';
    if (name.length > 60) name = name.slice(0, 60);
    const key = `${type}:${name}`;
    const e = out.get(key) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += snap.nodes[i + iSize] ?? 0;
    out.set(key, e);
  }
  return out;
}

const never = new Promise<never>(() => undefined);
const OUTPUT = Object.freeze({
  value: 'ok',
  confidence: 0.9,
  usage: Object.freeze({ inputTokens: 10, outputTokens: 5 }),
});
let parked = 0;
let park = false;
const step = (name: string) =>
  agent({
    name,
    model: 'bench-model',
    run: async () => {
      if (!park) return OUTPUT;
      parked++;
      return never;
    },
  });

export const invoice: Topology<unknown, unknown> = seq(
  par(step('vendor'), step('amount'), step('date')),
  step('validate'),
  step('route'),
);

async function main(): Promise<void> {
  const shape = process.argv[2] ?? 'invoice';
  const n = Number(process.argv[3] ?? 2000);
  const topology = shape === 'invoice' ? invoice : step('one');
  const perWorkflow = shape === 'invoice' ? 3 : 1;
  const gc = getGc();
  const rt = benchRuntime('default');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-heap-'));
  for (let i = 0; i < 200; i++) await rt.run(topology, i);
  await drain();
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  const f0 = v8.writeHeapSnapshot(path.join(dir, 'before.heapsnapshot'));
  park = true;
  const runs: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) runs.push(rt.run(topology, { invoice: i }).catch(() => undefined));
  while (parked < n * perWorkflow) await drain(1);
  await drain();
  gc();
  gc();
  const during = process.memoryUsage().heapUsed;
  const f1 = v8.writeHeapSnapshot(path.join(dir, 'during.heapsnapshot'));
  console.log(
    `${shape}: ${n} in flight, heapUsed delta ${((during - before) / n).toFixed(0)} B per workflow`,
  );
  const h0 = histogram(f0);
  const h1 = histogram(f1);
  const rows: { key: string; count: number; bytes: number }[] = [];
  for (const [key, e] of h1) {
    const b = h0.get(key) ?? { count: 0, bytes: 0 };
    rows.push({ key, count: (e.count - b.count) / n, bytes: (e.bytes - b.bytes) / n });
  }
  rows.sort((a, b) => b.bytes - a.bytes);
  let total = 0;
  for (const r of rows) total += r.bytes;
  console.log(`snapshot delta ${total.toFixed(0)} B per workflow`);
  for (const r of rows.slice(0, Number(process.env.TOP ?? 60)))
    console.log(`${r.bytes.toFixed(0).padStart(7)} B  ${r.count.toFixed(2).padStart(7)}  ${r.key}`);
  if (process.env.KEEP) console.log(`snapshots in ${dir}`);
  else fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

await main().finally(cleanup);
