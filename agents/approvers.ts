/**
 * Who approves an invoice: the approval tier of an amount and the approvers of each tier (the
 * directory a routing model must pick from).
 */

/** Approval tiers by invoice total. */
export type ApprovalTier = 'clerk' | 'manager' | 'director';

/** Approvers by tier. A routing answer outside its tier's list is a hallucination. */
export const APPROVERS: Readonly<Record<ApprovalTier, readonly string[]>> = Object.freeze({
  clerk: Object.freeze(['ap-clerk-1@example.com', 'ap-clerk-2@example.com', 'ap-clerk-3@example.com']),
  manager: Object.freeze(['finance-manager-east@example.com', 'finance-manager-west@example.com']),
  director: Object.freeze(['finance-director@example.com']),
});

/**
 * The approval tier of a total: under 1,000 a clerk, under 10,000 a manager, otherwise a director.
 *
 * @example
 * approvalTier(12_500); // 'director'
 */
export function approvalTier(amount: number): ApprovalTier {
  return amount < 1_000 ? 'clerk' : amount < 10_000 ? 'manager' : 'director';
}
