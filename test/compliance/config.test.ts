import { describe, expect, it } from 'vitest';
import { isConfigError, type ConfigError } from '../../src/core/errors.js';
import type { RedactorConfig } from '../../src/compliance/config.js';
import { createRedactor } from '../../src/compliance/redact.js';

function configErrorOf(config: unknown): ConfigError {
  try {
    createRedactor(config as RedactorConfig);
  } catch (e) {
    if (isConfigError(e)) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

const KEY = 'config-test-key-0123456789abcdef';
const ALL =
  'jane@example.com 415-555-0132 4111 1111 1111 1111 DE89370400440532013000 123-45-6789 10.0.0.1 AKIAIOSFODNN7EXAMPLE Dr. Amara Okafor';

describe('redactor config', () => {
  it('turns every detector on by default', () => {
    expect(createRedactor({ hmacKey: KEY }).redactString(ALL).counts).toEqual({
      email: 1,
      phone: 1,
      card: 1,
      iban: 1,
      ssn: 1,
      ip: 1,
      secret: 1,
      name: 1,
    });
  });

  it('turns single detectors off', () => {
    const r = createRedactor({ hmacKey: KEY, email: false, card: false, ip: false, names: false });
    const { text, counts } = r.redactString(ALL);
    expect(counts).toEqual({ phone: 1, iban: 1, ssn: 1, secret: 1 });
    expect(text).toContain('jane@example.com');
    expect(text).toContain('Amara Okafor');
  });

  it('uses a names list without context detection', () => {
    const r = createRedactor({ hmacKey: KEY, names: { list: ['Zhang Wei'], detect: false } });
    expect(r.redactString('Zhang Wei met Dr. Amara Okafor').counts).toEqual({ name: 1 });
  });

  it('applies custom patterns, given as RegExp or string, under their own name', () => {
    const r = createRedactor({
      hmacKey: KEY,
      custom: [
        { name: 'employeeId', pattern: /EMP-\d{5}/ },
        { name: 'badge', pattern: 'BDG\\d{4}' },
      ],
    });
    const { text, counts } = r.redactString('EMP-12345 and EMP-54321 wore BDG0042');
    expect(counts).toEqual({ employeeId: 2, badge: 1 });
    expect(text).toMatch(
      /^⟨EMPLOYEEID:[0-9a-f]{12}⟩ and ⟨EMPLOYEEID:[0-9a-f]{12}⟩ wore ⟨BADGE:[0-9a-f]{12}⟩$/,
    );
  });

  it.each([
    [{ emial: true }, 'redact.emial', /not a redaction option/],
    [{ phone: 'yes' }, 'redact.phone', /true or false/],
    [{ names: 'all' }, 'redact.names', /list/],
    [{ names: { list: [1] } }, 'redact.names.list[0]', /string/],
    [{ hmacKey: 'short' }, 'redact.hmacKey', /at least 16 bytes/],
    [{ maxDepth: 0 }, 'redact.maxDepth', /at least 1/],
    [{ custom: [{ name: 'email', pattern: /x/ }] }, 'redact.custom[0].name', /built-in/],
    [{ custom: [{ name: 'bad name', pattern: /x/ }] }, 'redact.custom[0].name', /letters, digits/],
    [
      { custom: [{ name: 'ok', pattern: '(' }] },
      'redact.custom[0].pattern',
      /not a valid regular expression/,
    ],
    [{ custom: [{ name: 'ok', pattern: /\d*/ }] }, 'redact.custom[0].pattern', /empty string/],
    [{ custom: [{ name: 'ok', pattern: 42 }] }, 'redact.custom[0].pattern', /RegExp or a non-empty string/],
  ])('rejects %j naming the field', (config, field, message) => {
    const e = configErrorOf(config);
    expect(e.field).toBe(field);
    expect(e.message).toMatch(message);
  });
});
