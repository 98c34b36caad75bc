import { describe, expect, it } from 'vitest';
import { isIdentifierPiiError } from '../../src/compliance/identifiers.js';
import { simulatedClock } from '../../src/core/clock.js';
import { createRuntime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';
import { seq } from '../../src/supervisor/sequential.js';
import { named } from '../../src/supervisor/topology.js';

const PRICING = { sim: { inputPer1K: 0.001, outputPer1K: 0.002 } };
const SSN = '078-05-1120';
const EMAIL = 'jane.doe@example.co.uk';

function errorOf(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

function expectRefused(error: unknown, field: string, raw: string): void {
  expect(isIdentifierPiiError(error)).toBe(true);
  expect((error as { field: string }).field).toBe(field);
  // the message names the field and the fix, never the value
  expect(String(error)).toContain('opaque');
  expect(String(error)).not.toContain(raw);
}

const ok = agent({
  name: 'extract',
  model: 'sim',
  run: () => Promise.resolve({ value: 'done', usage: { inputTokens: 1, outputTokens: 1 } }),
});

function runtime(extra: Parameters<typeof createRuntime>[0] = {}) {
  return createRuntime({ db: ':memory:', clock: simulatedClock(), seed: 1, pricing: PRICING, ...extra });
}

describe('ids and names that carry PII are refused', () => {
  it('refuses at definition time a task type, agent name, breaker name or topology name carrying PII', () => {
    const run = () => Promise.resolve({ value: 1 });
    expectRefused(
      errorOf(() => agent({ name: 'screen', taskType: `task_${SSN}`, model: 'sim', run })),
      'agent.taskType',
      SSN,
    );
    expectRefused(
      errorOf(() => agent({ name: `screen_${SSN}`, model: 'sim', run })),
      'agent.name',
      SSN,
    );
    expectRefused(
      errorOf(() => agent({ name: 'screen', model: 'sim', breaker: { name: `cb ${EMAIL}` }, run })),
      'agent.breaker.name',
      EMAIL,
    );
    expectRefused(
      errorOf(() => named(`invoice for ${EMAIL}`, seq(ok))),
      'named(name)',
      EMAIL,
    );
    // opaque names pass
    expect(agent({ name: 'fraud_check_v2', taskType: 'fraud', model: 'sim', run }).taskType).toBe('fraud');
  });

  it('refuses task types in the config that carry PII', () => {
    expectRefused(
      errorOf(() => runtime({ errorTargets: { [`task_${SSN}`]: 0.1 } })),
      'errorTargets',
      SSN,
    );
    expectRefused(
      errorOf(() => runtime({ breakers: { [`cb_${SSN}`]: { failureThreshold: 3 } } })),
      'breakers',
      SSN,
    );
  });

  it('refuses a workflow id or name carrying PII at rt.run, before anything is written', async () => {
    const rt = runtime();
    const byId = await rt.run(ok, {}, { workflowId: `order-${EMAIL}` }).catch((e: unknown) => e);
    expectRefused(byId, 'workflowId', EMAIL);
    const bySsn = await rt.run(ok, {}, { workflowId: `wf-${SSN}` }).catch((e: unknown) => e);
    expectRefused(bySsn, 'workflowId', SSN);
    const byName = await rt.run(ok, {}, { name: `claim ${EMAIL}` }).catch((e: unknown) => e);
    expectRefused(byName, 'options.name', EMAIL);
    expect(rt.store.query({})).toEqual([]);
    // an opaque id is accepted and stored as given
    const done = await rt.run(ok, {}, { workflowId: 'order-7f3a9c' });
    expect(done.workflowId).toBe('order-7f3a9c');
    await rt.close();
  });

  it("checks names against the runtime's own patterns too (custom detectors)", async () => {
    const rt = runtime({ redact: { custom: [{ name: 'employee', pattern: /EMP\d{6}/ }] } });
    const perEmployee = agent({
      name: 'review_EMP123456',
      model: 'sim',
      run: () => Promise.resolve({ value: 1 }),
    });
    const refused = await rt.run(perEmployee, {}).catch((e: unknown) => e);
    expectRefused(refused, 'agent.name', 'EMP123456');
    const byId = await rt.run(ok, {}, { workflowId: 'wf-EMP654321' }).catch((e: unknown) => e);
    expectRefused(byId, 'workflowId', 'EMP654321');
    expect(rt.store.query({})).toEqual([]);
    await rt.close();
  });
});
