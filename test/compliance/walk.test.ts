import { describe, expect, it } from 'vitest';
import { createRedactor } from '../../src/compliance/redact.js';

const redactor = createRedactor({ hmacKey: 'walk-test-key-0123456789abcdef' });
const EMAIL_TOKEN = /^⟨EMAIL:[0-9a-f]{12}⟩$/;

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

describe('redact() walks values', () => {
  it('redacts strings at any depth in objects and arrays, keeping other types', () => {
    const input = {
      invoice: 'key kept',
      customer: { contact: ['jane@example.com', { phone: 'call 415-555-0132' }] },
      amount: 1234.56,
      paid: true,
      note: null,
    };
    const { value, counts } = redactor.redact(input);
    expect(Object.keys(value)).toEqual(Object.keys(input));
    expect(value.invoice).toBe('key kept');
    expect(value.customer.contact[0]).toMatch(EMAIL_TOKEN);
    expect((value.customer.contact[1] as { phone: string }).phone).toMatch(/^call ⟨PHONE:[0-9a-f]{12}⟩$/);
    expect(value.amount).toBe(1234.56);
    expect(value.paid).toBe(true);
    expect(value.note).toBeNull();
    expect(counts).toEqual({ email: 1, phone: 1 });
  });

  it('never mutates the input (a deeply frozen input works and is unchanged)', () => {
    const input = deepFreeze({ a: ['jane@example.com', { b: 'SSN 123-45-6789' }], c: 'plain' });
    const before = JSON.stringify(input);
    const { value } = redactor.redact(input);
    expect(JSON.stringify(input)).toBe(before);
    expect(value).not.toBe(input);
    expect(JSON.stringify(value)).not.toContain('123-45-6789');
  });

  it('returns untouched parts as they are (copy-on-write)', () => {
    const clean = { items: ['a', 'b'], meta: { n: 1 } };
    const input = { clean, dirty: { email: 'jane@example.com' } };
    const { value } = redactor.redact(input);
    expect(value.clean).toBe(clean);
    expect(value.dirty).not.toBe(input.dirty);
    expect(redactor.redact(clean).value).toBe(clean);
  });

  it('redacts a top-level string and leaves primitives alone', () => {
    expect(redactor.redact('jane@example.com').value).toMatch(EMAIL_TOKEN);
    expect(redactor.redact(42)).toEqual({ value: 42, counts: {} });
    expect(redactor.redact(undefined)).toEqual({ value: undefined, counts: {} });
  });

  it('replaces a reference cycle instead of looping', () => {
    const input: Record<string, unknown> = { email: 'jane@example.com' };
    input.self = input;
    input.list = [input];
    const { value, counts } = redactor.redact(input);
    expect(value.email).toMatch(EMAIL_TOKEN);
    expect(value.self).toBe('⟨CIRCULAR⟩');
    expect(value.list).toEqual(['⟨CIRCULAR⟩']);
    expect(counts).toEqual({ email: 1 });
  });

  it('redacts an object shared in two places in both, counting it once', () => {
    const shared = { email: 'jane@example.com' };
    const { value, counts } = redactor.redact({ a: shared, b: shared });
    expect(value.a.email).toMatch(EMAIL_TOKEN);
    expect(value.b).toBe(value.a);
    expect(counts).toEqual({ email: 1 });
  });

  it('redactInto totals the findings of many values in one counts object', () => {
    const counts: Record<string, number> = {};
    const clean = { path: 'extract', model: 'gpt-4o-mini' };
    expect(redactor.redactInto(clean, counts)).toBe(clean);
    const first = redactor.redactInto({ to: 'jane@example.com' }, counts);
    const second = redactor.redactInto(['bob@example.com', 'call +1 415 555 0100'], counts);
    expect(first.to).toMatch(EMAIL_TOKEN);
    expect(second[0]).toMatch(EMAIL_TOKEN);
    expect(redactor.redactInto('jane@example.com', counts)).toMatch(EMAIL_TOKEN);
    expect(counts).toEqual({ email: 3, phone: 1 });
  });

  it('stops at maxDepth, replacing deeper values rather than leaking them', () => {
    const shallow = createRedactor({ hmacKey: 'walk-test-key-0123456789abcdef', maxDepth: 3 });
    const input = { l1: { l2: { l3: { email: 'jane@example.com' } }, ok: 'jane@example.com' } };
    const { value } = shallow.redact(input);
    expect(value.l1.l2.l3).toBe('⟨DEPTH_LIMIT⟩');
    expect(value.l1.ok).toMatch(EMAIL_TOKEN);
  });

  it('keeps an own __proto__ key as data', () => {
    const input = JSON.parse(
      '{"__proto__": {"email": "jane@example.com"}, "x": "jane@example.com"}',
    ) as Record<string, unknown>;
    const { value } = redactor.redact(input);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value)).toEqual(['__proto__', 'x']);
    expect(JSON.stringify(value)).not.toContain('jane@example.com');
  });
});
