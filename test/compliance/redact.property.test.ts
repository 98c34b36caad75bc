import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRedactor } from '../../src/compliance/redact.js';
import { LABELS, LISTED, invoice } from './arbitraries.js';

describe('redaction property: PII inside invoice text', () => {
  const redactor = createRedactor({ hmacKey: 'property-test-key-0123456789', names: { list: LISTED } });

  it('removes every inserted value, counts exactly what was inserted, and keeps the business text', () => {
    fc.assert(
      fc.property(invoice, (lines) => {
        const text = lines.map(([p, f]) => `${LABELS[p.kind]} ${p.text}, ${f}`).join('\n');
        const { text: out, counts } = redactor.redactString(text);

        for (const [p] of lines) expect(out).not.toContain(p.raw);
        const expected: Record<string, number> = {};
        for (const [p] of lines) expected[p.kind] = (expected[p.kind] ?? 0) + 1;
        expect(counts).toEqual(expected);
        for (const [, f] of lines) expect(out).toContain(f);
      }),
      { numRuns: 400 },
    );
  });

  it('redacts the same values inside a nested payload, without touching the input', () => {
    fc.assert(
      fc.property(invoice, (lines) => {
        const payload = {
          workflowId: 'wf-1',
          lines: lines.map(([p, f]) => ({ note: `${LABELS[p.kind]} ${p.text}`, memo: f })),
        };
        const before = JSON.stringify(payload);
        const { value, counts } = redactor.redact(payload);

        expect(JSON.stringify(payload)).toBe(before);
        const out = JSON.stringify(value);
        for (const [p] of lines) expect(out).not.toContain(JSON.stringify(p.raw).slice(1, -1));
        expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(lines.length);
      }),
      { numRuns: 200 },
    );
  });
});
