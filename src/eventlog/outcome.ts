/**
 * What counts as an agent outcome, and the error categories' labels. Every fold that reads outcomes
 * (error windows, budgets, RCA, the report) reads them through this one definition, so the live
 * monitors and `keel report` agree.
 */
import type { ErrorCategory, KeelEvent } from './events.js';

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

/** Human labels of the error categories, in the tutorial's words. */
export const CATEGORY_LABELS: { readonly [K in ErrorCategory]: string } = {
  hallucination: 'Hallucinations',
  timeout: 'Timeouts',
  validation_error: 'Validation errors',
  ocr_error: 'OCR errors',
  missing_field: 'Missing field',
  rate_limited: 'Rate limited',
  provider_error: 'Provider errors',
  malformed_output: 'Malformed output',
  circuit_open: 'Circuit open',
  budget_exceeded: 'Budget exceeded',
  cancelled: 'Cancelled',
  unknown: 'Unknown',
  log_unavailable: 'Event log unavailable',
};
