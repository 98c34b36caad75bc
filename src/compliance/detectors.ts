/**
 * The built-in PII detectors. Each is a regular expression (`u` flag) or a `scan` function (phone
 * numbers, through libphonenumber-js's text search), a cheap trigger (a necessary condition: no
 * trigger, no scan), an optional `accept` check (checksums, entropy, shape) and the normalisation
 * applied before a value is pseudonymised.
 *
 * Sources of the formats: card issuer ranges from validator.js `src/lib/isCreditCard.js`; IBAN
 * lengths and countries from ibantools (ISO 13616 registry plus the countries that use IBANs
 * outside it, e.g. DZ, IR, MA, MZ); phone numbering plans from libphonenumber-js (Google's
 * libphonenumber metadata); secret formats from gitleaks `config/gitleaks.toml` (MIT; rule ids are
 * cited next to each pattern, the regexes are written here from the documented formats).
 * Internal to `src/compliance`.
 *
 * Size (~670 lines, over the ~600 rule): the detector table is one reviewable list, each entry
 * with its source cited, measured as one set by test/compliance/recall.test.ts.
 */
import { isIPv6 } from 'node:net';
import {
  findPhoneNumbersInText,
  isSupportedCountry,
  parsePhoneNumberFromString,
  type CountryCode,
  type PhoneNumber,
} from 'libphonenumber-js/max';
import { entropyBitsPerChar, ibanLength, ibanValid, luhnValid } from './checksums.js';

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
  /**
   * Finds the values itself instead of matching `source` (a library's text search): calls
   * `found(start, end)` for each value in `text`. When present, `source` and `accept` are unused.
   */
  scan?(text: string, found: (start: number, end: number) => void): void;
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

/** Characters of an unquoted local part (RFC 5322 atext, Unicode letters per RFC 6531, and dots). */
const EMAIL_ATOM = String.raw`\p{L}\p{M}\p{N}!#$%&'*+/=?^_{|}~.\-`;
/** A domain label: Unicode letters (IDN) or digits, hyphens inside, `_` as validator.js allows. */
const EMAIL_LABEL = String.raw`[\p{L}\p{M}\p{N}_](?:[\p{L}\p{M}\p{N}_\-]{0,253}[\p{L}\p{M}\p{N}])?`;

/** A top-level domain: two or more letters (Unicode: IDN TLDs), or an A-label (`xn--p1ai`). */
const TLD = /^(?:\p{L}[\p{L}\p{M}]+|xn--[a-z0-9-]+)$/iu;
const IPV4_DOMAIN = /^(?:\d{1,3}\.){3}\d{1,3}$/;

const email: Detector = {
  kind: 'email',
  // A quoted local part ("foo bar"@x, "a\@b"@x) or an unquoted one that starts with a letter, digit,
  // `_`, `%`, `+` or `-` (not a quote or bracket of the surrounding prose), then a domain of
  // labels, or an address literal ([192.0.2.1]).
  source: String.raw`(?<![\p{L}\p{M}\p{N}._%+\-])(?:"(?:[^"\\\r\n]|\\[^\r\n]){1,128}"|[\p{L}\p{M}\p{N}_%+\-][${EMAIL_ATOM}]{0,255})@(?:\[(?:\d{1,3}\.){3}\d{1,3}\]|${EMAIL_LABEL}(?:\.${EMAIL_LABEL})+)`,
  trigger: '@',
  accept(match) {
    if (match.endsWith(']')) return match.length;
    const domain = match.slice(match.lastIndexOf('@') + 1);
    if (IPV4_DOMAIN.test(domain)) return match.length;
    return TLD.test(domain.slice(domain.lastIndexOf('.') + 1)) ? match.length : 0;
  },
  normalise: (v) => v.normalize('NFC').toLowerCase(),
};

// ── IBAN ──────────────────────────────────────────────────────────────────────────────────────

const IBAN_SEPARATORS = ' -';
const isAlnumCode = (c: number): boolean =>
  (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);

const iban: Detector = {
  kind: 'iban',
  // Country code, check digits, then letters and digits, optionally grouped by spaces or dashes;
  // `accept` cuts it at the country's length.
  source: String.raw`(?<![\p{L}\p{N}_])[A-Za-z]{2}\d{2}(?:[ \-]{0,2}[A-Za-z0-9]){10,30}(?![\p{L}\p{N}_])`,
  trigger: String.raw`[A-Za-z]{2}\d{2}`,
  accept(match) {
    const expected = ibanLength(match.slice(0, 2).toUpperCase());
    if (expected === undefined) return 0;
    let count = 0;
    let end = 0;
    while (end < match.length && count < expected) {
      if (isAlnumCode(match.charCodeAt(end))) count++;
      end++;
    }
    if (count < expected || (end < match.length && !IBAN_SEPARATORS.includes(match.charAt(end)))) return 0;
    return ibanValid(normaliseIban(match.slice(0, end))) ? end : 0;
  },
  normalise: (v) => normaliseIban(v),
};

function normaliseIban(v: string): string {
  return v.replace(/[ -]/g, '').toUpperCase();
}

// ── payment cards ─────────────────────────────────────────────────────────────────────────────

/**
 * True when `digits` is in an issuer range validator.js's `isCreditCard` knows, with that range's
 * length: Visa 4 (13, 16–19), Mastercard 51–55 and 2221–2720 (16), Amex 34/37 (15), Diners
 * 300–305/36/38/39 (14), Discover 6011/65 (16–19), JCB 35 (16) and 2131/1800 (15), UnionPay 62/67
 * (16) and 81 (16–19).
 */
export function cardIssuerKnown(digits: string): boolean {
  const n = digits.length;
  const p2 = Number(digits.slice(0, 2));
  const p4 = Number(digits.slice(0, 4));
  switch (digits.charAt(0)) {
    case '4':
      return n === 13 || (n >= 16 && n <= 19);
    case '5':
      return p2 >= 51 && p2 <= 55 && n === 16;
    case '2':
      return (p4 >= 2221 && p4 <= 2720 && n === 16) || (p4 === 2131 && n === 15);
    case '1':
      return p4 === 1800 && n === 15;
    case '3':
      if (p2 === 34 || p2 === 37) return n === 15;
      if (p2 === 35) return n === 16;
      return n === 14 && ((p4 >= 3000 && p4 <= 3059) || p2 === 36 || p2 === 38 || p2 === 39);
    case '6':
      if (p4 === 6011 || p2 === 65) return n >= 16 && n <= 19;
      return (p2 === 62 || p2 === 67) && n === 16;
    case '8':
      return p2 === 81 && n >= 16 && n <= 19;
    default:
      return false;
  }
}

/** GS1 check digit (weights 3,1 from the right): true for a valid EAN-13 / GTIN. */
function gtinValid(digits: string): boolean {
  let sum = 0;
  for (let i = digits.length - 2, w = 3; i >= 0; i--, w = 4 - w) sum += (digits.charCodeAt(i) - 48) * w;
  return (10 - (sum % 10)) % 10 === digits.charCodeAt(digits.length - 1) - 48;
}

const CARD_SEPARATORS = ' .-';

/**
 * Card layouts people write: unseparated, 4-4-4-4(-1…4), Amex 4-6-5, Diners 4-6-4. Separators are
 * runs of up to three spaces, dashes or dots, in any mix.
 */
function cardLayoutOk(candidate: string): boolean {
  const runs = candidate.split(/[ .-]+/).map((g) => g.length);
  if (runs.length === 1) return true;
  const sizes = runs.join('-');
  if (sizes === '4-6-5' || sizes === '4-6-4') return true;
  return runs.every((n, i) => (i < runs.length - 1 ? n === 4 : n >= 1 && n <= 4));
}

const card: Detector = {
  kind: 'card',
  source: String.raw`(?<![\p{L}\p{N}_\-+.,/])[1-8]\d{3}(?:[ .\-]{0,3}\d){9,15}(?![\p{L}\p{N}_]|[.,\-]\d)`,
  trigger: String.raw`\d{4}[ .\-]{0,3}\d{4}`,
  accept: (match) =>
    longestPrefixAtSeparators(match, CARD_SEPARATORS, (end) => {
      const digits = digitsUpTo(match, end);
      if (digits.length < 13 || !cardIssuerKnown(digits) || !luhnValid(digits)) return false;
      // An unseparated 13-digit number that is also a valid EAN-13 is a product code, not one of
      // the rare 13-digit Visa numbers.
      if (digits.length === 13 && end === 13 && gtinValid(digits)) return false;
      return cardLayoutOk(match.slice(0, end));
    }),
  normalise: digitsOnly,
};

// ── US social security numbers ────────────────────────────────────────────────────────────────

const ssn: Detector = {
  kind: 'ssn',
  // Areas 000, 666 and 900–999 are never issued; group 00 and serial 0000 neither. Dashes or
  // spaces, the same between all three parts.
  source: String.raw`(?<![\p{L}\p{N}_\-])(?!000|666|9)\d{3}(?:-(?!00)\d{2}-|[ ](?!00)\d{2}[ ])(?!0000)\d{4}(?![\p{L}\p{N}_]|[\-.]\d)`,
  trigger: String.raw`\d{3}[\- ]\d{2}[\- ]\d{4}`,
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

/** A valid IPv6 address with a digit in it (`::` alone, `std::` and `Foo::Bar` are not addresses). */
function ipv6Ok(candidate: string): boolean {
  return candidate.length >= 3 && /\d/.test(candidate) && isIPv6(candidate);
}

const ipv6: Detector = {
  kind: 'ip',
  // An optional zone id (`fe80::1%eth0`) belongs to the address.
  source: String.raw`(?<![\w:.])(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:]{2,39}(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?(?:%[\w\-]+(?:\.\d+)*)?(?![\w:]|\.\d)`,
  // Every IPv6 address has `::` or at least six colons; times (10:30:00) have neither.
  trigger: String.raw`::|:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:`,
  accept(match) {
    const zone = match.indexOf('%');
    let candidate = zone === -1 ? match : match.slice(0, zone);
    if (ipv6Ok(candidate)) return match.length;
    while (candidate.length > 2) {
      if (!candidate.endsWith(':')) return 0;
      candidate = candidate.slice(0, -1);
      if (ipv6Ok(candidate)) return candidate.length;
    }
    return 0;
  },
  normalise: lower,
};

// ── phone numbers ─────────────────────────────────────────────────────────────────────────────

/**
 * The regions whose national formats are recognised when `redact.phone` is `true`: the United
 * States (and with it every NANP country: Canada, the Caribbean), the United Kingdom, Germany,
 * France and India.
 */
export const DEFAULT_PHONE_REGIONS: readonly string[] = ['US', 'GB', 'DE', 'FR', 'IN'];

/**
 * A run of digits and phone punctuation that could hold a phone number: starts with `+`, `(` or a
 * digit not glued to a word, an amount or a version, and holds 7 to 17 digits. Only these runs are
 * handed to libphonenumber-js, which costs tens of microseconds per search.
 */
const PHONE_CANDIDATE = String.raw`(?<![\p{L}\p{N}_+\-.,/#:])(?:\+|00|\(\+?)?\d(?:[ \-.\/()\u00A0]{0,3}\d){6,17}\)?(?![\p{L}\p{N}_:]|[.,\-\/]\d)`;
/** The cheap prefilter: seven digits with at most three phone punctuation characters between them. */
const PHONE_TRIGGER = String.raw`\d(?:[ \-.\/()\u00A0]{0,3}\d){6}`;

/** A candidate that starts with a date (2024-03-15, 15.03.2024, 03/15/2024, 2024-03-15-001). */
const DATE_LIKE = /^(?:\d{4}([-./])(?:0?[1-9]|1[0-2])\1\d{1,2}|\d{1,2}([-./])\d{1,2}\2\d{4})(?!\d)/;

/**
 * Words that, written just before a number, make it an identifier rather than a phone number
 * (`Order 7800001234`, `PO 4500012345`, `Ticket 2024-000123`, `Rechnung Nr. 0012345678`).
 */
const ID_LABELS = new Set(
  (
    'order orders ord po purchase invoice inv ticket case ref reference id ids no nr num number sku batch lot ' +
    'serial account acct customer cust client tracking shipment awb item article art product part doc ' +
    'document transaction txn tx confirmation booking receipt claim policy contract quote quotation ' +
    'request req job task run build version release ean upc isbn gtin iban bic vat tax amount total qty ' +
    'seed port pid duns siret siren ein tin ust steuernummer zip postcode plz code pin ' +
    'rechnung auftrag bestellung kunde kundennummer commande facture pedido factura ordine fattura'
  ).split(' '),
);
/** Words that, before a label such as `No.`, make the number a phone number after all (`Phone No.`). */
const PHONE_WORDS = new Set(
  (
    'tel tel. telephone phone ph call mobile mob cell cellphone fax telefon telefonnummer handy mobil tél ' +
    'téléphone portable teléfono telefono móvil cellulare whatsapp sms hotline contact reach dial ring'
  ).split(' '),
);

const WORD_BEFORE = /(\p{L}+)[^\p{L}\p{N}\n]{0,6}$/u;

/** True when the word just before `index` (or before its `No.`) marks an identifier. */
function labelledAsId(text: string, index: number): boolean {
  const before = text.slice(Math.max(0, index - 48), index);
  const m = WORD_BEFORE.exec(before);
  if (m === null) return false;
  const word = (m[1] as string).toLowerCase();
  if (!ID_LABELS.has(word)) return false;
  if (word === 'no' || word === 'nr' || word === 'num' || word === 'number' || word === 'id') {
    const prev = WORD_BEFORE.exec(before.slice(0, m.index));
    if (prev !== null && PHONE_WORDS.has((prev[1] as string).toLowerCase())) return false;
  }
  return true;
}
/** An amount with decimals (`+12 345 678.90`, `744938.03`), never a phone number. */
const DECIMAL_END = /[.,]\d{1,2}$/;
/** One decimal point or comma and nothing else between the digits: `48.858370`, `12345,678`. */
const DECIMAL_NUMBER = /^[+(]?\d+[.,]\d+\)?$/;

/** True when `run` reads as an amount or a decimal number rather than a phone number. */
function decimalLike(run: string): boolean {
  if (DECIMAL_NUMBER.test(run)) return true;
  // `98 765 432.10`: one `.` or `,`, ending the run with one or two decimals.
  return DECIMAL_END.test(run) && run.replace(/[^.,]/g, '').length === 1;
}

/** A version: a one- or two-digit major without a leading zero, then dotted parts (`9.22.3.59428`). */
const VERSION_LIKE = /^[1-9]\d?\.\d+\.\d+/;
/** Unix time in seconds or milliseconds (2001–2033): ten or thirteen digits starting with 1. */
const EPOCH_LIKE = /^1\d{9}(?:\d{3})?$/;

/**
 * True when a candidate run (without surrounding brackets) has the shape of something else: a
 * date, an amount or decimal number, a version, an epoch timestamp, an EAN-13 product code.
 */
function notAPhone(core: string): boolean {
  return (
    DATE_LIKE.test(core) ||
    decimalLike(core) ||
    VERSION_LIKE.test(core) ||
    EPOCH_LIKE.test(core) ||
    (core.length === 13 && /^\d{13}$/.test(core) && gtinValid(core))
  );
}

/** Marks a run analysed and found to hold no phone number. */
const NO_PHONE = 0;
/** How many analysed runs a phone detector remembers before it starts over. */
const SEEN_MAX_ENTRIES = 4096;

/** Digits in `text`. */
function countDigits(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) if (isDigitCode(text.charCodeAt(i))) n++;
  return n;
}

/**
 * Calling codes whose national numbers are customarily written without the trunk prefix: the NANP
 * (`415 555 0132`, not `1 415 555 0132`) and India (`98765 43210`).
 */
const TRUNK_OPTIONAL = new Set(['1', '91']);

/** True when both have the same runs of digits, in number and length, and more than two of them. */
function sameGrouping(a: string, b: string): boolean {
  const groups = (v: string): string =>
    v
      .split(/\D+/)
      .filter((g) => g.length > 0)
      .map((g) => g.length)
      .join(',');
  const ga = groups(a);
  return ga.split(',').length > 2 && ga === groups(b);
}

/**
 * True when `raw` is written the way a phone number of its region is dialled: in the national
 * format (with its trunk prefix, `030 1234567`), or with the country code (`33 6 12 45 78 98`,
 * `0049 30 1234567`, `1 415 555 0132`), or bare where that is the custom (NANP, India). A bare
 * `100011234` is a valid French number without its `0`, but no one writes it so: it is an id.
 * A number the numbering plan only makes possible (`possibleOnly`) counts when dialled with its
 * trunk prefix or country code.
 */
function dialledWhole(raw: string, n: PhoneNumber, possibleOnly: boolean): boolean {
  const d = digitsOnly(raw);
  const cc = n.countryCallingCode;
  if (d.endsWith(cc + n.nationalNumber)) return true;
  const formatted = n.formatNational();
  if (d !== digitsOnly(formatted) && !(TRUNK_OPTIONAL.has(cc) && d === n.nationalNumber)) return false;
  // With its trunk prefix (`030 1234567`): dialled as nothing but a phone number is.
  if (d.length > n.nationalNumber.length) return true;
  // Bare NANP or Indian numbers split by spaces alone (`250 500 1000`) are columns of quantities
  // far more often than phone numbers.
  if (TRUNK_OPTIONAL.has(cc) && /^\(?[\d ]+\)?$/.test(raw) && raw.trim().includes(' ')) return false;
  // A number that is only possible (not valid) counts when grouped exactly as the region writes
  // its numbers (`200-200-0000` as `(200) 200-0000`).
  return !possibleOnly || sameGrouping(raw, formatted);
}

/**
 * The phone detector for `regions`: libphonenumber-js's text search on each candidate run, first
 * as an international number (`+…`, any country, possible length), then in each region's national
 * format (valid numbers only). A `+` run the library rejects that still has E.164's shape (8 to 15
 * digits, no decimals) is redacted too: a misdialled or unallocated number is still someone's.
 */
function phoneDetector(regions: readonly CountryCode[]): Detector {
  const candidates = new RegExp(PHONE_CANDIDATE, 'gu');
  const covering = (
    candidate: string,
    region: CountryCode | undefined,
    possible: boolean,
  ): [number, number] | undefined => {
    let best: [number, number] | undefined;
    const found = findPhoneNumbersInText(
      candidate,
      region === undefined ? { extended: possible } : { defaultCountry: region, extended: possible },
    );
    for (const f of found) {
      if (region !== undefined && !dialledWhole(candidate.slice(f.startsAt, f.endsAt), f.number, possible))
        continue;
      if (best === undefined || f.endsAt - f.startsAt > best[1] - best[0]) best = [f.startsAt, f.endsAt];
    }
    return best;
  };
  /** The phone number in a candidate run, as `[start, end)` within it; undefined when none. */
  const phoneIn = (run: string): [number, number] | undefined => {
    if (countDigits(run) < 7) return undefined;
    // The run without the brackets of the sentence around it.
    const core = run.replace(/^\(/, '').replace(/\)$/, '');
    if (notAPhone(core)) return undefined;
    // `+…`, or `00…` (the international prefix of most of the world) written in groups
    // (`0044 20 7946 0958`); a bare `00…` run is more often a zero-padded id.
    const plus = run.startsWith('+') || run.startsWith('(+');
    let best: [number, number] | undefined;
    if (plus || /^00[1-9]\d*[ .-]/.test(core)) {
      const offset = plus ? 0 : run.indexOf('00');
      const asPlus = plus ? run : `${run.slice(0, offset)}+${run.slice(offset + 2)}`;
      const hit = covering(asPlus, undefined, true);
      // Positions in `asPlus` after the `+` are one short of those in `run`.
      const shift = (i: number): number => (!plus && i > offset ? i + 1 : i);
      if (hit !== undefined) best = [shift(hit[0]), shift(hit[1])];
      if (best === undefined) {
        // E.164's shape: 8 to 15 digits, dropping trailing groups (a year written after it).
        const prefixDigits = plus ? 0 : 2;
        const end = longestPrefixAtSeparators(run, ' .-', (e) => {
          const n = countDigits(run.slice(0, e)) - prefixDigits;
          return n >= 8 && n <= 15;
        });
        if (end > 0) best = [0, end];
      }
    } else {
      // The library's text search costs hundreds of microseconds; a parse of the run (tens)
      // first tells which regions can hold a number of its length at all. Then valid numbers
      // of those regions; then possible ones, if dialled with a trunk prefix or a country code
      // or grouped as the region does (`1 987 654 3210` has an unallocated area code, but is
      // written as nothing but a phone number is).
      // A run too long for one number may hold several: searched in every region.
      const plausible =
        countDigits(run) > 13
          ? regions
          : regions.filter((r) => parsePhoneNumberFromString(run, r)?.isPossible() === true);
      for (const possible of [false, true]) {
        for (const region of plausible) {
          const hit = covering(run, region, possible);
          if (hit !== undefined && (best === undefined || hit[1] - hit[0] > best[1] - best[0])) best = hit;
          if (best !== undefined && best[1] - best[0] === run.length) break;
        }
        if (best !== undefined) break;
      }
    }
    if (best === undefined) return undefined;
    let [start, end] = best;
    // A bracket the number does not close (or open) is the sentence's, not the number's.
    if (run.charAt(start) === '(' && !run.slice(start, end).includes(')')) start++;
    if (run.charAt(end - 1) === ')' && !run.slice(start, end).includes('(')) end--;
    return [start, end];
  };
  /**
   * E.164, so `0049 30 123456`, `+49 30 123456` and `030 123456` (DE) get one token: valid in a
   * region first, then possible.
   */
  const toE164 = (value: string): string => {
    const parsed = value.trimStart().startsWith('+')
      ? parsePhoneNumberFromString(value)
      : (regions.map((r) => parsePhoneNumberFromString(value, r)).find((p) => p?.isValid() === true) ??
        regions.map((r) => parsePhoneNumberFromString(value, r)).find((p) => p?.isPossible() === true));
    if (parsed !== undefined) return parsed.number;
    const d = digitsOnly(value);
    return value.startsWith('+') ? `+${d}` : d;
  };
  /** Canonical forms already computed. */
  const canonical = new Map<string, string>();
  /** Runs already analysed (ids, dates and the same customer's number recur across events). */
  const seen = new Map<string, readonly [number, number] | typeof NO_PHONE>();
  return {
    kind: 'phone',
    source: PHONE_CANDIDATE,
    trigger: PHONE_TRIGGER,
    scan(text, found) {
      candidates.lastIndex = 0;
      for (let m = candidates.exec(text); m !== null; m = candidates.exec(text)) {
        const run = m[0];
        // `Order 0012345678`, `PO 4500012345`: an identifier, whatever its digits.
        if (!run.startsWith('+') && !run.startsWith('(+') && labelledAsId(text, m.index)) continue;
        let span = seen.get(run);
        if (span === undefined) {
          span = phoneIn(run) ?? NO_PHONE;
          if (seen.size >= SEEN_MAX_ENTRIES) seen.clear();
          seen.set(run, span);
        }
        if (span !== NO_PHONE) found(m.index + span[0], m.index + span[1]);
      }
    },
    normalise(value) {
      let e164 = canonical.get(value);
      if (e164 === undefined) {
        e164 = toE164(value);
        if (canonical.size >= SEEN_MAX_ENTRIES) canonical.clear();
        canonical.set(value, e164);
      }
      return e164;
    },
  };
}

// ── secrets ───────────────────────────────────────────────────────────────────────────────────

/** Case-insensitive source for an ASCII word, for patterns compiled without the `i` flag. */
function ci(word: string): string {
  return word.replace(/[a-z]/g, (c) => `[${c}${c.toUpperCase()}]`);
}

const hasDigit = (v: string): boolean => /\d/.test(v);

/**
 * Provider key formats, one alternative per gitleaks rule (ids in the comments). Keys are bounded
 * by a character that cannot be part of them.
 */
const PROVIDER_KEYS = [
  String.raw`sk-[A-Za-z0-9_\-]{16,}`, // openai-api-key, anthropic-api-key, anthropic-admin-api-key
  String.raw`(?:sk|rk|pk)_(?:live|test|prod)_[A-Za-z0-9]{10,99}`, // stripe-access-token
  String.raw`gh[pousr]_[A-Za-z0-9]{36,}`, // github-pat, github-oauth, github-app-token, github-refresh-token
  String.raw`github_pat_[A-Za-z0-9_]{60,}`, // github-fine-grained-pat
  String.raw`gl(?:pat|ptt|dt|rt|soat|cbt|ffct)-[A-Za-z0-9_\-]{20,}`, // gitlab-pat, gitlab-ptt, gitlab-deploy-token, gitlab-rrt…
  String.raw`xox[abposre]-[A-Za-z0-9\-]{10,}`, // slack-bot-token, slack-user-token, slack-legacy-*, slack-config-*
  String.raw`xapp-\d-[A-Za-z0-9\-]{20,}`, // slack-app-token
  String.raw`AIza[0-9A-Za-z_\-]{35}`, // gcp-api-key
  String.raw`npm_[A-Za-z0-9]{36}`, // npm-access-token
  String.raw`pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}`, // pypi-upload-token
  String.raw`SG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{16,64}`, // sendgrid-api-token
  String.raw`SK[0-9a-fA-F]{32}`, // twilio-api-key
  String.raw`hf_[A-Za-z]{34}`, // huggingface-access-token
  String.raw`do[por]_v1_[a-f0-9]{64}`, // digitalocean-pat, digitalocean-access-token, digitalocean-refresh-token
  String.raw`shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}`, // shopify-access-token, shopify-shared-secret, shopify-*-access-token
  String.raw`dapi[a-f0-9]{32}(?:-\d)?`, // databricks-api-token
  String.raw`PMAK-[a-fA-F0-9]{24}-[a-fA-F0-9]{34}`, // postman-api-token
  String.raw`key-[a-f0-9]{32}`, // mailgun-private-api-token
  String.raw`ABSK[A-Za-z0-9+/]{109,269}={0,2}`, // aws-amazon-bedrock-api-key-long-lived
].join('|');

const secretPrefixed: Detector = {
  kind: 'secret',
  source: String.raw`(?<![\w\-])(?:${PROVIDER_KEYS})(?![\w\-])`,
  trigger: String.raw`sk-|_live_|_test_|_prod_|gh[pousr]_|github_pat_|gl[a-z]{1,4}-|xox[abposre]-|xapp-|AIza|npm_|pypi-|SG\.|SK[0-9a-fA-F]{32}|hf_|_v1_|shp[a-z]{2}_|dapi|PMAK-|key-|ABSK`,
  // Real keys are random and contain digits; `sk-learn-contributors-guide` is prose.
  accept: (match) => (hasDigit(match) ? match.length : 0),
  normalise: asIs,
};

const secretAwsKeyId: Detector = {
  kind: 'secret',
  // aws-access-token: access key ids of users, roles, STS sessions.
  source: String.raw`(?<![A-Za-z0-9])(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])`,
  trigger: 'A3T|AKIA|ASIA|ABIA|ACCA',
  normalise: asIs,
};

const secretPrivateKey: Detector = {
  kind: 'secret',
  // private-key: a PEM block, header to footer.
  source: String.raw`-----BEGIN[ A-Z0-9_\-]{0,100}PRIVATE KEY(?: BLOCK)?-----[\s\S]{64,}?-----END[ A-Z0-9_\-]{0,100}PRIVATE KEY(?: BLOCK)?-----`,
  trigger: 'PRIVATE KEY',
  normalise: asIs,
};

const secretJwt: Detector = {
  kind: 'secret',
  // jwt
  source: String.raw`(?<![\w\-])eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}(?![\w\-])`,
  trigger: 'eyJ',
  normalise: asIs,
};

const secretSlackWebhook: Detector = {
  kind: 'secret',
  // slack-webhook-url: the path after hooks.slack.com/services/ is the credential.
  source: String.raw`hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9+/]{20,60})`,
  trigger: String.raw`hooks\.slack\.com/`,
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

/** Words that make an identifier a secret's name (gitleaks generic-api-key's keywords). */
const SECRET_WORDS = ['access', 'auth', 'api', 'credential', 'creds', 'key', 'secret', 'token']
  .map(ci)
  .join('|');

const secretKeyValue: Detector = {
  kind: 'secret',
  // generic-api-key: api_key=…, "access_token": "…", AWS_SECRET_ACCESS_KEY=…, x-api-key: … — an
  // identifier holding one of the words, then `:`/`=`, then a long, high-entropy value.
  source: String.raw`(?<![A-Za-z0-9])[\w.\-]{0,40}?(?:${SECRET_WORDS})[\w.\-]{0,30}["']?[ \t]*(?:=|:|=>|:=)[ \t]*["']?(${TOKEN_CHARS})`,
  trigger: [ci('key'), ci('token'), ci('secret'), ci('auth'), ci('cred')].join('|'),
  accept: (match) => (entropyBitsPerChar(match) >= 3 ? match.length : 0),
  normalise: asIs,
};

const secretPassword: Detector = {
  kind: 'secret',
  // password=…, "passwd": "…", pwd: … — passwords are short and need not look random.
  source: String.raw`(?<![A-Za-z0-9])[\w.\-]{0,30}?(?:${['password', 'passwd', 'passphrase', 'pwd'].map(ci).join('|')})["']?[ \t]*(?:=|:|=>|:=)[ \t]*["']?([^\s"',;<>]{6,128})`,
  // Literal-led alternatives, which the engine scans for quickly (this trigger runs on every string).
  trigger: '[Pp]ass[WwPp]|PASS[WP]|[Pp]wd|PWD',
  // Not a masked value or a placeholder.
  accept: (match) => (/^(?:\*+|x+|\.+|<.*|\$\{.*|\{\{.*)$/i.test(match) ? 0 : match.length),
  normalise: asIs,
};

/** Which built-in families are on. */
export interface BuiltinSelection {
  email: boolean;
  /** Phone numbers, with the regions whose national formats count; `false` = off. */
  phone: false | { regions: readonly string[] };
  card: boolean;
  iban: boolean;
  ssn: boolean;
  ip: boolean;
  secrets: boolean;
}

/**
 * The enabled built-in detectors in priority order: when two match at the same position, the
 * earlier one wins (a key before an email, an IBAN before the card number inside it, an SSN or a
 * card before a phone number).
 */
export function builtinDetectors(on: BuiltinSelection): Detector[] {
  const out: Detector[] = [];
  if (on.secrets) {
    out.push(secretPrivateKey, secretPrefixed, secretAwsKeyId, secretJwt, secretSlackWebhook, secretBearer);
    out.push(secretKeyValue, secretPassword);
  }
  if (on.email) out.push(email);
  if (on.iban) out.push(iban);
  if (on.card) out.push(card);
  if (on.ssn) out.push(ssn);
  if (on.ip) out.push(ipv4, ipv6);
  if (on.phone !== false) out.push(phoneDetector(on.phone.regions.filter((r) => isSupportedCountry(r))));
  return out;
}
