/**
 * Named errors of the event log. Each says what happened and what to do, and none of them loses
 * an event that was already committed.
 */
import { KeelError, isKeelError } from '../core/errors.js';

/** Base of every event-log error. */
export class EventLogError extends KeelError {}

/**
 * The file is not Keel's: another application's SQLite database (its own tables, its own
 * `application_id`, an `events` table Keel did not create) or not SQLite at all. Keel opens only a
 * new empty file or one of its own logs, and leaves this one byte-for-byte unchanged (no `-wal` or
 * `-shm` either).
 */
export class ForeignDatabaseError extends EventLogError {
  constructor(
    readonly path: string,
    /** What makes it foreign, e.g. `it holds tables "users", "orders"`. */
    readonly why: string,
    options?: { cause?: unknown; code?: string; message?: string },
  ) {
    super(
      options?.code ?? 'EVENTLOG_FOREIGN_DATABASE',
      `${options?.message ?? `${path} is not a Keel event log (${why})`}. Point "db" (--db) at a Keel event log, or at a new path to create one; the file was not modified.`,
      options?.cause !== undefined ? { cause: options.cause } : undefined,
    );
  }
}

/** True when `e` is a {@link ForeignDatabaseError} (a {@link NotADatabaseError} included). */
export function isForeignDatabaseError(e: unknown): e is ForeignDatabaseError {
  return isEventLogError(e) && e instanceof ForeignDatabaseError;
}

/** The file exists but is not a SQLite database (or is encrypted / truncated): a foreign file. */
export class NotADatabaseError extends ForeignDatabaseError {
  constructor(path: string, options?: { cause?: unknown }) {
    super(path, 'it is not a SQLite database', {
      code: 'EVENTLOG_NOT_A_DATABASE',
      message: `${path} is not a SQLite database`,
      ...(options?.cause !== undefined ? { cause: options.cause } : {}),
    });
  }
}

/**
 * A string the log would hash and store in a column (a workflow id) is not well-formed Unicode: it
 * holds a lone surrogate, which SQLite stores as U+FFFD, so the stored row would no longer match its
 * hash. Refused before anything of the append is written.
 */
export class MalformedStringError extends EventLogError {
  constructor(
    readonly field: string,
    /** Index (UTF-16 code unit) of the first lone surrogate. */
    readonly index: number,
  ) {
    super(
      'EVENT_INVALID',
      `Event refused: ${field} holds a lone surrogate at index ${index} (not well-formed Unicode: it cannot be stored as it was hashed). Pass a well-formed string, e.g. s.toWellFormed(); nothing in the batch was written.`,
    );
  }
}

/** True when `e` is a {@link MalformedStringError}. */
export function isMalformedStringError(e: unknown): e is MalformedStringError {
  return isEventLogError(e) && e instanceof MalformedStringError;
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
    options?: { cause?: unknown; fix?: string },
  ) {
    const fix =
      options?.fix ??
      'Open it with { readonly: true } to audit it, or make it writable (chmod u+w) to append';
    super(
      'EVENTLOG_READ_ONLY',
      `${path} is read-only (${reason}). ${fix}; nothing was written.`,
      options?.cause !== undefined ? { cause: options.cause } : undefined,
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

/**
 * A row of a schema-4 SQLite log cannot be read back: it refers to a `keel_strings` id the file does
 * not hold, or its coded payload does not decode. The row (or the dictionary) was altered or
 * damaged outside Keel; `keel audit verify` reports the first such row as `modified`.
 */
export class CorruptLogError extends EventLogError {
  constructor(
    /** Seq of the row (0 when not known: a dictionary look-up outside a row). */
    readonly seq: number,
    /** What is wrong, e.g. `its workflow refers to keel_strings id 17, which the file does not hold`. */
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(
      'EVENTLOG_CORRUPT_ROW',
      `${seq > 0 ? `seq ${seq}: ` : ''}${problem}. The row or the keel_strings dictionary was altered or damaged outside Keel: keep the file for forensics and run keel audit verify on a copy.`,
      options,
    );
  }
}

/** True when `e` is a {@link CorruptLogError}. */
export function isCorruptLogError(e: unknown): e is CorruptLogError {
  return isEventLogError(e) && e instanceof CorruptLogError;
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
      `${path} has schema version ${found}, but this Keel supports up to ${supported}. Upgrade Keel to read it; nothing was modified.`,
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

/**
 * The event store's server (Postgres) cannot be reached or dropped the connection: refused, timed
 * out, shut down, or the database does not exist. `target` is `host:port/database` (never the password).
 */
export class StoreUnavailableError extends EventLogError {
  constructor(
    readonly target: string,
    readonly reason: string,
    options?: {
      cause?: unknown;
      /**
       * The connection broke after COMMIT was sent and before the server confirmed it, so the batch
       * may or may not be in the log.
       */
      outcomeUnknown?: boolean;
    },
  ) {
    const outcomeUnknown = options?.outcomeUnknown === true;
    const fix = `Check that the server is running and reachable at ${target} (host, port and database in the URL), or raise connectTimeoutMs`;
    super(
      'EVENTLOG_UNAVAILABLE',
      outcomeUnknown
        ? `The event store at ${target} became unavailable while committing (${reason}): the batch may or may not have been committed. ${fix}; once it is back, query the workflow's events (or lastSeq) before retrying. Events committed earlier are intact.`
        : `The event store at ${target} is unavailable (${reason}). ${fix}; nothing of this operation was written and committed events are intact.`,
      options?.cause !== undefined ? { cause: options.cause } : undefined,
    );
    this.outcomeUnknown = outcomeUnknown;
  }

  /**
   * True when the connection broke after COMMIT was sent and before the server confirmed it: the
   * batch may or may not be in the log (look before retrying).
   */
  readonly outcomeUnknown: boolean;
}

/** True when `e` is a {@link StoreUnavailableError} (worth retrying once the server is back). */
export function isStoreUnavailableError(e: unknown): e is StoreUnavailableError {
  return isEventLogError(e) && e.code === 'EVENTLOG_UNAVAILABLE';
}

/** The server refused the login (user, password) or a privilege the store needs. */
export class StoreAccessDeniedError extends EventLogError {
  constructor(
    readonly target: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      'EVENTLOG_ACCESS_DENIED',
      `The event store at ${target} refused access (${reason}). Check the user and password in the URL, and that the role may create the store's schema (or, once it exists, read and insert into it); nothing was written.`,
      options,
    );
  }
}

/** True when `e` is a {@link StoreAccessDeniedError} (fix the role or its grants; retrying will not help). */
export function isStoreAccessDeniedError(e: unknown): e is StoreAccessDeniedError {
  return isEventLogError(e) && e.code === 'EVENTLOG_ACCESS_DENIED';
}

/** The database already holds tables named like the store's that the store did not create. */
export class SchemaConflictError extends EventLogError {
  constructor(
    readonly target: string,
    readonly schema: string,
    readonly tables: readonly string[],
  ) {
    super(
      'EVENTLOG_SCHEMA_CONFLICT',
      `${target}: schema "${schema}" already holds ${tables.map((t) => `"${t}"`).join(', ')}, not created by Keel. Point the store at another schema (option schema) or database; nothing was modified.`,
    );
  }
}

/** True when `e` is a {@link SchemaConflictError}. */
export function isSchemaConflictError(e: unknown): e is SchemaConflictError {
  return isEventLogError(e) && e.code === 'EVENTLOG_SCHEMA_CONFLICT';
}

/**
 * `appendStart` refused a `workflow.started`: the log already holds one for this workflow id (another
 * process, or another runtime on the same file, started it first). Nothing of the append was
 * written. The runtime answers the caller from what the log recorded under the id instead.
 */
export class WorkflowAlreadyStartedError extends EventLogError {
  constructor(readonly workflowId: string) {
    super(
      'EVENTLOG_WORKFLOW_ALREADY_STARTED',
      `Workflow ${JSON.stringify(workflowId)} was already started in this log (by another process or runtime); its start was not written again. Read its record, or start it under another id.`,
    );
  }
}

/** True when `e` is a {@link WorkflowAlreadyStartedError}. */
export function isWorkflowAlreadyStartedError(e: unknown): e is WorkflowAlreadyStartedError {
  return isEventLogError(e) && e.code === 'EVENTLOG_WORKFLOW_ALREADY_STARTED';
}

/** True for any event-log error. */
export function isEventLogError(e: unknown): e is EventLogError {
  return isKeelError(e) && e instanceof EventLogError;
}
