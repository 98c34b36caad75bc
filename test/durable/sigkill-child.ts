/**
 * Child process of sigkill.test.ts: opens the SQLite log at argv[2] and runs `seq(a, par(b, c), d)`
 * under the workflowId argv[4]; every agent call appends the agent's name to the side file argv[3]
 * before answering. `c` never answers here: once `b`'s success is committed and `c` is in flight, the
 * child prints `ready` and waits to be SIGKILLed. Its clock is simulated (argv[5], ms) with a 1 s lease,
 * so the lease it leaves behind has lapsed for any later clock.
 */
import { appendFileSync } from 'node:fs';
import { simulatedClock } from '../../src/core/clock.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { createRuntime } from '../../src/runtime.js';
import { invoiceTopology, SIGKILL_PRICING } from './sigkill-topology.js';

const [db, callsFile, workflowId, startText] = process.argv.slice(2);
if (db === undefined || callsFile === undefined || workflowId === undefined || startText === undefined) {
  throw new Error('usage: sigkill-child.ts <dbfile> <callsfile> <workflowId> <startMs>');
}

let cInFlight = false;
const topology = invoiceTopology((name) => {
  appendFileSync(callsFile, `${name}\n`);
  if (name === 'c') cInFlight = true;
  return name === 'c' ? 'hang' : 'answer';
});
const rt = createRuntime<SqliteEventStore>({
  db,
  clock: simulatedClock(Number(startText)),
  seed: 7,
  pricing: SIGKILL_PRICING,
  cache: false,
  budget: { dailyUsd: 100 },
  durable: { leaseMs: 1000 },
});

void rt.run(topology, { n: 1 }, { workflowId }).catch(() => undefined);

// Ready once b's success is on disk (a query reads committed events only) and c has been called.
const bDone = (): boolean =>
  rt.store
    .query({ workflowId, type: 'agent.succeeded' })
    .some((e) => (e.payload as { path: string }).path === 'inv/par[1]/b');
for (let i = 0; i < 100_000 && !(cInFlight && bDone()); i++) {
  await new Promise<void>((r) => setImmediate(r));
}
process.stdout.write(cInFlight && bDone() ? 'ready\n' : 'not ready\n');
// Stays alive (c never answers) until the parent kills it; a guard so it cannot outlive a lost parent.
setTimeout(() => process.exit(3), 60_000);
