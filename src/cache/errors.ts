/**
 * Named errors of the result cache. Each says what happened and what to do. The cache only ever
 * holds copies of agent outputs, so deleting its file is always a safe way out.
 */
import { KeelError, isKeelError } from '../core/errors.js';

/** Base of every cache error. */
export class CacheError extends KeelError {}

/** The cache file exists but is not a SQLite database (or is damaged). */
export class CacheNotADatabaseError extends CacheError {
  constructor(
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(
      'CACHE_NOT_A_DATABASE',
      `${path} is not a SQLite database (or it is damaged). Point cache.path at a new file, or delete this one if it is an old Keel cache (it only holds copies of agent outputs); the file was not modified.`,
      options,
    );
  }
}

/** The file is a SQLite database, but it holds something else (for example the event log). */
export class CacheForeignDatabaseError extends CacheError {
  constructor(
    readonly path: string,
    readonly tables: readonly string[],
  ) {
    super(
      'CACHE_FOREIGN_DATABASE',
      `${path} is a SQLite database with other tables (${tables.join(', ')}), not a Keel cache. The cache holds raw, unredacted outputs and must live in its own file, apart from the event log: give cache.path a file of its own. The file was not modified.`,
    );
  }
}

/** The cache file was written by a newer Keel. */
export class CacheSchemaVersionError extends CacheError {
  constructor(
    readonly path: string,
    readonly found: number,
    readonly supported: number,
  ) {
    super(
      'CACHE_SCHEMA_VERSION',
      `${path} has cache schema version ${found}, but this Keel supports up to ${supported}. Upgrade Keel, or point cache.path at a new file; the file was not modified.`,
    );
  }
}

/** The cache file cannot be opened or created (missing directory, no permission). */
export class CacheOpenError extends CacheError {
  constructor(
    readonly path: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      'CACHE_OPEN_FAILED',
      `Cannot open the cache at ${path} (${reason}). Create its directory and make it writable, or point cache.path elsewhere.`,
      options,
    );
  }
}

/** Reading or writing the cache file failed mid-run (disk full, file removed, I/O error). */
export class CacheIoError extends CacheError {
  constructor(
    readonly path: string,
    readonly operation: 'read' | 'write' | 'delete',
    options?: { cause?: unknown },
  ) {
    const reason = options?.cause instanceof Error ? options.cause.message : String(options?.cause);
    super(
      'CACHE_IO_FAILED',
      `Cache ${operation} failed on ${path} (${reason}). Treat it as a cache miss: the agent's own result is unaffected. Free disk space or check the file, or delete it (it only holds copies of outputs).`,
      options,
    );
  }
}

/** A value handed to `set` cannot be stored as JSON. */
export class CacheValueError extends CacheError {
  constructor(
    readonly key: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      'CACHE_VALUE_INVALID',
      `Cannot cache the value for key ${key}: ${reason}. Cache only JSON-serialisable outputs (no undefined, bigint or cycles); nothing was stored.`,
      options,
    );
  }
}

/** What the Redis cache was doing when Redis failed. */
export type CacheRedisOperation = 'get' | 'set' | 'invalidate' | 'lock' | 'renew' | 'release' | 'subscribe';

/**
 * A Redis command of the shared cache failed (server down, timeout, network). Reads answer a miss,
 * writes are dropped and single-flight falls back to this process: workflows go on without the cache.
 */
export class CacheRedisError extends CacheError {
  constructor(
    /** The server, without any password. */
    readonly url: string,
    readonly operation: CacheRedisOperation,
    options?: { cause?: unknown },
  ) {
    const reason = options?.cause instanceof Error ? options.cause.message : String(options?.cause);
    const effect =
      operation === 'get'
        ? 'The lookup was treated as a miss'
        : operation === 'set'
          ? 'The value was not cached'
          : operation === 'invalidate'
            ? 'Nothing was invalidated'
            : operation === 'renew'
              ? "This process's call goes on, but its single-flight lock may lapse and another process make the same call"
              : 'This process computed without waiting for other processes';
    super(
      'CACHE_REDIS_FAILED',
      `Redis cache ${operation} failed on ${url} (${reason}). ${effect}; workflows are unaffected. Check that Redis is reachable and bound the client's waits (connectTimeout, maxRetriesPerRequest, commandTimeout).`,
      options,
    );
  }
}

/** The cache was closed. */
export class CacheClosedError extends CacheError {
  constructor() {
    super('CACHE_CLOSED', 'The cache is closed. Create a new cache (or runtime) to read or write entries.');
  }
}

/** True for any cache error. */
export function isCacheError(e: unknown): e is CacheError {
  return isKeelError(e) && e instanceof CacheError;
}
