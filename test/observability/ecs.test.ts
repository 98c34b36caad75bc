import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import type { KeelEvent } from '../../src/eventlog/events.js';
import { createEcsLogSink, toEcs, toEsBulk, type EcsDocument } from '../../src/observability/ecs.js';
import { createTracing } from '../../src/observability/tracing.js';
import { syntheticStream } from './stream.js';

const events = syntheticStream(1);
const first = <T extends KeelEvent['type']>(type: T): KeelEvent<T> =>
  events.find((e) => e.type === type) as KeelEvent<T>;

describe('toEcs', () => {
  it('maps a failure to a typed ECS document with error.type and labels', () => {
    const event = first('agent.failed');
    const doc = toEcs(event, {
      serviceName: 'invoice-service',
      traceId: 'a'.repeat(32),
      spanId: 'b'.repeat(16),
    });
    expect(doc).toMatchObject({
      '@timestamp': new Date(event.ts).toISOString(),
      'log.level': 'error',
      'ecs.version': '8.10.0',
      'service.name': 'invoice-service',
      'event.dataset': 'keel.events',
      'event.action': 'agent.failed',
      'event.kind': 'event',
      'event.outcome': 'failure',
      'event.sequence': event.seq,
      'event.duration': 1_000_000_000,
      'trace.id': 'a'.repeat(32),
      'span.id': 'b'.repeat(16),
      'error.type': 'provider_error',
      'error.message': 'HTTP 503 after 2 attempts',
      labels: {
        workflow_id: 'wf-payment-0',
        agent: 'payment_extraction',
        model: 'gpt-4',
        task_type: 'payment',
        node_path: 'payment_check/payment_extraction',
      },
    });
    expect(doc['@timestamp']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(typeof doc.message).toBe('string');
    expect(doc.message).toContain('provider_error');
    expect(JSON.parse(doc['keel.payload']!)).toEqual(event.payload);
  });

  it('logs failures as error, alerts and rejections as warn, the rest as info', () => {
    const level = (e: KeelEvent) => toEcs(e, { serviceName: 's' })['log.level'];
    const outcome = (e: KeelEvent) => toEcs(e, { serviceName: 's' })['event.outcome'];
    expect(level(first('workflow.failed'))).toBe('error');
    expect(level(first('agent.rejected'))).toBe('warn');
    expect(level(first('alert.raised'))).toBe('warn');
    expect(toEcs(first('alert.raised'), { serviceName: 's' })['event.kind']).toBe('alert');
    expect(level(first('breaker.transitioned'))).toBe('warn');
    expect(level(first('agent.succeeded'))).toBe('info');
    expect(outcome(first('agent.succeeded'))).toBe('success');
    expect(outcome(first('agent.invoked'))).toBe('unknown');
    const noIds = toEcs(first('agent.invoked'), { serviceName: 's' });
    expect(noIds).not.toHaveProperty('trace.id');
    expect(noIds).not.toHaveProperty('error.type');
    expect(toEcs(first('agent.timed_out'), { serviceName: 's' })['error.type']).toBe('timeout');
  });
});

describe('createEcsLogSink', () => {
  let dir = '';
  afterEach(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
    dir = '';
  });

  it('writes ECS JSON lines through pino, correlated with the spans of the same events', async () => {
    dir = mkdtempSync(join(tmpdir(), 'keel-ecs-'));
    const path = join(dir, 'logs', 'keel.ndjson');
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const tracing = createTracing({ tracer: provider.getTracer('keel-test') });
    const sink = createEcsLogSink({ destination: path, serviceName: 'invoice-service' });
    for (const event of events) sink.write(event, tracing.onEvent(event));
    await sink.close();
    await sink.close();

    const raw = readFileSync(path, 'utf8');
    expect(raw.endsWith('\n')).toBe(true);
    const lines = raw.trimEnd().split('\n');
    expect(lines).toHaveLength(events.length);
    const docs = lines.map((line) => JSON.parse(line) as EcsDocument & Record<string, unknown>);
    docs.forEach((doc, i) => {
      const event = events[i]!;
      expect(doc['@timestamp']).toBe(new Date(event.ts).toISOString());
      expect(doc['log.level']).toBe(toEcs(event, { serviceName: 'x' })['log.level']);
      expect(typeof doc.message).toBe('string');
      expect(doc['ecs.version']).toBe('8.10.0');
      expect(doc['service.name']).toBe('invoice-service');
      expect(doc['event.action']).toBe(event.type);
      expect(doc['event.sequence']).toBe(event.seq);
      expect(typeof doc['process.pid']).toBe('number');
      // pino's envelope and the event fields never repeat a key (Elasticsearch rejects duplicates).
      for (const key of ['"service.name"', '"ecs.version"', '"@timestamp"', '"log.level"', '"message"'])
        expect(lines[i]!.split(key).length - 1, `${key} in line ${i}`).toBe(1);
    });

    // trace.id / span.id point at the spans the same events produced.
    const spans = exporter.getFinishedSpans();
    const failed = docs.find((d) => d['event.action'] === 'agent.failed')!;
    const agentSpan = spans.find((s) => s.spanContext().spanId === failed['span.id']);
    expect(agentSpan?.name).toBe('invoke_agent payment_extraction');
    expect(agentSpan?.spanContext().traceId).toBe(failed['trace.id']);
    const completed = docs.find(
      (d) => d['event.action'] === 'workflow.completed' && d.labels.workflow_id === 'wf-invoice-0',
    )!;
    const workflowSpan = spans.find((s) => s.spanContext().spanId === completed['span.id']);
    expect(workflowSpan?.name).toBe('invoke_workflow invoice');
    const system = docs.find((d) => d['event.action'] === 'breaker.transitioned')!;
    expect(system).not.toHaveProperty('trace.id');
  });

  it('writes to a given stream, filtered by level, and leaves the stream open', async () => {
    const lines: string[] = [];
    let ended = false;
    const stream = {
      write: (line: string) => {
        lines.push(line);
      },
      end: () => {
        ended = true;
      },
    };
    const sink = createEcsLogSink({
      destination: stream,
      serviceName: 's',
      level: 'warn',
      includePayload: false,
    });
    for (const event of events) sink.write(event);
    await sink.close();
    sink.write(events[0]!); // ignored after close
    const levels = lines.map((l) => (JSON.parse(l) as EcsDocument)['log.level']);
    expect(levels.length).toBeGreaterThan(0);
    expect(new Set(levels)).toEqual(new Set(['warn', 'error']));
    expect(lines.every((l) => !l.includes('keel.payload'))).toBe(true);
    expect(ended).toBe(false);
  });
});

describe('toEsBulk', () => {
  it('pairs an index action (with the seq as _id) with each document, ending with a newline', () => {
    const body = toEsBulk(events, { index: 'keel-events', serviceName: 'invoice-service' });
    expect(body.endsWith('}\n')).toBe(true);
    const lines = body.slice(0, -1).split('\n');
    expect(lines).toHaveLength(events.length * 2);
    for (let i = 0; i < events.length; i++) {
      const action = JSON.parse(lines[2 * i]!) as { index: { _index: string; _id: string } };
      const doc = JSON.parse(lines[2 * i + 1]!) as EcsDocument;
      expect(action).toEqual({ index: { _index: 'keel-events', _id: String(events[i]!.seq) } });
      expect(doc['event.sequence']).toBe(events[i]!.seq);
      expect(doc['service.name']).toBe('invoice-service');
    }
    expect(toEsBulk([], { index: 'keel-events' })).toBe('');
  });

  it('carries trace ids when told them', () => {
    const body = toEsBulk(events.slice(0, 1), {
      index: 'i',
      ids: () => ({ traceId: 'c'.repeat(32), spanId: 'd'.repeat(16) }),
    });
    const doc = JSON.parse(body.split('\n')[1]!) as EcsDocument;
    expect(doc['trace.id']).toBe('c'.repeat(32));
    expect(doc['span.id']).toBe('d'.repeat(16));
  });
});
