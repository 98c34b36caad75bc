/**
 * What the cache stores per key, and the storage tier behind the in-memory LRU. Internal to
 * `src/cache`.
 */

/** One cached output. */
export interface StoredEntry {
  /** Agent that produced the value (for invalidation by agent). */
  readonly agent: string;
  /** When it was stored, ms since epoch. */
  readonly createdAt: number;
  /** When it stops being fresh, ms since epoch. */
  readonly expiresAt: number;
  /** The value as JSON text: every read parses a fresh copy, so callers cannot alter the cache. */
  readonly json: string;
}

/** A durable tier (SQLite today; Redis later) behind the memory LRU. */
export interface CacheTier {
  get(key: string): StoredEntry | undefined;
  put(key: string, entry: StoredEntry): void;
  deleteKey(key: string): number;
  deleteAgent(agent: string): number;
  deleteAll(): number;
  /** Removes up to `limit` entries that expired at or before `cutoff`; returns their keys. */
  purge(cutoff: number, limit: number): string[];
  close(): void;
}
