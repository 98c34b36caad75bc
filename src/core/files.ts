/**
 * How Keel creates its files (event log, cache, ECS log): private by default (`0o600`), with the
 * mode exactly as asked whatever the umask, and race-free when several processes create one path.
 */
import fs from 'node:fs';
import { ConfigError } from './errors.js';

/**
 * `PRAGMA application_id` of every SQLite file Keel creates (the event log and the cache): the
 * bytes "KEEL" (0x4B45454C). Keel opens no SQLite file stamped with another id.
 */
export const KEEL_APPLICATION_ID = 0x4b45454c;

/** Mode of the files Keel creates unless configured: only the owner reads and writes. */
export const DEFAULT_FILE_MODE = 0o600;

/**
 * Checks a `fileMode` option: permission bits (at most `0o777`) that let the owner read and
 * write. `undefined` gives {@link DEFAULT_FILE_MODE}.
 *
 * @throws ConfigError naming `field`.
 */
export function resolveFileMode(mode: unknown, field = 'fileMode'): number {
  if (mode === undefined) return DEFAULT_FILE_MODE;
  if (
    typeof mode !== 'number' ||
    !Number.isInteger(mode) ||
    mode < 0 ||
    mode > 0o777 ||
    (mode & 0o600) !== 0o600
  ) {
    throw new ConfigError(
      field,
      `must be permission bits (0o000..0o777) that let the owner read and write, e.g. 0o600 or 0o640; got ${typeof mode === 'number' ? String(mode) : (JSON.stringify(mode) ?? typeof mode)}`,
    );
  }
  return mode;
}

/**
 * Creates `path` empty with exactly `mode` unless it exists (exclusive create: when another
 * process created it first, this one leaves theirs alone). SQLite gives a database's `-wal`,
 * `-shm` and `-journal` the mode of the database file, so they follow. Returns whether it created it.
 *
 * @throws ConfigError naming `field` when the file cannot be created (missing directory, no permission).
 */
export function createPrivateFile(path: string, mode: number, field = 'path'): boolean {
  let fd: number;
  try {
    fd = fs.openSync(path, 'wx', mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new ConfigError(field, `cannot create ${path}: ${(e as Error).message}`);
  }
  try {
    fs.fchmodSync(fd, mode); // exactly `mode`, whatever the umask
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

/** The part of a better-sqlite3 connection {@link enableWal} uses. */
interface PragmaConnection {
  pragma(source: string, options?: { simple?: boolean }): unknown;
}

/** Attempts {@link enableWal} makes before it gives up (about 5 s of waits in all). */
const WAL_ATTEMPTS = 50;

/**
 * Switches a connection's file to WAL journaling. Several processes opening one new file at once
 * can get SQLITE_BUSY from the switch at once, without SQLite's busy handler being consulted (it
 * needs the exclusive lock another process is about to take): the switch is retried a bounded number
 * of times, with short waits, and the last error is thrown when it never succeeds.
 */
export function enableWal(db: PragmaConnection): void {
  for (let attempt = 1; ; attempt++) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if ((code !== 'SQLITE_BUSY' && code !== 'SQLITE_LOCKED') || attempt >= WAL_ATTEMPTS) throw e;
      // A synchronous wait, as SQLite's own busy handler does: opening is synchronous.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.min(200, 5 * attempt));
    }
  }
}
