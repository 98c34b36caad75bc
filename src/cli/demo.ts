/**
 * `keel demo <invoice|fraud|cascade|chaos|all>`: runs a demo topology on simulated models in
 * virtual time, writes its event log, and prints what the log shows.
 */
import { serveLog } from './serve.js';
import { Presets, SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import {
  DEFAULT_DEMO_COUNTS,
  DEMO_NAMES,
  formatDemo,
  isDemoName,
  runDemo,
  type DemoName,
  type DemoResult,
} from '../../demos/index.js';
import { CliError, EXIT, positiveInt, type Io } from './io.js';

interface DemoFlags {
  count?: string;
  seed: string;
  db: string;
  json?: boolean;
  quiet?: boolean;
  serveMetrics?: string;
}

function seedArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n))
    throw new CliError(`--seed must be a whole number >= 0, e.g. --seed 42; got "${value}"`);
  return n;
}

/** A progress bar on stderr for one demo; started on the first report, so its total is known. */
function progressBar(name: DemoName): {
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

/** Registers `keel demo`. */
export function registerDemo(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('demo')
    .description(
      'run a demo topology on simulated models (virtual time, seeded) and print what its event log shows',
    )
    .argument('<demo>', `one of ${DEMO_NAMES.join(', ')}, or all`)
    .option(
      '--count <n>',
      `workflows to run (default ${DEMO_NAMES.map((n) => `${n} ${DEFAULT_DEMO_COUNTS[n]}`).join(', ')})`,
    )
    .option(
      '--seed <n>',
      'seed of every random draw: the same seed on a fresh file gives the same numbers',
      '42',
    )
    .option('--db <file>', 'SQLite event log to write (appended to when it exists)', 'keel-demo.db')
    .option('--json', 'print the results as JSON')
    .option('--quiet', 'no progress bar')
    .option(
      '--serve-metrics <port>',
      'then serve the log as Prometheus /metrics on 127.0.0.1:<port> until Ctrl-C',
    )
    .action(async (name: string, flags: DemoFlags) => {
      const names: readonly DemoName[] | undefined =
        name === 'all' ? DEMO_NAMES : isDemoName(name) ? [name] : undefined;
      if (!names)
        throw new CliError(`unknown demo "${name}": choose one of ${DEMO_NAMES.join(', ')}, or all`);
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
      const showBar = io.tty && !flags.quiet && !flags.json;
      const results: DemoResult[] = [];
      for (const demo of names) {
        const bar = showBar ? progressBar(demo) : undefined;
        try {
          const result = await runDemo(demo, {
            db: flags.db,
            count: count ?? DEFAULT_DEMO_COUNTS[demo],
            seed,
            ...(bar ? { onProgress: bar.onProgress } : {}),
          });
          results.push(result);
        } finally {
          bar?.stop();
        }
        const last = results[results.length - 1];
        if (!flags.json && last) io.out(`${formatDemo(last)}\n`);
      }
      if (flags.json) {
        const body = name === 'all' ? Object.fromEntries(results.map((r) => [r.demo, r])) : results[0];
        io.out(JSON.stringify(body, null, 2));
      } else {
        io.out(
          `Event log: ${flags.db} — explore it with "keel report --db ${flags.db}" or "keel audit verify --db ${flags.db}".`,
        );
      }
      if (flags.serveMetrics !== undefined) {
        await serveLog(io, { db: flags.db, port: flags.serveMetrics, host: '127.0.0.1' });
      }
      setExit(EXIT.ok);
    });
}
