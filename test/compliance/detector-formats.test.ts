/**
 * The formats issue 20 found leaking, one test each: national phone formats and the `phone.regions`
 * option, IBANs in any case and grouping (and `IR20 …` not half-taken for a phone number), Unicode
 * and quoted emails, SSNs with spaces, the secret formats of gitleaks' rules, accented and
 * multi-part names.
 */
import { describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/core/errors.js';
import { createRedactor, type Redactor } from '../../src/compliance/redact.js';

const KEY = 'detector-formats-key-0123456789ab';
const defaults = createRedactor({ hmacKey: KEY });
const TOKEN = /⟨([A-Z]+):[0-9a-f]{12}⟩/gu;

/** Exactly `value` was replaced, by one token of `kind`; the rest of the text is as it was. */
function expectRedacted(text: string, value: string, kind: string, redactor: Redactor = defaults): void {
  const { text: out, counts } = redactor.redactString(text);
  expect(counts).toEqual({ [kind]: 1 });
  const tokens = [...out.matchAll(TOKEN)];
  expect(tokens.map((t) => t[1])).toEqual([kind.toUpperCase()]);
  expect(out).toBe(text.replace(value, tokens[0]?.[0] ?? ''));
}

function expectUntouched(text: string, redactor: Redactor = defaults): void {
  const { text: out, counts } = redactor.redactString(text);
  expect(counts).toEqual({});
  expect(out).toBe(text);
}

describe('phone numbers (libphonenumber-js)', () => {
  it.each([
    ['0612457898', 'FR mobile'],
    ['07888814488', 'GB mobile'],
    ['030 1234567', 'DE Berlin'],
    ['01 23 45 67 89', 'FR Paris'],
    ['1(567)362-8910', 'US with trunk 1'],
    ['(415) 555-0132', 'US'],
    ['015123456789', 'DE mobile'],
    ['+33 6 12 45 78 98', 'E.164'],
    ['0033 6 12 45 78 98', 'international prefix 00'],
    ['+1 (242) 123-1234', 'E.164, NANP'],
  ])('redacts %s (%s) with the default regions', (v) => expectRedacted(`Ring ${v} tomorrow`, v, 'phone'));

  it.each([
    '+12 345 678.90 EUR',
    'Order 0012345678',
    'Version 1.2.3.4567',
    'Due 15.03.2024',
    'Issued 2024-03-15-001',
    'EAN 4006381333931',
    'Created 1733577516',
    'Measured 250 500 1000 ml',
    'At 48.858370, 2.294481',
    'Rechnung Nr. 0012345678',
  ])('keeps %j', (text) => expectUntouched(text));

  it('catches the national formats of the configured regions only', () => {
    const es = createRedactor({ hmacKey: KEY, phone: { regions: ['ES'] } });
    expectRedacted('Llame al 912 345 678 hoy', '912 345 678', 'phone', es);
    expectUntouched('Llame al 912 345 678 hoy');
    // Regions are case-insensitive.
    expectRedacted(
      'Call 07888 814488',
      '07888 814488',
      'phone',
      createRedactor({ hmacKey: KEY, phone: { regions: ['gb'] } }),
    );
  });

  it('with no regions, keeps national formats and still redacts every E.164 number', () => {
    const intlOnly = createRedactor({ hmacKey: KEY, phone: { regions: [] } });
    expectUntouched('Ring 030 1234567 tomorrow', intlOnly);
    expectRedacted('Ring +49 30 1234567 tomorrow', '+49 30 1234567', 'phone', intlOnly);
  });

  it('`phone: true` is the default regions', () => {
    const on = createRedactor({ hmacKey: KEY, phone: true });
    expectRedacted('Ring 030 1234567 tomorrow', '030 1234567', 'phone', on);
  });

  it('gives a number one token however it is written (E.164)', () => {
    const token = (t: string): string => defaults.redactString(t).text;
    expect(token('+49 30 1234567')).toBe(token('030 1234567'));
    expect(token('0049 30 1234567')).toBe(token('+49 30 1234567'));
  });

  it('refuses a region libphonenumber-js does not know, naming the field and the fix', () => {
    let error: unknown;
    try {
      createRedactor({ hmacKey: KEY, phone: { regions: ['US', 'XX'] } });
    } catch (e) {
      error = e;
    }
    expect(isConfigError(error)).toBe(true);
    expect((error as Error).message).toMatch(/redact\.phone\.regions\[1\].*ISO 3166-1 alpha-2/);
  });
});

describe('IBAN', () => {
  it.each([
    'IR20 0170 0000 0033 9545 7270 03',
    'ir200170000000339545727003',
    'DE89-3704-0044-0532-0130-00',
    'de89 3704 0044 0532 0130 00',
    'DZ580002100001113000000570',
    'MA64011519000001205000534921',
    'MZ97123412341234123412341',
  ])('redacts %s whole, as one IBAN', (v) => expectRedacted(`Pay to ${v} by Friday`, v, 'iban'));
});

describe('email', () => {
  it.each([
    'hans.müller@test.com',
    'müller@example.de',
    'hans@m端ller.com',
    '"foo bar"@example.com',
    '"foo\\@bar"@example.com',
    'test|123@example.org',
    'user@bücher.example',
    'email@[123.123.123.123]',
  ])('redacts %s whole', (v) => expectRedacted(`Write to ${v} today`, v, 'email'));
});

describe('US SSN', () => {
  it('redacts a number written with spaces', () =>
    expectRedacted('SSN 078 05 1120 on file', '078 05 1120', 'ssn'));
  it('keeps never-issued numbers written with spaces', () =>
    expectUntouched('Ref 666 12 3456 and 900 12 3456'));
});

describe('secrets (gitleaks rule formats)', () => {
  const pem = [
    '-----BEGIN RSA PRIVATE KEY-----',
    'MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u',
    '-----END RSA PRIVATE KEY-----',
  ].join('\n');
  it.each([
    [
      'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    ],
    ['AWS secret key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'],
    ['id ASIAY34FZKBOKMUTVV7A', 'ASIAY34FZKBOKMUTVV7A'],
    [
      `pat ${'github_pat_11ABCDEFG0'}${'a1B2c3D4e5'.repeat(7)}x1`,
      `github_pat_11ABCDEFG0${'a1B2c3D4e5'.repeat(7)}x1`,
    ],
    ['gitlab glpat-x1y2z3A4B5C6D7E8F9G0', 'glpat-x1y2z3A4B5C6D7E8F9G0'],
    ['https://hooks.slack.com/services/T0001/B0001/AbCdEf1234567890XyZ', 'T0001/B0001/AbCdEf1234567890XyZ'],
    ['stripe rk_live_51Hx2yZ3aB4cD5eF6gH7iJ8kL', 'rk_live_51Hx2yZ3aB4cD5eF6gH7iJ8kL'],
    ['npm npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8', 'npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8'],
    [
      'sendgrid 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',
      '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',
    ],
    ['twilio SK0123456789abcdef0123456789abcdef', 'SK0123456789abcdef0123456789abcdef'],
    ['password=hunter2pass', 'hunter2pass'],
    [`key:\n${pem}\nend`, pem],
  ])('%s', (text, value) => expectRedacted(text, value, 'secret'));

  it('keeps commit hashes, UUIDs and masked passwords', () => {
    expectUntouched(
      'Commit 9fceb02d0ae598e95dc970b74767f19372d61af8, request 123e4567-e89b-12d3-a456-426614174000, password: ********',
    );
  });
});

describe('person names (names.detect)', () => {
  it.each([
    ['Dear María José García,', 'María José García'],
    ['Sra. María José García de la Fuente llamó', 'María José García de la Fuente'],
    ['Nombre: María José García', 'María José García'],
    ['Saludos,\nMaría José García', 'María José García'],
    ['Mme Élodie Dubois-Martin a écrit', 'Élodie Dubois-Martin'],
    ["M. Jean-Luc D'Aubigné est là", "Jean-Luc D'Aubigné"],
    // Decomposed accents (NFD), as some keyboards and macOS file names produce them.
    ['Dr. Mari\u0301a Garci\u0301a called', 'Mari\u0301a Garci\u0301a'],
  ])('%j, the whole name', (text, value) => expectRedacted(text, value, 'name'));

  it.each(['Contact: Rechnung Nr. 12', 'Hello World!', 'Dear Sir or Madam,', 'Hi Team,'])(
    'keeps %j',
    (text) => expectUntouched(text),
  );

  it('finds a listed name written in another Unicode normal form', () => {
    const r = createRedactor({ hmacKey: KEY, names: { list: ['María José García'], detect: false } });
    expect(r.redactString('met Mari\u0301a Jose\u0301 Garci\u0301a today').counts).toEqual({ name: 1 });
  });
});

describe('hostile strings', () => {
  it('redacts around NUL and lone surrogates without throwing', () => {
    const { text, counts } = defaults.redactString(
      '\u0000jane@example.com\uD800 +44 20 7946 0958\uDC00 4111.1111.1111.1111',
    );
    expect(counts).toEqual({ email: 1, phone: 1, card: 1 });
    expect(text.startsWith('\u0000⟨EMAIL:')).toBe(true);
    expect(text).toContain('\uD800');
  });
});
