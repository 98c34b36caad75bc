/**
 * What both event stores do with an {@link EventFilter} before querying: refuse a malformed one,
 * and reduce a type list to its distinct types.
 */
import { ConfigError } from '../core/errors.js';
import type { KeelEventType } from './events.js';
import type { EventFilter } from './store.js';

/** Several distinct types (iterated as one index cursor per type, merged). */
export function typeList(filter: EventFilter): readonly KeelEventType[] | undefined {
  const { type } = filter;
  if (type === undefined || typeof type === 'string' || type.length < 2) return undefined;
  const unique = [...new Set(type)];
  return unique.length > 1 ? unique : undefined;
}

/** Refuses a malformed filter with a {@link ConfigError} naming the field (as the SQLite store does). */
export function checkFilter(filter: EventFilter): void {
  const { limit, afterSeq, fromTs, toTs } = filter;
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) {
    throw new ConfigError('filter.limit', `must be an integer >= 0, got ${limit}`);
  }
  for (const [field, value] of [
    ['afterSeq', afterSeq],
    ['fromTs', fromTs],
    ['toTs', toTs],
  ] as const) {
    if (value !== undefined && typeof value !== 'number') {
      throw new ConfigError(`filter.${field}`, `must be a number, got ${typeof value}`);
    }
  }
}
