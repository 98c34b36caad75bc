/**
 * `keel workflows`, `keel resume` and `keel signal`: durable execution from the command line.
 */
import type { Command } from 'commander';
import { createRuntime, listWorkflows, realClock, type Clock, type WorkflowStatus } from '../index.js';
import {
  isSignalValidationError,
  isUnknownWorkflowError,
  isWaitTimedOutError,
  isWorkflowFinishedError,
  isWorkflowNotWaitingError,
  isWorkflowWaitingError,
} from '../errors.js';
import type { DemoRegistry } from './demo.js';
import { loadTopologies, replayPricing } from './replay.js';
import {
  CliError,
  EXIT,
  SCHEMA_OPTION_HELP,
  STORE_OPTION_HELP,
  openLog,
  type Io,
  type LogFlags,
} from './io.js';

/** Errors of `rt.signal` that mean the arguments are wrong (exit 2), not that keel could not run. */
function isWrongSignal(e: unknown): e is Error {
  return (
    isSignalValidationError(e) ||
    isUnknownWorkflowError(e) ||
    isWorkflowFinishedError(e) ||
    isWorkflowNotWaitingError(e) ||
    isWaitTimedOutError(e)
  );
}

const STATUSES: readonly WorkflowStatus[] = [
  'running',
  'waiting',
  'interrupted',
  'completed',
  'failed',
  'cancelled',
];

interface Flags extends LogFlags {
  status?: string;
  json?: boolean;
  topologies?: string;
  markFailed?: string;
}

/** Registers the durable-execution commands. */
export function registerDurable(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
  demos?: DemoRegistry,
  clock: Clock = realClock,
): void {
  program
    .command('workflows')
    .description(
      'list the workflows of a log with their status (running, waiting, interrupted, …), age and owner',
    )
    .option('--db <file>', 'event log', 'keel.db')
    .option('--store <url>', STORE_OPTION_HELP)
    .option('--schema <name>', SCHEMA_OPTION_HELP)
    .option('--status <status>', `only these: ${STATUSES.join(', ')}`)
    .option('--json', 'machine-readable output')
    .action(async (o: Flags) => {
      if (o.status !== undefined && !STATUSES.includes(o.status as WorkflowStatus)) {
        throw new CliError(`--status must be one of ${STATUSES.join(', ')}; got "${o.status}"`);
      }
      const store = await openLog(o);
      try {
        const now = clock.now();
        const rows = (await listWorkflows(store, now)).filter(
          (w) => o.status === undefined || w.status === o.status,
        );
        if (o.json === true) {
          io.out(`${JSON.stringify(rows)}\n`);
          return;
        }
        for (const w of rows) {
          const age = Math.round((now - w.startedTs) / 1000);
          io.out(
            `${w.workflowId}  ${w.name}  ${w.status}${w.waitingFor ? ` (${w.waitingFor})` : ''}  ${age}s  ${w.owner ?? '-'}\n`,
          );
        }
        const count = (s: WorkflowStatus): number => rows.filter((w) => w.status === s).length;
        io.out(
          `${rows.length} workflow(s): ${count('waiting')} waiting, ${count('interrupted')} interrupted, ${count('running')} running\n`,
        );
      } finally {
        await store.close();
      }
    });

  program
    .command('resume')
    .description(
      'continue the workflows whose process is gone (and signalled or timed-out waits) from the log',
    )
    .option('--db <file>', 'event log', 'keel.db')
    .option('--store <url>', STORE_OPTION_HELP)
    .option('--schema <name>', SCHEMA_OPTION_HELP)
    .option(
      '--topologies <module>',
      'module exporting demoTopologies(): Record<string, Topology> (default: the demos)',
    )
    .option('--mark-failed <workflowId>', 'close this workflow as failed instead (e.g. its topology changed)')
    .option('--json', 'machine-readable output')
    .action(async (o: Flags) => {
      const registry = await loadTopologies(o.topologies, demos);
      const store = await openLog(o, { writable: true });
      const rt = createRuntime({
        store,
        clock,
        pricing: replayPricing(registry),
        metrics: false,
        tracing: false,
      });
      try {
        for (const [name, t] of Object.entries(registry)) rt.register(name, t);
        if (o.markFailed !== undefined) {
          await rt.markFailed(o.markFailed, 'marked failed with keel resume --mark-failed');
          io.out(`${o.markFailed}: marked failed\n`);
          return;
        }
        const report = await rt.resume();
        if (o.json === true)
          io.out(`${JSON.stringify(report, (_k, v: unknown) => (v instanceof Error ? v.message : v))}\n`);
        else {
          for (const r of report.resumed) io.out(`${r.workflowId}  ${r.name}  ${r.reason} → ${r.outcome}\n`);
          for (const r of report.refused)
            io.err(`${r.workflowId}  ${r.name}  not resumed: ${r.error.message}\n`);
          io.out(`${report.resumed.length} resumed, ${report.refused.length} refused\n`);
        }
        if (report.refused.length > 0) setExit(EXIT.failed);
      } finally {
        await rt.close();
      }
    });

  program
    .command('signal')
    .description('deliver a value to a waiting workflow (waitFor) and continue it')
    .argument('<workflowId>', 'the waiting workflow')
    .argument('<name>', 'the signal (the waitFor name)')
    .argument('<json>', 'the value, as JSON')
    .option('--db <file>', 'event log', 'keel.db')
    .option('--store <url>', STORE_OPTION_HELP)
    .option('--schema <name>', SCHEMA_OPTION_HELP)
    .option(
      '--topologies <module>',
      'module exporting demoTopologies(): Record<string, Topology> (default: the demos)',
    )
    .action(async (workflowId: string, name: string, json: string, o: Flags) => {
      let value: unknown;
      try {
        value = JSON.parse(json);
      } catch {
        throw new CliError(`the value must be JSON, e.g. '{"approved":true}'; got ${json}`);
      }
      const registry = await loadTopologies(o.topologies, demos);
      const store = await openLog(o, { writable: true });
      const rt = createRuntime({
        store,
        clock,
        pricing: replayPricing(registry),
        metrics: false,
        tracing: false,
      });
      try {
        for (const [n, t] of Object.entries(registry)) rt.register(n, t);
        const { seq } = await rt.signal(workflowId, name, value).catch((e: unknown) => {
          // The operator named the wrong workflow, wait or value: a usage error, nothing recorded.
          if (isWrongSignal(e)) throw new CliError(`${e.name}: ${e.message}`, EXIT.usage);
          throw e;
        });
        io.out(`${workflowId}: signal "${name}" recorded at seq ${seq}\n`);
        const result = await rt.result(workflowId).then(
          (r) => ({ text: `completed: ${JSON.stringify(r.value)}`, failed: false }),
          (e: unknown) => ({
            text: e instanceof Error ? e.message : String(e),
            failed: !isWorkflowWaitingError(e),
          }),
        );
        io.out(`${workflowId}: ${result.text}\n`);
        if (result.failed) setExit(EXIT.failed);
      } finally {
        await rt.close();
      }
    });
}
