/**
 * Tenants end to end, first half (issue 24): `rt.run(t, input, { tenant })` is validated as an
 * opaque, PII-free id before anything is written, and every event of a tenant's workflow carries it
 * — also after a crash and `rt.resume()` — while a workflow without a tenant stores no trace of one.
 */
import { lastValueFrom, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import { isIdentifierPiiError } from '../../src/compliance/identifiers.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { isInvalidTenantError } from '../../src/runtime/errors.js';
import { createRuntime, type Runtime, type RuntimeConfig } from '../../src/runtime.js';
import { par } from '../../src/supervisor/parallel.js';
import { seq } from '../../src/supervisor/sequential.js';
import { named, type AnyTopology } from '../../src/supervisor/topology.js';
import { PRICING, cleanupDirs, counting, crashedLog, settle, tempDb } from '../durable/helpers.js';

const T0 = Date.UTC(2026, 5, 1);
const runtimes: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close();
  cleanupDirs();
});

function open(config: RuntimeConfig = {}, startMs = T0): Runtime<SqliteEventStore> {
  const rt = createRuntime({
    db: ':memory:',
    clock: simulatedClock(startMs),
    seed: 3,
    pricing: PRICING,
    cache: false,
    budget: { dailyUsd: 100 },
    ...config,
  }) as Runtime<SqliteEventStore>;
  runtimes.push(rt);
  return rt;
}

function invoice(hangC = false) {
  const a = counting('a');
  const b = counting('b');
  const c = counting('c', undefined, { hang: hangC });
  return { a, b, c, topology: named('inv', seq(a.agent, par(b.agent, c.agent))) as unknown as AnyTopology };
}

describe('RunOptions.tenant is an opaque id, checked before anything is written', () => {
  it.each([
    ['an email address', 'bob@example.com', /contains "@".*email address is personal data/],
    ['a phone number with + and spaces', '+1 415 555 2671', /starts with "\+"/],
    ['NUL', 'acme\u0000', /contains \(U\+0000\) at index 4/],
    ['a lone surrogate', 'acme\ud800', /not well-formed Unicode/],
    ['65 characters', 'a'.repeat(65), /65 characters long, more than 64/],
    ['an empty string', '', /is empty/],
    ['a space', 'acme corp', /contains \(U\+0020\)/],
    ['a number', 42, /is number, not a string/],
  ])('refuses %s with InvalidTenantError naming the fix (run and run$)', async (_, tenant, problem) => {
    const rt = open();
    const { topology, a } = invoice();
    const error: unknown = await rt.run(topology, {}, { tenant: tenant as string }).catch((e: unknown) => e);
    expect(isInvalidTenantError(error)).toBe(true);
    expect((error as Error).message).toMatch(problem);
    expect((error as Error).message).toMatch(/use your internal customer id/);
    const streamed: unknown = await lastValueFrom(
      rt.run$(topology, {}, { tenant: tenant as string }).pipe(toArray()),
    ).catch((e: unknown) => e);
    expect(isInvalidTenantError(streamed)).toBe(true);
    expect(a.calls()).toBe(0);
    expect(rt.store.query({ type: 'workflow.started' })).toEqual([]);
  });

  it.each<[string, RuntimeConfig]>([
    ['default redaction', {}],
    ['redaction off', { redact: false }],
  ])('refuses a phone number written as digits with IdentifierPiiError (%s)', async (_, config) => {
    const rt = open(config);
    const { topology, a } = invoice();
    const error: unknown = await rt.run(topology, {}, { tenant: '4155552671' }).catch((e: unknown) => e);
    expect(isIdentifierPiiError(error)).toBe(true);
    expect((error as Error).message).toMatch(/RunOptions\.tenant.*phone.*internal customer id/);
    expect((error as Error).message).not.toContain('4155552671');
    expect(a.calls()).toBe(0);
    expect(rt.store.query({ type: 'workflow.started' })).toEqual([]);
  });

  it('accepts internal ids of letters, digits and _ - . : in any script', async () => {
    const rt = open();
    for (const tenant of ['acme', 'cust_4821', 'eu-west.acme:prod', 'Müller42', 'x'.repeat(64)]) {
      const { topology } = invoice();
      const r = await rt.run(topology, {}, { tenant });
      expect(rt.store.query({ workflowId: r.workflowId })[0]?.payload.tenant).toBe(tenant);
    }
  });
});

describe('every event of a tenant workflow carries the tenant', () => {
  it('stamps payload.tenant on every event the workflow writes, and nothing on an untenanted one', async () => {
    const rt = open();
    const acme = await rt.run(invoice().topology, { n: 1 }, { tenant: 'acme' });
    const plain = await rt.run(invoice().topology, { n: 2 });

    const mine = rt.store.query({ workflowId: acme.workflowId });
    expect(new Set(mine.map((e) => e.type))).toEqual(
      new Set([
        'workflow.started',
        'agent.invoked',
        'cost.reserved',
        'cost.incurred',
        'agent.succeeded',
        'workflow.completed',
      ]),
    );
    for (const e of mine) expect(e.payload.tenant, e.type).toBe('acme');

    const theirs = rt.store.query({ workflowId: plain.workflowId });
    expect(theirs.length).toBe(mine.length);
    for (const e of theirs) expect(Object.keys(e.payload), e.type).not.toContain('tenant');
    // The chain hashes the stored payloads: both verify.
    expect(rt.store.verify().ok).toBe(true);
  });

  it('keeps stamping the recorded tenant when a crashed workflow is resumed by another process', async () => {
    const first = invoice(true);
    const rt1 = open({ db: tempDb() });
    const run = rt1.run(first.topology, { n: 1 }, { workflowId: 'wf-t', tenant: 'acme' });
    run.catch(() => undefined);
    for (let i = 0; i < 10; i++) await settle();
    const file = await crashedLog(rt1.store.query());

    const second = invoice();
    const rt2 = open({ db: file }, T0 + 120_000);
    rt2.register('inv', second.topology);
    const report = await rt2.resume();
    expect(report.resumed).toMatchObject([{ workflowId: 'wf-t', outcome: 'completed' }]);
    expect(second.c.calls()).toBe(1);

    const events = rt2.store.query({ workflowId: 'wf-t' });
    const resumed = events.findIndex((e) => e.type === 'workflow.resumed');
    expect(resumed).toBeGreaterThan(0);
    const after = events.slice(resumed);
    expect(after.map((e) => e.type)).toContain('workflow.completed');
    for (const e of events) expect(e.payload.tenant, e.type).toBe('acme');
  });

  it('replay re-runs a tenant workflow without divergences', async () => {
    const rt = open();
    const { topology } = invoice();
    const r = await rt.run(topology, { n: 1 }, { tenant: 'acme' });
    const [report] = await rt.replay(r.workflowId);
    expect(report?.divergences).toEqual([]);
  });
});
