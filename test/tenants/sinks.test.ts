/**
 * The tenant in the sinks (issue 24): ECS log lines carry `organization.id` and `labels.tenant`,
 * workflow and agent spans the `keel.tenant` attribute — fed the events a real run committed. An
 * untenanted workflow's documents and spans carry neither.
 */
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { toEcs } from '../../src/observability/ecs.js';
import { ATTR_KEEL_TENANT } from '../../src/observability/genai.js';
import { createTracing } from '../../src/observability/tracing.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { PRICING, counting } from '../durable/helpers.js';

const runtimes: Runtime<SqliteEventStore>[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) await rt.close();
});

describe('tenant in ECS documents and spans', () => {
  it('sets organization.id, labels.tenant and keel.tenant for a tenant workflow only', async () => {
    const rt = createRuntime({
      db: ':memory:',
      clock: simulatedClock(),
      seed: 1,
      pricing: PRICING,
      cache: false,
    });
    runtimes.push(rt);
    const a = counting('a').agent;
    const acme = await rt.run(a, { n: 1 }, { tenant: 'acme' });
    const plain = await rt.run(a, { n: 2 });
    const events = rt.store
      .query()
      .filter((e) => e.workflowId === acme.workflowId || e.workflowId === plain.workflowId);

    for (const e of events) {
      const doc = toEcs(e, { serviceName: 'svc' });
      if (e.workflowId === acme.workflowId) {
        expect(doc['organization.id'], e.type).toBe('acme');
        expect(doc.labels.tenant, e.type).toBe('acme');
      } else {
        expect(doc['organization.id'], e.type).toBeUndefined();
        expect(Object.keys(doc.labels), e.type).not.toContain('tenant');
      }
    }

    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const tracing = createTracing({ tracer: provider.getTracer('t') });
    for (const e of events) tracing.onEvent(e, undefined);
    const spans = exporter.getFinishedSpans();
    const byName = (prefix: string) => spans.filter((s) => s.name.startsWith(prefix));
    expect(byName('invoke_workflow').map((s) => s.attributes[ATTR_KEEL_TENANT])).toEqual(['acme', undefined]);
    expect(byName('invoke_agent').map((s) => s.attributes[ATTR_KEEL_TENANT])).toEqual(['acme', undefined]);
    await provider.shutdown();
  });
});
