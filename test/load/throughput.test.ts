/**
 * Load: 10,000 invoice-shaped workflows — `seq(par(vendor, amount, date), route)` on a zero-latency
 * simulated provider, real clock, file log — with 1,000 in flight through a lazy pool (workers pull
 * the next input only when they are free). Durable before acknowledged: as each result comes back,
 * its `workflow.completed` must already be in the store. Throughput is printed, not asserted.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { simulated } from '../../src/providers/simulated.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { par } from '../../src/supervisor/parallel.js';
import { seq } from '../../src/supervisor/sequential.js';
import { PRICING, logHealth, modelAgent } from '../chaos/harness.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';

const WORKFLOWS = 10_000;
const IN_FLIGHT = 1_000;

const dirs: string[] = [];
const runtimes: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Names and counts of `process.getActiveResourcesInfo()`. */
function resources(): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) out.set(r, (out.get(r) ?? 0) + 1);
  return out;
}

describe('load: 10,000 workflows, 1,000 in flight', () => {
  it('acknowledges every workflow only after its completion is committed', { timeout: 600_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-load-'));
    dirs.push(dir);
    const rt = createRuntime({ db: path.join(dir, 'keel.db'), seed: 1, pricing: PRICING });
    runtimes.push(rt);
    const provider = simulated({ seed: 1, latencyMs: { p50: 0, p95: 0 } });
    const step = (name: string) => modelAgent(name, provider, { timeoutMs: 30_000 });
    const invoice = seq(par(step('vendor'), step('amount'), step('date')), step('route'));

    const before = resources();
    let next = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    let acknowledged = 0;
    const notDurable: string[] = [];
    const failures: unknown[] = [];
    const worker = async (): Promise<void> => {
      while (next < WORKFLOWS) {
        const n = next++;
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        try {
          const { workflowId } = await rt.run(invoice, { invoice: `INV-${n % 256}`, n });
          acknowledged++;
          // By workflow id (indexed): `{ workflowId, type }` makes SQLite walk the type index instead.
          const events = rt.store.query({ workflowId });
          if (!events.some((e) => e.type === 'workflow.completed')) notDurable.push(workflowId);
        } catch (e) {
          failures.push(e);
        } finally {
          inFlight--;
        }
      }
    };
    const wall0 = performance.now();
    const cpu0 = process.cpuUsage();
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    const cpu = process.cpuUsage(cpu0);
    const wallMs = performance.now() - wall0;
    const events = rt.store.lastSeq();
    console.log(
      `load: ${WORKFLOWS} workflows (${4 * WORKFLOWS} agent calls, ${events} events), ${IN_FLIGHT} in flight: ` +
        `${(wallMs / 1_000).toFixed(1)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU, ` +
        `${Math.round((WORKFLOWS / wallMs) * 1_000)} workflows/s; writer ${JSON.stringify(rt.store.stats())}`,
    );

    expect(failures).toEqual([]);
    expect(acknowledged).toBe(WORKFLOWS);
    expect(maxInFlight).toBe(IN_FLIGHT);
    expect(notDurable).toEqual([]);
    const after = resources();
    // No timer, immediate or handle is left behind by 10,000 workflows.
    for (const [name, count] of after) expect(count, name).toBeLessThanOrEqual(before.get(name) ?? 0);
    expect(logHealth(rt.store)).toMatchObject({
      started: WORKFLOWS,
      terminal: WORKFLOWS,
      open: [],
      verified: true,
    });
  });
});
