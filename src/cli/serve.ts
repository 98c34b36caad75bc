/**
 * `keel serve`: serves Prometheus metrics rebuilt from the event log — `/metrics`, `/healthz`,
 * `/readyz` — folding every event through the same `createMetrics().apply` the runtime uses, then
 * tailing the log by seq on each scrape, so a runtime still writing to the file shows up live.
 * Binds to loopback unless `--allow-remote`; Ctrl-C (SIGINT/SIGTERM) stops it.
 *
 * A finished log must fill the dashboard too, and Prometheus computes `rate()` and `increase()`
 * from changes it scraped, never from a counter's first value. So the first `/metrics` answer has
 * every counter and histogram at 0 (the state before the log), and every later one the log: the
 * whole log arrives as one increase, and rate-based panels (quantiles, ratios, per-second rates)
 * show it for their window (5 minutes), `increase(…[1h])` panels for an hour, and so on. The gauges
 * a runtime sets from its config are set from the same defaults `keel report` uses: the SLA
 * (`--sla-ms`), the tutorial's error targets with `error_rate_ratio` from the rolling windows
 * (100 outcomes), with `--budget-usd` the day's spend against it, and with `--weekly-volume` the
 * error budgets left.
 *
 * Prometheus sees a restarted `keel serve` as a counter reset: answering 0 again would count the
 * whole log a second time. So the first scrape of a log answers 0 only once: a small state file
 * (`--state`, by default `<db>.serve.json` beside a SQLite log) names the log whose zeros were
 * served, and a restart over the same log answers the log from its first scrape — the numbers a
 * `keel serve` that never stopped would answer.
 *
 * Exit codes: 0 stopped cleanly · 2 wrong arguments · 3 the log could not be read or the port bound.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { isIP } from 'node:net';
import type { Command } from 'commander';
import { Registry } from 'prom-client';
import { createErrorRateProjection, type ErrorRateProjection } from '../analysis.js';
import { DEFAULT_ERROR_TARGETS, type EventStore, type KeelEvent } from '../index.js';
import { createMetrics, serveMetrics, type KeelMetrics, type MetricsServer } from '../observability.js';
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
  slaMs?: string;
  budgetUsd?: string;
  weeklyVolume?: string;
  /** The state file that tells a restart the log's zeros were served (see the file's comment). */
  state?: string;
}

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/**
 * The log's first event, as the state file names it (sha256 of its fields): a log replaced at the
 * same path differs. (One that begins with the very same event is the same log to Prometheus: if
 * its counters are lower, Prometheus sees a reset and counts them from 0.)
 */
function identityOf(e: KeelEvent): string {
  return createHash('sha256')
    .update(JSON.stringify([e.seq, e.ts, e.type, e.workflowId, e.payload]))
    .digest('hex');
}

/**
 * What a `keel serve` remembers between runs: which log's first scrape (every counter at 0) it
 * already answered. Unreadable or foreign content counts as none; a state that cannot be written is
 * reported once and serving goes on.
 */
class ServeState {
  private warned = false;
  constructor(
    private readonly file: string | undefined,
    private readonly io: Io,
  ) {}
  /** The log whose zeros were served, if the file names one. */
  servedLog(): string | undefined {
    if (this.file === undefined) return undefined;
    try {
      const parsed = JSON.parse(fs.readFileSync(this.file, 'utf8')) as unknown;
      const log = (parsed as { zeroesServedFor?: unknown } | null)?.zeroesServedFor;
      return typeof log === 'string' ? log : undefined;
    } catch {
      return undefined;
    }
  }
  /** Records that `log`'s zeros were served (written whole: a crash leaves the old file or the new). */
  zeroesServed(log: string): void {
    if (this.file === undefined) return;
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, `${JSON.stringify({ zeroesServedFor: log })}\n`, { mode: 0o600 });
      fs.renameSync(tmp, this.file);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      if (this.warned) return;
      this.warned = true;
      this.io.err(
        `keel serve: cannot write the state file ${this.file} (${e instanceof Error ? e.message : String(e)}); ` +
          'a restart will count the log again. Pass --state <file> in a writable directory.',
      );
    }
  }
}

/** A registry that folds the log's new events into the metrics before each scrape. */
class TailingRegistry extends Registry {
  private metricsRef: KeelMetrics | undefined;
  private errorRates: ErrorRateProjection | undefined;
  private lastSeq = 0;
  private lastTs = 0;
  private scraped = false;
  /** The log's first event ({@link identityOf}) once read. */
  private log: string | undefined;
  private recorded = false;
  constructor(
    private readonly store: EventStore,
    private readonly state: ServeState,
  ) {
    super();
  }
  async attach(metrics: KeelMetrics, errorRates: ErrorRateProjection): Promise<void> {
    this.metricsRef = metrics;
    this.errorRates = errorRates;
    await this.tail();
    // A restart over a log whose zeros were served: the log from the first scrape, as before.
    if (this.log !== undefined && this.state.servedLog() === this.log) this.scraped = this.recorded = true;
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
    const errors = this.errorRates;
    if (!m || !errors) return 0;
    let n = 0;
    for await (const e of this.store.iterate({ afterSeq: this.lastSeq })) {
      this.log ??= identityOf(e);
      m.apply(e);
      errors.apply(e);
      this.lastSeq = e.seq;
      if (e.ts > this.lastTs) this.lastTs = e.ts;
      n++;
    }
    // The error-rate (and error-budget) gauges follow the rolling windows, as a runtime's do.
    if (n > 0)
      for (const t of errors.snapshot(this.lastTs)) {
        m.setErrorRate(t.taskType, t.errorRate);
        if (t.budget) m.setErrorBudgetRemaining(t.taskType, t.budget.remainingRatio);
      }
    return n;
  }
  override async metrics(): Promise<string> {
    await this.tail();
    const text = await super.metrics();
    const first = !this.scraped;
    this.scraped = true;
    // Recorded once the zeros were answered and the log has a first event (an empty log's zeros
    // are its figures anyway).
    if (!this.recorded && this.log !== undefined) {
      this.recorded = true;
      this.state.zeroesServed(this.log);
    }
    return first ? beforeTheLog(text) : text;
  }
}

/**
 * The exposition `text` with every counter and histogram sample at 0 (gauges as they are): what
 * the first scrape answers, so Prometheus sees the log arrive as an increase.
 */
export function beforeTheLog(text: string): string {
  const cumulative = new Set<string>();
  return text
    .split('\n')
    .map((line) => {
      if (line.startsWith('# TYPE ')) {
        const [, , name, type] = line.split(' ');
        if (name !== undefined && (type === 'counter' || type === 'histogram')) cumulative.add(name);
        return line;
      }
      if (line === '' || line.startsWith('#')) return line;
      const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0] ?? '';
      const family = cumulative.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
      if (!cumulative.has(family)) return line;
      const cut = line.lastIndexOf(' ');
      return `${line.slice(0, cut)} 0`;
    })
    .join('\n');
}

/** `vendor=10000,fraud=5000` as volumes per task type, naming the option and an example when it is not. */
function volumes(value: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of value.split(',')) {
    const m = /^\s*([^=\s]+)\s*=\s*(\d+)\s*$/.exec(part);
    if (!m || Number(m[2]) <= 0)
      throw new CliError(
        `--weekly-volume must be task=tasks-per-week pairs, e.g. vendor=10000,fraud=5000; got "${value}"`,
      );
    out[m[1] as string] = Number(m[2]);
  }
  return out;
}

/** A number option > 0, naming the option and an example when it is not. */
function positive(option: string, value: string, example: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0)
    throw new CliError(`${option} must be a number > 0, e.g. ${example}; got "${value}"`);
  return n;
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
    .option(
      '--sla-ms <n>',
      'latency SLA exported as latency_sla_p95_seconds: P95 target in ms (default 10000)',
    )
    .option(
      '--budget-usd <n>',
      "daily budget in USD: exports budget_limit_usd and the last day's budget_spend_usd",
    )
    .option(
      '--weekly-volume <task=n,...>',
      'tasks per week per task type: exports error_budget_remaining_ratio',
    )
    .option(
      '--state <file>',
      'remembers that the log was served, so a restart does not count it again (default <db>.serve.json; none with --store)',
    )
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
  const slaP95Ms = o.slaMs === undefined ? 10_000 : positive('--sla-ms', o.slaMs, '10000');
  const budgetUsd = o.budgetUsd === undefined ? undefined : positive('--budget-usd', o.budgetUsd, '100');
  const weekly = o.weeklyVolume === undefined ? undefined : volumes(o.weeklyVolume);

  const store = await openLog(o, { follow: true });
  let server: MetricsServer | undefined;
  let stopped = false;
  try {
    const stateFile = o.state ?? (o.store === undefined ? `${o.db}.serve.json` : undefined);
    const registry = new TailingRegistry(store, new ServeState(stateFile, io));
    const metrics = createMetrics({
      registry,
      slaP95Ms,
      errorTargets: DEFAULT_ERROR_TARGETS,
      ...(budgetUsd !== undefined ? { budgetLimitUsd: budgetUsd } : {}),
      ...(o.prefix !== undefined ? { prefix: o.prefix } : {}),
    });
    await registry.attach(
      metrics,
      createErrorRateProjection({
        targets: DEFAULT_ERROR_TARGETS,
        ...(weekly !== undefined ? { budget: { volumes: weekly } } : {}),
      }),
    );
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
