/**
 * Checks shared by the local and the Redis cache: option values, TTLs and values that must be JSON.
 * Internal to Keel's caches (not part of the public surface).
 */
import { ConfigError } from '../core/errors.js';
import { CacheValueError } from './errors.js';

/** `value`, or `fallback` when undefined; a ConfigError naming `field` unless a whole number >= 0. */
export function nonNegativeInteger(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) {
    throw new ConfigError(field, `must be a whole number >= 0, got ${String(value)}`);
  }
  return value;
}

/** Throws a ConfigError unless `ttlMs` is a positive, finite number of ms. */
export function checkTtlMs(ttlMs: number): void {
  if (!(typeof ttlMs === 'number' && ttlMs > 0 && Number.isFinite(ttlMs))) {
    throw new ConfigError('cache.ttlMs', `must be a positive, finite number of ms, got ${String(ttlMs)}`);
  }
}

/** `value` as JSON text; {@link CacheValueError} when JSON cannot represent it. */
export function serialiseValue(key: string, value: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (e) {
    throw new CacheValueError(key, (e as Error).message, { cause: e });
  }
  if (json === undefined) throw new CacheValueError(key, `the value is ${typeof value}`);
  return json;
}
