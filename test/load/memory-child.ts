/**
 * Child process of memory.test.ts, run with `node --expose-gc --import tsx memory-child.ts <dir>
 * <warmup> <first> <second>`. On a simulated clock (ten virtual seconds per workflow, so every
 * rolling window turns over many times) it runs invoice-shaped workflows one after another and
 * measures what the runtime keeps:
 *
 * - live per-workflow objects: weak references to a sample of the inputs, agent contexts and
 *   abort signals of the first phase, counted after a full GC at the end (must be ~0);
 * - the heap after a full GC at three checkpoints (warm-up, +first, +second);
 * - pending clock timers and the process's active resources.
 *
 * It prints one JSON line ({@link MemoryReport}) and exits. Bounded by its arguments.
 */
import path from 'node:path';
import { simulatedClock } from '../../src/core/clock.js';
import { simulated } from '../../src/providers/simulated.js';
import { createRuntime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';
import { par } from '../../src/supervisor/parallel.js';
import { seq } from '../../src/supervisor/sequential.js';

/** What the child prints. */
export interface MemoryReport {
  workflows: { warmup: number; first: number; second: number };
  /** heapUsed after a full GC, bytes: after warm-up, after `first` more, after `second` more. */
  heapBytes: [number, number, number];
  /** Sampled per-workflow objects (inputs, agent contexts, abort signals) and how many are alive. */
  sampled: number;
  alive: number;
  pendingTimers: number;
  /** `process.getActiveResourcesInfo()` before the first workflow and after the last. */
  resourcesBefore: string[];
  resourcesAfter: string[];
  failed: number;
  wallMs: number;
}

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const [dir, warmupArg, firstArg, secondArg] = process.argv.slice(2);
if (dir === undefined) throw new Error('usage: memory-child.ts <dir> <warmup> <first> <second>');
const warmup = Number(warmupArg ?? 1_000);
const first = Number(firstArg ?? 2_000);
const second = Number(secondArg ?? 4_000);

/** Virtual time between workflows: the 1-hour latency window holds 360 of them. */
const STEP_MS = 10_000;
const clock = simulatedClock();
const rt = createRuntime({
  db: path.join(dir, 'keel.db'),
  clock,
  seed: 1,
  pricing: { sim: { inputPer1K: 0.001, outputPer1K: 0.002 } },
  budget: { dailyUsd: 1_000_000 },
  breakers: { sim: { failureThreshold: 1_000, resetTimeoutMs: 1_000 } },
});
const provider = simulated({ seed: 1, latencyMs: { p50: 0, p95: 0 }, rates: { provider_error: 0.02 } });

let sampling = false;
const refs: WeakRef<object>[] = [];
const step = (name: string) =>
  agent<unknown, unknown>({
    name,
    model: 'sim',
    retry: { attempts: 3, baseDelayMs: 10 },
    breaker: { name: 'sim' },
    run: async (input, ctx) => {
      if (sampling) refs.push(new WeakRef(ctx), new WeakRef(ctx.signal));
      const r = await provider.call({ model: ctx.model, input }, { signal: ctx.signal, clock: ctx.clock });
      return { value: r.output, usage: r.usage };
    },
  });
const invoice = seq(par(step('vendor'), step('amount'), step('date')), step('route'));

let failed = 0;
let n = 0;
async function runMany(count: number, sample: boolean): Promise<void> {
  for (let i = 0; i < count; i++) {
    // A fresh object each time (its identity is tracked), over a bounded set of texts: the simulated
    // provider counts calls per distinct input, and that map is not the runtime's to bound.
    const input = { invoice: `INV-${n++ % 64}` };
    sampling = sample && i % 20 === 0;
    if (sampling) refs.push(new WeakRef(input));
    const p = rt.run(invoice, input);
    // A priced call starts once its reservation is committed (write-ahead): let that happen.
    await clock.flush();
    // Retry backoffs are timers on the simulated clock: let them fire.
    for (let k = 0; k < 20 && clock.pendingTimers() > 0; k++) await clock.advanceAsync(50);
    await p.catch(() => failed++);
    sampling = false;
    clock.advance(STEP_MS);
  }
}

async function heap(): Promise<number> {
  await new Promise((resolve) => setImmediate(resolve));
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

const resourcesBefore = process.getActiveResourcesInfo();
const t0 = performance.now();
await runMany(warmup, false);
const h0 = await heap();
await runMany(first, true);
const h1 = await heap();
await runMany(second, false);
const h2 = await heap();
const report: MemoryReport = {
  workflows: { warmup, first, second },
  heapBytes: [h0, h1, h2],
  sampled: refs.length,
  alive: refs.filter((r) => r.deref() !== undefined).length,
  pendingTimers: clock.pendingTimers(),
  resourcesBefore,
  resourcesAfter: process.getActiveResourcesInfo(),
  failed,
  wallMs: Math.round(performance.now() - t0),
};
await rt.close();
process.stdout.write(`${JSON.stringify(report)}\n`);
