/**
 * Child process of postgres-processes.test.ts (run with `node --import tsx`): one resumer of a
 * fleet sharing a Postgres log. Args: `<pgUrl> <callsFile> <name> <batch> <leaseMs> <workflows>
 * [answerFirst]`. It prints `ready`, waits for `go` on stdin (so the processes race), then calls
 * `rt.resume({ batch })` until the log holds `<workflows>` completions (polling every 50 ms, giving
 * up after 45 s), and prints one JSON line: `{ resumed: [workflowId…] }`.
 *
 * Every agent call appends `<name> <agent> <workflowId> <attempt> answer|hang` to `<callsFile>`
 * (one file per child, so lines never interleave) before answering. With `answerFirst`, only that
 * many calls answer and every later one hangs: the child then never finishes and waits to be
 * SIGKILLed with its claims held.
 */
import { appendFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { realClock } from '../../src/core/clock.js';
import { postgres } from '../../src/eventlog/postgres.js';
import { createRuntime } from '../../src/runtime.js';
import { jobTopology, PG_RESUME_PRICING } from './pg-resume-topology.js';

const [pgUrl, callsFile, name, batchArg, leaseArg, workflowsArg, answerFirstArg] = process.argv.slice(2);
if (!pgUrl || !callsFile || !name || !batchArg || !leaseArg || !workflowsArg)
  throw new Error(
    'usage: pg-resume-child.ts <pgUrl> <callsFile> <name> <batch> <leaseMs> <workflows> [answerFirst]',
  );
const answerFirst = answerFirstArg === undefined ? Infinity : Number(answerFirstArg);
const workflows = Number(workflowsArg);
const clock = realClock;

let calls = 0;
const rt = createRuntime({
  store: postgres(pgUrl),
  clock,
  seed: name,
  pricing: PG_RESUME_PRICING,
  cache: false,
  metrics: false,
  tracing: false,
  durable: { leaseMs: Number(leaseArg) },
});
rt.on('error', (e) => process.stderr.write(`runtime error: ${e instanceof Error ? e.message : String(e)}\n`));
rt.register(
  'job',
  jobTopology((agent, workflowId, attempt) => {
    const answer = ++calls <= answerFirst;
    appendFileSync(callsFile, `${name} ${agent} ${workflowId} ${attempt} ${answer ? 'answer' : 'hang'}\n`);
    return answer ? 'answer' : 'hang';
  }),
);
await rt.ready();

process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
await new Promise<void>((resolve) => lines.once('line', () => resolve()));
lines.close();

const resumed: string[] = [];
const giveUpAt = clock.now() + 45_000;
for (;;) {
  const report = await rt.resume({ batch: Number(batchArg) });
  const refused = report.refused[0];
  if (refused !== undefined) throw refused.error;
  resumed.push(...report.resumed.map((w) => w.workflowId));
  const completed = await rt.store.query({ type: 'workflow.completed' });
  if (completed.length >= workflows) break;
  if (clock.now() > giveUpAt) throw new Error(`gave up: ${completed.length}/${workflows} completed`);
  if (report.resumed.length === 0) await new Promise((r) => setTimeout(r, 50));
}
await rt.close();
process.stdout.write(`${JSON.stringify({ resumed })}\n`);
