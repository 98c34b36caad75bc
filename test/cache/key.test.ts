import { describe, expect, it } from 'vitest';
import { cacheKey } from '../../src/cache/key.js';

describe('cacheKey', () => {
  it('is a sha256 hex digest', () => {
    expect(cacheKey('vendor_extraction', '1', { invoiceId: 'INV-1' })).toMatch(/^[0-9a-f]{64}$/);
  });

  it('is the same for the same input whatever the key order, at any depth', () => {
    const a = { invoiceId: 'INV-1', vendor: { name: 'Acme', country: 'DE' }, lines: [{ qty: 1, sku: 'A' }] };
    const b = { lines: [{ sku: 'A', qty: 1 }], vendor: { country: 'DE', name: 'Acme' }, invoiceId: 'INV-1' };
    expect(cacheKey('vendor_extraction', '1', b)).toBe(cacheKey('vendor_extraction', '1', a));
  });

  it('differs when the agent version, the agent or the input differs', () => {
    const base = cacheKey('vendor_extraction', '1', { invoiceId: 'INV-1' });
    expect(cacheKey('vendor_extraction', '2', { invoiceId: 'INV-1' })).not.toBe(base);
    expect(cacheKey('amount_extraction', '1', { invoiceId: 'INV-1' })).not.toBe(base);
    expect(cacheKey('vendor_extraction', '1', { invoiceId: 'INV-2' })).not.toBe(base);
    expect(cacheKey('vendor_extraction', '1', [1, 2])).not.toBe(cacheKey('vendor_extraction', '1', [2, 1]));
  });

  it('does not confuse the name/version boundary', () => {
    expect(cacheKey('ab', 'c', null)).not.toBe(cacheKey('a', 'bc', null));
  });
});
