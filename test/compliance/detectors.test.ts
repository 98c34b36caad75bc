import { describe, expect, it } from 'vitest';
import { createRedactor } from '../../src/compliance/redact.js';

const redactor = createRedactor({ hmacKey: 'detector-test-key-0123456789', names: { list: ['Jane Doe'] } });
const TOKEN = /⟨([A-Z]+):[0-9a-f]{12}⟩/g;

/** Redacts `text` and checks that exactly `value` was replaced, by one token of `kind`. */
function expectRedacted(text: string, value: string, kind: string): void {
  const { text: out, counts } = redactor.redactString(text);
  expect(counts).toEqual({ [kind]: 1 });
  expect(out).not.toContain(value);
  const token = [...out.matchAll(TOKEN)];
  expect(token).toHaveLength(1);
  expect(token[0]?.[1]).toBe(kind.toUpperCase());
  // Everything around the value is kept as it was.
  expect(out).toBe(text.replace(value, token[0]?.[0] ?? ''));
}

function expectUntouched(text: string): void {
  const { text: out, counts } = redactor.redactString(text);
  expect(out).toBe(text);
  expect(counts).toEqual({});
}

describe('email', () => {
  it.each(['jane.doe@example.com', 'J.Doe+invoices@mail.example.co.uk', 'ap_team-7@acme.io'])('%s', (v) =>
    expectRedacted(`Send the invoice to ${v}.`, v, 'email'),
  );
  it('leaves handles and at-signs that are not addresses', () => {
    expectUntouched('Meet @ 10:30, ping @jane on chat, 3 @ $4.99 each');
  });
});

describe('phone', () => {
  it.each([
    '+44 20 7946 0958',
    '+1 (415) 555-0132',
    '0049 30 123456',
    '415-555-0132',
    '(415) 555-0132',
    '+442079460958',
    '+44 (0)20 7946 0958',
    '415.555.0132',
  ])('%s', (v) => expectRedacted(`Call ${v} before Friday`, v, 'phone'));
  it('stops at the number, not at a year written after it', () => {
    expectRedacted('Tel +44 20 7946 0958 2024 contract', '+44 20 7946 0958', 'phone');
  });
  it('ignores short numbers with a plus sign', () => {
    expectUntouched('Margin +15% on +12.50 EUR');
  });
});

describe('payment card', () => {
  it.each([
    '4111 1111 1111 1111',
    '4111-1111-1111-1111',
    '4111111111111111',
    '5500 0000 0000 0004',
    '3782 822463 10005',
    '6011 1111 1111 1117',
  ])('Luhn-valid %s', (v) => expectRedacted(`Paid with card ${v} today`, v, 'card'));
  it('keeps Luhn-invalid numbers of card length', () => {
    expectUntouched('Reference 4111 1111 1111 1112 and 4111111111111113');
  });
  it.each([
    '4716.4615.8332.2103',
    '4716  4615  8332  2103',
    '4716 - 4615 - 8332 - 2103',
    '4111 1111-1111.1111',
  ])('any separator, several of them, mixed: %s', (v) =>
    expectRedacted(`Paid with card ${v} today`, v, 'card'),
  );
  it.each(['8171 9999 2766 0000', '6283 8750 7098 5593', '2222 1557 6507 2228', '3605 023419 6908'])(
    'UnionPay 81…/62…, Mastercard 2221–2720, Diners: %s',
    (v) => expectRedacted(`Paid with card ${v} today`, v, 'card'),
  );
  it('keeps numbers in an odd grouping, outside the issuer ranges, or EAN-13 product codes', () => {
    // Both Luhn-valid: 9… is no issuer's range; 4006381333924 is also a valid EAN-13.
    expectUntouched('Batch 41 111 1111 1111 11, ref 9111 1111 1111 1110 and item 4006381333924');
  });
});

describe('IBAN', () => {
  it.each([
    'DE89 3704 0044 0532 0130 00',
    'DE89370400440532013000',
    'GB82WEST12345698765432',
    'GB82 WEST 1234 5698 7654 32',
    'FR14 2004 1010 0505 0001 3M02 606',
    'NL91ABNA0417164300',
  ])('mod-97 valid %s', (v) => expectRedacted(`Pay to IBAN ${v} by Friday`, v, 'iban'));
  it('does not report IBAN-shaped strings whose checksum fails', () => {
    expectUntouched('IBAN GB82 WEST 1234 5698 7654 31 was rejected');
    // (Digits inside a broken IBAN may still match another detector, e.g. `0044 …` as a phone number.)
    const { text, counts } = redactor.redactString('IBAN DE88 3704 0044 0532 0130 00 was rejected');
    expect(counts.iban).toBeUndefined();
    expect(text).toContain('DE88 3704');
  });
  it('keeps mod-97 references of countries without IBANs (RF creditor reference)', () => {
    expectUntouched('Creditor reference RF18 5390 0754 7034');
  });
});

describe('US SSN', () => {
  it('redacts a valid number', () => expectRedacted('SSN 123-45-6789 on file', '123-45-6789', 'ssn'));
  it.each(['000-12-3456', '666-12-3456', '912-34-5678', '123-00-4567', '123-45-0000'])(
    'keeps never-issued %s',
    (v) => expectUntouched(`SSN ${v} on file`),
  );
});

describe('IP address', () => {
  it.each([
    '192.168.1.100',
    '10.0.0.1',
    '2001:db8:85a3::8a2e:370:7334',
    '2001:0db8:85a3:0000:0000:8a2e:0370:7334',
    '::1',
    'fe80::1',
    '::ffff:192.168.1.1',
  ])('%s', (v) => expectRedacted(`Request from ${v} blocked`, v, 'ip'));
  it('keeps out-of-range octets, times and dotted dates', () => {
    expectUntouched('Host 256.1.1.1 at 10:30:45 on 15.03.2024');
  });
});

describe('secrets', () => {
  it.each([
    ['sk-proj-Ab3dEf6hIj9kLm2nOp5q', 'sk-proj-Ab3dEf6hIj9kLm2nOp5q'],
    ['AKIAIOSFODNN7EXAMPLE', 'AKIAIOSFODNN7EXAMPLE'],
    ['Authorization: Bearer 9f8e7d6c5b4a39281706abcdef', '9f8e7d6c5b4a39281706abcdef'],
    ['api_key=Zx8fK2pQ9wLm4vTn7rYb', 'Zx8fK2pQ9wLm4vTn7rYb'],
    ['{"access_token": "ya29.A0ARrdaM8xYz_k3Qw9"}', 'ya29.A0ARrdaM8xYz_k3Qw9'],
    [
      'token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
      'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
    ],
  ])('%s', (text, value) => expectRedacted(text, value, 'secret'));

  it('keeps the scheme and the key name so the text still reads', () => {
    const { text } = redactor.redactString('Bearer 9f8e7d6c5b4a39281706abcdef; api_key=Zx8fK2pQ9wLm4vTn7rYb');
    expect(text).toMatch(/^Bearer ⟨SECRET:[0-9a-f]{12}⟩; api_key=⟨SECRET:[0-9a-f]{12}⟩$/);
  });
  it('keeps prose that merely starts like a key, and low-entropy values', () => {
    expectUntouched('See the sk-learn-contributors-guide; token=aaaaaaaaaaaaaaaaaaaa');
  });
});

describe('person names', () => {
  it('redacts configured names whole-word, in any case', () => {
    const { text, counts } = redactor.redactString('Approved: jane doe. Also JANE DOE. Not Janet Doerr.');
    expect(counts).toEqual({ name: 2 });
    expect(text.toLowerCase()).not.toContain('jane doe');
    expect(text).toContain('Janet Doerr');
  });
  it('detects a name after an honorific, keeping the honorific', () => {
    const { text, counts } = redactor.redactString('Dear Dr. Amara Okafor, thank you');
    expect(counts).toEqual({ name: 1 });
    expect(text).toMatch(/^Dear Dr\. ⟨NAME:[0-9a-f]{12}⟩, thank you$/);
  });
  it('detects "Name: First Last" at the start of a line', () => {
    expectRedacted('Invoice 42\nName: Amara Okafor\nTotal 10', 'Amara Okafor', 'name');
  });
  it('detects a signature line after a sign-off', () => {
    expectRedacted('Please pay by Friday.\n\nKind regards,\nAmara Okafor\n', 'Amara Okafor', 'name');
  });
  it('gives the same name the same token in every context', () => {
    const { text } = redactor.redactString('Mr. Amara Okafor\nName: Amara Okafor');
    const tokens = [...text.matchAll(TOKEN)].map((m) => m[0]);
    expect(tokens).toHaveLength(2);
    expect(tokens[0]).toBe(tokens[1]);
  });
  it.each([
    'Product Name: Widget Pro',
    'Company Name: Acme Corporation',
    'Regards,\nAccounts Payable',
    'Thanks,\nThe Billing Team',
    'Dear Customer, your Order Number is below',
    'Contact: Customer Service',
  ])('keeps %j', (text) => expectUntouched(text));
});

describe('context of the findings', () => {
  it('redacts every kind in one string and counts each', () => {
    const text =
      'Jane Doe (jane@example.com, +44 20 7946 0958) paid 4111 1111 1111 1111 from DE89 3704 0044 0532 0130 00, ' +
      'SSN 123-45-6789, IP 10.0.0.1, key sk-Ab3dEf6hIj9kLm2nOp5q';
    const { counts } = redactor.redactString(text);
    expect(counts).toEqual({ name: 1, email: 1, phone: 1, card: 1, iban: 1, ssn: 1, ip: 1, secret: 1 });
  });
});
