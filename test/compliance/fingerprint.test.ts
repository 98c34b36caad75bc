/**
 * `fingerprinter` computes HMAC-SHA256 from two one-shot hashes over pooled buffers (issue 26): it
 * must give exactly what `createHmac` gives under the HKDF sub-key, for every text — lone
 * surrogates, NUL, astral characters, texts around the pooled buffer's limit, a long text between
 * two short ones (nothing of one text may leak into the next).
 */
import { createHmac, hkdfSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fingerprinter } from '../../src/compliance/key.js';

/** The definition: HMAC-SHA256 by Node's `createHmac` under the documented sub-key. */
function reference(key: string | Uint8Array, text: string): string {
  const subKey = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'keel fingerprint v1', 32));
  return createHmac('sha256', subKey).update(text).digest('hex');
}

const KEYS: (string | Uint8Array)[] = [
  'fingerprint-test-key-0123456789',
  new Uint8Array(16).fill(7),
  'k'.repeat(200), // longer than a SHA-256 block: HKDF still gives a 32-byte sub-key
];

/** Strings the simulator never produces. */
const hostile = fc.oneof(
  fc.string({ unit: 'binary' }), // lone surrogates, NUL, every code unit
  fc.string({ unit: 'grapheme-composite' }),
  fc.string({
    unit: fc.constantFrom('\ud800', '\udfff', '\u0000', '€', '😀', 'a', '"', '\\'),
    maxLength: 300,
  }),
);

describe('fingerprinter: the pooled HMAC equals createHmac', () => {
  it.each(KEYS.map((k) => [typeof k === 'string' ? `${k.slice(0, 12)}… (${k.length})` : 'bytes', k]))(
    'hostile strings under key %s',
    (_label, key) => {
      const fingerprint = fingerprinter(key);
      fc.assert(
        fc.property(hostile, (text) => {
          expect(fingerprint(text)).toBe(reference(key, text));
        }),
        { numRuns: 500 },
      );
    },
  );

  it('texts around the pooled limit (4,096 UTF-16 units), in 1-, 3- and 4-byte UTF-8, and after each other', () => {
    const key = KEYS[0] as string;
    const fingerprint = fingerprinter(key);
    const texts: string[] = [];
    for (const n of [0, 1, 4095, 4096, 4097, 9000]) {
      texts.push('a'.repeat(n), '€'.repeat(n), '\ud800'.repeat(n), '😀'.repeat(Math.ceil(n / 2)));
      texts.push(`${'😀'.repeat(Math.floor(n / 2))}\ud83d`); // a pair cut in half at the end
    }
    // Long then short then long: each result depends on its own text only.
    const order = [...texts, ...texts.slice().reverse(), 'in', '"in"'];
    for (const text of order) expect(fingerprint(text), `length ${text.length}`).toBe(reference(key, text));
  });

  it('two fingerprinters with different keys share nothing', () => {
    const a = fingerprinter('key-a-0123456789abcdef');
    const b = fingerprinter('key-b-0123456789abcdef');
    expect(a('same')).toBe(reference('key-a-0123456789abcdef', 'same'));
    expect(b('same')).toBe(reference('key-b-0123456789abcdef', 'same'));
    expect(a('same')).not.toBe(b('same'));
  });
});
