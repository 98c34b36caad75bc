/**
 * Well-formed Unicode at Keel's boundaries. Ids and names are stored as UTF-8 text and hashed into
 * the chain; a lone UTF-16 surrogate has no UTF-8 form, so it would be stored as bytes that read back
 * as a different string than the one hashed. Such strings are refused before anything is written.
 */
import { KEEL_ERROR } from './errors.js';

/**
 * A string Keel must store or hash (a workflow id, a workflow, agent or topology name, a task type)
 * holds a lone surrogate. `field` names it; `index` is the UTF-16 offset of the first lone surrogate.
 * A `TypeError`, like other errors in a caller's arguments.
 */
export class IllFormedUnicodeError extends TypeError {
  readonly [KEEL_ERROR] = true;
  readonly code = 'UNICODE_ILL_FORMED';
  constructor(
    /** What the string is, e.g. `workflowId` or `agent "vendor".taskType`. */
    readonly field: string,
    /** UTF-16 index of the first lone surrogate. */
    readonly index: number,
    codeUnit: number,
  ) {
    super(
      `${field} is not well-formed Unicode: lone surrogate U+${codeUnit.toString(16).toUpperCase().padStart(4, '0')} at index ${index}. ` +
        'Ids and names are stored as UTF-8, which cannot hold a lone surrogate; pass a well-formed string ' +
        '(fix its producer, or use value.toWellFormed() to replace lone surrogates with U+FFFD). Nothing was written.',
    );
    this.name = 'IllFormedUnicodeError';
  }
}

/** True when `e` is an {@link IllFormedUnicodeError}. */
export function isIllFormedUnicodeError(e: unknown): e is IllFormedUnicodeError {
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as Record<symbol, unknown>)[KEEL_ERROR] === true &&
    (e as { code?: unknown }).code === 'UNICODE_ILL_FORMED'
  );
}

/**
 * Throws {@link IllFormedUnicodeError} naming `field` when `value` holds a lone surrogate. NUL,
 * astral characters (properly paired surrogates) and every other code point are accepted.
 *
 * @example
 * assertWellFormed('workflowId', 'order-42'); // ok
 * assertWellFormed('workflowId', 'a\ud800'); // throws IllFormedUnicodeError
 */
export function assertWellFormed(field: string, value: string): void {
  if (value.isWellFormed()) return;
  const index = loneSurrogateIndex(value);
  throw new IllFormedUnicodeError(field, index, value.charCodeAt(index));
}

/** UTF-16 index of the first lone surrogate of `s`, or -1 when it is well-formed (error paths only). */
export function loneSurrogateIndex(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
      else return i;
    } else if (c >= 0xdc00 && c <= 0xdfff) return i;
  }
  return -1;
}
