import { createHash } from 'node:crypto';
import fc from 'fast-check';

/**
 * fast-check generators of PII inside realistic invoice text, shared by the redactor's property
 * test and the end-to-end test that checks no PII reaches the log, exports, spans or metrics.
 */

/** A piece of PII placed in the text: `raw` must not survive, `kind` is what counts should report. */
export interface Pii {
  kind: string;
  raw: string;
  /** How it appears in the text (e.g. `Bearer <raw>`). */
  text: string;
}

const DIGITS = '0123456789';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = LOWER.toUpperCase();
const BASE62 = DIGITS + LOWER + UPPER;

const chars = (alphabet: string, minLength: number, maxLength = minLength) =>
  fc.string({ unit: fc.constantFrom(...alphabet), minLength, maxLength });
const num = (min: number, max: number, width = 0) =>
  fc.integer({ min, max }).map((n) => String(n).padStart(width, '0'));

function luhnCheckDigit(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

function mod97(numeric: string): number {
  let rem = 0;
  for (const c of numeric) rem = (rem * 10 + Number(c)) % 97;
  return rem;
}

function groups(text: string, sizes: readonly number[], sep: string): string {
  const out: string[] = [];
  let at = 0;
  for (const n of sizes) {
    out.push(text.slice(at, at + n));
    at += n;
  }
  return out.join(sep);
}

const email = fc
  .tuple(chars(LOWER, 1), chars(LOWER + DIGITS + '._', 0, 10), chars(LOWER + DIGITS, 1), chars(LOWER, 2, 10))
  .chain(([a, b, c, domain]) =>
    fc.constantFrom('com', 'org', 'de', 'co.uk', 'io').map((tld) => `${a}${b}${c}@${domain}.${tld}`),
  )
  .map((raw): Pii => ({ kind: 'email', raw, text: raw }));

const nanpPart = fc.tuple(num(2, 9), num(0, 99, 2)).map(([a, b]) => a + b);
const phone = fc
  .oneof(
    fc
      .tuple(
        fc.constantFrom('44', '49', '33', '1', '61', '353'),
        num(1, 9999),
        num(100, 9999),
        num(0, 9999, 4),
      )
      .map(([cc, a, b, c]) => `+${cc} ${a} ${b} ${c}`),
    fc.tuple(nanpPart, nanpPart, num(0, 9999, 4)).map(([a, b, c]) => `+1 (${a}) ${b}-${c}`),
    fc
      .tuple(fc.constantFrom('49', '44', '33'), num(10, 99), num(0, 999999, 6))
      .map(([cc, a, b]) => `00${cc} ${a} ${b}`),
    fc.tuple(nanpPart, nanpPart, num(0, 9999, 4)).map(([a, b, c]) => `${a}-${b}-${c}`),
  )
  .map((raw): Pii => ({ kind: 'phone', raw, text: raw }));

const card = fc
  .tuple(
    fc.constantFrom(
      { prefix: '4', length: 16, sizes: [4, 4, 4, 4] },
      { prefix: '4', length: 19, sizes: [4, 4, 4, 4, 3] },
      { prefix: '51', length: 16, sizes: [4, 4, 4, 4] },
      { prefix: '55', length: 16, sizes: [4, 4, 4, 4] },
      { prefix: '2221', length: 16, sizes: [4, 4, 4, 4] },
      { prefix: '6011', length: 16, sizes: [4, 4, 4, 4] },
      { prefix: '34', length: 15, sizes: [4, 6, 5] },
      { prefix: '37', length: 15, sizes: [4, 6, 5] },
    ),
    chars(DIGITS, 18),
    fc.constantFrom('', ' ', '-'),
  )
  .map(([brand, random, sep]): Pii => {
    const body = brand.prefix + random.slice(0, brand.length - brand.prefix.length - 1);
    const digits = body + luhnCheckDigit(body);
    const raw = sep === '' ? digits : groups(digits, brand.sizes, sep);
    return { kind: 'card', raw, text: raw };
  });

const iban = fc
  .tuple(
    fc.constantFrom<[string, number]>(
      ['DE', 22],
      ['GB', 22],
      ['FR', 27],
      ['NL', 18],
      ['ES', 24],
      ['BE', 16],
      ['CH', 21],
    ),
    chars(DIGITS + UPPER, 30),
    fc.boolean(),
  )
  .map(([[cc, length], random, spaced]): Pii => {
    const bban = random.slice(0, length - 4);
    const numeric = (bban + cc + '00').replace(/[A-Z]/g, (c) => String(c.charCodeAt(0) - 55));
    const compact = cc + String(98 - mod97(numeric)).padStart(2, '0') + bban;
    const raw = spaced ? compact.replace(/(.{4})(?=.)/g, '$1 ') : compact;
    return { kind: 'iban', raw, text: raw };
  });

const ssn = fc
  .tuple(
    num(1, 899, 3).filter((a) => a !== '666'),
    num(1, 99, 2),
    num(1, 9999, 4),
  )
  .map(([a, g, s]): Pii => ({ kind: 'ssn', raw: `${a}-${g}-${s}`, text: `${a}-${g}-${s}` }));

const hexGroup = chars('0123456789abcdef', 1, 4);
const ip = fc
  .oneof(
    fc.tuple(num(0, 255), num(0, 255), num(0, 255), num(0, 255)).map((o) => o.join('.')),
    fc
      .tuple(
        fc.constantFrom('2001', 'fe80', '2a00'),
        fc.array(hexGroup, { minLength: 7, maxLength: 7 }),
        fc.nat(5),
      )
      .map(([first, rest, cut]) => {
        const all = [first, ...rest];
        return cut === 0 ? all.join(':') : `${all.slice(0, cut).join(':')}::${all.slice(cut + 2).join(':')}`;
      }),
  )
  .map((raw): Pii => ({ kind: 'ip', raw, text: raw }));

const secret = fc
  .oneof(
    fc.tuple(chars(BASE62, 20, 40), num(0, 9)).map(([body, d]) => ({ raw: `sk-${body}${d}`, prefix: '' })),
    chars(DIGITS + UPPER, 16).map((body) => ({ raw: `AKIA${body}`, prefix: '' })),
    fc
      .tuple(chars(BASE62, 20, 40), num(0, 9))
      .map(([body, d]) => ({ raw: `${body}${d}x`, prefix: 'Bearer ' })),
    fc.string({ minLength: 1 }).map((seed) => ({
      raw: createHash('sha256').update(seed).digest('base64url').slice(0, 32),
      prefix: 'api_key=',
    })),
  )
  .map(({ raw, prefix }): Pii => ({ kind: 'secret', raw, text: prefix + raw }));

export const LISTED = ['Jane Doe', 'Ravi Shankar', 'Élodie Martin', "Siobhan O'Neill", 'Zhang Wei'];
const name = fc.constantFrom(...LISTED).map((raw): Pii => ({ kind: 'name', raw, text: raw }));

export const pii = fc.oneof(email, phone, card, iban, ssn, ip, secret, name);

const year = num(2019, 2026);
const month = num(1, 12, 2);
const day = num(1, 28, 2);
/** Business text that must come through untouched. */
export const filler = fc.oneof(
  fc.tuple(year, num(1, 99999, 5)).map(([y, n]) => `Invoice INV-${y}-${n}`),
  fc.tuple(num(1, 999), num(0, 999, 3), num(0, 99, 2)).map(([a, b, c]) => `Total $${a},${b}.${c}`),
  fc.tuple(num(1, 999), num(0, 999, 3), num(0, 99, 2)).map(([a, b, c]) => `Betrag ${a}.${b},${c} EUR`),
  fc.tuple(year, month, day).map(([y, m, d]) => `due ${y}-${m}-${d}`),
  fc.tuple(year, month, day).map(([y, m, d]) => `issued ${d}/${m}/${y}`),
  fc
    .tuple(year, month, day, num(0, 23, 2), num(0, 59, 2))
    .map(([y, m, d, h, i]) => `at ${y}-${m}-${d}T${h}:${i}:00Z`),
  fc
    .tuple(year, month, day, num(0, 999, 3))
    .map(([y, m, d, ms]) => `logged ${y}-${m}-${d}T10:30:00.${ms}+01:00`),
  num(4500000000, 4599999999).map((n) => `PO ${n}`),
  num(10000, 999999).map((n) => `PO-${n}`),
  fc.tuple(year, num(0, 999999, 6)).map(([y, n]) => `order ORD-${y}-${n}`),
  fc.tuple(num(100, 999), num(0, 9999999, 7), num(0, 9999999, 7)).map(([a, b, c]) => `order ${a}-${b}-${c}`),
  fc.tuple(num(1, 500), num(1, 999), num(0, 99, 2)).map(([q, p, c]) => `qty ${q} x ${p}.${c}`),
);

export const LABELS: Record<string, string> = {
  email: 'Email:',
  phone: 'Phone:',
  card: 'Card:',
  iban: 'IBAN:',
  ssn: 'SSN:',
  ip: 'Client IP',
  secret: 'Key',
  name: 'Name:',
};

export const invoice = fc.array(fc.tuple(pii, filler), { minLength: 1, maxLength: 10 });
