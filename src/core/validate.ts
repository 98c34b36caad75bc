/**
 * Config checks shared by the monitors and the report. Each throws a {@link ConfigError} naming the
 * field and the fix. Internal: not part of the public surface.
 */
import { ConfigError } from './errors.js';

/** A ratio in [0, 1]. */
export function checkRatio(field: string, value: unknown, hint: string): void {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    throw new ConfigError(field, `must be a ratio between 0 and 1 (${hint}), got ${String(value)}.`);
  }
}

/** A finite number > 0. */
export function checkPositive(field: string, value: unknown, hint: string): void {
  if (typeof value !== 'number' || !(Number.isFinite(value) && value > 0)) {
    throw new ConfigError(field, `must be a number > 0 (${hint}), got ${String(value)}.`);
  }
}

/** An integer >= `min`. */
export function checkInteger(field: string, value: unknown, min: number, hint: string): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new ConfigError(field, `must be an integer >= ${min} (${hint}), got ${String(value)}.`);
  }
}

/** An absolute http(s) URL. */
export function checkUrl(field: string, value: unknown): void {
  let ok = false;
  if (typeof value === 'string') {
    try {
      const url = new URL(value);
      ok = url.protocol === 'http:' || url.protocol === 'https:';
    } catch {
      ok = false;
    }
  }
  if (!ok) throw new ConfigError(field, `must be an absolute http(s) URL, got ${JSON.stringify(value)}.`);
}
