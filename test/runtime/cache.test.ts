import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { ProviderError } from '../../src/providers/types.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent, type AgentContext } from '../../src/supervisor/agent.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';

const PRICING = { gpt4: { inputPer1K: 0, outputPer1K: 0, perCall: 0.03 } };
let dir: string;
const open: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
  rmSync(dir, { recursive: true, force: true });
});

function runtime(clock: SimulatedClock): Runtime<SqliteEventStore> {
  const rt = createRuntime({ db: join(dir, 'k.db'), clock, seed: 1, pricing: PRICING });
  open.push(rt);
  return rt;
}

function vendorAgent(clock: SimulatedClock, calls: { n: number; fail?: boolean }) {
  return agent({
    name: 'vendor_validation',
    model: 'gpt4',
    cache: { ttlMs: 86_400_000 },
    run: (input: { vendor: string }, _ctx: AgentContext) => {
      calls.n++;
      if (calls.fail) return Promise.reject(new ProviderError('provider_error', '503'));
      return new Promise<{ value: string }>((resolve) =>
        clock.setTimeout(() => resolve({ value: `${input.vendor}:valid` }), 100),
      );
    },
  });
}

describe('the TTL cache in the runtime', () => {
  it('serves repeats from cache for 24 h, logs hits with the saving, and single-flights identical calls', async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-cache-'));
    const clock = simulatedClock();
    const rt = runtime(clock);
    const calls = { n: 0 };
    const vendor = vendorAgent(clock, calls);
    const burst = Array.from({ length: 20 }, () => rt.run(vendor, { vendor: 'ACME' }));
    await clock.advanceAsync(100);
    const results = await Promise.all(burst);
    expect(calls.n).toBe(1);
    expect(results.every((r) => r.value === 'ACME:valid')).toBe(true);
    expect(results.reduce((s, r) => s + r.costUsd, 0)).toBeCloseTo(0.03, 10);
    const later = await rt.run(vendor, { vendor: 'ACME' });
    expect(later.costUsd).toBe(0);
    expect(calls.n).toBe(1);
    const hits = rt.store.query({ type: 'cache.hit' });
    expect(hits).toHaveLength(20);
    expect(hits.every((e) => e.type === 'cache.hit' && e.payload.savedUsd > 0)).toBe(true);
    await clock.advanceAsync(86_400_000);
    const expired = rt.run(vendor, { vendor: 'ACME' });
    await clock.advanceAsync(100);
    await expired;
    expect(calls.n).toBe(2);
  });

  it('survives a restart and serves a stale value when the provider fails', async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-cache-'));
    const clock = simulatedClock();
    const first = runtime(clock);
    const calls = { n: 0 };
    const p = first.run(vendorAgent(clock, calls), { vendor: 'Globex' });
    await clock.advanceAsync(100);
    await p;
    await first.close();
    open.splice(0);
    const second = runtime(clock);
    expect((await second.run(vendorAgent(clock, calls), { vendor: 'Globex' })).value).toBe('Globex:valid');
    expect(calls.n).toBe(1);
    await clock.advanceAsync(86_400_001);
    const failing = { n: 0, fail: true };
    const stale = await second.run(vendorAgent(clock, failing), { vendor: 'Globex' });
    expect(failing.n).toBe(1);
    expect(stale.value).toBe('Globex:valid');
    expect(second.store.query({ type: 'cache.stale_served' })).toHaveLength(1);
  });
});
