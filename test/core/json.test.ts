import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, fastCanonicalJson } from '../../src/core/json.js';

/** The definition, written plainly: keys in `Array.prototype.sort()` order, JSON.stringify for the rest. */
function reference(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(reference).join(',')}]`;
  if (typeof value !== 'object' || value === null) return JSON.stringify(value);
  const obj = value as Record<string, unknown>;
  const members = Object.keys(obj)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${reference(obj[k])}`);
  return `{${members.join(',')}}`;
}

/** Keys of every kind the sort must order like `Array.prototype.sort`: digits, case, non-ASCII, astral. */
const key = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.constantFrom('0', '1', '10', '2', 'a', 'B', 'é', 'ẞ', '\u{1F600}', '_', ''),
);
const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(key, tie('value'), { maxKeys: 24 }),
  ),
})).value;

describe('canonical JSON', () => {
  it('writes every object with its keys in sorted order, like the plain definition', () => {
    fc.assert(
      fc.property(json, (v) => {
        const expected = reference(v);
        expect(fastCanonicalJson(v)).toBe(expected);
        expect(canonicalJson(v)).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });

  it('gives the same text whatever order the keys were inserted in', () => {
    fc.assert(
      fc.property(fc.uniqueArray(key, { maxLength: 20 }), (keys) => {
        const forward: Record<string, number> = {};
        const backward: Record<string, number> = {};
        keys.forEach((k, i) => (forward[k] = i));
        [...keys].reverse().forEach((k) => (backward[k] = keys.indexOf(k)));
        expect(fastCanonicalJson(backward)).toBe(fastCanonicalJson(forward));
      }),
    );
  });
});
