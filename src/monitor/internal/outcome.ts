/**
 * What counts as an agent outcome. Every monitor (error windows, budgets, RCA) reads outcomes
 * through this one definition so the live monitors and `keel report` agree.
 * Internal: not part of the public surface.
 */
import { ERROR_CATEGORIES, type ErrorCategory, type KeelEvent } from '../../eventlog/events.js';

/** An event that records how one agent invocation ended. */
export type OutcomeEvent = KeelEvent<'agent.succeeded' | 'agent.failed' | 'agent.rejected'>;

/**
 * True for `agent.succeeded`, `agent.failed` and `agent.rejected`. A failure with category
 * `cancelled` is not an outcome: the caller gave up, the agent did not fail.
 */
export function isOutcomeEvent(event: KeelEvent): event is OutcomeEvent {
  switch (event.type) {
    case 'agent.succeeded':
      return true;
    case 'agent.failed':
    case 'agent.rejected':
      return event.payload.category !== 'cancelled';
    default:
      return false;
  }
}

/** The failure category of an outcome, or `undefined` for a success. */
export function failureCategory(event: OutcomeEvent): ErrorCategory | undefined {
  return event.type === 'agent.succeeded' ? undefined : event.payload.category;
}

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
