/**
 * `keel serve`: serves Prometheus metrics rebuilt from the event log — `/metrics`, `/healthz`,
 * `/readyz` — folding every event through the same `createMetrics().apply` the runtime uses, then
 * tailing the log by seq on each scrape, so a runtime still writing to the file shows up live.
 * Binds to loopback unless `--allow-remote`; Ctrl-C (SIGINT/SIGTERM) stops it.
 *
 * Exit codes: 0 stopped cleanly · 2 wrong arguments · 3 the log could not be read or the port bound.
 */
import { isIP } from 'node:net';
import type { Command } from 'commander';
import { Registry } from 'prom-client';
import { createMetrics, serveMetrics, type KeelMetrics, type MetricsServer } from '../observability.js';
import type { EventStore } from '../index.js';
import { CliError, EXIT, STORE_OPTION_HELP, SCHEMA_OPTION_HELP, logName, openLog, type Io } from './io.js';

/**
 * An {@link Io} that can also stop a long-running command (`keel serve`): aborting `signal` ends
 * it as Ctrl-C would. Tests pass one to `runCli`.
 */
export interface StoppableIo extends Io {
  readonly signal?: AbortSignal;
}

/** Options of {@link serveLog}. */
export interface ServeFlags {
  db: string;
  store?: string;
  schema?: string;
  port: string;
  host: string;
  allowRemote?: boolean;
  prefix?: string;
}

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/** A registry that folds the log's new events into the metrics before each scrape. */
class TailingRegistry extends Registry {
  private metricsRef: KeelMetrics | undefined;
  private lastSeq = 0;
  constructor(private readonly store: EventStore) {
    super();
  }
  async attach(metrics: KeelMetrics): Promise<void> {
    this.metricsRef = metrics;
    await this.tail();
  }
  private tailing: Promise<number> | undefined;
  /** Applies every event after the last one applied; returns how many. Concurrent scrapes share one pass. */
  tail(): Promise<number> {
    this.tailing ??= this.readNew().finally(() => {
      this.tailing = undefined;
    });
    return this.tailing;
  }
  private async readNew(): Promise<number> {
    const m = this.metricsRef;
    if (!m) return 0;
    let n = 0;
    for await (const e of this.store.iterate({ afterSeq: this.lastSeq })) {
      m.apply(e);
      this.lastSeq = e.seq;
      n++;
    }
    return n;
  }
  override async metrics(): Promise<string> {
    await this.tail();
    return super.metrics();
  }
}

/** Registers `keel serve`. */
export function registerServe(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('serve')
    .description('serve Prometheus /metrics (rebuilt from the log, then live), /healthz and /readyz')
    .option('--db <file>', 'event log', 'keel.db')
    .option('--store <url>', STORE_OPTION_HELP)
    .option('--schema <name>', SCHEMA_OPTION_HELP)
    .option('--port <n>', 'TCP port (0 picks a free one; the URL is printed)', '9464')
    .option('--host <address>', 'interface to bind', '127.0.0.1')
    .option('--allow-remote', 'allow a non-loopback --host: metrics reveal models, task types and spend')
    .option('--prefix <prefix>', 'prepended to every metric name, e.g. keel_')
    .addHelpText(
      'after',
      '\nExit codes: 0 stopped with Ctrl-C, 2 wrong arguments, 3 the log could not be read or the port bound.',
    )
    .action(async (o: ServeFlags) => {
      await serveLog(io, o);
      setExit(EXIT.ok);
    });
}

/**
 * Serves the log's metrics until Ctrl-C (or the Io's signal): what `keel serve` and
 * `keel demo --serve-metrics` run.
 */
export async function serveLog(io: Io, o: ServeFlags): Promise<void> {
  const port = Number(o.port);
  if (!/^\d+$/.test(o.port) || port > 65_535)
    throw new CliError(`--port must be a whole number in [0, 65535] (0 picks a free port), got "${o.port}"`);
  if (!isLoopback(o.host) && o.allowRemote !== true)
    throw new CliError(
      `--host ${o.host} is not a loopback address: metrics reveal models, task types and spend to other machines. ` +
        'Use 127.0.0.1, or add --allow-remote if that is intended.',
    );
  if (o.prefix !== undefined && !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(o.prefix))
    throw new CliError(`--prefix must be a Prometheus name prefix like keel_, got "${o.prefix}"`);

  const store = await openLog(o, { follow: true });
  let server: MetricsServer | undefined;
  let stopped = false;
  try {
    const registry = new TailingRegistry(store);
    const metrics = createMetrics({ registry, ...(o.prefix !== undefined ? { prefix: o.prefix } : {}) });
    await registry.attach(metrics);
    try {
      server = await serveMetrics({
        registry,
        port,
        host: o.host,
        allowNonLoopback: o.allowRemote === true,
        ready: () => !stopped,
      });
    } catch (e) {
      throw new CliError(
        `could not serve on ${o.host}:${port}: ${e instanceof Error ? e.message : String(e)}. Pick another --port (0 picks a free one).`,
        EXIT.error,
      );
    }
    io.out(`serving ${server.url}/metrics (also /healthz, /readyz) from ${logName(o)}; Ctrl-C stops`);
    const signal = (io as StoppableIo).signal;
    await new Promise<void>((done) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        signal?.removeEventListener('abort', stop);
        done();
      };
      if (signal?.aborted) return done();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      signal?.addEventListener('abort', stop, { once: true });
    });
    stopped = true;
  } finally {
    await server?.close();
    await store.close();
  }
}
