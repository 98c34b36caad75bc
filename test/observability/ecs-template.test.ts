/**
 * `dashboards/ecs-index-template.json` maps every field Keel's ECS documents carry (from `toEcs`, the
 * pino sink and `keel export`), with cost as a floating type: free events write `0`, which dynamic
 * mapping would take as `long` and then truncate every later cost.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_EVENT_CLASS,
  EVENT_VERSIONS,
  type KeelEvent,
  type KeelEventType,
} from '../../src/eventlog/events.js';
import { createEcsLogSink, toEcs } from '../../src/observability/ecs.js';
import { PAYLOADS } from '../eventlog/contract.js';
import { syntheticStream } from './stream.js';

interface Mapping {
  type?: string;
  properties?: Record<string, Mapping>;
}
interface IndexTemplate {
  index_patterns: string[];
  template: { mappings: { dynamic: boolean; properties: Record<string, Mapping> } };
}

const template = JSON.parse(
  readFileSync(fileURLToPath(new URL('../../dashboards/ecs-index-template.json', import.meta.url)), 'utf8'),
) as IndexTemplate;

/** The leaf field type of a dotted path in the template, or undefined when it is not mapped. */
function typeOf(path: string): string | undefined {
  let props: Record<string, Mapping> | undefined = template.template.mappings.properties;
  let leaf: Mapping | undefined;
  for (const part of path.split('.')) {
    leaf = props?.[part];
    if (leaf === undefined) return undefined;
    props = leaf.properties;
  }
  return leaf?.type;
}

/** Every leaf field of an ECS document as Elasticsearch sees it (dotted keys and objects alike). */
function fieldsOf(doc: Record<string, unknown>, prefix = ''): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [key, value] of Object.entries(doc)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    if (value !== null && typeof value === 'object' && !Array.isArray(value))
      for (const [p, v] of fieldsOf(value as Record<string, unknown>, path)) out.set(p, v);
    else out.set(path, value);
  }
  return out;
}

/** One committed event of every type, with the event-log contract's payloads (awkward ones included). */
function everyType(): KeelEvent[] {
  return (Object.keys(PAYLOADS) as KeelEventType[]).map(
    (type, i) =>
      ({
        seq: i + 1,
        ts: Date.UTC(2026, 0, 1) + i,
        workflowId: `wf-${i}`,
        type,
        v: EVENT_VERSIONS[type],
        class: DEFAULT_EVENT_CLASS[type],
        payload: PAYLOADS[type],
      }) as KeelEvent,
  );
}

describe('the ECS index template', () => {
  const events = [...syntheticStream(2), ...everyType()];

  it('is a composable index template for keel indices with explicit mappings', () => {
    expect(template.index_patterns).toContain('keel-*');
    expect(template.template.mappings.dynamic).toBe(false);
  });

  it('maps every field the sink and toEcs write, with the type the values need', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keel-ecs-template-'));
    try {
      const path = join(dir, 'keel.ndjson');
      const sink = createEcsLogSink({ destination: path, serviceName: 'invoice-service' });
      for (const e of events) sink.write(e, { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16) });
      await sink.close();
      const docs = [
        ...readFileSync(path, 'utf8')
          .trimEnd()
          .split('\n')
          .map((line) => JSON.parse(line) as Record<string, unknown>),
        ...events.map((e) => toEcs(e, { serviceName: 's' }) as unknown as Record<string, unknown>),
      ];
      const unmapped = new Set<string>();
      const costs: unknown[] = [];
      for (const doc of docs)
        for (const [field, value] of fieldsOf(doc)) {
          const type = typeOf(field);
          if (type === undefined) unmapped.add(field);
          if (field === 'keel.cost_usd') costs.push(value);
          if (typeof value === 'number' && type !== undefined)
            expect(['long', 'integer', 'double', 'scaled_float'], field).toContain(type);
          if (typeof value === 'string' && type !== undefined)
            expect(['keyword', 'match_only_text', 'date'], field).toContain(type);
        }
      expect([...unmapped]).toEqual([]);
      expect(new Set(docs.map((d) => d['event.action'])).size).toBe(Object.keys(PAYLOADS).length);
      // Every cost written is a number (never a string, never missing its type on a free event).
      for (const c of costs) expect(typeof c).toBe('number');
      // Free events write an integral 0 first; the mapping must still hold fractional costs.
      expect(costs).toContain(0);
      expect(costs.some((c) => typeof c === 'number' && !Number.isInteger(c))).toBe(true);
      expect(typeOf('keel.cost_usd')).toBe('double');
      expect(typeOf('@timestamp')).toBe('date');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
