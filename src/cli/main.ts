/**
 * The `keel` command. Each sub-command lives in its own file and uses the public entries only
 * (`../index.js`, `../analysis.js`, `../observability.js`, …; eslint.config.js enforces it). The demos
 * are not imported: whoever starts the CLI hands them over (`runCli(argv, io, { demos })`).
 *
 * Exit codes: 0 ok · 1 the check found a problem · 2 wrong arguments · 3 could not run.
 */
import { Command, CommanderError } from 'commander';
import { registerAudit } from './audit.js';
import { registerDemo, type DemoRegistry } from './demo.js';
import { registerReport } from './report.js';
import { registerReplay } from './replay.js';
import { registerWhatIf } from './whatif.js';
import { registerExport } from './export.js';
import { registerServe } from './serve.js';
import { registerDurable } from './durable.js';
import { EXIT, describeFailure, processIo, type Io } from './io.js';
import type { Clock } from '../index.js';

/** What the CLI is started with besides its arguments. */
export interface CliOptions {
  /** The demos `keel demo` runs and `keel replay` replays by default (bin/keel.js: demos/index.ts). */
  demos?: DemoRegistry;
  /**
   * Source of time of the durable commands (`workflows`, `resume`, `signal`) and the demos (tests
   * inject a simulated one). Default: the wall clock (demos: their virtual time).
   */
  clock?: Clock;
}

/** Builds the program (exported for tests). */
export function buildProgram(io: Io, setExit: (code: number) => void, options: CliOptions = {}): Command {
  const program = new Command('keel')
    .description('Keel: production-grade LLM agents — demos, reports, audit and replay over a Keel event log')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .exitOverride();
  registerAudit(program, io, setExit);
  registerDemo(program, io, setExit, options.demos, options.clock);
  registerReport(program, io, setExit);
  registerReplay(program, io, setExit, options.demos);
  registerWhatIf(program, io, setExit);
  registerExport(program, io, setExit);
  registerServe(program, io, setExit);
  registerDurable(program, io, setExit, options.demos, options.clock);
  return program;
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function runCli(
  argv: readonly string[],
  io: Io = processIo,
  options: CliOptions = {},
): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(
    io,
    (c) => {
      code = c;
    },
    options,
  );
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (
        e.code === 'commander.helpDisplayed' ||
        e.code === 'commander.version' ||
        e.code === 'commander.help'
      )
        return EXIT.ok;
      return EXIT.usage;
    }
    const { message, exitCode } = describeFailure(e);
    io.err(`keel: ${message}`);
    return exitCode;
  }
}
