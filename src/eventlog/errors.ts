/**
 * Named errors of the event log. Each says what happened and what to do, and none of them loses
 * an event that was already committed.
 */
import { KeelError, isKeelError } from '../core/errors.js';

/** Base of every event-log error. */
export class EventLogError extends KeelError {}

/** The file exists but is not a SQLite database (or is encrypted / truncated). */
export class NotADatabaseError extends EventLogError {
  constructor(
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(
      'EVENTLOG_NOT_A_DATABASE',
      `${path} is not a SQLite database. Point "db" at a Keel event log, or at a new path to create one; the file was not modified.`,
      options,
    );
  }
}

/** Another process holds a lock on the database longer than `busyTimeoutMs`. */
export class DatabaseLockedError extends EventLogError {
  constructor(
    readonly path: string,
    readonly busyTimeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super(
      'EVENTLOG_LOCKED',
      `${path} is locked by another process (waited ${busyTimeoutMs} ms). Stop the other writer, or raise busyTimeoutMs; nothing was written and committed events are intact.`,
      options,
    );
  }
}

/** The database (or its directory) cannot be written, or it was opened read-only. */
export class ReadOnlyDatabaseError extends EventLogError {
  constructor(
    readonly path: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      'EVENTLOG_READ_ONLY',
      `${path} is read-only (${reason}). Open it with { readonly: true } to audit it, or make it writable (chmod u+w) to append; nothing was written.`,
      options,
    );
  }
}

/** The disk (or the database's page limit) is full. */
export class DiskFullError extends EventLogError {
  constructor(
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(
      'EVENTLOG_DISK_FULL',
      `${path}: the disk or database size limit is full; the batch was rolled back and committed events are intact. Free space (or apply retention: keel retention apply) and retry.`,
      options,
    );
  }
}

/** The database file is damaged. */
export class CorruptDatabaseError extends EventLogError {
  constructor(
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(
      'EVENTLOG_CORRUPT',
      `${path} is damaged (SQLite reports corruption). Keep the file for forensics, restore from a backup, and run keel audit verify on the copy.`,
      options,
    );
  }
}

/** The database was written by a newer Keel (schema version unknown to this one). */
export class SchemaVersionError extends EventLogError {
  constructor(
    readonly path: string,
    readonly found: number,
    readonly supported: number,
  ) {
    super(
      'EVENTLOG_SCHEMA_VERSION',
      `${path} has schema version ${found}, but this Keel supports up to ${supported}. Upgrade Keel to read it; the file was not modified.`,
    );
  }
}

/** An event was refused before it reached the log. `field` names the offending field. */
export class EventValidationError extends EventLogError {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super('EVENT_INVALID', `Event refused: ${field} ${problem}. Nothing in the batch was written.`);
  }
}

/** The store was closed and cannot take more appends. */
export class StoreClosedError extends EventLogError {
  constructor() {
    super(
      'EVENTLOG_CLOSED',
      'The event store is closed. Create a new runtime (or reopen the store) to append.',
    );
  }
}

/** True for any event-log error. */
export function isEventLogError(e: unknown): e is EventLogError {
  return isKeelError(e) && e instanceof EventLogError;
}
