import { describe, expect, it } from 'vitest';
import { createRedactor } from '../../src/compliance/redact.js';

const KEY = 'token-test-key-0123456789abcdef';
const TEXT = 'Refund jane.doe@example.com on card 4111 1111 1111 1111';

describe('pseudonymous tokens', () => {
  it('are readable: the kind, then 12 hex digits of the keyed HMAC', () => {
    const { text } = createRedactor({ hmacKey: KEY }).redactString(TEXT);
    expect(text).toMatch(/^Refund ⟨EMAIL:[0-9a-f]{12}⟩ on card ⟨CARD:[0-9a-f]{12}⟩$/);
  });

  it('are the same for the same value and key, across redactor instances (a restart)', () => {
    const first = createRedactor({ hmacKey: KEY }).redactString(TEXT).text;
    const second = createRedactor({ hmacKey: Buffer.from(KEY) }).redactString(TEXT).text;
    expect(second).toBe(first);
  });

  it('differ under a different key', () => {
    const a = createRedactor({ hmacKey: KEY }).redactString(TEXT).text;
    const b = createRedactor({ hmacKey: 'another-key-0123456789abcdef' }).redactString(TEXT).text;
    expect(b).not.toBe(a);
    expect(b.match(/⟨[A-Z]+:/g)).toEqual(a.match(/⟨[A-Z]+:/g));
  });

  it('differ for different values of the same kind', () => {
    const { text } = createRedactor({ hmacKey: KEY }).redactString('a@example.com b@example.com');
    const [a, b] = text.split(' ');
    expect(a).not.toBe(b);
  });

  it('normalise before hashing: case of emails, layout of cards and phone prefixes', () => {
    const r = createRedactor({ hmacKey: KEY });
    const tokenOf = (text: string) => r.redactString(text).text;
    expect(tokenOf('Jane.Doe@Example.COM')).toBe(tokenOf('jane.doe@example.com'));
    expect(tokenOf('4111-1111-1111-1111')).toBe(tokenOf('4111111111111111'));
    expect(tokenOf('0049 30 123456')).toBe(tokenOf('+49 30 123456'));
    expect(tokenOf('de89 3704 0044 0532 0130 00'.toUpperCase())).toBe(tokenOf('DE89370400440532013000'));
  });

  it('are not re-redacted: redacting twice changes nothing more', () => {
    const r = createRedactor({ hmacKey: KEY, custom: [{ name: 'hex', pattern: /[0-9a-f]{12}/ }] });
    const once = r.redactString(`${TEXT}, ref 0123456789ab`);
    const twice = r.redactString(once.text);
    expect(once.counts).toEqual({ email: 1, card: 1, hex: 1 });
    expect(twice.text).toBe(once.text);
    expect(twice.counts).toEqual({});
  });

  it('correlate within one process when no key is configured, but not across redactors', () => {
    const r1 = createRedactor();
    const r2 = createRedactor();
    expect(r1.redactString(TEXT).text).toBe(r1.redactString(TEXT).text);
    expect(r2.redactString(TEXT).text).not.toBe(r1.redactString(TEXT).text);
  });
});
