import { describe, expect, it } from 'vitest';
import type { ErrorCategory, KeelEvent } from '../../src/eventlog/events.js';
import { rca } from '../../src/monitor/rca.js';
import { event, failed, rejected, succeeded } from './fixtures.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2024, 0, 15, 8, 45);

/** The tutorial's incident: 72 vendor-extraction failures among 1,000 tasks in two hours. */
function incident(): KeelEvent[] {
  const mix: [ErrorCategory, number][] = [
    ['ocr_error', 45],
    ['missing_field', 12],
    ['validation_error', 8],
    ['hallucination', 5],
    ['timeout', 2],
  ];
  const events: KeelEvent[] = [];
  let i = 0;
  const ts = () => T0 + (i++ % 1_000) * 7_000; // spread over the two hours
  for (const [category, n] of mix) for (let k = 0; k < n; k++) events.push(failed(category, { ts: ts() }));
  for (let k = 0; k < 928; k++) events.push(succeeded({ ts: ts() }));
  // noise: another agent, and the same agent outside the range
  events.push(failed('timeout', { agent: 'amount_extraction', taskType: 'payment', ts: T0 + 10 }));
  events.push(succeeded({ agent: 'amount_extraction', taskType: 'payment', ts: T0 + 20 }));
  events.push(failed('rate_limited', { ts: T0 - 1 }));
  events.push(failed('rate_limited', { ts: T0 + 2 * HOUR }));
  events.push(event('cache.miss', { path: 'p', agent: 'vendor_extraction', key: 'k' }, T0 + 5));
  return events;
}

describe('rca', () => {
  it("finds the tutorial's primary root cause with counts and percentages", () => {
    const report = rca(incident(), { agent: 'vendor_extraction', fromTs: T0, toTs: T0 + 2 * HOUR });
    const o = report.overall;
    expect([o.outcomes, o.failures]).toEqual([1_000, 72]);
    expect(o.errorRate).toBeCloseTo(0.072, 10);
    expect(o.primary).toBe('ocr_error');
    expect(o.causes.map((c) => [c.category, c.count])).toEqual([
      ['ocr_error', 45],
      ['missing_field', 12],
      ['validation_error', 8],
      ['hallucination', 5],
      ['timeout', 2],
    ]);
    expect(o.causes[0]?.percentage).toBeCloseTo(62.5, 10);
    expect(o.counts.rate_limited).toBe(0); // every category present, like the seed's dict
  });

  it("prints the tutorial's report", () => {
    const text = rca(incident(), { agent: 'vendor_extraction', fromTs: T0, toTs: T0 + 2 * HOUR }).format();
    expect(text.split('\n').slice(0, 6)).toEqual([
      'vendor_extraction failures (72 failures in 2 hours; error rate 7.2% of 1,000 tasks)',
      '- OCR errors: 45 (62%) ← PRIMARY ROOT CAUSE',
      '- Missing field: 12 (17%)',
      '- Validation errors: 8 (11%)',
      '- Hallucinations: 5 (7%)',
      '- Timeouts: 2 (3%)',
    ]);
    expect(text).toContain('Recommended action: Investigate OCR quality');
  });

  it('breaks failures down per agent and per task type over the range', () => {
    const report = rca(incident(), { fromTs: T0, toTs: T0 + 2 * HOUR });
    expect(report.overall.failures).toBe(73);
    expect(Object.keys(report.byAgent).sort()).toEqual(['amount_extraction', 'vendor_extraction']);
    expect(report.byAgent.amount_extraction).toMatchObject({ outcomes: 2, failures: 1, primary: 'timeout' });
    expect(report.byAgent.vendor_extraction?.primary).toBe('ocr_error');
    expect(report.byTaskType.payment?.errorRate).toBe(0.5);
    expect(report.byTaskType.vendor?.failures).toBe(72);
    expect(report.format()).toContain(
      '- amount_extraction: 1 of 2 failed (50.0%), primary: Timeouts 1 (100%)',
    );
  });

  it('filters by task type, and treats the range as [fromTs, toTs)', () => {
    const all = rca(incident(), { taskType: 'vendor' });
    expect(all.overall.counts.rate_limited).toBe(2);
    const range = rca(incident(), { taskType: 'vendor', fromTs: T0, toTs: T0 + 2 * HOUR });
    expect(range.overall.counts.rate_limited).toBe(0);
    expect(range.byAgent.amount_extraction).toBeUndefined();
  });

  it('counts rejections, not cancellations, and reports an empty range plainly', () => {
    const report = rca([rejected('circuit_open'), rejected('cancelled'), succeeded()]);
    expect(report.overall).toMatchObject({ outcomes: 2, failures: 1, primary: 'circuit_open' });
    const empty = rca([], { agent: 'nobody' });
    expect(empty.overall).toMatchObject({ outcomes: 0, failures: 0, primary: undefined, causes: [] });
    expect(empty.format()).toBe('nobody failures (0 failures; error rate 0.0% of 0 tasks)\n- No failures.');
  });

  it('breaks ties by the stable category order', () => {
    const report = rca([failed('timeout'), failed('hallucination')]);
    expect(report.overall.primary).toBe('hallucination');
  });
});
