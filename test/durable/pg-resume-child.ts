/**
 * Child process of postgres-processes.test.ts (run with `node --import tsx`): one resumer of a
 * fleet sharing a Postgres log. Args: `<pgUrl> <name> <batch> <leaseMs> [answerFirst|gated]`.
 *
 * It talks to the test in lines, so the test waits on what happened instead of polling:
 * - stdout `ready` once the runtime is open; `call <agent> <workflowId> <attempt> answer|hang`
 *   when an agent call starts (before it answers or hangs); `completed <workflowId>` for every
 *   `workflow.completed` this process committed (listeners run before the append resolves, so
 *   before the pass that ran it returns); `idle` each time a `rt.resume({ batch })` pass returns
 *   (nothing more it may claim now); `done {"resumed":[…]}` after a clean close.
 * - stdin `go` starts the first pass; after `idle`, `advance <ms>` moves this process's clock on by
 *   `<ms>` (the test's stand-in for a lease's worth of waiting) and runs another pass, and `stop`
 *   closes the runtime. `open` (at any time) opens the gate of a `gated` child. A closed stdin
 *   (the test died) exits.
 *
 * With `answerFirst` (a number), only that many calls answer and every later one hangs: the first
 * pass then never returns, and the child waits to be SIGKILLed with its claims held. With `gated`,
 * every call answers, but only once the test sent `open`: the child claims its first batch at once
 * with the others, and finishes nothing before the test lets it. Stdout is a pipe, whose writes
 * are synchronous on Linux: every line printed before a SIGKILL reaches the test.
 */
import { createInterface } from 'node:readline';
import { realClock, type Clock } from '../../src/core/clock.js';
import { postgres } from '../../src/eventlog/postgres.js';
import { createRuntime } from '../../src/runtime.js';
import { jobTopology, PG_RESUME_PRICING } from './pg-resume-topology.js';

const [pgUrl, name, batchArg, leaseArg, mode] = process.argv.slice(2);
if (!pgUrl || !name || !batchArg || !leaseArg)
  throw new Error('usage: pg-resume-child.ts <pgUrl> <name> <batch> <leaseMs> [answerFirst|gated]');
const answerFirst = mode === undefined || mode === 'gated' ? Infinity : Number(mode);
const say = (line: string): void => void process.stdout.write(`${line}\n`);

let openGate: () => void = () => undefined;
const gate = mode === 'gated' ? new Promise<void>((resolve) => (openGate = resolve)) : Promise.resolve();

/** The wall clock, moved on by every `advance` the test sends. */
let offsetMs = 0;
const clock: Clock = { ...realClock, now: () => realClock.now() + offsetMs };

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
    say(`call ${agent} ${workflowId} ${attempt} ${answer ? 'answer' : 'hang'}`);
    return answer ? gate : 'hang';
  }),
);
rt.store.onCommit((batch) => {
  for (const e of batch) if (e.type === 'workflow.completed') say(`completed ${e.workflowId}`);
});
await rt.ready();

const commands: string[] = [];
let wake: (() => void) | undefined;
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() === 'open') return openGate();
  commands.push(line.trim());
  wake?.();
});
lines.on('close', () => {
  commands.push('closed');
  wake?.();
});
const next = async (): Promise<string> => {
  while (commands.length === 0) await new Promise<void>((r) => (wake = r));
  return commands.shift() ?? 'closed';
};

say('ready');
if ((await next()) !== 'go') process.exit(2);
const resumed: string[] = [];
for (;;) {
  const report = await rt.resume({ batch: Number(batchArg) });
  const refused = report.refused[0];
  if (refused !== undefined) throw refused.error;
  resumed.push(...report.resumed.map((w) => w.workflowId));
  say('idle');
  const command = await next();
  if (command === 'closed') process.exit(3);
  if (command === 'stop') break;
  const advance = /^advance (\d+)$/.exec(command);
  if (!advance) throw new Error(`unknown command: ${command}`);
  offsetMs += Number(advance[1]);
}
lines.close();
await rt.close();
say(`done ${JSON.stringify({ resumed })}`);
