import { afterEach, describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/core/errors.js';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent, type Agent, type CachePolicy } from '../../src/supervisor/agent.js';

const PRICING = { gpt4: { inputPer1K: 0, outputPer1K: 0, perCall: 0.03 } };
const DAY = 86_400_000;

interface Invoice {
  vendor: string;
  invoiceId: string;
  amount?: number;
}

const open: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const rt of open.splice(0)) await rt.close();
});

function runtime(clock: SimulatedClock): Runtime<SqliteEventStore> {
  const rt = createRuntime({ db: ':memory:', clock, seed: 3, pricing: PRICING, metrics: false });
  open.push(rt);
  return rt;
}

/** Vendor validation: answers after 100 ms from the vendor alone, counting its model calls. */
function vendorCheck(
  clock: SimulatedClock,
  calls: { n: number },
  cache: CachePolicy<Invoice> = { ttlMs: DAY, key: (input) => input.vendor },
  version = '1',
): Agent<Invoice, string> {
  return agent({
    name: 'vendor_validation',
    version,
    model: 'gpt4',
    cache,
    run: (input: Invoice) => {
      calls.n++;
      return new Promise<{ value: string }>((resolve) =>
        clock.setTimeout(() => resolve({ value: `${input.vendor}:valid` }), 100),
      );
    },
  });
}

/** Runs one workflow to its end on the simulated clock. */
async function runOnce<I, O>(clock: SimulatedClock, rt: Runtime<SqliteEventStore>, a: Agent<I, O>, input: I) {
  const done = rt.run(a, input).then(
    (result) => ({ ok: true as const, result }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  await clock.advanceAsync(100);
  return done;
}

const typesOf = (rt: Runtime<SqliteEventStore>, workflowId: string): string[] =>
  rt.store.query({ workflowId }).map((e) => e.type);

const only = <T extends KeelEvent['type']>(rt: Runtime<SqliteEventStore>, workflowId: string, type: T) =>
  rt.store.query({ workflowId, type }) as KeelEvent<T>[];

describe('cache: { key } keys the agent cache by part of the input', () => {
  it('serves invoices of the same vendor from one entry, whatever else differs, and calls again for another vendor', async () => {
    const clock = simulatedClock();
    const rt = runtime(clock);
    const calls = { n: 0 };
    const check = vendorCheck(clock, calls);

    const first = await runOnce(clock, rt, check, { vendor: 'ACME', invoiceId: 'INV-1', amount: 120 });
    const second = await runOnce(clock, rt, check, { vendor: 'ACME', invoiceId: 'INV-2' });
    if (!first.ok || !second.ok) throw new Error('expected both workflows to complete');
    expect(calls.n).toBe(1);
    expect(second.result).toMatchObject({ value: 'ACME:valid', costUsd: 0 });
    const [miss] = only(rt, first.result.workflowId, 'cache.miss');
    const [hit] = only(rt, second.result.workflowId, 'cache.hit');
    expect(hit?.payload.key).toBe(miss?.payload.key);
    expect(only(rt, second.result.workflowId, 'agent.succeeded')[0]?.payload).toMatchObject({
      cached: true,
      attempts: 0,
    });

    const other = await runOnce(clock, rt, check, { vendor: 'Globex', invoiceId: 'INV-1', amount: 120 });
    if (!other.ok) throw new Error('expected the workflow to complete');
    expect(calls.n).toBe(2);
    expect(other.result.value).toBe('Globex:valid');
    expect(typesOf(rt, other.result.workflowId)).toContain('cache.miss');
    expect(typesOf(rt, other.result.workflowId)).not.toContain('cache.hit');
  });

  it('keys by the whole input without `key`, and by agent version with it', async () => {
    const clock = simulatedClock();
    const rt = runtime(clock);
    const calls = { n: 0 };
    const wholeInput = vendorCheck(clock, calls, { ttlMs: DAY });
    await runOnce(clock, rt, wholeInput, { vendor: 'ACME', invoiceId: 'INV-1' });
    await runOnce(clock, rt, wholeInput, { vendor: 'ACME', invoiceId: 'INV-2' });
    expect(calls.n).toBe(2);

    await runOnce(clock, rt, vendorCheck(clock, calls), { vendor: 'ACME', invoiceId: 'INV-3' });
    await runOnce(clock, rt, vendorCheck(clock, calls, undefined, '2'), {
      vendor: 'ACME',
      invoiceId: 'INV-4',
    });
    expect(calls.n).toBe(4);
    await runOnce(clock, rt, vendorCheck(clock, calls, undefined, '2'), {
      vendor: 'ACME',
      invoiceId: 'INV-5',
    });
    expect(calls.n).toBe(4);
  });

  it('shares one in-flight call among concurrent invoices of the same vendor', async () => {
    const clock = simulatedClock();
    const rt = runtime(clock);
    const calls = { n: 0 };
    const check = vendorCheck(clock, calls);
    const burst = ['INV-1', 'INV-2', 'INV-3', 'INV-4'].map((invoiceId) =>
      rt.run(check, { vendor: 'ACME', invoiceId }),
    );
    await clock.advanceAsync(100);
    const results = await Promise.all(burst);
    expect(calls.n).toBe(1);
    expect(results.map((r) => r.value)).toEqual(['ACME:valid', 'ACME:valid', 'ACME:valid', 'ACME:valid']);
    expect(rt.store.query({ type: 'cache.hit' })).toHaveLength(3);
  });

  it('replays a workflow answered from a keyed entry with no divergence and no model call', async () => {
    const clock = simulatedClock();
    const rt = runtime(clock);
    const calls = { n: 0 };
    const check = vendorCheck(clock, calls);
    await runOnce(clock, rt, check, { vendor: 'ACME', invoiceId: 'INV-1' });
    const hit = await runOnce(clock, rt, check, { vendor: 'ACME', invoiceId: 'INV-2' });
    if (!hit.ok) throw new Error('expected the workflow to complete');
    expect(typesOf(rt, hit.result.workflowId)).toContain('cache.hit');

    const reports = await rt.replay('all');
    expect(reports).toHaveLength(2);
    for (const report of reports) expect(report).toMatchObject({ ok: true, divergences: [], modelCalls: 0 });
    expect(calls.n).toBe(1);
  });

  it('fails only the invocation whose key function throws or returns undefined, as validation_error', async () => {
    const clock = simulatedClock();
    const rt = runtime(clock);
    const calls = { n: 0 };
    const check = vendorCheck(clock, calls, {
      ttlMs: DAY,
      key: (input) => {
        if (input.vendor === '') throw new Error('vendor is empty');
        return input.vendor === 'unknown' ? undefined : input.vendor;
      },
    });

    const thrown = await runOnce(clock, rt, check, { vendor: '', invoiceId: 'INV-1' });
    expect(thrown.ok).toBe(false);
    if (thrown.ok) return;
    expect(thrown.error).toMatchObject({ category: 'validation_error' });
    const [failed] = rt.store.query({ type: 'agent.failed' }) as KeelEvent<'agent.failed'>[];
    expect(failed?.payload).toMatchObject({ category: 'validation_error', attempts: 0, costUsd: 0 });
    expect(failed?.payload.message).toContain('vendor is empty');
    expect(failed?.payload.message).toContain('cache.key');

    const undefinedKey = await runOnce(clock, rt, check, { vendor: 'unknown', invoiceId: 'INV-2' });
    expect(undefinedKey).toMatchObject({ ok: false, error: { category: 'validation_error' } });
    expect(rt.store.query({ type: 'cache.miss' })).toHaveLength(0);
    expect(calls.n).toBe(0);

    // The runtime goes on: the next invoice is keyed, called and cached as usual.
    const next = await runOnce(clock, rt, check, { vendor: 'ACME', invoiceId: 'INV-3' });
    expect(next).toMatchObject({ ok: true, result: { value: 'ACME:valid' } });
    expect(calls.n).toBe(1);
    const reports = await rt.replay('all');
    expect(reports.map((r) => r.ok)).toEqual([true, true, true]);
  });

  it('rejects a key that is not a function when the agent is defined', () => {
    const define = () =>
      agent({
        name: 'vendor_validation',
        model: 'gpt4',
        // @ts-expect-error key must be a function of the input
        cache: { ttlMs: DAY, key: 'vendor' },
        run: (input: Invoice) => Promise.resolve({ value: input.vendor }),
      });
    expect(define).toThrow(/must be a function of the input.*input\.vendor/);
    try {
      define();
    } catch (e) {
      expect(isConfigError(e) && e.field).toBe('agent "vendor_validation".cache.key');
    }
  });

  it('types the key function by the agent input', () => {
    const define = () =>
      agent({
        name: 'vendor_validation',
        model: 'gpt4',
        // @ts-expect-error `vendr` is not a field of the input
        cache: { ttlMs: DAY, key: (input) => input.vendr as unknown },
        run: (input: Invoice) => Promise.resolve({ value: input.vendor }),
      });
    expect(define).not.toThrow();
  });
});
