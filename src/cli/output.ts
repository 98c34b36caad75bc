/**
 * Files the `keel` command writes (`export --out`, `report --html`): never the event log, its
 * `-wal`/`-shm`/`-journal`, or its cache file, whatever path (symlink, `..`, hard link) names them;
 * written to a temporary file in the same directory and renamed into place, so a failed write never
 * leaves half a file where a good one was.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import nodePath from 'node:path';
import { CliError, EXIT, type LogFlags } from './io.js';

/** Suffixes of the files SQLite keeps beside a database. */
const SIDE_FILES = ['', '-wal', '-shm', '-journal'];

/** An output path resolves to the event log, one of its side files, or its cache: refused. */
export class OutputClashError extends CliError {
  constructor(
    readonly option: string,
    readonly outPath: string,
    /** The protected file it resolves to. */
    readonly clash: string,
  ) {
    super(
      `${option} ${outPath} resolves to ${clash}, which Keel must not overwrite (the event log, its -wal/-shm, or its cache). Write the output to another path; nothing was written.`,
      EXIT.usage,
    );
    this.name = 'OutputClashError';
  }
}

/** True when `e` is an {@link OutputClashError}. */
export function isOutputClashError(e: unknown): e is OutputClashError {
  return e instanceof OutputClashError;
}

/**
 * `path` with symlinks resolved: the real path of the file when it exists, else the real path of
 * its directory plus its name (the directory as given when that does not exist either).
 */
export function resolveReal(path: string): string {
  const abs = nodePath.resolve(path);
  try {
    return fs.realpathSync(abs);
  } catch {
    try {
      return nodePath.join(fs.realpathSync(nodePath.dirname(abs)), nodePath.basename(abs));
    } catch {
      return abs;
    }
  }
}

/** The files of a log that no output may replace: the db, its cache, and their side files. */
export function protectedFiles(log: LogFlags): string[] {
  if (log.store !== undefined) return [];
  const bases = new Set<string>();
  for (const db of [log.db, resolveReal(log.db)]) {
    bases.add(nodePath.resolve(db));
    bases.add(nodePath.resolve(`${db}.cache`));
  }
  const out = new Set<string>();
  for (const b of bases) for (const s of SIDE_FILES) out.add(`${b}${s}`);
  return [...out];
}

/**
 * Throws {@link OutputClashError} when `outPath` (given as `option`) resolves — after symlinks, or
 * as a hard link to the same file — to one of `protectedPaths`.
 */
export function refuseClash(option: string, outPath: string, protectedPaths: readonly string[]): void {
  const real = resolveReal(outPath);
  let outStat: fs.Stats | undefined;
  try {
    outStat = fs.statSync(real);
  } catch {
    outStat = undefined;
  }
  for (const p of protectedPaths) {
    if (resolveReal(p) === real || nodePath.resolve(p) === real)
      throw new OutputClashError(option, outPath, p);
    if (outStat !== undefined) {
      try {
        const s = fs.statSync(p);
        if (s.ino === outStat.ino && s.dev === outStat.dev) throw new OutputClashError(option, outPath, p);
      } catch (e) {
        if (isOutputClashError(e)) throw e;
      }
    }
  }
}

/** Parses `--file-mode` (octal permission bits that let the owner read and write, e.g. 600 or 640). */
export function fileModeArg(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const mode = /^0?o?[0-7]{3}$/.test(value) ? parseInt(value.replace(/^0?o?/, ''), 8) : NaN;
  if (!Number.isInteger(mode) || (mode & 0o600) !== 0o600) {
    throw new CliError(
      `--file-mode must be octal permission bits that let the owner read and write, e.g. 600 or 640; got "${value}"`,
    );
  }
  return mode;
}

/** A file being written beside its destination, renamed into place by {@link AtomicFile.commit}. */
export interface AtomicFile {
  /** Appends text. */
  write(text: string): void;
  /** Flushes to disk, closes, and renames over the destination. */
  commit(): void;
  /** Closes and removes the temporary file (the destination is untouched). Idempotent. */
  abort(): void;
}

/**
 * Starts writing `destination` atomically: a temporary file in its directory with `mode` (default:
 * the mode of the file it replaces, else `0o600`), renamed over it on {@link AtomicFile.commit}.
 */
export function writeAtomically(destination: string, mode?: number): AtomicFile {
  const target = resolveReal(destination);
  let finalMode = mode;
  if (finalMode === undefined) {
    try {
      finalMode = fs.statSync(target).mode & 0o777;
    } catch {
      finalMode = 0o600;
    }
  }
  const temp = nodePath.join(nodePath.dirname(target), `.${nodePath.basename(target)}.${randomUUID()}.tmp`);
  const fd = fs.openSync(temp, 'wx', finalMode);
  let open = true;
  let done = false;
  const close = (): void => {
    if (open) {
      open = false;
      fs.closeSync(fd);
    }
  };
  try {
    fs.fchmodSync(fd, finalMode); // exactly the mode, whatever the umask
  } catch (e) {
    close();
    fs.rmSync(temp, { force: true });
    throw e;
  }
  return {
    write(text) {
      fs.writeSync(fd, text);
    },
    commit() {
      fs.fsyncSync(fd);
      close();
      fs.renameSync(temp, target);
      done = true;
    },
    abort() {
      if (done) return;
      done = true;
      close();
      fs.rmSync(temp, { force: true });
    },
  };
}
