import { readFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import { toEsBulk } from '../../src/observability/ecs.js';
import { createRuntime } from '../../src/runtime.js';
import { agent, AgentError } from '../../src/supervisor/agent.js';
import { par } from '../../src/supervisor/parallel.js';
import { seq } from '../../src/supervisor/sequential.js';
import { named } from '../../src/supervisor/topology.js';
import { LABELS, LISTED, invoice } from './arbitraries.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'keel-pii-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every byte the log left on disk: the database, its WAL and shared memory. */
function rawBytes(db: string): string {
  return ['', '-wal', '-shm']
    .map((suffix) => (existsSync(db + suffix) ? readFileSync(db + suffix).toString('latin1') : ''))
    .join('\n');
}

describe('no PII reaches the log, the ECS export, the spans or the metrics', () => {
  it('holds for generated invoices whose inputs, outputs and errors carry PII', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(invoice, async (lines) => {
        const db = join(dir, `pii-${run++}.db`);
        const exporter = new InMemorySpanExporter();
        const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
        const rt = createRuntime({
          db,
          clock: simulatedClock(),
          seed: 1,
          pricing: { sim: { inputPer1K: 0.001, outputPer1K: 0.002 } },
          redact: { hmacKey: 'e2e-test-key-0123456789abcdef', names: { list: LISTED } },
          tracing: { tracer: provider.getTracer('keel-test'), captureContent: true },
          cache: false,
        });
        const text = lines.map(([p, f]) => `${LABELS[p.kind]} ${p.text}, ${f}`).join('\n');
        const extract = agent({
          name: 'extract',
          model: 'sim',
          run: (input: { text: string }) =>
            Promise.resolve({
              value: { summary: input.text.split('\n').reverse().join(' | ') },
              usage: { inputTokens: 10, outputTokens: 5 },
            }),
        });
        const fail = agent({
          name: 'validate',
          model: 'sim',
          run: (input: { text: string }) =>
            Promise.reject(new AgentError('validation_error', `bad line: ${input.text}`)),
        });
        await rt.run(named('invoice', seq(par(extract, extract))), { text }).catch(() => undefined);
        await rt.run(named('check', fail), { text }).catch(() => undefined);
        const events = rt.store.query({});
        const metrics = (await rt.metrics?.metricsText()) ?? '';
        await rt.close();
        // read the spans before shutdown, which empties the in-memory exporter
        const spans = JSON.stringify(
          exporter
            .getFinishedSpans()
            .map((s) => ({ name: s.name, attributes: s.attributes, events: s.events })),
        );
        expect(spans).toContain('invoke_workflow');
        await provider.shutdown();
        const bulk = toEsBulk(events, { index: 'keel' });
        const bytes = rawBytes(db);
        for (const [p] of lines) {
          expect(bytes).not.toContain(p.raw);
          expect(bulk).not.toContain(p.raw);
          expect(spans).not.toContain(p.raw);
          expect(metrics).not.toContain(p.raw);
        }
        // the business text survives redaction
        for (const [, f] of lines) expect(JSON.stringify(events)).toContain(f);
        expect(events.some((e) => e.type === 'redaction.applied')).toBe(true);
      }),
      { numRuns: 25 },
    );
  });
});
