/**
 * The SLA monitor targets time to first token (issue 23): `sla.ttftP95Ms` judges streaming agents'
 * P95 TTFT per agent over the SLA window, raising one `sla` alert (scope `ttft`) when it passes the
 * target and one resolve when it recovers — from a provider written by hand (not the simulator) that
 * streams its first piece of text late, and after a restart from the log alone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { llmAgent } from '../../agents/llm.js';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { ConfigError } from '../../src/core/errors.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import type { Alert } from '../../src/monitor/alert.js';
import type { ModelProvider } from '../../src/providers/types.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';

let runtimes: Runtime<SqliteEventStore>[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const rt of runtimes) await rt.close();
  runtimes = [];
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Streams `{"reply":"ok"}` in two pieces: the first after `firstMs`, the rest 10 ms later. */
function lateStreamer(clock: SimulatedClock, firstMs: () => number): ModelProvider {
  return {
    name: 'acme-llm',
    call: (request, ctx) =>
      new Promise((resolve) => {
        const text = JSON.stringify({ value: { reply: 'ok' }, confidence: 0.9 });
        clock.setTimeout(() => {
          ctx.onDelta?.(text.slice(0, 5));
          clock.setTimeout(() => {
            ctx.onDelta?.(text.slice(5));
            resolve({
              output: text,
              model: `${request.model}-2024-08-06`,
              usage: { inputTokens: 20, outputTokens: 8 },
            });
          }, 10);
        }, firstMs());
      }),
  };
}

function open(db: string, clock: SimulatedClock): Runtime<SqliteEventStore> {
  const rt = createRuntime({
    db,
    clock,
    seed: 1,
    pricing: { 'gpt-4o': { inputPer1K: 0.0025, outputPer1K: 0.01 } },
    sla: { p95Ms: 60_000, minSamples: 5, windowMs: 3_600_000, ttftP95Ms: 1_000 },
  });
  runtimes.push(rt);
  return rt;
}

const support = (provider: ModelProvider) =>
  llmAgent({
    name: 'support',
    model: 'gpt-4o',
    provider,
    prompt: (q: string) => q,
    schema: z.object({ reply: z.string() }),
  });

async function stream(rt: Runtime, clock: SimulatedClock, provider: ModelProvider): Promise<void> {
  const done = lastValueFrom(rt.run$(support(provider), 'Where is my order?').pipe(toArray()));
  await clock.advanceAsync(5_000);
  await done;
}

describe('SLA on time to first token', () => {
  it('raises one ttft alert when P95 TTFT passes the target, resolves once it recovers, and not for the workflow SLA', async () => {
    const clock = simulatedClock();
    const rt = open(':memory:', clock);
    const alerts: Alert[] = [];
    rt.on('alert', (a) => alerts.push(a));
    let ttft = 2_500;
    const provider = lateStreamer(clock, () => ttft);
    for (let n = 0; n < 6; n++) await stream(rt, clock, provider);
    const firing = alerts.filter((a) => a.kind === 'sla' && a.status === 'firing');
    expect(firing).toHaveLength(1);
    expect(firing[0]?.data).toMatchObject({ scope: 'ttft', name: 'support', slaP95Ms: 1_000, p95Ms: 2_500 });
    expect(firing[0]?.title).toContain('time to first token');
    // Workflow latency (~2.5 s) is far within its own 60 s target: no workflow SLA alert.
    expect(alerts.filter((a) => (a.data as { scope?: string }).scope === 'workflow')).toHaveLength(0);

    ttft = 100;
    for (let n = 0; n < 200 && !alerts.some((a) => a.status === 'resolved'); n++)
      await stream(rt, clock, provider);
    const resolved = alerts.filter((a) => a.kind === 'sla' && a.status === 'resolved');
    expect(resolved).toHaveLength(1);
    expect(resolved[0]?.id).toBe(firing[0]?.id);
    expect(rt.stats().latency.ttft.find((s) => s.name === 'support')?.count).toBeGreaterThan(6);
  });

  it('keeps the open ttft alert across a restart (the fold is rebuilt from the log) and raises no duplicate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keel-ttft-'));
    dirs.push(dir);
    const db = join(dir, 'keel.db');
    const clock = simulatedClock();
    const first = open(db, clock);
    const provider = lateStreamer(clock, () => 3_000);
    for (let n = 0; n < 5; n++) await stream(first, clock, provider);
    await first.close();
    runtimes = [];

    const second = open(db, clock);
    const alerts: Alert[] = [];
    second.on('alert', (a) => alerts.push(a));
    await stream(second, clock, provider);
    expect(alerts.filter((a) => a.status === 'firing')).toHaveLength(0);
    const raised = second.store.query({ type: 'alert.raised' }).filter((e) => {
      const p = e.payload as { kind?: string; data?: { scope?: string } };
      return p.kind === 'sla' && p.data?.scope === 'ttft';
    });
    expect(raised).toHaveLength(1);
    expect(second.stats().latency.ttft[0]?.window.alerting).toBe(true);
  });

  it('refuses a TTFT target that is not a positive number, naming the field', () => {
    expect(() => createRuntime({ db: ':memory:', sla: { p95Ms: 10_000, ttftP95Ms: -5 } })).toThrow(
      ConfigError,
    );
    expect(() =>
      createRuntime({ db: ':memory:', sla: { p95Ms: 10_000, ttftP95Ms: 'fast' } as never }),
    ).toThrow(/sla\.ttftP95Ms/);
  });
});
