/**
 * Check-digit algorithms the detectors use to tell real identifiers from look-alike numbers: a
 * card number must pass Luhn, an IBAN must pass ISO 13616 mod-97 and have its country's length.
 * Internal to `src/compliance`.
 */
import { countrySpecs } from 'ibantools';

/** True when a string of ASCII digits passes the Luhn (mod-10) check. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}

/**
 * IBAN length per country: ibantools' country table (the ISO 13616 registry of SWIFT plus the
 * countries that issue IBANs outside it, such as DZ, IR, MA and MZ). A candidate whose country has
 * no length there is not an IBAN, which keeps look-alikes such as `RF18 5390 0754 7034` out.
 */
export function ibanLength(country: string): number | undefined {
  return countrySpecs[country]?.chars;
}

/**
 * True when `compact` (an IBAN without spaces, upper case) has its country's length and passes
 * the mod-97 check: move the first four characters to the end, map letters to 10..35, and the
 * number mod 97 must be 1.
 */
export function ibanValid(compact: string): boolean {
  const expected = ibanLength(compact.slice(0, 2));
  if (expected === undefined || compact.length !== expected) return false;
  let rem = 0;
  for (let n = 0; n < compact.length; n++) {
    const c = compact.charCodeAt((n + 4) % compact.length);
    if (c >= 48 && c <= 57) {
      rem = (rem * 10 + (c - 48)) % 97;
    } else if (c >= 65 && c <= 90) {
      rem = (rem * 100 + (c - 55)) % 97;
    } else {
      return false;
    }
  }
  return rem === 1;
}

/** Shannon entropy of a string in bits per character. */
export function entropyBitsPerChar(text: string): number {
  if (text.length === 0) return 0;
  const freq = new Map<number, number>();
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    freq.set(c, (freq.get(c) ?? 0) + 1);
  }
  let bits = 0;
  for (const n of freq.values()) {
    const p = n / text.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}
