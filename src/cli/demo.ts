/**
 * `keel demo <invoice|fraud|cascade|chaos|all>`: runs a demo topology on simulated models in
 * virtual time, writes its event log, and prints what the log shows.
 */
import { serveLog } from './serve.js';
import { Presets, SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import type { Clock, Topology } from '../index.js';
import { CliError, EXIT, positiveInt, type Io } from './io.js';

/** What `keel demo` is asked to run: the log to write, how many workflows, the seed. */
export interface DemoRunOptions {
  db: string;
  count: number;
  seed: number;
  /** Called as workflows finish (drives the progress bar). */
  onProgress?: (done: number, total: number) => void;
  /** Invoice demo: invoices above this amount wait for a person (`--approve-above`). */
  approveAbove?: number;
  /** Source of time (tests); default: each demo's virtual time. */
  clock?: Clock;
  /** Receives text a demo streams as it is generated (a support agent's answer), unless `--json`. */
  onText?: (text: string) => void;
}

/**
 * The demos `keel demo` runs and `keel replay` replays by default. The library does not import
 * them: whoever starts the CLI hands them over (`runCli(argv, io, { demos })`; bin/keel.js passes
 * the repository's, `demoRegistry` of demos/index.ts).
 */
export interface DemoRegistry {
  /** The demos, in the order `keel demo all` runs them. */
  readonly names: readonly string[];
  /** The demos `keel demo all` runs, when not every one of `names`. */
  readonly all?: readonly string[];
  /** Workflows each demo runs without `--count`. */
  readonly defaultCounts: Readonly<Record<string, number>>;
  /** Runs one demo (`name` is one of `names`); its result has the demo's name as `demo`. */
  run(name: string, options: DemoRunOptions): Promise<{ readonly demo: string }>;
  /** A result's printed summary. */
  format(result: { readonly demo: string }): string;
  /** Every demo topology by workflow name (`keel replay`'s default registry). */
  topologies(): Record<string, Topology<never, unknown>>;
}

/** Refuses to go on without demos, naming how to give them. */
export function requireDemos(demos: DemoRegistry | undefined, what: string): DemoRegistry {
  if (demos === undefined) {
    throw new CliError(
      `${what}: this keel was started without demos; start it with runCli(argv, io, { demos }) (bin/keel.js passes demos/index.ts's demoRegistry)`,
      EXIT.error,
    );
  }
  return demos;
}

interface DemoFlags {
  count?: string;
  seed: string;
  db: string;
  json?: boolean;
  quiet?: boolean;
  serveMetrics?: string;
  approveAbove?: string;
}

function amountArg(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !Number.isFinite(n))
    throw new CliError(`--approve-above must be an amount >= 0, e.g. --approve-above 10000; got "${value}"`);
  return n;
}

function seedArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
    throw new CliError(`--seed must be a whole number >= 0, e.g. --seed 42; got "${value}"`);
  return n;
}

/** A progress bar on stderr for one demo; started on the first report, so its total is known. */
function progressBar(name: string): {
  onProgress: (done: number, total: number) => void;
  stop: () => void;
} {
  const bar = new SingleBar(
    {
      format: `${name.padEnd(8)} [{bar}] {percentage}% | {value}/{total} workflows | {duration_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      stream: process.stderr,
    },
    Presets.shades_classic,
  );
  let started = false;
  return {
    onProgress: (done, total) => {
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      bar.update(done);
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

/**
 * Streamed text to `io`: written as it arrives where the Io can write without a line end
 * (`io.write`), else a line at a time.
 */
function streamTo(io: Io): (text: string) => void {
  if (io.write) return (text) => io.write?.(text);
  let line = '';
  return (text) => {
    line += text;
    let at = line.indexOf('\n');
    while (at >= 0) {
      io.out(line.slice(0, at));
      line = line.slice(at + 1);
      at = line.indexOf('\n');
    }
  };
}

/** Registers `keel demo`. */
export function registerDemo(
  program: Command,
  io: Io,
  setExit: (code: number) => void,
  demos: DemoRegistry | undefined,
  clock?: Clock,
): void {
  const names = demos?.names ?? [];
  const counts = demos?.defaultCounts ?? {};
  program
    .command('demo')
    .description(
      'run a demo topology on simulated models (virtual time, seeded) and print what its event log shows',
    )
    .argument('<demo>', `one of ${names.join(', ')}, or all`)
    .option('--count <n>', `workflows to run (default ${names.map((n) => `${n} ${counts[n]}`).join(', ')})`)
    .option(
      '--seed <n>',
      'seed of every random draw: the same seed on a fresh file gives the same numbers',
      '42',
    )
    .option('--db <file>', 'SQLite event log to write (appended to when it exists)', 'keel.db')
    .option('--json', 'print the results as JSON')
    .option('--quiet', 'no progress bar')
    .option(
      '--serve-metrics <port>',
      'then serve the log as Prometheus /metrics on 127.0.0.1:<port> until Ctrl-C',
    )
    .option(
      '--approve-above <amount>',
      'invoice demo: invoices above this amount wait for a person (waitFor); prints the keel signal commands that approve them',
    )
    .action(async (name: string, flags: DemoFlags) => {
      const registry = requireDemos(demos, `keel demo ${name}`);
      const chosen: readonly string[] | undefined =
        name === 'all'
          ? (registry.all ?? registry.names)
          : registry.names.includes(name)
            ? [name]
            : undefined;
      if (!chosen)
        throw new CliError(`unknown demo "${name}": choose one of ${registry.names.join(', ')}, or all`);
      const count = flags.count === undefined ? undefined : positiveInt('--count', flags.count);
      if (
        flags.serveMetrics !== undefined &&
        !(/^\d+$/.test(flags.serveMetrics) && Number(flags.serveMetrics) <= 65_535)
      ) {
        throw new CliError(
          `--serve-metrics must be a port in [0, 65535] (0 picks a free one), got "${flags.serveMetrics}"`,
        );
      }
      const seed = seedArg(flags.seed);
      const approveAbove = flags.approveAbove === undefined ? undefined : amountArg(flags.approveAbove);
      if (approveAbove !== undefined && name !== 'invoice')
        throw new CliError(
          `--approve-above applies to the invoice demo only: keel demo invoice --approve-above ${flags.approveAbove}`,
        );
      const showBar = io.tty && !flags.quiet && !flags.json;
      const results: { readonly demo: string }[] = [];
      for (const demo of chosen) {
        const bar = showBar ? progressBar(demo) : undefined;
        try {
          const result = await registry.run(demo, {
            db: flags.db,
            count: count ?? (approveAbove !== undefined ? 200 : (registry.defaultCounts[demo] ?? 1_000)),
            seed,
            ...(approveAbove !== undefined ? { approveAbove } : {}),
            ...(clock ? { clock } : {}),
            ...(bar ? { onProgress: bar.onProgress } : {}),
            ...(flags.json ? {} : { onText: streamTo(io) }),
          });
          results.push(result);
        } finally {
          bar?.stop();
        }
        const last = results[results.length - 1];
        if (!flags.json && last) io.out(`${registry.format(last)}\n`);
      }
      // keel.db is every command's default: no --db to repeat.
      const dbFlag = flags.db === 'keel.db' ? '' : ` --db ${flags.db}`;
      if (flags.json) {
        const body = name === 'all' ? Object.fromEntries(results.map((r) => [r.demo, r])) : results[0];
        io.out(JSON.stringify(body, null, 2));
      } else {
        io.out(
          `Event log: ${flags.db} — explore it with "keel report${dbFlag}", "keel whatif${dbFlag} --cascade-threshold 0.95,0.9,0.85" or "keel audit verify${dbFlag}".`,
        );
      }
      if (flags.serveMetrics !== undefined) {
        await serveLog(io, { db: flags.db, port: flags.serveMetrics, host: '127.0.0.1' });
      }
      setExit(EXIT.ok);
    });
}
