/**
 * Waits, sheds and bulkhead rejections are events, and the metrics and the report are folds of
 * them: what a live runtime counts, `keel report` counts from the file alone.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { buildReport, formatReport, renderHtml } from '../../src/report/index.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';
import { sampleValue } from '../observability/tools.js';

let rt: Runtime<SqliteEventStore> | undefined;
afterEach(async () => {
  await rt?.close();
  rt = undefined;
});

describe('rate-limit and bulkhead events in metrics and the report', () => {
  it('counts waits and sheds per key and rejections per agent, live and from the log', async () => {
    const clock = simulatedClock();
    rt = createRuntime({
      db: ':memory:',
      clock,
      seed: 1,
      metrics: { prefix: 'keel_' },
      pricing: { 'gpt-4': { inputPer1K: 0, outputPer1K: 0 } },
      // One request a second: of three calls at once one starts, one waits, one is shed (queue full).
      limits: { 'openai:gpt-4': { rpm: 60, maxQueue: 1 } },
    });
    const answer = () => Promise.resolve({ value: 1, usage: { inputTokens: 1, outputTokens: 1 } });
    const limited = agent({ name: 'limited', model: 'gpt-4', providerName: 'openai', run: answer });
    const held = agent({
      name: 'held',
      model: 'gpt-4',
      concurrency: 1,
      maxQueue: 0,
      run: () =>
        new Promise<{ value: number }>((resolve) => clock.setTimeout(() => resolve({ value: 1 }), 100)),
    });
    const runs = [...[1, 2, 3].map((i) => rt!.run(limited, i)), ...[1, 2].map((i) => rt!.run(held, i))].map(
      (p) =>
        p.then(
          () => 'ok',
          () => 'refused',
        ),
    );
    await clock.advanceAsync(2_000);
    expect(await Promise.all(runs)).toEqual(['ok', 'ok', 'refused', 'ok', 'refused']);
    await rt.ready();

    const registry = rt.metrics!.registry;
    const key = { key: 'openai:gpt-4' };
    expect(await sampleValue(registry, 'keel_ratelimit_shed_total', { ...key, reason: 'queue_full' })).toBe(
      1,
    );
    expect(
      await sampleValue(registry, 'keel_ratelimit_wait_seconds', key, 'keel_ratelimit_wait_seconds_count'),
    ).toBe(1);
    const waitedS = await sampleValue(
      registry,
      'keel_ratelimit_wait_seconds',
      key,
      'keel_ratelimit_wait_seconds_sum',
    );
    expect(waitedS).toBeCloseTo(1.017, 3); // 1 request at 59 a minute
    expect(
      await sampleValue(registry, 'keel_bulkhead_rejected_total', { agent: 'held', reason: 'queue_full' }),
    ).toBe(1);

    const report = buildReport(rt.store.iterate());
    expect(report.limits).toEqual({
      rateLimits: [
        {
          key: 'openai:gpt-4',
          waited: 1,
          p95WaitMs: expect.closeTo(1_017, -1) as number,
          maxWaitMs: 1_017,
          shed: 1,
          shedBy: { queue_full: 1 },
        },
      ],
      bulkheads: [{ agent: 'held', rejected: 1, rejectedBy: { queue_full: 1 } }],
    });
    const text = formatReport(report);
    expect(text).toContain(
      [
        'RATE LIMITS',
        '  key           waited  P95 wait  max wait  shed  why shed',
        '  openai:gpt-4       1       1 s       1 s     1  queue_full 1',
        '',
        'BULKHEADS',
        '  agent  rejected  why',
        '  held          1  queue_full 1',
      ].join('\n'),
    );
    const html = renderHtml(report);
    expect(html).toContain('<section id="limits"><h2>Rate limits and bulkheads</h2>');
    expect(html).toContain('<td>openai:gpt-4</td>');
  });

  it('a log without waits or sheds prints no limits section', async () => {
    const clock = simulatedClock();
    rt = createRuntime({ db: ':memory:', clock, seed: 1, pricing: { m: { inputPer1K: 0, outputPer1K: 0 } } });
    await rt.run(agent({ name: 'a', model: 'm', run: () => Promise.resolve({ value: 1 }) }), 1);
    const report = buildReport(rt.store.iterate());
    expect(report.limits).toEqual({ rateLimits: [], bulkheads: [] });
    expect(formatReport(report)).not.toContain('RATE LIMITS');
    expect(renderHtml(report)).not.toContain('id="limits"');
  });
});
