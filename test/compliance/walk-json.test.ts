import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/core/json.js';
import { createRedactor } from '../../src/compliance/redact.js';

const redactor = createRedactor({ hmacKey: 'walk-json-test-key-0123456789' });
const EMAIL = /^⟨EMAIL:[0-9a-f]{12}⟩$/;
/** An asymmetric matcher for a string matching `re`. */
const matching = (re: RegExp): unknown => expect.stringMatching(re) as unknown;
const RAW = ['jane.doe@example.co.uk', 'erin@corp.example', '4111111111111111', '078-05-1120', 'hunter2pass'];

/** What the log would store: the canonical JSON of the redacted value. */
function stored(value: unknown): string {
  return canonicalJson(redactor.redact(value).value);
}

function expectNoRaw(text: string): void {
  for (const raw of RAW) expect(text).not.toContain(raw);
}

class Customer {
  constructor(
    readonly card: string,
    readonly email: string,
  ) {}
  get display(): string {
    return `${this.email} (getter, not stored by JSON)`;
  }
}

class Masked {
  constructor(private readonly secret: string) {}
  toJSON(): unknown {
    return { contact: this.secret };
  }
}

describe('redact() stores what JSON would store, redacted', () => {
  it('redacts object keys, at any depth, to the same token as the same value', () => {
    const { value, counts } = redactor.redact({ 'jane.doe@example.co.uk': { 'erin@corp.example': 1 } });
    const [outer] = Object.keys(value);
    expect(outer).toMatch(EMAIL);
    expect(outer).toBe(redactor.redact('jane.doe@example.co.uk').value);
    expect(Object.keys((value as Record<string, Record<string, number>>)[outer as string] ?? {})[0]).toMatch(
      EMAIL,
    );
    expect(counts).toEqual({ email: 2 });
  });

  it('keeps two different keys that redact alike apart instead of merging them', () => {
    // the same address in two spellings (tokens normalise case), and a key that already is the token
    const token = redactor.redact('jane.doe@example.co.uk').value;
    const input = { 'jane.doe@example.co.uk': 1, 'Jane.Doe@Example.co.uk': 2, [token]: 3 };
    const { value } = redactor.redact(input);
    expect(Object.values(value).sort()).toEqual([1, 2, 3]);
    expect(Object.keys(value)).toEqual([token, `${token}#2`, `${token}#3`]);
  });

  it('walks class instances as their own enumerable fields', () => {
    const { value } = redactor.redact({ customer: new Customer('4111111111111111', 'erin@corp.example') });
    expect(value.customer).toEqual({
      card: matching(/^⟨CARD:/),
      email: matching(EMAIL),
    });
    expectNoRaw(canonicalJson(value));
  });

  it('walks what toJSON returns, and Dates become their ISO text', () => {
    const when = new Date(Date.UTC(2024, 0, 15));
    const out = stored({
      masked: new Masked('erin@corp.example'),
      when,
      plain: { toJSON: () => '078-05-1120' },
    });
    expectNoRaw(out);
    expect(out).toContain('"when":"2024-01-15T00:00:00.000Z"');
    expect(out).toMatch(/"masked":\{"contact":"⟨EMAIL:[0-9a-f]{12}⟩"\}/);
  });

  it('redacts a URL: user-info, query keys and values, percent-encoded PII in path and fragment', () => {
    const url = new URL(
      'https://user:hunter2pass@files.example/u/jane.doe%40example.co.uk?email=erin%40corp.example&page=2#ssn=078-05-1120',
    );
    const { value, counts } = redactor.redact({ url });
    expect(typeof value.url).toBe('string');
    expect(value.url).toMatch(
      /^https:\/\/⟨REDACTED⟩@files\.example\/u\/⟨EMAIL:[0-9a-f]{12}⟩\?email=⟨EMAIL:[0-9a-f]{12}⟩&page=2#ssn=⟨SSN:[0-9a-f]{12}⟩$/,
    );
    expect(counts).toMatchObject({ secret: 1, email: 2, ssn: 1 });
    // a clean URL keeps its text
    expect(redactor.redact(new URL('https://api.example/v1/items?page=2')).value).toBe(
      'https://api.example/v1/items?page=2',
    );
  });

  it('redacts URLs inside strings that carry credentials or percent-encoded PII', () => {
    const text =
      'fetched https://svc:hunter2pass@files.example/?to=erin%40corp.example, then https://api.example/v1?page=2';
    const { value, counts } = redactor.redact(text);
    expect(value).toMatch(
      /^fetched https:\/\/⟨REDACTED⟩@files\.example\/\?to=⟨EMAIL:[0-9a-f]{12}⟩, then https:\/\/api\.example\/v1\?page=2$/,
    );
    expect(counts).toMatchObject({ secret: 1, email: 1 });
  });

  it('stores a Map as its entries and a Set as an array, both redacted (not {})', () => {
    const { value } = redactor.redact({
      map: new Map<unknown, unknown>([
        ['erin@corp.example', { card: '4111111111111111' }],
        [1, 'x'],
      ]),
      set: new Set(['078-05-1120', 'kept']),
    });
    expect(value.map).toEqual([
      [matching(EMAIL), { card: matching(/^⟨CARD:/) }],
      [1, 'x'],
    ]);
    expect(value.set).toEqual([matching(/^⟨SSN:/), 'kept']);
  });

  it('stores an Error as name, redacted message, cause and own fields, without its stack', () => {
    const error = new Error('lookup failed for erin@corp.example', {
      cause: new TypeError('bad SSN 078-05-1120'),
    });
    Object.assign(error, { code: 'E_LOOKUP', customer: 'jane.doe@example.co.uk' });
    const { value } = redactor.redact({
      error,
      agg: new AggregateError([new RangeError('card 4111111111111111')], 'x'),
    });
    const out = canonicalJson(value);
    expectNoRaw(out);
    expect(out).not.toContain('    at ');
    expect(value.error).toEqual({
      name: 'Error',
      message: matching(/^lookup failed for ⟨EMAIL:/),
      cause: { name: 'TypeError', message: matching(/^bad SSN ⟨SSN:/) },
      code: 'E_LOOKUP',
      customer: matching(EMAIL),
    });
    expect(value.agg).toMatchObject({ name: 'AggregateError', errors: [{ name: 'RangeError' }] });
  });

  it('replaces typed arrays, Buffers and ArrayBuffers by their size', () => {
    const { value } = redactor.redact({
      buf: Buffer.from('erin@corp.example'),
      u8: new Uint8Array([1, 2, 3]),
      ab: new ArrayBuffer(4),
    });
    expect(value).toEqual({ buf: '⟨BINARY:17 bytes⟩', u8: '⟨BINARY:3 bytes⟩', ab: '⟨BINARY:4 bytes⟩' });
  });

  it('unboxes String objects instead of storing them character by character', () => {
    expect(stored({ s: new String('erin@corp.example') })).toMatch(/^\{"s":"⟨EMAIL:[0-9a-f]{12}⟩"\}$/);
  });

  it('stores a marker for a toJSON that throws, instead of failing', () => {
    const bad = {
      toJSON(): never {
        throw new Error('erin@corp.example');
      },
    };
    expect(redactor.redact({ bad }).value).toEqual({ bad: '⟨UNREADABLE⟩' });
  });

  it('copes with hostile keys: lone surrogates, NUL, __proto__, an email with a NUL after it', () => {
    const input = JSON.parse(
      '{"\\ud800": 1, "a\\u0000b": 2, "__proto__": {"x": "erin@corp.example"}, "erin@corp.example\\u0000": 3}',
    ) as Record<string, unknown>;
    const { value } = redactor.redact(input);
    const keys = Object.keys(value);
    expect(keys.slice(0, 3)).toEqual(['\ud800', 'a\u0000b', '__proto__']);
    expect(keys[3]?.endsWith('\u0000') && EMAIL.test(keys[3].slice(0, -1))).toBe(true);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expectNoRaw(JSON.stringify(value));
  });

  it('still returns clean plain objects as they are', () => {
    const clean = { path: 'extract', usage: { inputTokens: 1 }, tags: ['a'] };
    expect(redactor.redact(clean).value).toBe(clean);
  });
});
