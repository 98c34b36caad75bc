import { describe, expect, it } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { isConfigError } from '../../src/core/errors.js';
import { simulated, type SimulatedProvider } from '../../src/providers/simulated.js';
import { isProviderError, type ModelRequest, type ModelResponse } from '../../src/providers/types.js';

const START = Date.UTC(2026, 0, 1);

/** What one call did, as seen from outside. */
interface Observed {
  ok: boolean;
  category?: string;
  retryAfterMs?: number;
  status?: number;
  latencyMs: number;
  output?: unknown;
  confidence?: number;
  inputTokens?: number;
  outputTokens?: number;
}

/**
 * Starts `requests` together on virtual time, advances the clock by `windowMs` (letting each
 * settlement run at its due time), then aborts whatever still hangs.
 */
async function runBatch(
  provider: SimulatedProvider,
  clock: SimulatedClock,
  requests: readonly ModelRequest[],
  windowMs = 600_000,
): Promise<Observed[]> {
  const started = clock.now();
  const controllers = requests.map(() => new AbortController());
  const results = requests.map((request, i) =>
    provider.call(request, { signal: (controllers[i] as AbortController).signal, clock }).then(
      (res: ModelResponse): Observed => ({
        ok: true,
        latencyMs: clock.now() - started,
        output: res.output,
        confidence: res.confidence,
        inputTokens: res.usage.inputTokens,
        outputTokens: res.usage.outputTokens,
      }),
      (e: unknown): Observed => {
        if (!isProviderError(e)) throw e;
        return {
          ok: false,
          category: e.category,
          retryAfterMs: e.retryAfterMs,
          status: e.status,
          latencyMs: clock.now() - started,
          inputTokens: e.details.usage?.inputTokens,
        };
      },
    ),
  );
  await clock.advanceAsync(windowMs);
  for (const c of controllers) c.abort();
  return Promise.all(results);
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

const sequence = (): ModelRequest[] => {
  const reqs: ModelRequest[] = [];
  for (let i = 0; i < 40; i++) reqs.push({ model: i % 2 ? 'gpt-4' : 'gpt-3.5-turbo', input: { id: i % 13 } });
  return reqs;
};

const chaotic = (seed: number) =>
  simulated({
    seed,
    latencyMs: { p50: 500, p95: 1_500 },
    rates: { provider_error: 0.1, rate_limited: 0.1, timeout: 0.05, malformed_output: 0.05 },
  });

describe('simulated provider: determinism', () => {
  it('two instances with the same seed and call sequence behave identically; another seed differs', async () => {
    const runs: Observed[][] = [];
    for (const seed of [7, 7, 8]) {
      const clock = simulatedClock(START);
      const provider = chaotic(seed);
      const observed: Observed[] = [];
      for (const batch of [sequence(), sequence()])
        observed.push(...(await runBatch(provider, clock, batch)));
      runs.push(observed);
    }
    const [a, b, c] = runs as [Observed[], Observed[], Observed[]];
    expect(a.length).toBe(80);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    // the sequence exercises both successes and failures
    expect(a.some((o) => o.ok)).toBe(true);
    expect(a.some((o) => !o.ok)).toBe(true);
  });

  it('a repeated call with the same input draws a new outcome (so a retry can succeed)', async () => {
    const clock = simulatedClock(START);
    const provider = simulated({ seed: 1, rates: { provider_error: 0.5 } });
    const same = Array.from({ length: 30 }, () => ({ model: 'gpt-4', input: { invoice: 'INV-1' } }));
    const observed = await runBatch(provider, clock, same);
    expect(new Set(observed.map((o) => o.latencyMs)).size).toBeGreaterThan(20);
    expect(observed.some((o) => o.ok)).toBe(true);
    expect(observed.some((o) => !o.ok)).toBe(true);
    expect(provider.calls()).toBe(30);
  });

  it('keys behaviour on canonical JSON: key order in the input does not matter', async () => {
    const observe = async (input: unknown) =>
      runBatch(simulated({ seed: 3 }), simulatedClock(START), [{ model: 'gpt-4', input }]);
    expect(await observe({ a: 1, b: 2 })).toEqual(await observe({ b: 2, a: 1 }));
    expect(await observe({ a: 1, b: 2 })).not.toEqual(await observe({ a: 1, b: 3 }));
  });
});

describe('simulated provider: distributions', () => {
  it('over 20k calls, latency p50/p95, error rates, usage and confidence match the configuration', async () => {
    const clock = simulatedClock(START);
    const rates = { provider_error: 0.05, rate_limited: 0.03, timeout: 0.02, malformed_output: 0.01 };
    const provider = simulated({
      seed: 42,
      latencyMs: { p50: 800, p95: 2_000 },
      rates,
      retryAfterMs: 1_500,
      confidence: { mean: 0.85, stddev: 0.05 },
      usage: { input: { mean: 1_000, stddev: 100 }, output: { mean: 300, stddev: 30 } },
    });
    const N = 20_000;
    const observed: Observed[] = [];
    for (let start = 0; start < N; start += 250) {
      const batch = Array.from({ length: 250 }, (_, i) => ({ model: 'gpt-4', input: { n: start + i } }));
      observed.push(...(await runBatch(provider, clock, batch, 120_000)));
    }
    const share = (category: string) => observed.filter((o) => o.category === category).length / N;
    // ±0.006 absolute is about 4 standard errors of a 5% rate over 20k calls
    expect(Math.abs(share('provider_error') - rates.provider_error)).toBeLessThan(0.006);
    expect(Math.abs(share('rate_limited') - rates.rate_limited)).toBeLessThan(0.006);
    expect(Math.abs(share('cancelled') - rates.timeout)).toBeLessThan(0.006); // hangs, aborted
    expect(Math.abs(share('malformed_output') - rates.malformed_output)).toBeLessThan(0.006);
    expect(observed.filter((o) => o.category === 'rate_limited').every((o) => o.retryAfterMs === 1_500)).toBe(
      true,
    );

    // latency of calls that answered (hangs excluded): within 5% of the configured percentiles
    const latencies = observed
      .filter((o) => o.category !== 'cancelled')
      .map((o) => o.latencyMs)
      .sort((x, y) => x - y);
    expect(Math.abs(quantile(latencies, 0.5) / 800 - 1)).toBeLessThan(0.05);
    expect(Math.abs(quantile(latencies, 0.95) / 2_000 - 1)).toBeLessThan(0.05);

    const ok = observed.filter((o) => o.ok);
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(Math.abs(mean(ok.map((o) => o.confidence as number)) - 0.85)).toBeLessThan(0.01);
    expect(Math.abs(mean(ok.map((o) => o.inputTokens as number)) / 1_000 - 1)).toBeLessThan(0.02);
    expect(Math.abs(mean(ok.map((o) => o.outputTokens as number)) / 300 - 1)).toBeLessThan(0.02);
  });

  it('an easy/hard confidence mixture marks a stable share of inputs easy, the same for every model', async () => {
    const clock = simulatedClock(START);
    const mixture = { easyShare: 0.7, easy: { mean: 0.97, stddev: 0.02 }, hard: { mean: 0.6, stddev: 0.1 } };
    const provider = simulated({ seed: 9, latencyMs: { p50: 0, p95: 0 }, confidence: mixture });
    const inputs = Array.from({ length: 2_000 }, (_, i) => ({ invoice: `INV-${i}` }));
    const cheap = await runBatch(
      provider,
      clock,
      inputs.map((input) => ({ model: 'gpt-3.5-turbo', input })),
      0,
    );
    const again = await runBatch(
      provider,
      clock,
      inputs.map((input) => ({ model: 'gpt-4', input })),
      0,
    );
    const easy = (o: Observed) => (o.confidence as number) >= 0.9;
    const share = cheap.filter(easy).length / inputs.length;
    expect(Math.abs(share - 0.7)).toBeLessThan(0.03);
    const agree = cheap.filter((o, i) => easy(o) === easy(again[i] as Observed)).length / inputs.length;
    expect(agree).toBeGreaterThan(0.98);
  });
});

describe('simulated provider: fault windows', () => {
  it('an outage between t+60s and t+120s fails every call inside it and none outside', async () => {
    const provider = simulated({
      seed: 5,
      latencyMs: { p50: 100, p95: 200 },
      faults: [{ fromMs: START + 60_000, toMs: START + 120_000, kind: 'provider_error' }],
    });
    // each phase starts a fresh clock at its own absolute time
    const phase = async (offsetMs: number) => {
      const clock = simulatedClock(START + offsetMs);
      const batch = Array.from({ length: 50 }, (_, i) => ({ model: 'gpt-4', input: { i } }));
      return runBatch(provider, clock, batch, 5_000);
    };
    expect((await phase(59_000)).every((o) => o.ok)).toBe(true);
    expect((await phase(60_000)).every((o) => o.category === 'provider_error')).toBe(true);
    expect((await phase(119_999)).every((o) => o.category === 'provider_error')).toBe(true);
    expect((await phase(120_000)).every((o) => o.ok)).toBe(true);
  });

  it('applies each kind only inside its window (and only to its model)', async () => {
    const provider = simulated({
      seed: 5,
      latencyMs: { p50: 100, p95: 200 },
      faults: [
        { fromMs: START + 60_000, toMs: START + 120_000, kind: 'provider_error', model: 'gpt-4' },
        { fromMs: START + 60_000, toMs: START + 120_000, kind: 'latency_spike', extraLatencyMs: 10_000 },
        { fromMs: START + 200_000, toMs: START + 260_000, kind: 'rate_limited', retryAfterMs: 7_000 },
        { fromMs: START + 300_000, toMs: START + 360_000, kind: 'timeout', rate: 0.5 },
        { fromMs: START + 400_000, toMs: START + 460_000, kind: 'malformed_output' },
      ],
    });
    const at = async (offsetMs: number, model = 'gpt-4') => {
      const clock = simulatedClock(START + offsetMs);
      const batch = Array.from({ length: 40 }, (_, i) => ({ model, input: { i } }));
      return runBatch(provider, clock, batch, 30_000);
    };
    const before = await at(0);
    expect(before.every((o) => o.ok && o.latencyMs < 2_000)).toBe(true);

    const outage = await at(60_000);
    expect(outage.every((o) => o.category === 'provider_error' && o.status === 503)).toBe(true);
    const otherModel = await at(61_000, 'gpt-3.5-turbo');
    expect(otherModel.every((o) => o.ok)).toBe(true);
    expect(otherModel.every((o) => o.latencyMs >= 10_000)).toBe(true); // the spike hits every model

    const afterOutage = await at(120_000);
    expect(afterOutage.every((o) => o.ok && o.latencyMs < 2_000)).toBe(true);

    const limited = await at(200_000);
    expect(limited.every((o) => o.category === 'rate_limited' && o.retryAfterMs === 7_000)).toBe(true);

    const hanging = await at(300_000);
    const hung = hanging.filter((o) => o.category === 'cancelled').length;
    expect(hung).toBeGreaterThan(8);
    expect(hung).toBeLessThan(32);

    const malformed = await at(400_000);
    expect(malformed.every((o) => o.category === 'malformed_output' && (o.inputTokens ?? 0) > 0)).toBe(true);

    const calm = await at(500_000);
    expect(calm.every((o) => o.ok)).toBe(true);
  });
});

describe('simulated provider: cancellation and hangs', () => {
  it('aborting an in-flight call rejects at once with cancelled and leaves no timer behind', async () => {
    const clock = simulatedClock(START);
    const provider = simulated({ seed: 1, latencyMs: { p50: 5_000, p95: 9_000 } });
    const controller = new AbortController();
    const pending = provider.call({ model: 'gpt-4', input: 'x' }, { signal: controller.signal, clock });
    await clock.advanceAsync(10); // the latency timer is armed
    expect(clock.pendingTimers()).toBe(1);
    controller.abort(new Error('deadline passed'));
    await expect(pending).rejects.toMatchObject({ category: 'cancelled', code: 'PROVIDER_CANCELLED' });
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a timeout outcome hangs until its signal aborts', async () => {
    const clock = simulatedClock(START);
    const provider = simulated({ seed: 1, rates: { timeout: 1 } });
    const controller = new AbortController();
    let settled = false;
    const pending = provider.call({ model: 'gpt-4', input: 'x' }, { signal: controller.signal, clock });
    pending.then(
      () => (settled = true),
      () => (settled = true),
    );
    await clock.advanceAsync(3_600_000);
    expect(settled).toBe(false);
    expect(clock.pendingTimers()).toBe(0);
    controller.abort();
    await expect(pending).rejects.toMatchObject({ category: 'cancelled' });
  });

  it('a call whose signal is already aborted is rejected without starting', async () => {
    const provider = simulated({ seed: 1 });
    await expect(
      provider.call({ model: 'gpt-4', input: 'x' }, { signal: AbortSignal.abort(), clock: simulatedClock() }),
    ).rejects.toMatchObject({ category: 'cancelled' });
    expect(provider.calls()).toBe(0);
  });
});

describe('simulated provider: outputs and config', () => {
  it('answers JSON requests with { value: input } by default and uses respond() when given', async () => {
    const clock = simulatedClock(START);
    const plain = simulated({ seed: 2, latencyMs: { p50: 0, p95: 0 } });
    const [json, text] = await runBatch(
      plain,
      clock,
      [
        { model: 'gpt-4', input: { total: 12 }, json: true },
        { model: 'gpt-4', input: { total: 12 } },
      ],
      0,
    );
    expect(json?.output).toEqual({ value: { total: 12 } });
    expect(text?.output).toBe('echo:{"total":12}');

    const seen: ModelRequest[] = [];
    const custom = simulated({
      seed: 2,
      latencyMs: { p50: 0, p95: 0 },
      respond: (request, rng) => {
        seen.push(request);
        return { value: rng.int(1, 1_000_000) };
      },
    });
    const again = simulated({
      seed: 2,
      latencyMs: { p50: 0, p95: 0 },
      respond: (_r, rng) => ({ value: rng.int(1, 1_000_000) }),
    });
    const req = { model: 'gpt-4', input: { total: 12 }, json: true };
    const [a] = await runBatch(custom, clock, [req], 0);
    const [b] = await runBatch(again, clock, [req], 0);
    expect(seen).toEqual([req]);
    expect(a?.output).toEqual(b?.output);
  });

  it('rejects impossible configuration naming the field', () => {
    const field = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isConfigError(e) ? e.field : 'not a ConfigError';
      }
      return 'no error';
    };
    expect(field(() => simulated({ rates: { provider_error: 0.7, rate_limited: 0.5 } }))).toBe(
      'simulated.rates',
    );
    expect(field(() => simulated({ latencyMs: { p50: 800, p95: 500 } }))).toBe('simulated.latencyMs.p95');
    expect(field(() => simulated({ models: { 'gpt-4': { rates: { timeout: 2 } } } }))).toBe(
      'simulated.models.gpt-4.rates.timeout',
    );
    expect(field(() => simulated({ faults: [{ fromMs: 10, toMs: 5, kind: 'timeout' }] }))).toBe(
      'simulated.faults[0].toMs',
    );
    expect(
      field(() =>
        simulated({
          confidence: { easyShare: 1.5, easy: { mean: 1, stddev: 0 }, hard: { mean: 0, stddev: 0 } },
        }),
      ),
    ).toBe('simulated.confidence.easyShare');
  });
});
