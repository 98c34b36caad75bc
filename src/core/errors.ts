/**
 * Keel's error base and config errors. Every error Keel throws is a named class with a `code`
 * marker and a guard function, so callers can branch without `instanceof` across package copies.
 */

/** Marker every Keel error carries. */
export const KEEL_ERROR = Symbol.for('keel.error');

/** Base class of every error Keel raises. `code` is stable and machine-readable. */
export class KeelError extends Error {
  readonly [KEEL_ERROR] = true;
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** True for any error raised by Keel. */
export function isKeelError(e: unknown): e is KeelError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[KEEL_ERROR] === true;
}

/**
 * A configuration value is wrong. The message names the field (`budget.dailyUsd`) and the fix.
 * A `TypeError` so generic handlers treat it as a programming error.
 */
export class ConfigError extends TypeError {
  readonly [KEEL_ERROR] = true;
  readonly code = 'CONFIG_INVALID';
  constructor(
    /** Dotted path of the offending field, e.g. `pricing.gpt-4.inputPer1K`. */
    readonly field: string,
    message: string,
  ) {
    super(`Invalid Keel config at "${field}": ${message}`);
    this.name = 'ConfigError';
  }
}

/** True when `e` is a {@link ConfigError}. */
export function isConfigError(e: unknown): e is ConfigError {
  return isKeelError(e) && (e as { code?: unknown }).code === 'CONFIG_INVALID';
}
