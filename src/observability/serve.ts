/**
 * A small HTTP endpoint for Prometheus to scrape: `/metrics`, plus `/healthz` and `/readyz` probes.
 * It binds to loopback by default; exposing metrics on another interface is an explicit choice.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Registry } from 'prom-client';
import { ConfigError } from '../core/errors.js';

/** Options of {@link serveMetrics}. */
export interface ServeMetricsOptions {
  /** Registry to expose, e.g. `createMetrics().registry`. */
  registry: Registry;
  /** TCP port; `0` picks a free one (read it back from `url`). */
  port: number;
  /** Interface to bind (default `127.0.0.1`). Non-loopback hosts need `allowNonLoopback: true`. */
  host?: string;
  /**
   * Permits binding a non-loopback host such as `0.0.0.0` (default false): metrics reveal models,
   * task types and spend, so exposing them beyond the machine must be deliberate.
   */
  allowNonLoopback?: boolean;
  /** Readiness probe for `/readyz`: 200 when it returns true, 503 otherwise (default: always ready). */
  ready?: () => boolean;
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** Base URL, e.g. `http://127.0.0.1:9464` (the bound port, also when `port` was 0). */
  readonly url: string;
  /** Stops accepting connections and closes idle ones; resolves once closed. Idempotent. */
  close(): Promise<void>;
}

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/**
 * Serves `registry` over HTTP: `GET /metrics` (Prometheus text format), `GET /healthz` (200),
 * `GET /readyz` (200 or 503 from `ready`); 404 for any other path, 405 for other methods.
 *
 * @example
 * const metrics = createMetrics();
 * const server = await serveMetrics({ registry: metrics.registry, port: 9464 });
 * console.log(`scrape ${server.url}/metrics`);
 * await server.close();
 */
export async function serveMetrics(options: ServeMetricsOptions): Promise<MetricsServer> {
  const { registry, port, ready } = options;
  const host = options.host ?? '127.0.0.1';
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new ConfigError('port', `must be an integer in [0, 65535] (0 picks a free port), got ${port}`);
  if (!isLoopback(host) && options.allowNonLoopback !== true)
    throw new ConfigError(
      'host',
      `"${host}" is not a loopback address; metrics would be reachable from other machines. ` +
        'Use 127.0.0.1, or pass allowNonLoopback: true if that is intended.',
    );

  const send = (res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8') => {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path !== '/metrics' && path !== '/healthz' && path !== '/readyz')
      return send(res, 404, 'not found: try /metrics, /healthz or /readyz\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, 'method not allowed\n');
    }
    if (path === '/healthz') return send(res, 200, 'ok\n');
    if (path === '/readyz') {
      const isReady = ready === undefined || ready();
      return send(res, isReady ? 200 : 503, isReady ? 'ready\n' : 'not ready\n');
    }
    const body = await registry.metrics();
    send(res, 200, body, registry.contentType);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, `metrics collection failed: ${String(error)}\n`);
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${boundPort}`,
    close: () =>
      (closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeIdleConnections();
      })),
  };
}
