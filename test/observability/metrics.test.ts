import { execFileSync, spawnSync } from 'node:child_process';
import { Registry, register } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/core/errors.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { StreamBuilder, syntheticStream } from './stream.js';
import { assertInstalled, sampleValue, toolsAvailable } from './tools.js';

describe('createMetrics', () => {
  it('folds a realistic event stream into the seed metrics and the rest', async () => {
    const metrics = createMetrics();
    for (const event of syntheticStream(1)) metrics.apply(event);
    const r = metrics.registry;

    // One call per attempt; the cache hit is not a model call.
    expect(await sampleValue(r, 'llm_calls_total', { model: 'gpt-4', task_type: 'vendor' })).toBe(2);
    expect(await sampleValue(r, 'llm_calls_total', { model: 'gpt-3.5-turbo', task_type: 'routing' })).toBe(2);
    expect(await sampleValue(r, 'llm_calls_total', { model: 'gpt-4', task_type: 'payment' })).toBe(2);
    expect(await sampleValue(r, 'llm_calls_total', { model: 'gpt-3.5-turbo', task_type: 'fraud' })).toBe(3);
    expect(await sampleValue(r, 'llm_latency_seconds', { model: 'gpt-4' }, 'llm_latency_seconds_count')).toBe(
      3,
    );
    expect(await sampleValue(r, 'llm_cost_usd_total', { model: 'gpt-4', task_type: 'vendor' })).toBeCloseTo(
      0.06,
    );
    expect(await sampleValue(r, 'llm_tokens_total', { model: 'gpt-4', type: 'input' })).toBe(1_600);
    expect(await sampleValue(r, 'llm_tokens_total', { model: 'gpt-3.5-turbo', type: 'output' })).toBe(1_100);

    expect(await sampleValue(r, 'circuit_breaker_state', { breaker: 'openai' })).toBe(1);
    expect(await sampleValue(r, 'circuit_breaker_state', { breaker: 'anthropic' })).toBe(2);
    expect(await sampleValue(r, 'cache_requests_total', { result: 'hit' })).toBe(1);
    expect(await sampleValue(r, 'cache_requests_total', { result: 'miss' })).toBe(2);
    expect(await sampleValue(r, 'cache_requests_total', { result: 'stale' })).toBe(0);

    const invoice = { workflow: 'invoice' };
    expect(
      await sampleValue(r, 'workflow_duration_seconds', invoice, 'workflow_duration_seconds_count'),
    ).toBe(1);
    expect(
      await sampleValue(r, 'workflow_duration_seconds', invoice, 'workflow_duration_seconds_sum'),
    ).toBeCloseTo(14.012);
    expect(
      await sampleValue(
        r,
        'workflow_duration_seconds',
        { workflow: 'payment_check' },
        'workflow_duration_seconds_count',
      ),
    ).toBe(2);
    expect(await sampleValue(r, 'vote_agents_used', {}, 'vote_agents_used_sum')).toBe(3);
    expect(await sampleValue(r, 'cascade_escalations_total')).toBe(1);
    expect(await sampleValue(r, 'cascade_accepted_total', { stage: '1' })).toBe(1);
    expect(await sampleValue(r, 'cascade_accepted_total', { stage: '0' })).toBe(1);
    expect(
      await sampleValue(r, 'llm_errors_total', { task_type: 'payment', category: 'provider_error' }),
    ).toBe(1);
    expect(await sampleValue(r, 'llm_errors_total', { task_type: 'payment', category: 'circuit_open' })).toBe(
      1,
    );
    expect(await sampleValue(r, 'alerts_total', { kind: 'error_rate', severity: 'critical' })).toBe(1);
    expect(await sampleValue(r, 'budget_spend_usd', { scope: 'model:gpt-4' })).toBe(40);
    expect(await sampleValue(r, 'budget_limit_usd', { scope: 'model:gpt-4' })).toBe(50);
  });

  it('shows counts folded since the last read on every read, through the registry and the text', async () => {
    const metrics = createMetrics();
    const calls = { model: 'gpt-3.5-turbo', task_type: 'fraud' };
    for (const e of syntheticStream(1)) metrics.apply(e);
    expect(await sampleValue(metrics.registry, 'llm_calls_total', calls)).toBe(3);
    for (const e of syntheticStream(1)) metrics.apply(e);

    expect(await sampleValue(metrics.registry, 'llm_calls_total', calls)).toBe(6);
    expect(await sampleValue(metrics.registry, 'llm_calls_total', calls)).toBe(6);
    expect(await metrics.metricsText()).toMatch(
      /^llm_calls_total\{model="gpt-3.5-turbo",task_type="fraud"\} 6$/m,
    );
    expect(await sampleValue(metrics.registry, 'llm_tokens_total', { model: 'gpt-4', type: 'input' })).toBe(
      3_200,
    );
  });

  it('counts a cancelled call as a call but keeps its cut-short duration out of llm_latency_seconds', async () => {
    const metrics = createMetrics();
    const b = new StreamBuilder();
    const failed = (category: 'cancelled' | 'provider_error', latencyMs: number) =>
      b.add('agent.failed', 'wf', {
        path: 'p',
        agent: 'a',
        model: 'gpt-4',
        taskType: 'vendor',
        category,
        message: category,
        attempts: 1,
        latencyMs,
        costUsd: 0,
      });
    metrics.apply(failed('cancelled', 3));
    metrics.apply(failed('provider_error', 2_000));
    const r = metrics.registry;
    expect(await sampleValue(r, 'llm_calls_total', { model: 'gpt-4', task_type: 'vendor' })).toBe(2);
    expect(await sampleValue(r, 'llm_latency_seconds', { model: 'gpt-4' }, 'llm_latency_seconds_count')).toBe(
      1,
    );
    expect(await sampleValue(r, 'llm_latency_seconds', { model: 'gpt-4' }, 'llm_latency_seconds_sum')).toBe(
      2,
    );
  });

  it('counts workflows marked interrupted after a crash, without a duration sample', async () => {
    const metrics = createMetrics();
    const b = new StreamBuilder();
    const r = metrics.registry;
    expect(await sampleValue(r, 'workflows_interrupted_total')).toBe(0);
    metrics.apply(
      b.add('workflow.interrupted', 'wf-cut', {
        reason: 'process killed',
        startedSeq: 1,
        lastSeq: 3,
        markedBy: 'cli',
      }),
    );
    expect(await sampleValue(r, 'workflows_interrupted_total')).toBe(1);
    expect(await metrics.metricsText()).not.toMatch(/workflow_duration_seconds_count\{[^}]*\} [1-9]/);
  });

  it('never turns a workflow id into a label value', async () => {
    const metrics = createMetrics();
    for (const event of syntheticStream(3)) metrics.apply(event);
    const text = await metrics.metricsText();
    expect(text).toContain('workflow="invoice"');
    expect(text).not.toMatch(/"wf-/);
  });

  it('uses the seed buckets for llm_latency_seconds (0.1 s to 30 s)', async () => {
    const metrics = createMetrics();
    for (const event of syntheticStream(1)) metrics.apply(event);
    const buckets = [
      ...(await metrics.metricsText()).matchAll(
        /^llm_latency_seconds_bucket\{le="([^"]+)",model="gpt-4"\}/gm,
      ),
    ];
    expect(buckets.map((m) => m[1])).toEqual(['0.1', '0.5', '1', '2', '5', '10', '30', '+Inf']);
  });

  it('folds daily spend against budgetLimitUsd and restarts it at the UTC day boundary', async () => {
    const metrics = createMetrics({ budgetLimitUsd: 100 });
    const r = metrics.registry;
    expect(await sampleValue(r, 'budget_limit_usd', { scope: 'global' })).toBe(100);
    const b = new StreamBuilder(1, Date.UTC(2026, 0, 1, 23, 0));
    const incur = (costUsd: number, afterMs: number) =>
      b.add(
        'cost.incurred',
        'wf',
        {
          path: 'p',
          agent: 'a',
          model: 'gpt-4',
          taskType: 't',
          attempt: 1,
          usage: { inputTokens: 1, outputTokens: 1 },
          costUsd,
          estimateUsd: costUsd,
        },
        afterMs,
      );
    metrics.apply(incur(30, 0));
    metrics.apply(incur(12.5, 60_000));
    expect(await sampleValue(r, 'budget_spend_usd', { scope: 'global' })).toBeCloseTo(42.5);
    metrics.apply(incur(2, 3_600_000)); // 00:01 on the next day
    expect(await sampleValue(r, 'budget_spend_usd', { scope: 'global' })).toBeCloseTo(2);
  });

  it('exports error targets, the SLA and what the monitors set', async () => {
    const metrics = createMetrics({ errorTargets: { payment: 0.001, vendor: 0.05 }, slaP95Ms: 10_000 });
    metrics.setErrorRate('vendor', 0.07);
    metrics.setErrorBudgetRemaining('vendor', 0.25);
    metrics.setBudget(80, 100);
    metrics.observeCommit(0.003);
    const r = metrics.registry;
    expect(await sampleValue(r, 'error_rate_target_ratio', { task_type: 'payment' })).toBe(0.001);
    expect(await sampleValue(r, 'error_rate_ratio', { task_type: 'vendor' })).toBe(0.07);
    expect(await sampleValue(r, 'error_budget_remaining_ratio', { task_type: 'vendor' })).toBe(0.25);
    expect(await sampleValue(r, 'latency_sla_p95_seconds')).toBe(10);
    expect(await sampleValue(r, 'budget_spend_usd', { scope: 'global' })).toBe(80);
    expect(await sampleValue(r, 'event_log_commit_seconds', {}, 'event_log_commit_seconds_count')).toBe(1);
  });

  it("owns a new registry and never touches prom-client's global one", async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.apply(syntheticStream(1)[0]!);
    expect(a.registry).not.toBe(register);
    expect(a.registry).not.toBe(b.registry);
    expect(register.getSingleMetric('llm_calls_total')).toBeUndefined();
    expect(await a.metricsText()).not.toMatch(/^process_|^nodejs_/m);
  });

  it('prefixes every name, and refuses a bad prefix or a registry that already has the metrics', () => {
    const registry = new Registry();
    const metrics = createMetrics({ registry, prefix: 'keel_' });
    expect(metrics.registry).toBe(registry);
    expect(registry.getSingleMetric('keel_llm_calls_total')).toBeDefined();
    expect(registry.getSingleMetric('llm_calls_total')).toBeUndefined();

    const errorOf = (fn: () => unknown): unknown => {
      try {
        fn();
      } catch (e) {
        return e;
      }
      return undefined;
    };
    const dup = errorOf(() => createMetrics({ registry, prefix: 'keel_' }));
    expect(isConfigError(dup) && dup.field).toBe('registry');
    const bad = errorOf(() => createMetrics({ prefix: 'keel-' }));
    expect(isConfigError(bad) && bad.field).toBe('prefix');
    const budget = errorOf(() => createMetrics({ budgetLimitUsd: -1 }));
    expect(isConfigError(budget) && budget.field).toBe('budgetLimitUsd');
  });
});

const promtool = toolsAvailable('promtool');

describe.runIf(promtool.run)('promtool check metrics', () => {
  const check = (text: string) =>
    spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });

  it('passes on the exposition after a realistic event stream', async () => {
    assertInstalled(promtool.missing);
    const metrics = createMetrics({ budgetLimitUsd: 100, errorTargets: { vendor: 0.05 }, slaP95Ms: 10_000 });
    for (const event of syntheticStream(2)) metrics.apply(event);
    metrics.setErrorRate('vendor', 0.02);
    metrics.setErrorBudgetRemaining('vendor', 0.6);
    metrics.observeCommit(0.002);
    const text = await metrics.metricsText();
    expect(text).toContain('llm_calls_total{');
    // Throws (with promtool's findings in the message) on a non-zero exit.
    execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  });

  it('is a check that can fail: promtool rejects a counter without _total', () => {
    assertInstalled(promtool.missing);
    const result = check('# HELP llm_calls Calls.\n# TYPE llm_calls counter\nllm_calls 1\n');
    expect(result.status).not.toBe(0);
    expect(`${result.stdout}${result.stderr}`).toContain('_total');
  });
});
