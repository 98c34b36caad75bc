/**
 * Tenant ids: the customer a workflow runs for (`rt.run(t, input, { tenant: 'acme' })`). A tenant id
 * is stored in every event of its workflows, labels metrics (`tenant`), spans (`keel.tenant`) and
 * ECS log lines (`organization.id`), and keys budgets (`budget.perTenant`) — so it must be a short,
 * opaque identifier: an internal customer id, never an email address or a phone number.
 */

/** Longest tenant id, in UTF-16 code units. */
export const TENANT_ID_MAX_LENGTH = 64;

/** Letters and digits of any script, then letters, digits, `_`, `-`, `.` and `:`. */
const TENANT_ID = /^[\p{L}\p{N}][\p{L}\p{N}_.:-]*$/u;

/** How to fix a bad tenant id (ends every message about one). */
export const TENANT_ID_FIX =
  'use your internal customer id (e.g. "acme" or "cust_4821"): 1 to 64 letters, digits, "_", "-", "." or ":", starting with a letter or digit';

/**
 * What is wrong with `value` as a tenant id, or `undefined` when it is a well-formed one (PII is
 * checked separately, by the redactor's detectors: `assertTenantHasNoPii`).
 *
 * @example
 * tenantIdProblem('acme'); // undefined
 * tenantIdProblem('a b'); // 'contains " " (U+0020) at index 1'
 */
export function tenantIdProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `is ${value === null ? 'null' : typeof value}, not a string`;
  if (value.length === 0) return 'is empty';
  if (value.length > TENANT_ID_MAX_LENGTH)
    return `is ${value.length} characters long, more than ${TENANT_ID_MAX_LENGTH}`;
  if (TENANT_ID.test(value)) return undefined;
  if (!value.isWellFormed()) return 'is not well-formed Unicode (it holds a lone surrogate)';
  for (let i = 0; i < value.length; i++) {
    const ch = String.fromCodePoint(value.codePointAt(i) as number);
    if (!/[\p{L}\p{N}_.:-]/u.test(ch) || (i === 0 && !/[\p{L}\p{N}]/u.test(ch))) {
      const code = value.codePointAt(i) as number;
      const cp = code.toString(16).toUpperCase().padStart(4, '0');
      const shown = code > 0x20 && code < 0x7f ? `${JSON.stringify(ch)} ` : '';
      return `${i === 0 ? 'starts with' : 'contains'} ${shown}(U+${cp}) at index ${i}${ch === '@' ? ' (an email address is personal data)' : ''}`;
    }
    if (ch.length === 2) i++;
  }
  return 'is not a valid tenant id';
}
