/**
 * `requiredChars`, the redactor's pre-check: every string a trigger matches must hold one of the
 * characters it names (else the redactor would skip a detector that matches), and syntax it cannot
 * read must name nothing. Matching strings come from fast-check's `stringMatching` of each trigger.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { builtinDetectors, DEFAULT_PHONE_REGIONS } from '../../src/compliance/detectors.js';
import { heuristicNames, listedNames } from '../../src/compliance/names.js';
import { requiredChars } from '../../src/compliance/required-chars.js';

const builtins = builtinDetectors({
  email: true,
  phone: { regions: DEFAULT_PHONE_REGIONS },
  card: true,
  iban: true,
  ssn: true,
  ip: true,
  secrets: true,
});
const listed = listedNames(['Jane Doe', 'Zoë Åkesson', "O'Brien-Smith", 'a.b*c (x)', 'Ana', '李小龙']);
const TRIGGERS = [...builtins, ...heuristicNames(), ...(listed ? [listed] : [])].map((d) => d.trigger);

const holdsOne = (s: string, need: Set<string>): boolean => [...s].some((c) => need.has(c));

describe('requiredChars', () => {
  it.each(TRIGGERS.map((t) => [t.slice(0, 50), t]))(
    'every string the trigger %s matches holds a required character',
    (_label, trigger) => {
      const need = requiredChars(trigger);
      expect(need, 'every trigger Keel ships names its required characters').toBeDefined();
      const re = new RegExp(trigger, 'u');
      fc.assert(
        fc.property(
          fc.tuple(fc.string({ maxLength: 4 }), fc.stringMatching(re), fc.string({ maxLength: 4 })),
          ([before, match, after]) => {
            const s = before + match + after;
            if (re.test(s)) expect(holdsOne(s, need as Set<string>), JSON.stringify(s)).toBe(true);
          },
        ),
        { numRuns: 300 },
      );
    },
  );

  it('names the characters of the simple triggers', () => {
    expect(requiredChars('@')).toEqual(new Set(['@']));
    expect(requiredChars('::|:[0-9A-Fa-f]{1,4}:')).toEqual(new Set([':']));
    expect(requiredChars(String.raw`\d{3}[\- ]\d{2}`)).toEqual(new Set(['-', ' ']));
    expect(requiredChars(String.raw`[Nn]ame[ \t]*[:：]`)).toEqual(new Set([':', '：']));
    expect(requiredChars(String.raw`a(?:b|c)+`)).toEqual(new Set(['a']));
  });

  it.each([
    String.raw`\p{L}+`, // a property: any letter
    '.', // any character
    '[^a]', // a negated class
    String.raw`\w+`,
    'a|', // an empty branch matches anywhere
    'x?y*', // nothing is required
    '(?=abc)', // an assertion consumes nothing
    String.raw`(a)\1`, // a back-reference (its group's `a` would do, but it is not read)
    '(?i:a)', // a modifier group
    'a)', // unbalanced
    '[]', // matches nothing: no set is named either
  ])('names nothing for %s', (source) => {
    expect(requiredChars(source)).toBeUndefined();
  });
});
