/**
 * The built-in PII detectors. Each is a regular expression (`u` flag), a cheap trigger (a necessary
 * condition: no trigger, no scan), an optional `accept` check (checksums, entropy, shape) and the
 * normalisation applied before a value is pseudonymised.
 * Internal to `src/compliance`.
 */
import { isIPv6 } from 'node:net';
import { entropyBitsPerChar, IBAN_LENGTHS, ibanValid, luhnValid } from './checksums.js';

/** One kind of finding and how to recognise it. */
export interface Detector {
  /** The key in `counts` and, upper-cased, the label in the token (`email` → `⟨EMAIL:…⟩`). */
  readonly kind: string;
  /**
   * Pattern source (compiled with flag `u`). When it has a capturing group, group 1 is the value
   * and must end the match (what comes before is context, such as `Bearer ` or `Name: `, kept
   * as it is). Leading context is matched forward rather than with a lookbehind: V8 runs a
   * lookbehind at every position, which costs ten times more.
   */
  readonly source: string;
  /**
   * Pattern source that matches somewhere in every string `source` can match in: when no enabled
   * detector's trigger matches, the string is returned untouched without a full scan.
   */
  readonly trigger: string;
  /**
   * How much of the value is really this kind of value: the accepted length from its start, or 0
   * to reject it (failed checksum, wrong shape). Absent: all of it.
   */
  accept?(match: string): number;
  /** The canonical form that is hashed, so `Jane@X.com` and `jane@x.com` get the same token. */
  normalise(value: string): string;
}

const lower = (v: string): string => v.toLowerCase();
const digitsOnly = (v: string): string => v.replace(/\D/g, '');
const asIs = (v: string): string => v;

const isDigitCode = (c: number): boolean => c >= 48 && c <= 57;

/**
 * The longest prefix `match.slice(0, end)` that ends at the end of the match or just before a
 * separator and satisfies `ok(end)`; 0 when none does. Lets a greedy match that swallowed a
 * following number (a year, a quantity) still be recognised by dropping whole trailing groups.
 */
function longestPrefixAtSeparators(match: string, separators: string, ok: (end: number) => boolean): number {
  let end = match.length;
  while (end > 0) {
    if (ok(end)) return end;
    let i = end - 1;
    while (i > 0 && !separators.includes(match.charAt(i))) i--;
    while (i > 0 && separators.includes(match.charAt(i - 1))) i--;
    end = i;
  }
  return 0;
}

/** The ASCII digits of `text.slice(0, end)`. */
function digitsUpTo(text: string, end: number): string {
  let out = '';
  for (let i = 0; i < end; i++) if (isDigitCode(text.charCodeAt(i))) out += text.charAt(i);
  return out;
}

// ── email ─────────────────────────────────────────────────────────────────────────────────────

const email: Detector = {
  kind: 'email',
  source: String.raw`(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+(?![A-Za-z0-9\-])`,
  trigger: '@',
  accept(match) {
    const tld = match.slice(match.lastIndexOf('.') + 1);
    return /^[A-Za-z]{2,24}$/.test(tld) ? match.length : 0;
  },
  normalise: lower,
};

// ── IBAN ──────────────────────────────────────────────────────────────────────────────────────

const iban: Detector = {
  kind: 'iban',
  source: String.raw`(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])`,
  trigger: String.raw`[A-Z]{2}\d{2}`,
  accept(match) {
    const expected = IBAN_LENGTHS[match.slice(0, 2)];
    if (expected === undefined) return 0;
    let count = 0;
    let end = 0;
    while (end < match.length && count < expected) {
      if (match.charAt(end) !== ' ') count++;
      end++;
    }
    if (count < expected || (end < match.length && match.charAt(end) !== ' ')) return 0;
    return ibanValid(match.slice(0, end).replace(/ /g, '')) ? end : 0;
  },
  normalise: (v) => v.replace(/ /g, '').toUpperCase(),
};

// ── payment cards ─────────────────────────────────────────────────────────────────────────────

/**
 * Card layouts people write: unseparated, 4-4-4-4(-3) with one kind of separator, Amex 4-6-5,
 * Diners 4-6-4.
 */
function cardLayoutOk(candidate: string): boolean {
  let sep = '';
  let run = 0;
  const runs: number[] = [];
  for (let i = 0; i < candidate.length; i++) {
    const c = candidate.charAt(i);
    if (c === ' ' || c === '-') {
      if (sep === '') sep = c;
      else if (c !== sep) return false;
      runs.push(run);
      run = 0;
    } else {
      run++;
    }
  }
  if (runs.length === 0) return true;
  runs.push(run);
  const sizes = runs.join('-');
  if (sizes === '4-6-5' || sizes === '4-6-4') return true;
  return runs.every((n, i) => (i < runs.length - 1 ? n === 4 : n >= 1 && n <= 4));
}

const card: Detector = {
  kind: 'card',
  source: String.raw`(?<![\w\-+.,])[2-6]\d{3}(?:[ \-]?\d){9,15}(?![\w]|[.,\-]\d)`,
  trigger: String.raw`\d{4}[ \-]?\d{4}`,
  accept: (match) =>
    longestPrefixAtSeparators(match, ' -', (end) => {
      const digits = digitsUpTo(match, end);
      return digits.length >= 13 && luhnValid(digits) && cardLayoutOk(match.slice(0, end));
    }),
  normalise: digitsOnly,
};

// ── US social security numbers ────────────────────────────────────────────────────────────────

const ssn: Detector = {
  kind: 'ssn',
  // Areas 000, 666 and 900–999 are never issued; group 00 and serial 0000 neither.
  source: String.raw`(?<![\w\-])(?!000|666|9)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w]|-\d)`,
  trigger: String.raw`-\d{2}-\d{4}`,
  normalise: digitsOnly,
};

// ── IP addresses ──────────────────────────────────────────────────────────────────────────────

const OCTET = String.raw`(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)`;

const ipv4: Detector = {
  kind: 'ip',
  source: String.raw`(?<![\w.])(?:${OCTET}\.){3}${OCTET}(?![\w]|\.\d)`,
  trigger: String.raw`\.\d{1,3}\.\d{1,3}\.\d`,
  normalise: asIs,
};

function ipv6Ok(candidate: string): boolean {
  if (!isIPv6(candidate) || !/\d/.test(candidate)) return false;
  if (candidate === '::1') return true;
  return candidate.split(':').filter((g) => g.length > 0).length >= 2;
}

const ipv6: Detector = {
  kind: 'ip',
  source: String.raw`(?<![\w:.])(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:]{2,39}(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?(?![\w:]|\.\d)`,
  // Every IPv6 address has `::` or at least six colons; times (10:30:00) have neither.
  trigger: String.raw`::|:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:`,
  accept(match) {
    let candidate = match;
    while (candidate.length > 2) {
      if (ipv6Ok(candidate)) return candidate.length;
      if (!candidate.endsWith(':')) return 0;
      candidate = candidate.slice(0, -1);
    }
    return 0;
  },
  normalise: lower,
};

// ── phone numbers ─────────────────────────────────────────────────────────────────────────────

/** E.164 allows at most 15 digits; fewer than 8 is a short code or an amount, not a phone number. */
function intlDigitsOk(match: string, end: number): boolean {
  let n = match.startsWith('00') ? -2 : 0;
  for (let i = 0; i < end; i++) if (isDigitCode(match.charCodeAt(i))) n++;
  return n >= 8 && n <= 15;
}

const phoneInternational: Detector = {
  kind: 'phone',
  // +44 20 7946 0958, +1 (415) 555-0132, 0049 30 123456, +442079460958, +44 (0)20 7946 0958
  source: String.raw`(?<![\w+\-./])(?:\+|00)[1-9]\d{0,3}(?:[ .\-]?\(\d{1,4}\))?[ .\-]?\d{1,12}(?:[ .\-]\d{1,12}){0,6}(?![\w])`,
  trigger: String.raw`\+[1-9]|00[1-9]`,
  accept: (match) => longestPrefixAtSeparators(match, ' .-', (end) => intlDigitsOk(match, end)),
  normalise: (v) => {
    const d = digitsOnly(v);
    return v.startsWith('00') ? `+${d.slice(2)}` : `+${d}`;
  },
};

const phoneNorthAmerican: Detector = {
  kind: 'phone',
  // 415-555-0132, 415.555.0132, (415) 555-0132; area and exchange codes start with 2–9.
  // Space-only forms (415 555 0132) are left alone: they look like columns of quantities.
  source: String.raw`(?<![\w+\-./])(?:[2-9]\d{2}-[2-9]\d{2}-\d{4}|[2-9]\d{2}\.[2-9]\d{2}\.\d{4}|\([2-9]\d{2}\) ?[2-9]\d{2}[\- ]\d{4})(?![\w]|[.\-]\d)`,
  trigger: String.raw`[\-.)] ?\d{3}[\-. ]\d{4}`,
  normalise: digitsOnly,
};

// ── secrets ───────────────────────────────────────────────────────────────────────────────────

/** Case-insensitive source for an ASCII word, for patterns compiled without the `i` flag. */
function ci(word: string): string {
  return word.replace(/[a-z]/g, (c) => `[${c}${c.toUpperCase()}]`);
}

const hasDigit = (v: string): boolean => /\d/.test(v);

const secretPrefixed: Detector = {
  kind: 'secret',
  // OpenAI/Anthropic (sk-…), Stripe (sk_live_…), GitHub (ghp_…), Slack (xoxb-…), Google (AIza…).
  source: String.raw`(?<![\w\-])(?:sk-[A-Za-z0-9_\-]{16,}|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}|gh[pousr]_[A-Za-z0-9]{36,}|xox[abprs]-[A-Za-z0-9\-]{10,}|AIza[0-9A-Za-z_\-]{35})(?![\w\-])`,
  trigger: String.raw`sk-|_live_|_test_|gh[pousr]_|xox[abprs]-|AIza`,
  // Real keys are random and contain digits; `sk-learn-contributors-guide` is prose.
  accept: (match) => (hasDigit(match) ? match.length : 0),
  normalise: asIs,
};

const secretAws: Detector = {
  kind: 'secret',
  source: String.raw`(?<![A-Za-z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])`,
  trigger: 'AKIA|ASIA',
  normalise: asIs,
};

const secretJwt: Detector = {
  kind: 'secret',
  source: String.raw`(?<![\w\-])eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}(?![\w\-])`,
  trigger: 'eyJ',
  normalise: asIs,
};

/** A credential: 16 to 4096 token characters (JWTs run to a few kilobytes). */
const TOKEN_CHARS = String.raw`[\w\-.~+/]{16,4096}=*(?![\w\-.~+/=])`;

const secretBearer: Detector = {
  kind: 'secret',
  // Only the credential is replaced: `Bearer ⟨SECRET:…⟩` keeps the scheme readable.
  source: String.raw`\b(?:[Bb]earer|BEARER)[ \t]+(${TOKEN_CHARS})`,
  trigger: '[Bb]earer|BEARER',
  accept: (match) => (hasDigit(match) && /[A-Za-z]/.test(match) ? match.length : 0),
  normalise: asIs,
};

const KEY_NAMES = [
  'api[_-]?key',
  'access[_-]?token',
  'auth[_-]?token',
  'refresh[_-]?token',
  'secret[_-]?key',
  'client[_-]?secret',
  'private[_-]?key',
  'token',
  'secret',
]
  .map(ci)
  .join('|');

const secretKeyValue: Detector = {
  kind: 'secret',
  // api_key=…, "access_token": "…", x-api-key: … — long, high-entropy values only.
  source: String.raw`(?<![A-Za-z0-9])(?:${KEY_NAMES})["']?[ \t]*[:=][ \t]*["']?(${TOKEN_CHARS})`,
  trigger: [ci('key'), ci('token'), ci('secret')].join('|'),
  accept: (match) => (entropyBitsPerChar(match) >= 3 ? match.length : 0),
  normalise: asIs,
};

/** Which built-in families are on. */
export interface BuiltinSelection {
  email: boolean;
  phone: boolean;
  card: boolean;
  iban: boolean;
  ssn: boolean;
  ip: boolean;
  secrets: boolean;
}

/**
 * The enabled built-in detectors in priority order: when two match at the same position, the
 * earlier one wins (a key before an email, an IBAN before the card number inside it).
 */
export function builtinDetectors(on: BuiltinSelection): Detector[] {
  const out: Detector[] = [];
  if (on.secrets) out.push(secretPrefixed, secretAws, secretJwt, secretBearer, secretKeyValue);
  if (on.email) out.push(email);
  if (on.iban) out.push(iban);
  if (on.card) out.push(card);
  if (on.ssn) out.push(ssn);
  if (on.ip) out.push(ipv4, ipv6);
  if (on.phone) out.push(phoneInternational, phoneNorthAmerican);
  return out;
}
