/**
 * The `tenant` label of the call and cost counters (issue 24): bounded cardinality — the first N
 * tenants seen (`metrics.tenantLabels`, default 20) keep their id, every later one is `other`, and
 * a workflow without a tenant adds no `tenant` label at all.
 */
import { describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/core/errors.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createRuntime } from '../../src/runtime.js';

let seq = 0;
function incurred(tenant: string | undefined, costUsd = 0.5): KeelEvent<'cost.incurred'> {
  return {
    seq: ++seq,
    ts: Date.UTC(2026, 0, 1),
    workflowId: `wf-${seq}`,
    type: 'cost.incurred',
    v: 1,
    class: 'audit',
    payload: {
      path: 'p/a',
      agent: 'a',
      model: 'gpt-4',
      taskType: 'vendor',
      attempt: 1,
      usage: { inputTokens: 10, outputTokens: 5 },
      costUsd,
      estimateUsd: costUsd,
      ...(tenant !== undefined ? { tenant } : {}),
    },
  };
}
function succeeded(tenant: string | undefined): KeelEvent<'agent.succeeded'> {
  return {
    seq: ++seq,
    ts: Date.UTC(2026, 0, 1),
    workflowId: `wf-${seq}`,
    type: 'agent.succeeded',
    v: 1,
    class: 'audit',
    payload: {
      path: 'p/a',
      agent: 'a',
      model: 'gpt-4',
      taskType: 'vendor',
      output: 1,
      attempts: 1,
      latencyMs: 100,
      usage: { inputTokens: 10, outputTokens: 5 },
      costUsd: 0.5,
      ...(tenant !== undefined ? { tenant } : {}),
    },
  };
}

/** `name{labels} value` lines of one metric. */
async function series(text: Promise<string>, name: string): Promise<string[]> {
  return (await text).split('\n').filter((l) => l.startsWith(`${name}{`));
}

describe('metrics: tenant label, top-N by first seen + other', () => {
  it('labels the first 20 tenants by id and the 21st (and later) as other; no label without a tenant', async () => {
    const m = createMetrics();
    const tenants = Array.from({ length: 23 }, (_, i) => `t${String(i + 1).padStart(2, '0')}`);
    for (const t of tenants) {
      m.apply(succeeded(t));
      m.apply(incurred(t));
    }
    // The first tenants again: still their own series, not other.
    m.apply(incurred('t01'));
    m.apply(incurred(undefined, 2));
    m.apply(succeeded(undefined));

    const cost = await series(m.metricsText(), 'llm_cost_usd_total');
    const labelled = cost.map((l) => /tenant="([^"]*)"/.exec(l)?.[1]);
    expect(new Set(labelled)).toEqual(new Set([...tenants.slice(0, 20), 'other', undefined]));
    expect(cost).toContain('llm_cost_usd_total{model="gpt-4",task_type="vendor",tenant="t01"} 1');
    expect(cost).toContain('llm_cost_usd_total{model="gpt-4",task_type="vendor",tenant="t20"} 0.5');
    // t21, t22, t23 share other.
    expect(cost).toContain('llm_cost_usd_total{model="gpt-4",task_type="vendor",tenant="other"} 1.5');
    expect(cost).toContain('llm_cost_usd_total{model="gpt-4",task_type="vendor"} 2');
    const calls = await series(m.metricsText(), 'llm_calls_total');
    expect(calls).toContain('llm_calls_total{model="gpt-4",task_type="vendor",tenant="other"} 3');
    expect(calls).toContain('llm_calls_total{model="gpt-4",task_type="vendor"} 1');
    expect(calls).toHaveLength(22);
  });

  it('honours tenantLabels: N, and 0 turns the label off', async () => {
    const two = createMetrics({ tenantLabels: 2 });
    const none = createMetrics({ tenantLabels: 0 });
    for (const t of ['acme', 'globex', 'initech']) {
      two.apply(incurred(t));
      none.apply(incurred(t));
    }
    expect(await series(two.metricsText(), 'llm_cost_usd_total')).toEqual([
      'llm_cost_usd_total{model="gpt-4",task_type="vendor",tenant="acme"} 0.5',
      'llm_cost_usd_total{model="gpt-4",task_type="vendor",tenant="globex"} 0.5',
      'llm_cost_usd_total{model="gpt-4",task_type="vendor",tenant="other"} 0.5',
    ]);
    expect(await series(none.metricsText(), 'llm_cost_usd_total')).toEqual([
      'llm_cost_usd_total{model="gpt-4",task_type="vendor"} 1.5',
    ]);
  });

  it.each([-1, 1.5, Number.NaN, '20'])('refuses metrics.tenantLabels: %s naming the field', (n) => {
    let error: unknown;
    try {
      createRuntime({ db: ':memory:', metrics: { tenantLabels: n as number } });
    } catch (e) {
      error = e;
    }
    expect(isConfigError(error)).toBe(true);
    expect((error as Error).message).toMatch(/metrics\.tenantLabels.*whole number of tenants/);
  });
});
