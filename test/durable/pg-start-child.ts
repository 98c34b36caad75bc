/**
 * Child process of postgres-start.test.ts and sqlite-start.test.ts (run with `node --import tsx`):
 * starts the workflows `dup-0…dup-<n-1>` under those caller-chosen ids on a shared log (a Postgres
 * URL, or else a SQLite file), all at once, after `go` on stdin — while another process starts the
 * same ids. Args: `<pgUrl|sqliteFile> <callsFile> <name> <n>`.
 * Every agent call appends `<name> <workflowId>` to `<callsFile>`. Prints one JSON line:
 * `{ outcomes: { [workflowId]: 'ran' | 'recorded' | <error code> } }`.
 */
import { appendFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { isKeelError } from '../../src/core/errors.js';
import { postgres } from '../../src/eventlog/postgres.js';
import { createRuntime } from '../../src/runtime.js';
import { jobTopology, PG_RESUME_PRICING } from './pg-resume-topology.js';

const [pgUrl, callsFile, name, nArg] = process.argv.slice(2);
if (!pgUrl || !callsFile || !name || !nArg)
  throw new Error('usage: pg-start-child.ts <pgUrl|sqliteFile> <callsFile> <name> <n>');

const rt = createRuntime({
  ...(/^postgres(ql)?:\/\//.test(pgUrl) ? { store: postgres(pgUrl) } : { db: pgUrl }),
  seed: name,
  pricing: PG_RESUME_PRICING,
  cache: false,
  metrics: false,
  tracing: false,
  durable: { leaseMs: 10_000 },
});
rt.on('error', (e) => process.stderr.write(`runtime error: ${e instanceof Error ? e.message : String(e)}\n`));
const topology = jobTopology((agent, workflowId) => {
  appendFileSync(callsFile, `${name} ${agent} ${workflowId}\n`);
  return 'answer';
});
await rt.ready();
process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
await new Promise<void>((resolve) => lines.once('line', () => resolve()));
lines.close();

const outcomes: Record<string, string> = {};
await Promise.all(
  Array.from({ length: Number(nArg) }, async (_, i) => {
    const workflowId = `dup-${i}`;
    try {
      const r = await rt.run(topology, { i }, { workflowId });
      outcomes[workflowId] = r.recorded === true ? 'recorded' : 'ran';
    } catch (e) {
      if (!isKeelError(e)) throw e;
      outcomes[workflowId] = e.code;
    }
  }),
);
await rt.close();
process.stdout.write(`${JSON.stringify({ outcomes })}\n`);
