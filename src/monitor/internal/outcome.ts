/**
 * Error categories as array indexes, for the monitors' per-category counters. What counts as an
 * outcome is the log's definition (`eventlog/outcome.ts`). Internal: not part of the public surface.
 */
import { ERROR_CATEGORIES, type ErrorCategory } from '../../eventlog/events.js';

const INDEX = new Map<ErrorCategory, number>(ERROR_CATEGORIES.map((c, i) => [c, i]));

/** Position of a category in {@link ERROR_CATEGORIES} (unknown strings map to `unknown`). */
export function categoryIndex(category: ErrorCategory): number {
  return INDEX.get(category) ?? INDEX.get('unknown') ?? ERROR_CATEGORIES.length - 1;
}

/**
 * The most frequent category in `counts` (indexed like {@link ERROR_CATEGORIES}); ties go to the
 * earlier category. `undefined` when every count is zero.
 */
export function topCategory(counts: ArrayLike<number>): ErrorCategory | undefined {
  let best = -1;
  let bestCount = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i] ?? 0;
    if (c > bestCount) {
      best = i;
      bestCount = c;
    }
  }
  return best < 0 ? undefined : ERROR_CATEGORIES[best];
}
