/**
 * Demo data: a seeded stream of scanned invoices with the tutorial's production mix — 8 %
 * duplicates (the same invoice submitted twice), 15 % OCR errors (`Acme Corp` → `Acm3 C0rp`), 10 %
 * missing fields, 5 % edge cases (negative amounts, future dates) — from a pool of vendors that
 * repeat, a few of them often.
 */
import type { Invoice } from '../agents/invoice.js';
import { ConfigError, seededRandom, type Random } from '../src/index.js';

/** Shares of each defect among invoices, each in [0, 1]; OCR, missing and edge shares are exclusive. */
export interface InvoiceMix {
  /** An earlier invoice submitted again, same id and text (tutorial: 0.08). */
  duplicates: number;
  /** The scan garbled the vendor, total or date (tutorial: 0.15). */
  ocrErrors: number;
  /** The vendor, date or total line is missing (tutorial: 0.10). */
  missingFields: number;
  /** A negative total or a date in the future (tutorial: 0.05). */
  edgeCases: number;
}

/** The tutorial's production mix. */
export const TUTORIAL_INVOICE_MIX: Readonly<InvoiceMix> = Object.freeze({
  duplicates: 0.08,
  ocrErrors: 0.15,
  missingFields: 0.1,
  edgeCases: 0.05,
});

/** Clean invoices only (chaos and cascade demos). */
export const CLEAN_INVOICE_MIX: Readonly<InvoiceMix> = Object.freeze({
  duplicates: 0,
  ocrErrors: 0,
  missingFields: 0,
  edgeCases: 0,
});

/** Options of {@link invoiceStream}. */
export interface InvoiceStreamOptions {
  seed: number;
  /** Invoices to yield. */
  count: number;
  /** Defect shares (default {@link TUTORIAL_INVOICE_MIX}). */
  mix?: InvoiceMix;
  /** "Today", ms since epoch: invoices are dated in the 60 days before it, future edge cases after it. */
  nowMs: number;
  /** Vendors sending invoices, a whole number in [1, 200] (default 200); a few send most of them. */
  vendors?: number;
}

const PREFIXES = [
  'Acme',
  'Northwind',
  'Contoso',
  'Fabrikam',
  'Globetrotter',
  'Vandelay',
  'Wonka',
  'Cyberdyne',
  'Tyrell',
  'Soylent',
  'Oceanic',
  'Monarch',
  'Aperture',
  'Stark',
  'Wayne',
  'Dunder',
  'Blue Sun',
  'Massive',
  'Pied Piper',
  'Nakatomi',
  'Gekko',
  'Prestige',
  'Sirius',
  'Zenith',
  'Halcyon',
];
const SUFFIXES = ['Corp', 'Traders', 'Ltd', 'Inc', 'Industries', 'Logistics', 'Supplies', 'Partners'];
/** Letters the scanner confuses with digits or symbols. */
const LOOKALIKE: Readonly<Record<string, string>> = {
  a: '@',
  e: '3',
  o: '0',
  i: '1',
  l: '1',
  s: '5',
  B: '8',
  S: '5',
};
const LETTER = /^[A-Za-z]$/;
const DAY_MS = 86_400_000;

/** Vendor names by popularity: a few of `count` vendors send most invoices (Zipf, s = 1). */
function vendorPicker(rng: Random, count: number): () => string {
  const vendors: string[] = [];
  for (const s of SUFFIXES) for (const p of PREFIXES) vendors.push(`${p} ${s}`);
  const shuffled = vendors
    .map((v) => ({ v, k: rng.next() }))
    .sort((a, b) => a.k - b.k)
    .slice(0, count);
  const cumulative: number[] = [];
  let total = 0;
  for (let i = 0; i < shuffled.length; i++) cumulative.push((total += 1 / (i + 1)));
  return () => {
    const u = rng.next() * total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cumulative[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    return (shuffled[lo] as { v: string }).v;
  };
}

/** `1234.5` → `1,234.50`. */
function money(amount: number): string {
  const sign = amount < 0 ? '-' : '';
  const [whole = '0', cents = '00'] = Math.abs(amount).toFixed(2).split('.');
  return `${sign}${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${cents}`;
}

function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Replaces one or two letters of `text` by lookalikes, at least one next to another letter. */
function garbleWords(rng: Random, text: string): string {
  const spots: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (LOOKALIKE[c] !== undefined && (LETTER.test(text[i - 1] ?? '') || LETTER.test(text[i + 1] ?? '')))
      spots.push(i);
  }
  if (spots.length === 0) return `${text}1`;
  const chars = [...text];
  const n = Math.min(spots.length, rng.int(1, 2));
  for (let k = 0; k < n; k++) {
    const i = spots.splice(rng.int(0, spots.length - 1), 1)[0] as number;
    chars[i] = LOOKALIKE[chars[i] as string] as string;
  }
  return chars.join('');
}

/** Replaces one digit of `text` by a lookalike letter (`0` → `O`, `1` → `l`, else `S` / `B`). */
function garbleDigits(rng: Random, text: string): string {
  const spots: number[] = [];
  for (let i = 0; i < text.length; i++) if (/\d/.test(text[i] as string)) spots.push(i);
  const i = rng.pick(spots);
  const c = text[i] as string;
  const swap = c === '0' ? 'O' : c === '1' ? 'l' : c === '5' ? 'S' : 'B';
  return `${text.slice(0, i)}${swap}${text.slice(i + 1)}`;
}

interface Fields {
  vendor: string | undefined;
  date: string | undefined;
  total: string | undefined;
}

function render(id: string, f: Fields): string {
  const lines = [`INVOICE ${id}`];
  if (f.vendor !== undefined) lines.push(`Vendor: ${f.vendor}`);
  if (f.date !== undefined) lines.push(`Date: ${f.date}`);
  if (f.total !== undefined) lines.push(`Total: ${f.total}`);
  return lines.join('\n');
}

/**
 * Yields `count` invoices, lazily, from `seed`. A duplicate repeats one of the last 500 invoices.
 *
 * @example
 * for (const invoice of invoiceStream({ seed: 42, count: 3, nowMs: clock.now() })) console.log(invoice.text);
 */
export function* invoiceStream(options: InvoiceStreamOptions): Generator<Invoice> {
  const rng = seededRandom(`${options.seed}:invoices`);
  const mix = options.mix ?? TUTORIAL_INVOICE_MIX;
  const pool = PREFIXES.length * SUFFIXES.length;
  const vendors = options.vendors ?? pool;
  if (!Number.isInteger(vendors) || vendors < 1 || vendors > pool)
    throw new ConfigError('vendors', `must be a whole number in [1, ${pool}], got ${String(vendors)}`);
  const vendorOf = vendorPicker(rng.fork('vendors'), vendors);
  const recent: Invoice[] = [];
  let next = 1;
  for (let n = 0; n < options.count; n++) {
    if (recent.length > 0 && rng.chance(mix.duplicates)) {
      yield rng.pick(recent);
      continue;
    }
    const id = `INV-${String(next++).padStart(6, '0')}`;
    const currency = rng.chance(0.85) ? 'USD' : rng.pick(['EUR', 'GBP']);
    let amount = Math.round(Math.exp(Math.log(800) + rng.normal(0, 1.2)) * 100) / 100;
    let dateMs = options.nowMs - rng.int(1, 60) * DAY_MS;
    const fields: Fields = { vendor: vendorOf(), date: undefined, total: undefined };
    const u = rng.next();
    const kind = rng.next();
    if (u >= mix.ocrErrors + mix.missingFields && u < mix.ocrErrors + mix.missingFields + mix.edgeCases) {
      if (kind < 0.5) amount = -amount;
      else dateMs = options.nowMs + rng.int(3, 30) * DAY_MS;
    }
    fields.date = isoDate(dateMs);
    fields.total = `${currency} ${money(amount)}`;
    if (u < mix.ocrErrors) {
      if (kind < 0.6) fields.vendor = garbleWords(rng, fields.vendor as string);
      else if (kind < 0.85) fields.total = `${currency} ${garbleDigits(rng, money(amount))}`;
      else fields.date = garbleDigits(rng, fields.date);
    } else if (u < mix.ocrErrors + mix.missingFields) {
      if (kind < 0.3) fields.vendor = undefined;
      else if (kind < 0.8) fields.date = undefined;
      else fields.total = undefined;
    }
    const invoice: Invoice = { id, text: render(id, fields) };
    if (recent.length >= 500) recent.shift();
    recent.push(invoice);
    yield invoice;
  }
}
