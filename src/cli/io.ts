/**
 * Shared plumbing of the `keel` command: exit codes, output, errors that say what to do.
 */
import {
  accessSync,
  constants,
  copyFileSync,
  existsSync,
  mkdtempSync,
  rmSync,
  statSync,
  type BigIntStats,
} from 'node:fs';
import { tmpdir } from 'node:os';
import nodePath from 'node:path';
import { isKeelError, openSqliteStore, withoutPassword, type EventStore } from '../index.js';

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
  /** Writes `text` to stdout as is (no line end added): streamed text. Absent: `out` per line. */
  write?(text: string): void;
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
  write: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
  tty: Boolean(process.stdout.isTTY),
};

/** Where a command reads (or writes) the event log: a SQLite file, or a Postgres URL. */
export interface LogFlags {
  /** SQLite file (default `keel.db`). */
  db: string;
  /** `postgres://user@host:port/database` of a Postgres event store; replaces `--db`. */
  store?: string;
  /** Postgres schema holding the log (default `keel`); with `store` only. */
  schema?: string;
}

/** `--store` help text, shared by every command that reads the log. */
export const STORE_OPTION_HELP =
  'Postgres event store instead of --db, e.g. postgres://keel@127.0.0.1:5432/keel (schema "keel")';

/** `--schema` help text, next to `--store`. */
export const SCHEMA_OPTION_HELP = 'Postgres schema holding the log, with --store (default keel)';

/** The log as messages name it: the file, or the URL without its password. */
export function logName(o: LogFlags): string {
  return o.store ? withoutPassword(o.store) : o.db;
}

/**
 * Opens the log a command names: `--store postgres://…` (connected and checked before returning)
 * or the SQLite file `--db`, which must exist. Read-only unless `writable` (retention).
 */
export async function openLog(
  o: LogFlags,
  options: {
    writable?: boolean;
    /** Reads the live file (never a snapshot) to follow what the service appends (`keel serve`). */
    follow?: boolean;
  } = {},
): Promise<EventStore> {
  const readonly = !options.writable;
  if (o.schema !== undefined && o.store === undefined) {
    throw new CliError('--schema applies to a Postgres log: add --store postgres://…');
  }
  if (o.store !== undefined) {
    if (!/^postgres(ql)?:\/\//.test(o.store)) {
      throw new CliError(
        `--store must be a postgres:// URL, e.g. postgres://keel@127.0.0.1:5432/keel; got "${o.store}". For a SQLite file use --db`,
      );
    }
    let mod: typeof import('../eventlog/postgres.js');
    try {
      mod = await import('../eventlog/postgres.js');
    } catch (e) {
      throw new CliError(
        `--store needs the "pg" package: run "npm install pg" (${e instanceof Error ? e.message : String(e)})`,
        EXIT.error,
      );
    }
    const store = mod.openPostgresStore({
      url: o.store,
      readonly,
      ...(o.schema !== undefined ? { schema: o.schema } : {}),
    });
    try {
      await store.ready();
    } catch (e) {
      await store.close().catch(() => undefined);
      throw e;
    }
    return store;
  }
  if (!existsSync(o.db)) {
    throw new CliError(
      `${o.db} does not exist. Pass --db with the event log to read, or --store with a Postgres URL (run "keel demo invoice" to create one).`,
      EXIT.error,
    );
  }
  if (!readonly) return openSqliteStore({ path: o.db });
  return options.follow === true ? openSqliteStore({ path: o.db, readonly: true }) : openForReading(o.db);
}

/** Attempts at a consistent snapshot copy before giving up (a writer kept changing the file). */
const SNAPSHOT_ATTEMPTS = 5;

/**
 * Opens a SQLite log for a read-only command so that it works for a user who may only read the
 * file (not write it or its directory) while the service appends, and leaves no file of that user
 * beside the log:
 * - a writer has it open (its `-wal` and `-shm` exist): open it `readonly`, which reads through the
 *   writer's WAL and shared-memory index under SQLite's locks (a consistent snapshot per read
 *   transaction) and creates nothing, since both files exist;
 * - otherwise (no writer: the WAL was checkpointed and removed): copy the database file into a
 *   private temporary directory and read the copy, which is removed on close. The copy is kept
 *   only if the file did not change while it was made and no WAL appeared (a writer that started
 *   meanwhile), else it is retried. A `readonly` open here would create `-wal`/`-shm` owned by this
 *   user (or fail when the directory is not writable), and `immutable=1` is unsafe should a writer
 *   start during the read.
 */
export function openForReading(db: string): EventStore {
  const wal = `${db}-wal`;
  const shm = `${db}-shm`;
  for (let attempt = 0; attempt < SNAPSHOT_ATTEMPTS; attempt++) {
    if (existsSync(wal) && existsSync(shm)) {
      for (const f of [wal, shm]) {
        try {
          accessSync(f, constants.R_OK);
        } catch {
          throw new CliError(
            `${f} is not readable by this user, and a reader of a log in use needs it: give the auditors read access to the log's files (createRuntime({ fileMode: 0o640 }) and a shared group, or chmod g+r ${db}-*).`,
            EXIT.error,
          );
        }
      }
      return openSqliteStore({ path: db, readonly: true });
    }
    const before = statOrUndefined(db);
    if (before === undefined) break;
    const dir = mkdtempSync(nodePath.join(tmpdir(), 'keel-read-'));
    const remove = (): void => rmSync(dir, { recursive: true, force: true });
    try {
      const copy = nodePath.join(dir, 'snapshot.db');
      copyFileSync(db, copy);
      const after = statOrUndefined(db);
      const unchanged =
        after !== undefined &&
        after.mtimeNs === before.mtimeNs &&
        after.size === before.size &&
        after.ino === before.ino &&
        !existsSync(wal);
      if (!unchanged) {
        remove();
        continue;
      }
      let store: EventStore;
      try {
        store = openSqliteStore({ path: copy, readonly: true });
      } catch (e) {
        // Name the user's file, not the private copy, in what the error says.
        if (e instanceof Error) {
          e.message = e.message.split(copy).join(db);
          if ('path' in e && e.path === copy) Object.assign(e, { path: db });
        }
        throw e;
      }
      const close = store.close.bind(store);
      process.once('exit', remove);
      store.close = () =>
        close().finally(() => {
          process.removeListener('exit', remove);
          remove();
        });
      return store;
    } catch (e) {
      remove();
      throw e;
    }
  }
  throw new CliError(
    `${db} kept changing while a snapshot of it was taken (a writer is starting or stopping); run the command again.`,
    EXIT.error,
  );
}

function statOrUndefined(path: string): BigIntStats | undefined {
  try {
    return statSync(path, { bigint: true });
  } catch {
    return undefined;
  }
}

/** Maps any error to a message and an exit code. */
export function describeFailure(e: unknown): { message: string; exitCode: number } {
  if (e instanceof CliError) return { message: e.message, exitCode: e.exitCode };
  if (isKeelError(e)) return { message: `${e.name}: ${e.message}`, exitCode: EXIT.error };
  if (e instanceof Error) return { message: `${e.name}: ${e.message}`, exitCode: EXIT.error };
  return { message: String(e), exitCode: EXIT.error };
}

/** Parses a positive integer option, naming it on failure. */
const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * Parses a duration option such as `30m`, `2h` or `1d` (units ms, s, m, h, d, w) into ms > 0; with
 * `bareMs`, a number without a unit is ms. `what` ends the error message's subject (default: the
 * option must be a duration).
 */
export function durationArg(
  name: string,
  value: string,
  options: { bareMs?: boolean; what?: string } = {},
): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?$/.exec(value.trim());
  const unit = m?.[2] ?? (options.bareMs ? 'ms' : undefined);
  const ms = m && unit !== undefined ? Number(m[1]) * (DURATION_UNITS_MS[unit] ?? NaN) : NaN;
  if (!(ms > 0) || !Number.isFinite(ms)) {
    throw new CliError(
      `${name} ${options.what ?? 'must be a duration'} greater than 0 ${
        options.bareMs
          ? 'like 24h, 90m, 3600s or 7d (a bare number is ms)'
          : 'with a unit (ms, s, m, h, d, w), e.g. 30m, 2h or 1d'
      }; got "${value}"`,
    );
  }
  return ms;
}

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
