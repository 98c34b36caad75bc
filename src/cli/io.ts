/**
 * Shared plumbing of the `keel` command: exit codes, output, errors that say what to do.
 */
import { existsSync } from 'node:fs';
import { isKeelError } from '../core/errors.js';
import { openSqliteStore, type SqliteEventStore } from '../eventlog/sqlite.js';

/** Documented exit codes of every `keel` command. */
export const EXIT = {
  /** Success. */
  ok: 0,
  /** The check ran and found a problem (broken chain, divergent replay, breached target). */
  failed: 1,
  /** Wrong arguments or options. */
  usage: 2,
  /** The command could not run (missing, locked, corrupt or read-only database, I/O error). */
  error: 3,
} as const;

/** A CLI failure with its exit code and a message that says what to do. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.usage,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Where a command writes (injectable for tests). */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** True when stdout is a terminal (progress bars, colours). */
  readonly tty: boolean;
}

// A reader that stops early (`keel audit trace … | head`) closes the pipe: stop quietly.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
});

/** The process's stdout/stderr. */
export const processIo: Io = {
  out: (t) => void process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
  err: (t) => void process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
  tty: Boolean(process.stdout.isTTY),
};

/** Opens an existing log for reading (auditors cannot write). */
export function openForAudit(path: string): SqliteEventStore {
  if (!existsSync(path)) {
    throw new CliError(
      `${path} does not exist. Pass --db with the event log to read (run "keel demo invoice" to create one).`,
      EXIT.error,
    );
  }
  return openSqliteStore({ path, readonly: true });
}

/** Maps any error to a message and an exit code. */
export function describeFailure(e: unknown): { message: string; exitCode: number } {
  if (e instanceof CliError) return { message: e.message, exitCode: e.exitCode };
  if (isKeelError(e)) return { message: `${e.name}: ${e.message}`, exitCode: EXIT.error };
  if (e instanceof Error) return { message: `${e.name}: ${e.message}`, exitCode: EXIT.error };
  return { message: String(e), exitCode: EXIT.error };
}

/** Parses a positive integer option, naming it on failure. */
export function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw new CliError(`${name} must be a positive whole number, got "${value}"`);
  return n;
}

/** Parses a time option: ISO date/time or ms since epoch. */
export function timeArg(name: string, value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(n)) {
    throw new CliError(
      `${name} must be an ISO date/time (2026-11-27T10:00:00Z) or ms since epoch, got "${value}"`,
    );
  }
  return n;
}
