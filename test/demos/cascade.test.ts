import { beforeAll, describe, expect, it } from 'vitest';
import {
  runCascadeDemo,
  TUTORIAL_THRESHOLDS,
  type CascadeDemoResult,
  type CascadeWhatIfContext,
} from '../../demos/cascade.js';
import { simulatedClock } from '../../src/index.js';
import { tmpDb } from './helpers.js';

describe('cascade demo (virtual time)', () => {
  let r: CascadeDemoResult;
  let seen: CascadeWhatIfContext | undefined;
  beforeAll(async () => {
    r = await runCascadeDemo({
      db: tmpDb(),
      count: 200,
      seed: 5,
      threshold: 0.9,
      clock: simulatedClock(),
      whatIf: (context) => {
        seen = context;
        return context.thresholds.map((threshold) => ({ threshold, cheapShare: 0, costPerWeekUsd: 0 }));
      },
    });
  }, 120_000);

  it('answers about 70 % of invoices with GPT-3.5 and escalates the rest once', () => {
    expect(r.cascade.invoices).toBe(200);
    expect(r.cascade.cheapShare).toBeGreaterThan(0.6);
    expect(r.cascade.cheapShare).toBeLessThan(0.8);
    expect(r.cascade.escalations).toBe(r.cascade.invoices - r.cascade.cheapAnswered);
  });

  it('costs a fraction of GPT-4 alone ($0.03 an invoice)', () => {
    expect(r.gpt4Only.invoices).toBe(200);
    expect(r.gpt4Only.costPerInvoiceUsd).toBeCloseTo(0.03, 3);
    expect(r.cascade.costPerInvoiceUsd).toBeLessThan(r.gpt4Only.costPerInvoiceUsd / 2);
    expect(r.savingRatio).toBeGreaterThan(0.5);
  });

  it('records ground truth for every workflow, so the threshold table has accuracy', () => {
    expect(r.feedback.cascade.labeled).toBe(200);
    expect(r.feedback.gpt4Only.labeled).toBe(200);
    // Recorded at 0.9: the 0.95 row needs GPT-4 answers the record never asked for.
    expect(r.thresholdTable.map((t) => Number.isNaN(t.accuracy.measured))).toEqual([true, false, false]);
    expect(r.thresholdTable[1]?.accuracy.measured).toBeCloseTo(
      r.feedback.cascade.correct / r.feedback.cascade.labeled,
      4,
    );
  });

  it('hands the what-if extension the cascade workflows and the tutorial thresholds, and reports its rows', () => {
    expect(seen?.workflowIds).toHaveLength(200);
    expect(seen?.thresholds).toEqual(TUTORIAL_THRESHOLDS);
    expect(seen?.topologyAt(0.85).name).toBe('cascade');
    expect(r.whatIf?.map((w) => w.threshold)).toEqual([0.95, 0.9, 0.85]);
  });
});
