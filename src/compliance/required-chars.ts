/**
 * Which characters a string must hold for a pattern to match in it: the redactor's cheap pre-check
 * (issue 26). {@link requiredChars} reads a pattern's source and returns a set of characters of
 * which every match holds at least one — `@` for the email trigger, `:` for IPv6's, a digit for a
 * card's — or undefined when it cannot tell. A string holding none of them cannot match, so its
 * regex is never run. The reading is conservative: anything it does not understand (a Unicode
 * property, `.`, a negated class, a back-reference, a flag group) makes its part count as
 * "may match anything", never as a requirement. Internal to `src/compliance`.
 */

/** Characters of which a match holds at least one; undefined: none can be named. */
type Need = Set<string> | undefined;

const DIGITS = '0123456789';

/** Thrown inside the reader for syntax it does not understand; the pattern then needs nothing. */
class Unreadable extends Error {}

/** A parsed quantifier's lower bound, or undefined when `source[i]` starts none. */
interface Quantifier {
  min: number;
  end: number;
}

/**
 * A set of characters, at least one of which every match of `source` (compiled with flag `u`, no
 * `i`) contains; undefined when the source's syntax gives no such set.
 *
 * @example
 * requiredChars('::|:[0-9A-Fa-f]{1,4}:'); // Set { ':' }
 * requiredChars(String.raw`\p{L}+`); // undefined
 */
export function requiredChars(source: string): Set<string> | undefined {
  try {
    const reader = new Reader(source);
    const need = reader.alternation();
    if (reader.i !== source.length) return undefined; // an unbalanced `)`
    return need !== undefined && need.size > 0 ? need : undefined;
  } catch (e) {
    if (e instanceof Unreadable) return undefined;
    throw e;
  }
}

/**
 * How often a set would let a string through, roughly: prefer few characters, and capitals and
 * punctuation over lower-case letters; digits, spaces and `a`–`f` (hex hashes, ids) cost most.
 */
function weight(need: Set<string>): number {
  let w = 0;
  for (const c of need) w += /[a-f\d ]/.test(c) ? 5 : /[g-z]/.test(c) ? 3 : 1;
  return w;
}

class Reader {
  i = 0;
  constructor(private readonly s: string) {}

  /** `a|b|…` up to `)` or the end: a character of any branch's set (none if a branch has none). */
  alternation(): Need {
    let union: Set<string> | undefined = new Set();
    for (;;) {
      const need = this.sequence();
      if (need === undefined) union = undefined;
      else if (union !== undefined) for (const c of need) union.add(c);
      if (this.s[this.i] !== '|') return union;
      this.i++;
    }
  }

  /** Terms up to `|`, `)` or the end: the cheapest set among the terms that must occur. */
  private sequence(): Need {
    let best: Need;
    while (this.i < this.s.length && this.s[this.i] !== '|' && this.s[this.i] !== ')') {
      const atom = this.atom();
      const q = this.quantifier();
      if (q !== undefined) this.i = q.end;
      const min = q?.min ?? 1;
      if (min >= 1 && atom !== undefined && (best === undefined || weight(atom) < weight(best))) best = atom;
    }
    return best;
  }

  /** One atom; undefined when it may consume any character or none (assertions). */
  private atom(): Need {
    const s = this.s;
    const c = s[this.i] as string;
    if (c === '(') return this.group();
    if (c === '[') return this.charClass();
    if (c === '\\') return this.escape(false);
    if (c === '.') {
      this.i++;
      return undefined;
    }
    if (c === '^' || c === '$') {
      this.i++;
      return undefined;
    }
    if (c === '*' || c === '+' || c === '?' || c === '{' || c === '}' || c === ']') throw new Unreadable();
    const cp = s.codePointAt(this.i) as number;
    const ch = String.fromCodePoint(cp);
    this.i += ch.length;
    return new Set([ch]);
  }

  private group(): Need {
    const s = this.s;
    this.i++; // (
    let assertion = false;
    if (s[this.i] === '?') {
      const kind = s.slice(this.i, this.i + 3);
      if (kind.startsWith('?:')) this.i += 2;
      else if (kind.startsWith('?=') || kind.startsWith('?!')) {
        this.i += 2;
        assertion = true;
      } else if (kind === '?<=' || kind === '?<!') {
        this.i += 3;
        assertion = true;
      } else if (kind.startsWith('?<')) {
        const close = s.indexOf('>', this.i);
        if (close < 0) throw new Unreadable();
        this.i = close + 1;
      } else throw new Unreadable(); // modifiers and anything newer
    }
    const need = this.alternation();
    if (s[this.i] !== ')') throw new Unreadable();
    this.i++;
    // An assertion consumes nothing: what it looks at may lie outside the string's match.
    return assertion ? undefined : need;
  }

  /** `[…]`: its characters, when it lists them (no negation, no property, no shorthand but `\d`). */
  private charClass(): Need {
    const s = this.s;
    this.i++; // [
    if (s[this.i] === '^') throw new Unreadable();
    const set = new Set<string>();
    let first = true;
    while (this.i < s.length && (s[this.i] !== ']' || first)) {
      first = false;
      const lo = this.classMember(set);
      if (lo !== undefined && s[this.i] === '-' && s[this.i + 1] !== ']' && this.i + 1 < s.length) {
        this.i++;
        const hi = this.classMember(undefined);
        if (hi === undefined) throw new Unreadable();
        const a = lo.codePointAt(0) as number;
        const b = hi.codePointAt(0) as number;
        if (b < a || b - a > 0x3ff) throw new Unreadable();
        for (let cp = a; cp <= b; cp++) set.add(String.fromCodePoint(cp));
      } else if (lo !== undefined) set.add(lo);
    }
    if (s[this.i] !== ']') throw new Unreadable();
    this.i++;
    return set;
  }

  /** One member of a class: a character (returned) or `\d` (added to `set`, returns undefined). */
  private classMember(set: Set<string> | undefined): string | undefined {
    const s = this.s;
    if (s[this.i] === '\\') {
      const next = s[this.i + 1];
      if (next === 'd' && set !== undefined) {
        this.i += 2;
        for (const d of DIGITS) set.add(d);
        return undefined;
      }
      const need = this.escape(true);
      if (need === undefined || need.size !== 1) throw new Unreadable();
      return [...need][0];
    }
    const cp = s.codePointAt(this.i) as number;
    const ch = String.fromCodePoint(cp);
    this.i += ch.length;
    return ch;
  }

  /** `\…`: a literal, `\d`, or (in a class) one character; assertions need nothing; the rest is unread. */
  private escape(inClass: boolean): Need {
    const s = this.s;
    const c = s[this.i + 1];
    if (c === undefined) throw new Unreadable();
    this.i += 2;
    if (c === 'd') return new Set(DIGITS);
    if ((c === 'b' || c === 'B') && !inClass) return undefined;
    const simple: Record<string, string> = { n: '\n', r: '\r', t: '\t', f: '\f', v: '\v', '0': '\0' };
    if (c in simple) {
      if (c === '0' && /\d/.test(s[this.i] ?? '')) throw new Unreadable();
      return new Set([simple[c] as string]);
    }
    if (c === 'u') {
      const m = /^\{([0-9A-Fa-f]{1,6})\}|^([0-9A-Fa-f]{4})/.exec(s.slice(this.i));
      if (m === null) throw new Unreadable();
      this.i += m[0].length;
      const cp = parseInt((m[1] ?? m[2]) as string, 16);
      // A lead surrogate written as `\uD83D\uDE00` is one character under `u`: not read here.
      if (cp >= 0xd800 && cp <= 0xdfff) throw new Unreadable();
      return new Set([String.fromCodePoint(cp)]);
    }
    if (c === 'x') {
      const m = /^[0-9A-Fa-f]{2}/.exec(s.slice(this.i));
      if (m === null) throw new Unreadable();
      this.i += 2;
      return new Set([String.fromCharCode(parseInt(m[0], 16))]);
    }
    // Under `u` only syntax characters may be escaped as themselves (and `-` in a class).
    if (/[\^$\\.*+?()[\]{}|/]/.test(c) || (inClass && c === '-')) return new Set([c]);
    throw new Unreadable(); // \w \s \p{…} \D \k<…> \1 \c…
  }

  /** A quantifier at the current position. */
  private quantifier(): Quantifier | undefined {
    const s = this.s;
    const c = s[this.i];
    let q: Quantifier | undefined;
    if (c === '*' || c === '?') q = { min: 0, end: this.i + 1 };
    else if (c === '+') q = { min: 1, end: this.i + 1 };
    else if (c === '{') {
      const m = /^\{(\d+)(?:,(\d*))?\}/.exec(s.slice(this.i));
      if (m === null) throw new Unreadable();
      q = { min: Number(m[1]), end: this.i + m[0].length };
    }
    if (q !== undefined && s[q.end] === '?') q.end++; // lazy
    return q;
  }
}
