/**
 * `keel replay [id|all]`: re-runs recorded workflows with every model output taken from the log
 * (zero model calls) and lists each decision that differs, with the recorded and replayed value.
 * Topologies come from a module given with `--topologies` (exporting `demoTopologies()` or
 * `topologies`), or by default from the demos the CLI was started with (`runCli(argv, io, { demos })`).
 *
 * Workflows cut off by a crash and marked `workflow.interrupted` (`keel audit interrupt`) are not
 * replayed: they are listed as INTERRUPTED and counted on their own in the summary.
 *
 * Exit codes: 0 every workflow replayed identically (with `all`, interrupted ones aside) · 1 a
 * workflow diverged, could not be replayed (one id that was interrupted included) or does not
 * exist · 2 wrong arguments · 3 the log or the topology module could not be loaded.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Presets, SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { createPricing, createRuntime, type ModelPrice, type ReplayReport, type Topology } from '../index.js';
import { agentsOf } from '../analysis.js';
import { requireDemos, type DemoRegistry } from './demo.js';
import { CliError, EXIT, STORE_OPTION_HELP, SCHEMA_OPTION_HELP, logName, openLog, type Io } from './io.js';

/** A registry of topologies by workflow name, as `--topologies` modules export it. */
export type TopologyRegistry = Record<string, Topology<never, unknown>>;

interface ReplayFlags {
  db: string;
  store?: string;
  schema?: string;
  topologies?: string;
  json?: boolean;
  verbose?: boolean;
  quiet?: boolean;
}

function isTopology(value: unknown): value is Topology<never, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const kind = (value as { kind?: unknown }).kind;
  return (
    typeof kind === 'string' && (kind !== 'agent' || typeof (value as { run?: unknown }).run === 'function')
  );
}

/**
 * Loads topologies from a module exporting `demoTopologies()` (a function returning them) or a
 * `topologies` object, keyed by workflow name; without a module, the demos' topologies.
 */
export async function loadTopologies(
  modulePath: string | undefined,
  demos?: DemoRegistry,
): Promise<TopologyRegistry> {
  if (modulePath === undefined) {
    const registry = requireDemos(
      demos,
      'no topologies to replay with: pass --topologies <module> with a module exporting demoTopologies(): Record<string, Topology>',
    );
    return checked('the demos', registry.topologies());
  }
  const path = resolve(modulePath);
  if (!existsSync(path)) {
    throw new CliError(
      `--topologies ${path} does not exist; pass the path of a .js or .ts module`,
      EXIT.error,
    );
  }
  let mod: unknown;
  try {
    const spec = pathToFileURL(path).href;
    mod = await import(spec);
  } catch (e) {
    throw new CliError(
      `could not load the topologies module ${path}: ${e instanceof Error ? e.message : String(e)}`,
      EXIT.error,
    );
  }
  const m = mod as { demoTopologies?: unknown; topologies?: unknown };
  let registry: unknown;
  if (typeof m.demoTopologies === 'function') registry = (m.demoTopologies as () => unknown)();
  else registry = m.topologies;
  if (typeof registry !== 'object' || registry === null) {
    throw new CliError(
      `${path} exports neither demoTopologies() nor a topologies object; export demoTopologies(): Record<string, Topology>`,
      EXIT.error,
    );
  }
  return checked(path, registry);
}

/** `registry` with every entry checked to be a topology; `source` names where it came from. */
function checked(source: string, registry: object): TopologyRegistry {
  const out: TopologyRegistry = {};
  for (const [name, t] of Object.entries(registry)) {
    if (!isTopology(t))
      throw new CliError(
        `${source}: topology "${name}" is not a Keel topology (agent(), seq(), cascade(), ...)`,
        EXIT.error,
      );
    out[name] = t;
  }
  return out;
}

/** Prices for replay: costs are not compared, so models the default table lacks are priced at 0. */
export function replayPricing(registry: TopologyRegistry): Record<string, ModelPrice> {
  const known = createPricing();
  const pricing: Record<string, ModelPrice> = {};
  for (const t of Object.values(registry)) {
    for (const a of agentsOf(t)) {
      if (!known.has(a.model)) pricing[a.model] = { inputPer1K: 0, outputPer1K: 0 };
    }
  }
  return pricing;
}

const show = (v: unknown): string => (v === undefined ? '(nothing)' : JSON.stringify(v));

function formatReport(r: ReplayReport): string[] {
  if (r.ok) return [`OK        ${r.workflowId}  ${r.name}`];
  if (r.interrupted) {
    return [
      `INTERRUPTED  ${r.workflowId}  ${r.name}`,
      ...r.divergences.map((d) => `  - [${d.kind}] ${d.message}`),
    ];
  }
  const lines = [`DIVERGED  ${r.workflowId}  ${r.name}`];
  for (const d of r.divergences) {
    lines.push(`  - [${d.kind}] ${d.message}`);
    lines.push(`      recorded: ${show(d.recorded)}`);
    lines.push(`      replayed: ${show(d.replayed)}`);
  }
  return lines;
}

/** Registers `keel replay`. */
export function registerReplay(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
  demos: DemoRegistry | undefined,
): void {
  program
    .command('replay')
    .description(
      're-run recorded workflows from the log with zero model calls; list every decision that differs',
    )
    .argument('[target]', 'a workflow id, or "all"', 'all')
    .option('--db <file>', 'event log', 'keel.db')
    .option('--store <url>', STORE_OPTION_HELP)
    .option('--schema <name>', SCHEMA_OPTION_HELP)
    .option(
      '--topologies <module>',
      "module exporting demoTopologies(): Record<string, Topology> (default: the demos' topologies)",
    )
    .option('--json', 'machine-readable output')
    .option('--verbose', 'with "all": a line for every workflow, identical ones included')
    .option('--quiet', 'no progress bar')
    .addHelpText(
      'after',
      '\nExit codes: 0 identical, 1 a workflow diverged or could not be replayed, 2 wrong arguments, 3 the log or the topologies could not be loaded.\n' +
        'Workflows marked interrupted after a crash (keel audit interrupt) are not replayed: "all" counts them apart and still exits 0; one such id exits 1.',
    )
    .action(async (target: string, o: ReplayFlags) => {
      if (target.trim() === '') throw new CliError('give a workflow id or "all"');
      const registry = await loadTopologies(o.topologies, demos);
      const store = await openLog(o);
      if (
        target !== 'all' &&
        (await store.query({ workflowId: target, type: 'workflow.started', limit: 1 })).length === 0
      ) {
        await store.close();
        throw new CliError(
          `no workflow "${target}" in ${logName(o)} (list ids with "keel audit query --type workflow.started")`,
          EXIT.failed,
        );
      }
      const rt = createRuntime({
        store,
        pricing: replayPricing(registry),
        metrics: false,
        tracing: false,
        cache: false,
        redact: false,
      });
      const bar =
        io.tty && o.json !== true && o.quiet !== true && target === 'all'
          ? new SingleBar(
              {
                format: 'replay [{bar}] {percentage}% | {value}/{total} workflows | {duration_formatted}',
                hideCursor: true,
                clearOnComplete: true,
                stream: process.stderr,
              },
              Presets.shades_classic,
            )
          : undefined;
      let reports: ReplayReport[];
      try {
        reports = await rt.replay(target, {
          topologies: registry,
          ...(bar !== undefined
            ? {
                onReport: (_r: ReplayReport, done: number, total: number) => {
                  if (done === 1) bar.start(total, 0);
                  bar.update(done);
                },
              }
            : {}),
        });
      } finally {
        bar?.stop();
        await rt.close();
      }
      const interrupted = reports.filter((r) => r.interrupted !== undefined).length;
      const diverged = reports.filter((r) => !r.ok && r.interrupted === undefined).length;
      const identical = reports.length - diverged - interrupted;
      if (o.json) {
        io.out(
          JSON.stringify(
            { workflows: reports.length, ok: identical, diverged, interrupted, modelCalls: 0, reports },
            null,
            2,
          ),
        );
      } else if (reports.length === 0) {
        io.out(`no workflows in ${logName(o)}: nothing to replay`);
      } else {
        const lines: string[] = [];
        // With "all", identical workflows are counted in the summary; --verbose lists them too.
        const listAll = target !== 'all' || o.verbose === true;
        for (const r of reports) if (listAll || !r.ok) lines.push(...formatReport(r));
        lines.push(
          `${reports.length - interrupted} workflow(s) replayed with 0 model calls: ${identical} identical, ${diverged} diverged` +
            (interrupted > 0 ? `; ${interrupted} interrupted by a crash, not replayable` : ''),
        );
        io.out(lines.join('\n'));
      }
      setExit(diverged > 0 || (target !== 'all' && interrupted > 0) ? EXIT.failed : EXIT.ok);
    });
}
