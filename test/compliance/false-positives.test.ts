import { describe, expect, it } from 'vitest';
import { createRedactor } from '../../src/compliance/redact.js';

/**
 * Business text that looks numeric or structured but holds no PII. Redacting any of it would
 * corrupt the audit trail (an invoice number that no longer matches), so every line must survive.
 */
const CORPUS = [
  // invoice numbers
  'Invoice INV-2024-00042',
  'Invoice #2024-0042',
  'INV/2024/00042',
  'Invoice No. 000123456',
  // amounts
  'Total $1,234.56',
  'Total 1.234,56 EUR',
  'EUR 12 345,67',
  'USD 1,000,000.00',
  '€1.234,56 incl. 19% VAT',
  '£99.99 and ¥12,345',
  'Discount -1,234.56, surcharge +12.50',
  'Balance 1 234 567,89',
  // dates and times
  'Due 2024-03-15',
  'Issued 15/03/2024',
  'Issued 03/15/2024',
  'Issued 15.03.2024',
  'March 15, 2024 and 15 Mar 2024',
  'Created 2024-03-15T10:30:00Z',
  'Updated 2024-03-15T10:30:00.123+01:00',
  'Logged 2024-03-15 10:30:00',
  'Open 09:00-17:00, call back at 10:30:45',
  'Batch 2024-03-15-001',
  // order and purchase-order ids
  'PO-98765',
  'PO# 4500012345',
  'Purchase Order 7800001234',
  'Order ORD-2024-118273',
  'Order ID: 112-7654321-1234567',
  'Ticket 2024-000123',
  // quantities and units
  'Qty: 12',
  '12 x 4.99',
  'Quantity 1,000 units',
  '3 pcs @ 19.99',
  'Weight 12.5 kg, 250 500 1000 ml',
  // other identifiers
  'SKU-88421-BLK',
  'Tracking 1Z999AA10123456784',
  'VAT DE123456789, GB123456789',
  'Postcode SW1A 1AA, 94105, 10115 Berlin',
  'Customer 10042, Acct #0012345',
  'Request 123e4567-e89b-12d3-a456-426614174000',
  'Commit 9fceb02d0ae598e95dc970b74767f19372d61af8',
  'Version v2.3.1',
  'Model gpt-4, temperature 0.2, 800 tokens in',
  // names-like business words
  'Product Name: Widget Pro',
  'Vendor Name: Acme Corporation',
  'Regards,\nAccounts Payable',
  'Dear Customer,',
];

describe('false positives: business text survives redaction untouched', () => {
  const redactor = createRedactor({ hmacKey: 'false-positive-key-0123456789' });

  it.each(CORPUS)('%j', (line) => {
    const { text, counts } = redactor.redactString(line);
    expect(text).toBe(line);
    expect(counts).toEqual({});
  });

  it('survives as one document, with PII in it redacted around it', () => {
    const doc = `${CORPUS.join('\n')}\nContact: jane@example.com`;
    const { text, counts } = redactor.redactString(doc);
    expect(counts).toEqual({ email: 1 });
    for (const line of CORPUS) expect(text).toContain(line);
  });
});
