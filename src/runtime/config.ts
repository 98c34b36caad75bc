/**
 * The configuration of `createRuntime()`: its type, documented field by field, and the schema that
 * validates it at the boundary with a message naming the field and the fix.
 */
import type { DurableConfig } from '../durable/engine.js';
import type { Observer, InspectionEvent } from 'xstate';
import { z } from 'zod';
import type { Tracer } from '@opentelemetry/api';
import type { DestinationStream } from 'pino';
import type { Clock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import type { BudgetConfig } from '../cost/budget.js';
import type { ModelPrice } from '../cost/pricing.js';
import type { ErrorTargets } from '../monitor/error-budget.js';
import type { AlertRule, SinkFailure } from '../monitor/router.js';
import { checkMonitoringConfig } from '../monitor/runtime-config.js';
import { isCacheBackend, type BudgetBackend, type CacheBackend } from '../backends.js';
import { assertNameHasNoPii } from '../compliance/identifiers.js';
import type { RedactorConfig } from '../compliance/config.js';
import type { Redactor } from '../compliance/redact.js';
import type { EcsLogLevel } from '../observability/ecs.js';
import type { EventStore } from '../eventlog/store.js';
import type { BreakerConfig } from '../supervisor/agent.js';
import { isLimitsBackend, type LimitsConfig } from '../limits/backend.js';

/** Configuration of {@link createRuntime}. Every field is optional. */
export interface RuntimeConfig {
  /** SQLite file of the event log; `':memory:'` for tests (default `keel.db`). */
  db?: string;
  /** A ready event store (e.g. Postgres) instead of `db`. */
  store?: EventStore;
  /** `'normal'` (WAL, synchronous=NORMAL: survives a killed process; default) or `'fsync'` (survives power loss). */
  durability?: 'normal' | 'fsync';
  /**
   * Where the SQLite log chains, inserts and commits: `'auto'` (default: inline until commits
   * keep filling whole batches, then a writer thread while the load lasts), `'inline'` (always
   * this thread) or `'thread'` (always a writer thread). See `SqliteStoreOptions.writer`.
   */
  writer?: 'inline' | 'thread' | 'auto';
  /**
   * Which model calls wait for the log before they are made (write-ahead). `'always'` (default):
   * every call that can cost money starts only once what was emitted before it is committed — its
   * `cost.reserved` with a budget, else its `agent.invoked` — so a call the log cannot record is
   * never made. `'reservations'`: only calls holding a budget reservation wait (for their
   * `cost.reserved`); without a budget a call starts at once, one durable commit sooner, and a log
   * that then refuses its events cancels it and fails the workflow with the log's error (a call
   * made but not recorded is possible; nothing a caller was told about is lost). See README
   * "Budgets".
   */
  writeAhead?: 'always' | 'reservations';
  /**
   * How long a commit waits on another process's lock of the SQLite file before failing with
   * `DatabaseLockedError`, in ms (default 5000). Inline, the wait blocks the event loop; with
   * `writer: 'thread'` only the writer thread waits (with `'auto'`, for commits made there).
   */
  busyTimeoutMs?: number;
  /**
   * Permission bits of the files the runtime creates: the SQLite log (and its `-wal`/`-shm`), the
   * cache file and the ECS log file (default `0o600`: only the service's user reads audit data and
   * raw outputs). `0o640` with a shared group lets auditors run the read-only `keel` commands.
   * Existing files keep their mode.
   */
  fileMode?: number;
  /** Source of time (default the wall clock; `simulatedClock()` in tests). */
  clock?: Clock;
  /** Seed of every random draw (retry jitter, AgentContext.rng, workflow ids); default random. */
  seed?: number | string;
  /** Model prices in USD per 1K tokens, added to / overriding the built-in table. */
  pricing?: Record<string, ModelPrice>;
  /**
   * Daily budgets: alert at `alertAt` (0.8), enforce at 100% by rejecting or downgrading. With
   * `shared: redis(url)` (from `keel/redis`) every process pointing at that Redis shares one budget:
   * reservations are atomic across them and each alert fires once for the fleet.
   */
  budget?: BudgetConfig & { shared?: BudgetBackend };
  /**
   * Error-rate targets per task type (the seed's defaults: payment 0.001, vendor 0.05, routing 0.10,
   * fraud 0.15). A rolling window per task type alerts once when its rate passes the target.
   */
  errorTargets?: ErrorTargets;
  /** Rolling error windows: `windowSize` tasks (default 100) or `windowMs`; weekly error budgets by volume. */
  monitor?: {
    windowSize?: number;
    windowMs?: number;
    minSamples?: number;
    /**
     * Expected tasks per week by task type: error budgets alert at 80% consumed. A week is an ISO
     * week, Monday 00:00 to Monday 00:00 in `timeZone`; a restart counts the week's failures again
     * from the log.
     */
    weeklyVolume?: Record<string, number>;
    /** IANA time zone of the error budgets' weeks, e.g. `Europe/Paris` (default `UTC`). */
    timeZone?: string;
  };
  /**
   * Latency SLA: P95 of workflow latency over a rolling window (default 10 s over 1 h). With
   * `ttftP95Ms`, streaming agents' P95 time to first token per agent is a second SLA, alerting the
   * same way (alert `kind: 'sla'`, `data.scope: 'ttft'`).
   */
  sla?: { p95Ms: number; windowMs?: number; minSamples?: number; ttftP95Ms?: number };
  /** Where alerts go: rules match by severity/kind and deliver to sinks (console, file, webhook, PagerDuty, Slack). */
  alerts?: { rules: readonly AlertRule[]; timeoutMs?: number; onSinkError?: (failure: SinkFailure) => void };
  /**
   * The TTL cache agents opt into with `cache: { ttlMs }`: a memory LRU in front of a SQLite file kept
   * apart from the audit log (it holds raw outputs). Default `<db>.cache` (memory only for `':memory:'`).
   * `redis(url)` (from `keel/redis`) shares one cache across processes: hits and single-flight cross
   * them, and a Redis outage turns lookups into misses (reported on `rt.on('error')`), never failures.
   */
  cache?: false | { path?: string; maxEntries?: number; maxStaleMs?: number } | CacheBackend;
  /**
   * PII redaction applied to every event before it is stored (and so before metrics, spans, logs and
   * exports see it): emails, phones, cards, IBANs, SSNs, IPs, secrets, names, custom patterns. On by
   * default; tokens, `inputHash` and cache keys are keyed HMACs under `hmacKey` (or KEEL_REDACT_KEY;
   * default: a key file `<db>.key` created once with mode 0600, or a random key per process without a
   * db file). `false` turns redaction off (hashes stay keyed).
   */
  redact?: false | RedactorConfig;
  /**
   * Retention per event class, in days (defaults: operational 90, audit 2557 ≈ 7 years), applied by
   * `rt.applyRetention()` or `keel retention apply` through the log's one sanctioned prune path.
   */
  retention?: { operationalDays?: number; auditDays?: number };
  /**
   * Prometheus metrics in a registry the runtime owns (`rt.metrics`); `false` turns them off.
   * `tenantLabels`: how many tenants get their own `tenant` label on the call and cost counters
   * (default 20; the first tenants seen by this process, later ones share `tenant="other"`; 0: no
   * tenant label). See `MetricsOptions.tenantLabels`.
   */
  metrics?: false | { prefix?: string; tenantLabels?: number };
  /**
   * OpenTelemetry spans (`invoke_workflow` → `invoke_agent` → `chat`, GenAI attributes) on the given
   * tracer, or the global one (`trace.getTracer('keel')`; a no-op until you register an SDK).
   */
  tracing?: false | { tracer?: Tracer; captureContent?: boolean; providerName?: string };
  /** Elasticsearch-ready ECS JSON lines (pino + @elastic/ecs-pino-format), correlated with the spans. */
  logs?: { destination: string | DestinationStream; serviceName?: string; level?: EcsLogLevel };
  /**
   * Provider rate limits by key, shared by every workflow of the runtime (README "Rate limits").
   * A key is `provider:model` — the agent's `providerName` (which `llmAgent` sets to its
   * provider's `name`) and the model the call goes to, e.g. `'openai:gpt-4'` — or a bare model id,
   * e.g. `'gpt-4'`, which limits that model whoever serves it. A call takes the `provider:model`
   * key when it has limits, else the bare model's; a call whose keys have no limits is not limited.
   * Each key: `rpm` (requests a minute), `tpm` (tokens a minute: the budget's usage estimate,
   * settled to the reported usage), `concurrency` (calls in flight), `maxQueue` (calls that may
   * wait, default 1,000) and `maxQueueMs` (longest wait, default 30,000). A call that cannot wait
   * is shed: it fails with `RateLimitedError` (category `rate_limited`) and never reaches the
   * provider. `shared: redis(url)` (from `keel/redis`) keeps the buckets on Redis for the fleet.
   */
  limits?: LimitsConfig;
  /** Defaults for breakers by name; an agent's own `breaker` fields override them. */
  breakers?: Record<string, Omit<BreakerConfig, 'name'>>;
  /** XState inspection observer (e.g. `createBrowserInspector().inspect` or `@statelyai/inspect`'s WebSocket inspector). */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** Durable execution: the lease that tells other processes this runtime is alive (README "Durable execution"). */
  durable?: DurableConfig;
}

/** A number field of a limit: `what` names the unit and gives an example. */
function limitNumber(what: string, min: 0 | 1, whole: boolean) {
  const error = `must be ${whole ? 'a whole number of ' : ''}${what}`;
  const n = z.number({ error }).min(min, { error });
  return (whole ? n.int({ error }) : n.positive({ error })).optional();
}

const limitSpecSchema = z.strictObject(
  {
    rpm: limitNumber('requests per minute > 0, e.g. 600', 0, false),
    tpm: limitNumber('tokens per minute > 0, e.g. 90_000', 0, false),
    concurrency: limitNumber('calls in flight >= 1, e.g. 20', 1, true),
    maxQueue: limitNumber('calls that may wait >= 0 (0: shed at once), e.g. 1000', 0, true),
    maxQueueMs: limitNumber('ms a call may wait >= 0 (0: shed at once), e.g. 30_000', 0, true),
  },
  { error: 'must be { rpm?, tpm?, concurrency?, maxQueue?, maxQueueMs? }, e.g. { rpm: 600, tpm: 90_000 }' },
);

const configSchema = z.strictObject({
  db: z.string().min(1).optional(),
  store: z
    .custom<EventStore>((v) => typeof v === 'object' && v !== null && 'append' in v, {
      message: 'must be an EventStore (e.g. from openSqliteStore())',
    })
    .optional(),
  durability: z.enum(['normal', 'fsync']).optional(),
  writer: z.enum(['inline', 'thread', 'auto']).optional(),
  writeAhead: z
    .enum(['always', 'reservations'], {
      error:
        "must be 'always' (default: every priced call waits until the log recorded it) or 'reservations' (only calls holding a budget reservation wait)",
    })
    .optional(),
  busyTimeoutMs: z
    .number({ error: 'must be a whole number of ms >= 0, e.g. 5000' })
    .int({ error: 'must be a whole number of ms >= 0, e.g. 5000' })
    .min(0, { error: 'must be a whole number of ms >= 0, e.g. 5000' })
    .optional(),
  fileMode: z
    .number()
    .int()
    .refine((m) => m >= 0 && m <= 0o777 && (m & 0o600) === 0o600, {
      error: 'must be permission bits that let the owner read and write, e.g. 0o600 or 0o640',
    })
    .optional(),
  clock: z
    .custom<Clock>((v) => typeof v === 'object' && v !== null && typeof (v as Clock).now === 'function', {
      message: 'must be a Clock ({ now, setTimeout, clearTimeout }), e.g. simulatedClock()',
    })
    .optional(),
  seed: z.union([z.number(), z.string()]).optional(),
  pricing: z.record(z.string(), z.unknown()).optional(),
  breakers: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
  limits: z
    .object(
      {
        shared: z
          .custom((v) => isLimitsBackend(v), {
            error: "must be a shared limits backend, e.g. redis('redis://127.0.0.1:6379') from 'keel/redis'",
          })
          .optional(),
      },
      { error: "must be an object of limits by key, e.g. { 'openai:gpt-4': { rpm: 600 } }" },
    )
    .catchall(limitSpecSchema)
    .refine((limits) => !Object.hasOwn(limits, ''), {
      error: 'has an empty key; a key names a model, e.g. "openai:gpt-4" (provider:model) or "gpt-4"',
    })
    .optional(),
  budget: z.record(z.string(), z.unknown()).optional(),
  // errorTargets, monitor, sla and alerts: values checked by checkMonitoringConfig, by their paths here.
  errorTargets: z.unknown().optional(),
  monitor: z
    .strictObject({
      windowSize: z.unknown().optional(),
      windowMs: z.unknown().optional(),
      minSamples: z.unknown().optional(),
      weeklyVolume: z.unknown().optional(),
      timeZone: z.string({ error: 'must be an IANA time zone, e.g. "UTC" or "Europe/Paris"' }).optional(),
    })
    .optional(),
  sla: z
    .strictObject({
      p95Ms: z.unknown().optional(),
      windowMs: z.unknown().optional(),
      minSamples: z.unknown().optional(),
      ttftP95Ms: z.unknown().optional(),
    })
    .optional(),
  alerts: z
    .strictObject({
      rules: z.unknown().optional(),
      timeoutMs: z.unknown().optional(),
      onSinkError: z.unknown().optional(),
    })
    .optional(),
  metrics: z
    .union([
      z.literal(false),
      z.strictObject({
        prefix: z
          .string()
          .regex(/^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/, {
            error: 'must be a Prometheus name prefix of letters, digits and _ (e.g. "keel_")',
          })
          .optional(),
        // Checked below, so the error names metrics.tenantLabels (a union reports only `metrics`).
        tenantLabels: z.unknown().optional(),
      }),
    ])
    .optional(),
  cache: z
    .union([
      z.literal(false),
      z.custom<CacheBackend>(isCacheBackend),
      z.strictObject({
        path: z.string().min(1).optional(),
        maxEntries: z.number().int().nonnegative().optional(),
        maxStaleMs: z.number().nonnegative().optional(),
      }),
    ])
    .optional(),
  redact: z.union([z.literal(false), z.object({}).loose()]).optional(),
  retention: z
    .strictObject({
      operationalDays: z.number().positive().optional(),
      auditDays: z.number().positive().optional(),
    })
    .optional(),
  tracing: z.union([z.literal(false), z.object({}).loose()]).optional(),
  logs: z
    .object({
      destination: z.union(
        [
          z.string().min(1),
          z.custom<DestinationStream>(
            (v) =>
              typeof v === 'object' && v !== null && typeof (v as DestinationStream).write === 'function',
          ),
        ],
        { error: 'must be a file path or a writable stream, e.g. "logs/keel.ndjson" or process.stdout' },
      ),
      level: z.enum(['error', 'warn', 'info'], { error: "must be 'error', 'warn' or 'info'" }).optional(),
    })
    .loose()
    .optional(),
  inspect: z.unknown().optional(),
  durable: z
    .strictObject({
      leaseMs: z
        .number({ error: 'must be a number of ms >= 1000, e.g. 30_000' })
        .min(1000, { error: 'must be a number of ms >= 1000, e.g. 30_000' })
        .optional(),
    })
    .optional(),
});

/** Validates the runtime config, naming the field and the fix. */
export function parseConfig(config: unknown): RuntimeConfig {
  const parsed = configSchema.safeParse(config ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.length ? issue.path.join('.') : 'config';
    const message =
      issue?.code === 'unrecognized_keys'
        ? `unknown option(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}; ${issue.path[0] === 'limits' ? 'a limit takes rpm, tpm, concurrency, maxQueue and maxQueueMs' : 'see RuntimeConfig for the supported ones'}`
        : (issue?.message ?? 'invalid');
    throw new ConfigError(field, message);
  }
  checkMonitoringConfig(parsed.data);
  const tenantLabels = parsed.data.metrics === false ? undefined : parsed.data.metrics?.tenantLabels;
  if (
    tenantLabels !== undefined &&
    !(typeof tenantLabels === 'number' && Number.isInteger(tenantLabels) && tenantLabels >= 0)
  )
    throw new ConfigError(
      'metrics.tenantLabels',
      `must be a whole number of tenants >= 0 (default 20; 0 drops the tenant label), got ${typeof tenantLabels === 'number' ? String(tenantLabels) : typeof tenantLabels}`,
    );
  return config as RuntimeConfig;
}

/** Refuses task types and breaker names in the config that carry PII (they become metric labels). */
export function assertConfigNamesHaveNoPii(config: RuntimeConfig, redactor: Redactor): void {
  for (const k of Object.keys(config.errorTargets ?? {})) assertNameHasNoPii('errorTargets', k, redactor);
  for (const k of Object.keys(config.monitor?.weeklyVolume ?? {}))
    assertNameHasNoPii('monitor.weeklyVolume', k, redactor);
  for (const k of Object.keys(config.breakers ?? {})) assertNameHasNoPii('breakers', k, redactor);
  for (const k of Object.keys(config.limits ?? {}))
    if (k !== 'shared') assertNameHasNoPii('limits', k, redactor);
}
