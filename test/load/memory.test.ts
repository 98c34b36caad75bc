/**
 * Memory stays flat across many sequential workflows: counted, not guessed. A child process
 * (memory-child.ts, `--expose-gc`) runs invoice-shaped workflows one after another on a simulated
 * clock and reports live per-workflow objects, pending timers, active resources and the heap after
 * a full GC at three checkpoints.
 *
 * The default sizes (500 warm-up, then heap at 1k vs 3k workflows) keep this file within
 * its share of the load suite's time on a 2-core machine; `KEEL_MEMORY_WORKFLOWS=warmup,first,second`
 * runs the full-size check, e.g. `KEEL_MEMORY_WORKFLOWS=2000,18000,40000` for 20k vs 60k.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemoryReport } from './memory-child.js';

const CHILD = fileURLToPath(new URL('./memory-child.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const [WARMUP, FIRST, SECOND] = (process.env.KEEL_MEMORY_WORKFLOWS ?? '500,500,2000')
  .split(',')
  .map(Number) as [number, number, number];
/** Heap growth allowed per workflow in the second phase, bytes (a leak of one small object shows). */
const BYTES_PER_WORKFLOW = 64;
/** Plus this much for JIT code and GC bookkeeping, bytes. */
const SLACK_BYTES = 512 * 1024;
/** Kill the child after this long, ms of real time. */
const GIVE_UP_MS = 540_000;

let dir: string;
let report: MemoryReport;

function runChild(): Promise<MemoryReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', CHILD, dir, String(WARMUP), String(FIRST), String(SECOND)],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    const guard = setTimeout(() => child.kill('SIGKILL'), GIVE_UP_MS);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) {
        reject(new Error(`memory child failed (code ${code}, signal ${signal}): ${err || out}`));
        return;
      }
      resolve(JSON.parse(line) as MemoryReport);
    });
  });
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-load-memory-'));
  report = await runChild();
  const [h0, h1, h2] = report.heapBytes.map((b) => (b / 1_048_576).toFixed(2));
  const perWorkflow = (report.heapBytes[2] - report.heapBytes[1]) / SECOND;
  console.log(
    `memory: heap after GC ${h0} MB (${WARMUP} workflows), ${h1} MB (${WARMUP + FIRST}), ${h2} MB ` +
      `(${WARMUP + FIRST + SECOND}): ${perWorkflow.toFixed(0)} bytes/workflow; ` +
      `${report.alive}/${report.sampled} sampled per-workflow objects alive; ${report.wallMs} ms`,
  );
}, GIVE_UP_MS + 10_000);

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('load: memory across many sequential workflows', () => {
  it('every workflow succeeded, no timer is pending and no resource is left open', () => {
    expect(report.failed).toBe(0);
    expect(report.pendingTimers).toBe(0);
    expect(report.resourcesAfter).toEqual(report.resourcesBefore);
  });

  it('the runtime keeps no per-workflow object: inputs, agent contexts and signals are collected', () => {
    expect(report.sampled).toBeGreaterThan(0);
    expect(report.alive).toBe(0);
  });

  // Agent actors are their own short-lived roots (not children of the runtime's root actor), so
  // XState's per-event-type transition cache on the root cannot grow with every invocation.
  it(`the heap after ${WARMUP + FIRST + SECOND} workflows is within ${BYTES_PER_WORKFLOW} B/workflow of the heap after ${WARMUP + FIRST}`, () => {
    const growth = report.heapBytes[2] - report.heapBytes[1];
    expect(growth).toBeLessThan(SECOND * BYTES_PER_WORKFLOW + SLACK_BYTES);
  });
});
