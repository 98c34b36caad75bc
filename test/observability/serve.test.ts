import { afterEach, describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/core/errors.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { serveMetrics, type MetricsServer } from '../../src/observability/serve.js';
import { syntheticStream } from './stream.js';

describe('serveMetrics', () => {
  let server: MetricsServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('serves /metrics in the Prometheus text format with its content type', async () => {
    const metrics = createMetrics();
    for (const event of syntheticStream(1)) metrics.apply(event);
    server = await serveMetrics({ registry: metrics.registry, port: 0 });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const body = await res.text();
    expect(body).toContain('# TYPE llm_calls_total counter');
    expect(body).toContain('llm_calls_total{model="gpt-4",task_type="vendor"} 2');
  });

  it('answers /healthz, /readyz from the probe, and 404 elsewhere', async () => {
    let ready = false;
    server = await serveMetrics({ registry: createMetrics().registry, port: 0, ready: () => ready });
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(503);
    ready = true;
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${server.url}/`)).status).toBe(404);
    expect((await fetch(`${server.url}/metrics/extra`)).status).toBe(404);
    expect((await fetch(`${server.url}/metrics`, { method: 'POST' })).status).toBe(405);
  });

  it('refuses a non-loopback host unless explicitly allowed, naming the field', async () => {
    const registry = createMetrics().registry;
    const error = await serveMetrics({ registry, port: 0, host: '0.0.0.0' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isConfigError(error)).toBe(true);
    expect(isConfigError(error) && error.field).toBe('host');
    expect(String(error)).toContain('allowNonLoopback');
  });

  it('closes idempotently and stops listening', async () => {
    const s = await serveMetrics({ registry: createMetrics().registry, port: 0 });
    await s.close();
    await s.close();
    await expect(fetch(`${s.url}/healthz`)).rejects.toThrow();
  });
});
