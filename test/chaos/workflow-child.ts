/**
 * Child process of sigkill.test.ts (run with `node --import tsx`): on the real clock and the file
 * log at argv[2], it trips the breaker `flaky` open (printing `breaker open` once that transition is
 * committed), then runs invoice-like workflows — `seq(par(a, b, c), d)` on a simulated
 * provider with 2–8 ms latencies, 32 in flight — printing `done <workflowId>` as each `rt.run()` resolves, i.e. once its
 * events are committed. The parent SIGKILLs it mid-stream. It stops by itself after MAX_WORKFLOWS
 * or MAX_MS, so it can never run away.
 */
import { simulated } from '../../src/providers/simulated.js';
import { ProviderError } from '../../src/providers/types.js';
import { createRuntime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';
import { par } from '../../src/supervisor/parallel.js';
import { seq } from '../../src/supervisor/sequential.js';
import { CHILD_BREAKER, CHILD_PRICING, CHILD_SEED, FLAKY_RESET_MS } from './child-config.js';
import { modelAgent } from './harness.js';

const MAX_WORKFLOWS = 50_000;
const MAX_MS = 60_000;
const IN_FLIGHT = 32;

const file = process.argv[2];
if (file === undefined) throw new Error('usage: workflow-child.ts <dbfile>');

const rt = createRuntime({
  db: file,
  seed: CHILD_SEED,
  pricing: CHILD_PRICING,
  budget: { dailyUsd: 1_000 },
  cache: false,
  metrics: false,
  tracing: false,
});

const flaky = agent({
  name: 'flaky_call',
  model: 'flat',
  breaker: { name: CHILD_BREAKER, failureThreshold: 3, resetTimeoutMs: FLAKY_RESET_MS },
  run: () => Promise.reject(new ProviderError('provider_error', 'flaky: 503 (always)', { status: 503 })),
});
for (let i = 0; i < 3; i++) await rt.run(flaky, { i }).catch(() => undefined);
const opened = rt.store
  .query({ type: 'breaker.transitioned' })
  .some(
    (e) =>
      e.type === 'breaker.transitioned' && e.payload.breaker === CHILD_BREAKER && e.payload.to === 'open',
  );
if (!opened) throw new Error('the flaky breaker should be open and its transition committed');
process.stdout.write('breaker open\n');

const provider = simulated({ seed: CHILD_SEED, latencyMs: { p50: 2, p95: 8 } });
const step = (name: string) => modelAgent(name, provider, { model: 'flat' });
const invoice = seq(par(step('vendor'), step('amount'), step('date')), step('route'));

const deadline = Date.now() + MAX_MS;
let next = 0;
async function worker(): Promise<void> {
  while (next < MAX_WORKFLOWS && Date.now() < deadline) {
    const n = next++;
    const { workflowId } = await rt.run(invoice, { invoice: `INV-${n}` });
    // stdout is a pipe: writes are synchronous on Linux, so a printed line was acknowledged.
    process.stdout.write(`done ${workflowId}\n`);
  }
}
await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
await rt.close();
