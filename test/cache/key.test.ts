import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cacheKey, cacheKeyer } from '../../src/cache/key.js';
import { canonicalJson } from '../../src/core/json.js';

const KEY = 'cache-key-test-key-0123456789';
const key = cacheKeyer(KEY);

describe('cacheKey', () => {
  it('is 64 hex digits', () => {
    expect(key('vendor_extraction', '1', { invoiceId: 'INV-1' })).toMatch(/^[0-9a-f]{64}$/);
  });

  it('is keyed: not the plain sha256 of the input, and different under another key', () => {
    const input = { ssn: '078-05-1120' };
    const k = key('vendor_extraction', '1', input);
    const plain = createHash('sha256')
      .update(canonicalJson(['vendor_extraction', '1', input]))
      .digest('hex');
    expect(k).not.toBe(plain);
    expect(cacheKey('vendor_extraction', '1', input, 'another-key-0123456789abcdef')).not.toBe(k);
    expect(cacheKey('vendor_extraction', '1', input, KEY)).toBe(k);
  });

  it('is the same for the same input whatever the key order, at any depth', () => {
    const a = { invoiceId: 'INV-1', vendor: { name: 'Acme', country: 'DE' }, lines: [{ qty: 1, sku: 'A' }] };
    const b = { lines: [{ sku: 'A', qty: 1 }], vendor: { country: 'DE', name: 'Acme' }, invoiceId: 'INV-1' };
    expect(key('vendor_extraction', '1', b)).toBe(key('vendor_extraction', '1', a));
  });

  it('differs when the agent version, the agent or the input differs', () => {
    const base = key('vendor_extraction', '1', { invoiceId: 'INV-1' });
    expect(key('vendor_extraction', '2', { invoiceId: 'INV-1' })).not.toBe(base);
    expect(key('amount_extraction', '1', { invoiceId: 'INV-1' })).not.toBe(base);
    expect(key('vendor_extraction', '1', { invoiceId: 'INV-2' })).not.toBe(base);
    expect(key('vendor_extraction', '1', [1, 2])).not.toBe(key('vendor_extraction', '1', [2, 1]));
  });

  it('does not confuse the name/version boundary', () => {
    expect(key('ab', 'c', null)).not.toBe(key('a', 'bc', null));
  });
});
