/**
 * The raw-bytes test: a workflow full of PII — in object keys, input values, nested values, class
 * instances, URLs with credentials and query emails, thrown Errors (message, cause), Map/Set
 * outputs, agent outputs — with the cache, the ECS log, metrics, spans and alert sinks on, then
 * `keel export` and `keel report --html`. Every byte Keel wrote is searched for each raw value and
 * for the unkeyed SHA-256 of each raw value and of its canonical JSON.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EXIT } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/main.js';
import { simulatedClock } from '../../src/core/clock.js';
import { canonicalJson } from '../../src/core/json.js';
import type { Alert } from '../../src/monitor/alert.js';
import { createRuntime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';
import { seq } from '../../src/supervisor/sequential.js';
import { named } from '../../src/supervisor/topology.js';
import { captureIo } from '../cli/io.js';

const EMAIL_KEY = 'jane.doe@example.co.uk';
const QUERY_EMAIL = 'erin@corp.example';
const PASSWORD = 'hunter2pass';
const URL_USER = 'svc-admin-7781';
const SSN = '078-05-1120';
const CARD = '4111111111111111';
const IBAN = 'DE89370400440532013000';
const PHONE = '+44 20 7946 0958';
const OUT_EMAIL = 'billing.contact@acme-example.com';
const ERROR_EMAIL = 'ops.oncall@corp.example';
const CAUSE_SSN = '219-09-9999';
const MAP_EMAIL = 'map.key@example.org';
const SET_CARD = '5500005555555559';

/** Each raw value, with the forms it took in the input (percent-encoded in a URL). */
const RAW = [
  EMAIL_KEY,
  QUERY_EMAIL,
  encodeURIComponent(QUERY_EMAIL),
  PASSWORD,
  URL_USER,
  SSN,
  CARD,
  IBAN,
  PHONE,
  OUT_EMAIL,
  ERROR_EMAIL,
  CAUSE_SSN,
  MAP_EMAIL,
  SET_CARD,
];

class Customer {
  constructor(
    readonly name: string,
    readonly card: string,
    readonly iban: string,
  ) {}
}

function input(): Record<string, unknown> {
  return {
    order: 'ACME-ORDER-7',
    [EMAIL_KEY]: { role: 'buyer', phone: PHONE },
    customer: new Customer('buyer', CARD, IBAN),
    portal: new URL(
      `https://${URL_USER}:${PASSWORD}@portal.example/orders?email=${encodeURIComponent(QUERY_EMAIL)}&page=2`,
    ),
    nested: { level: [{ deeper: { ssn: SSN } }] },
  };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'keel-raw-bytes-'));
  vi.stubEnv('KEEL_REDACT_KEY', '');
});
afterAll(() => {
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

/** Every file under `root`, recursively. */
function filesUnder(root: string): string[] {
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .map((f) => join(root, f))
    .filter((f) => statSync(f).isFile());
}

describe('nothing unredacted or unkeyed is stored', () => {
  it('leaves no raw PII and no unkeyed SHA-256 of it in any byte Keel wrote or exported', async () => {
    const db = join(dir, 'keel.db');
    const clock = simulatedClock();
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const alerts: Alert[] = [];
    const rt = createRuntime({
      db,
      clock,
      seed: 1,
      pricing: { sim: { inputPer1K: 0.001, outputPer1K: 0.002 } },
      errorTargets: { extraction: 0.5, check: 0.01 },
      monitor: { windowSize: 2, minSamples: 2 },
      budget: { dailyUsd: 1, alertAt: 0.0001 },
      logs: { destination: join(dir, 'keel.ecs.ndjson') },
      tracing: { tracer: provider.getTracer('keel-test'), captureContent: true },
      alerts: { rules: [{ sinks: [{ name: 'capture', deliver: (a) => void alerts.push(a) }] }] },
    });

    const outputs: unknown[] = [];
    const extract = agent({
      name: 'extract',
      taskType: 'extraction',
      model: 'sim',
      cache: { ttlMs: 86_400_000 },
      run: (given: Record<string, unknown>) => {
        const value = {
          [OUT_EMAIL]: 'billing owner',
          summary: `order ${String(given.order)} for ${OUT_EMAIL}, call ${PHONE}`,
          contacts: new Map<string, unknown>([[MAP_EMAIL, { ssn: SSN }]]),
          cards: new Set([SET_CARD]),
          customer: new Customer('buyer', CARD, IBAN),
          link: new URL(
            `https://${URL_USER}:${PASSWORD}@files.example/?to=${encodeURIComponent(QUERY_EMAIL)}`,
          ),
        };
        outputs.push(value);
        return Promise.resolve({ value, usage: { inputTokens: 100, outputTokens: 50 } });
      },
    });
    const check = agent({
      name: 'check',
      taskType: 'check',
      model: 'sim',
      run: (): Promise<never> => {
        const error = new Error(`verification failed for ${ERROR_EMAIL}`, {
          cause: new TypeError(`SSN ${CAUSE_SSN} does not match card ${CARD}`),
        });
        Object.assign(error, { status: 422, customer: ERROR_EMAIL });
        return Promise.reject(error);
      },
    });

    const intake = named('intake', seq(extract));
    const first = await rt.run(intake, input(), { workflowId: 'order-0001' });
    await rt.run(intake, input(), { workflowId: 'order-0002' }); // a cache hit
    for (let i = 0; i < 3; i++) {
      await rt
        .run(named('verify', seq(check)), input(), { workflowId: `verify-${i}` })
        .catch(() => undefined);
    }
    expect(first.value).toMatchObject({ [OUT_EMAIL]: 'billing owner' }); // the caller gets the real value
    await clock.advanceAsync(60_000);
    const metrics = (await rt.metrics?.metricsText()) ?? '';
    await rt.close();
    await provider.forceFlush();
    const spans = JSON.stringify(
      exporter.getFinishedSpans().map((s) => ({ name: s.name, attributes: s.attributes, events: s.events })),
    );
    await provider.shutdown(); // (clears the exporter)

    const exportFile = join(dir, 'export.ecs.ndjson');
    const exported = captureIo();
    expect(await runCli(['export', '--db', db, '--format', 'ecs', '--out', exportFile], exported.io)).toBe(
      EXIT.ok,
    );
    const html = join(dir, 'report.html');
    expect(await runCli(['report', '--db', db, '--html', html], captureIo().io)).toBe(EXIT.ok);

    const files = filesUnder(dir);
    const names = files.map((f) => f.slice(dir.length + 1)).sort();
    // the files this test means to search were all written
    for (const expected of [
      'keel.db',
      'keel.db.cache',
      'keel.ecs.ndjson',
      'export.ecs.ndjson',
      'report.html',
    ]) {
      expect(names).toContain(expected);
    }
    const sources: Record<string, string> = {
      metrics,
      spans,
      alerts: JSON.stringify(alerts),
      ...Object.fromEntries(files.map((f) => [f.slice(dir.length + 1), readFileSync(f).toString('latin1')])),
    };
    // what was searched is not empty: the run left its traces everywhere
    expect(spans).toContain('invoke_workflow');
    expect(alerts.length).toBeGreaterThan(0);
    expect(metrics).toContain('extraction');
    expect(sources['export.ecs.ndjson']).toContain('ACME-ORDER-7');
    expect(sources['keel.ecs.ndjson']).toContain('order-0001');
    expect(sources['report.html']).toContain('intake');

    const hashes = new Map<string, string>();
    const hashOf = (label: string, text: string): void => void hashes.set(sha256(text), label);
    for (const raw of RAW) {
      hashOf(raw, raw);
      hashOf(`json ${raw}`, JSON.stringify(raw));
    }
    hashOf('input', canonicalJson(input()));
    for (const agentName of ['extract', 'check']) {
      hashOf(`cache key of ${agentName}`, canonicalJson([agentName, '1', input()]));
    }
    for (const out of outputs) hashOf('output', canonicalJson(out));

    for (const [source, bytes] of Object.entries(sources)) {
      for (const raw of RAW) {
        const at = bytes.indexOf(raw);
        expect(at < 0, `${raw} in ${source}: …${bytes.slice(Math.max(0, at - 300), at + 60)}`).toBe(true);
      }
      const lower = bytes.toLowerCase();
      for (const [hex, label] of hashes)
        expect(lower.includes(hex), `sha256 of ${label} in ${source}`).toBe(false);
    }
  });
});
