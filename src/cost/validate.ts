/**
 * Internal: turns the first zod issue of a failed parse into a {@link ConfigError} naming the
 * dotted field (`pricing.gpt-4.inputPer1K`) and the fix. Not part of the public surface.
 */
import type { z } from 'zod';
import { ConfigError } from '../core/errors.js';

/** Parses `value` with `schema`, or throws a ConfigError for the first problem under `root`. */
export function parseConfig<S extends z.ZodType>(schema: S, value: unknown, root: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (issue === undefined) throw new ConfigError(root, 'is invalid');
  const field = [root, ...issue.path.map(String)].join('.');
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    throw new ConfigError(
      `${field}.${key}`,
      `is not a known option; check its spelling (names are case-sensitive)`,
    );
  }
  throw new ConfigError(field, issue.message);
}
