/**
 * The parts `createRuntime()` builds, each by a small factory returning `{ part, close }` for the
 * runtime's one teardown stack (`teardown.ts`). The composition root (`src/runtime.ts`) decides the
 * order: a part is closed before the parts built ahead of it.
 */
import { createActor, type AnyActorRef } from 'xstate';
import { runtimeMachine } from '../../machines/runtime.machine.js';
import type { Clock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import { createBudgets, RESTORED_BUDGET_EVENTS, type BudgetDeps, type Budgets } from '../cost/budget.js';
import { createCache, type Cache } from '../cache/cache.js';
import { cacheKeyer } from '../cache/key.js';
import { createCallPricer, type Pricing } from '../cost/pricing.js';
import { isBudgetBackend, isCacheBackend, type SharedBudgetsLike } from '../backends.js';
import { resolveRedactionKey } from '../compliance/key.js';
import { resolveRedactorConfig } from '../compliance/config.js';
import { createAlertRouter, type AlertRouter } from '../monitor/router.js';
import { DEFAULT_ERROR_TARGETS } from '../monitor/error-budget.js';
import { createEcsLogSink, type EcsLogSink } from '../observability/ecs.js';
import { createMetrics, type KeelMetrics } from '../observability/metrics.js';
import type { MetricsServer } from '../observability/serve.js';
import { createTracing, type KeelTracing } from '../observability/tracing.js';
import { SYSTEM_WORKFLOW_ID, type NewEvent } from '../eventlog/events.js';
import { openSqliteStore } from '../eventlog/sqlite.js';
import { withEvents, type EventStore } from '../eventlog/store.js';
import type { Services } from '../supervisor/scope.js';
import { createBulkheads, type Bulkheads } from '../limits/bulkheads.js';
import { openLimits } from '../limits/backend.js';
import type { Limiter } from '../limits/limiter.js';
import type { BreakerRegistry } from './breakers.js';
import type { RuntimeConfig } from './config.js';
import type { Folds } from './fan-out.js';
import type { RestoreStep } from './restore.js';
import type { Part } from './teardown.js';

/**
 * The event log: the store given in `config.store`, or the SQLite file `config.db`. `rt.close()`
 * commits what is pending and closes it; a failed constructor closes only a log it opened itself.
 */
export function openLog(config: RuntimeConfig, clock: Clock): Part<EventStore> {
  const store =
    config.store ??
    openSqliteStore({
      path: config.db ?? 'keel.db',
      clock,
      durability: config.durability ?? 'normal',
      writer: config.writer ?? 'auto',
      ...(config.busyTimeoutMs !== undefined ? { busyTimeoutMs: config.busyTimeoutMs } : {}),
      ...(config.fileMode !== undefined ? { fileMode: config.fileMode } : {}),
    });
  return {
    part: store,
    close: (reason) => (reason === 'failed' && config.store ? undefined : store.close()),
  };
}

/** The XState system (`systemId: 'keel'`) whose children are the breakers and the budget actor. */
export function startActorSystem(config: RuntimeConfig, clock: Clock): Part<AnyActorRef> {
  const root = createActor(runtimeMachine, {
    clock,
    systemId: 'keel',
    ...(config.inspect ? { inspect: config.inspect } : {}),
  }).start();
  return { part: root, close: () => root.stop() };
}

/** ECS JSON lines (`config.logs`); closed after the log, whose last commits it still writes. */
export function openEcsLog(config: RuntimeConfig): Part<EcsLogSink | undefined> {
  if (!config.logs) return { part: undefined, close: () => undefined };
  const sink = createEcsLogSink({
    destination: config.logs.destination,
    serviceName: config.logs.serviceName ?? 'keel',
    ...(config.logs.level ? { level: config.logs.level } : {}),
    ...(config.fileMode !== undefined ? { fileMode: config.fileMode } : {}),
  });
  return { part: sink, close: () => sink.close() };
}

/** Prometheus metrics in a registry of their own, unless `metrics: false`. */
export function createRuntimeMetrics(config: RuntimeConfig): KeelMetrics | undefined {
  if (config.metrics === false) return undefined;
  const targets: Record<string, number> = {};
  for (const [k, v] of Object.entries(config.errorTargets ?? DEFAULT_ERROR_TARGETS)) {
    targets[k] = typeof v === 'number' ? v : v.rate;
  }
  return createMetrics({
    ...(config.metrics?.prefix !== undefined ? { prefix: config.metrics.prefix } : {}),
    ...(config.metrics?.tenantLabels !== undefined ? { tenantLabels: config.metrics.tenantLabels } : {}),
    errorTargets: targets,
    slaP95Ms: config.sla?.p95Ms ?? 10_000,
    // A bad limit is left to createBudgets, which names it `budget.dailyUsd`.
    ...(config.budget && config.budget.dailyUsd > 0 && Number.isFinite(config.budget.dailyUsd)
      ? { budgetLimitUsd: config.budget.dailyUsd }
      : {}),
  });
}

/** OpenTelemetry spans, unless `tracing: false`. */
export function createRuntimeTracing(config: RuntimeConfig): KeelTracing | undefined {
  if (config.tracing === false) return undefined;
  return createTracing({
    ...(config.tracing?.tracer ? { tracer: config.tracing.tracer } : {}),
    ...(config.tracing?.captureContent !== undefined
      ? { captureContent: config.tracing.captureContent }
      : {}),
    ...(config.tracing?.providerName ? { providerName: config.tracing.providerName } : {}),
  });
}

/**
 * The redaction key, which keys tokens and every fingerprint of user content (`inputHash`, cache
 * keys): `redact.hmacKey`, else KEEL_REDACT_KEY, else the key file beside the SQLite log
 * (`<db>.key`, created once), else a random key per process — refused with a shared cache, whose
 * processes must all key entries alike.
 */
export function redactionKey(config: RuntimeConfig): Buffer {
  const given = config.redact === false ? undefined : config.redact?.hmacKey;
  if (given !== undefined) resolveRedactorConfig({ hmacKey: given }); // names a bad key
  const env = process.env.KEEL_REDACT_KEY;
  if (given === undefined && env !== undefined && env !== '' && Buffer.byteLength(env) < 16) {
    throw new ConfigError(
      'KEEL_REDACT_KEY',
      'must be at least 16 bytes; use a random secret of 32 bytes from your secret store',
    );
  }
  const dbPath = config.store ? undefined : (config.db ?? 'keel.db');
  const keyFile = dbPath !== undefined && dbPath !== ':memory:' ? `${dbPath}.key` : undefined;
  const resolved = resolveRedactionKey(given, env, keyFile);
  if (resolved.source === 'process' && isCacheBackend(config.cache)) {
    throw new ConfigError(
      'redact.hmacKey',
      'is required with a shared cache: every process must key cache entries with the same secret; ' +
        'give each the same 32-byte secret from your secret store (redact.hmacKey or KEEL_REDACT_KEY)',
    );
  }
  return resolved.key;
}

/**
 * The TTL cache: a shared backend's (Redis), or a memory LRU in front of `<db>.cache`, or none
 * (`cache: false`). Closing closes the cache, then the backend's connection.
 */
export function openRuntimeCache(
  config: RuntimeConfig,
  clock: Clock,
  sealKey: Buffer,
  onError: (error: Error) => void,
): Part<Cache | undefined> {
  if (isCacheBackend(config.cache)) {
    const backend = config.cache;
    const cache = backend.openCache({ clock, sealKey, onError });
    return {
      part: cache,
      close: async () => {
        await cache.close();
        await backend.close();
      },
    };
  }
  if (config.cache === false) return { part: undefined, close: () => undefined };
  const dbPath = config.store ? undefined : (config.db ?? 'keel.db');
  const path = config.cache?.path ?? (dbPath && dbPath !== ':memory:' ? `${dbPath}.cache` : undefined);
  const cache = createCache({
    clock,
    ...(path ? { path, sealKey } : {}),
    ...(config.fileMode !== undefined ? { fileMode: config.fileMode } : {}),
    ...(config.cache?.maxEntries !== undefined ? { maxEntries: config.cache.maxEntries } : {}),
    ...(config.cache?.maxStaleMs !== undefined ? { maxStaleMs: config.cache.maxStaleMs } : {}),
  });
  return { part: cache, close: () => cache.close() };
}

/** The `/metrics` servers `rt.serveMetrics()` started; closed with the runtime. */
export function metricsServers(): Part<Set<MetricsServer>> {
  const servers = new Set<MetricsServer>();
  return {
    part: servers,
    close: async () => {
      for (const server of servers) await server.close();
    },
  };
}

/** Alert delivery to sinks (`config.alerts`); closing waits for deliveries in flight. */
export function openAlertRouter(config: RuntimeConfig, clock: Clock): Part<AlertRouter | undefined> {
  const router = config.alerts
    ? createAlertRouter({
        rules: config.alerts.rules,
        clock,
        ...(config.alerts.timeoutMs !== undefined ? { timeoutMs: config.alerts.timeoutMs } : {}),
        ...(config.alerts.onSinkError ? { onSinkError: config.alerts.onSinkError } : {}),
      })
    : undefined;
  return { part: router, close: (reason) => (reason === 'close' ? router?.drain() : undefined) };
}

/** The daily budgets, and how they catch up with what was spent before. */
export interface RuntimeBudgets {
  budgets: Budgets | SharedBudgetsLike | undefined;
  /** Local budgets: today's spend read back from the log on open. */
  restoreStep: RestoreStep | undefined;
  /** A shared budget's first read of the fleet's spend, for `rt.ready()`. */
  ready: Promise<void> | undefined;
}

/**
 * Daily budgets (`config.budget`): local, restored from the log, or shared on a backend (Redis),
 * which is their source of truth. Closing stops them; a shared budget then waits for every settle
 * and release already written to be answered (appending the `budget.alert`s its replies raise,
 * while the log is still open) and closes its connection.
 */
export function openBudgets(
  config: RuntimeConfig,
  store: EventStore,
  deps: BudgetDeps,
  onError: (error: unknown) => void,
): Part<RuntimeBudgets> {
  if (!config.budget) {
    return { part: { budgets: undefined, restoreStep: undefined, ready: undefined }, close: () => undefined };
  }
  const { shared, ...budgetConfig } = config.budget;
  if (shared === undefined) {
    const budgets = createBudgets(budgetConfig, deps);
    return {
      part: {
        budgets,
        restoreStep: () =>
          withEvents(
            store.iterate({ type: RESTORED_BUDGET_EVENTS, fromTs: budgets.today().startMs }),
            (events) => budgets.restore(events),
          ),
        ready: undefined,
      },
      close: () => budgets.stop(),
    };
  }
  if (!isBudgetBackend(shared)) {
    throw new ConfigError(
      'budget.shared',
      "must be a shared budget backend, e.g. redis('redis://127.0.0.1:6379') from 'keel/redis'",
    );
  }
  // Redis is the source of truth: the fleet's spend, not this process's log, so no restore.
  const fleet = shared.openBudgets(budgetConfig, { ...deps, onError });
  // The fleet's spend so far today; `rt.ready()` reports a Redis it cannot reach.
  const ready = fleet.refresh();
  ready.catch(onError);
  return {
    part: { budgets: fleet, restoreStep: undefined, ready },
    close: async (reason) => {
      fleet.stop();
      // Settles of calls that were in flight (the cancelled ones included) reach the shared budget.
      if (reason === 'close') await fleet.flush();
      await shared.close();
    },
  };
}

/**
 * Provider rate limits (`config.limits`): in the process, or on `limits.shared` (Redis) for the
 * fleet; none when no key has limits (then calls skip the limiter entirely). Closing sheds the
 * calls still waiting (`closed`), waits for a shared limiter's writes and closes its connection.
 */
export function openLimiter(
  config: RuntimeConfig,
  clock: Clock,
  onError: (error: Error) => void,
): Part<{ limiter: Limiter | undefined; ready: Promise<void> | undefined }> {
  const limits = config.limits;
  if (limits === undefined || Object.keys(limits).every((k) => k === 'shared')) {
    if (limits?.shared !== undefined) void limits.shared.close();
    return { part: { limiter: undefined, ready: undefined }, close: () => undefined };
  }
  const opened = openLimits(limits, { clock, onError });
  let ready: Promise<void> | undefined;
  if (opened.backend !== undefined) {
    ready = opened.ready();
    ready.catch(onError);
  }
  return { part: { limiter: opened.limiter, ready }, close: () => opened.close() };
}

/** Per-agent bulkheads (`agent({ concurrency })`), made on each agent's first call. */
export function openBulkheads(clock: Clock): Part<Bulkheads> {
  const bulkheads = createBulkheads(clock);
  return { part: bulkheads, close: () => bulkheads.close() };
}

/** What {@link workflowServices} wires together. */
export interface WorkflowServicesDeps {
  clock: Clock;
  inspect: RuntimeConfig['inspect'];
  pricing: Pricing;
  seed: string;
  /** Keys cache entries (the redaction key). */
  hmacKey: Buffer;
  breakers: BreakerRegistry;
  budgets: RuntimeBudgets['budgets'];
  cache: Cache | undefined;
  folds: Folds;
  limiter: Limiter | undefined;
  bulkheads: Bulkheads | undefined;
  /** Appends a runtime-level event (`pricing.unknown_model`). */
  record: (event: NewEvent) => void;
  /** `RuntimeConfig.writeAhead` (default `'always'`). */
  writeAhead?: 'always' | 'reservations' | undefined;
}

/** What a live workflow reaches: breakers, budgets, the cache, prices, learned reservations, canaries. */
export function workflowServices(deps: WorkflowServicesDeps): Services {
  const { clock, pricing, breakers, cache, record } = deps;
  return {
    clock,
    inspect: deps.inspect,
    breaker: (c) => breakers.forAgent(c),
    budgets: deps.budgets,
    cache: cache && {
      key: cacheKeyer(deps.hmacKey),
      get: (key, options) => cache.get(key, options),
      set: (key, agent, value, ttlMs) => cache.set(key, agent, value, ttlMs),
      singleFlight: (key, compute) => cache.singleFlight(key, compute),
    },
    price: (model, usage) => pricing.price(model, usage),
    // An answered id with no price is logged once per id (`pricing.unknown_model`), never thrown.
    priceCall: createCallPricer(pricing, {
      onUnknownModel: (seen) =>
        record({
          ts: clock.now(),
          workflowId: SYSTEM_WORKFLOW_ID,
          type: 'pricing.unknown_model',
          payload: seen,
        }),
    }),
    learned: deps.folds.learned,
    ...(deps.limiter !== undefined ? { limiter: deps.limiter } : {}),
    ...(deps.bulkheads !== undefined ? { bulkheads: deps.bulkheads } : {}),
    seed: deps.seed,
    canaries: deps.folds.canaries,
    ...(deps.writeAhead === 'reservations' ? { writeAhead: deps.writeAhead } : {}),
  };
}

/**
 * What a replayed workflow reaches on `clock`: the live breakers and canaries, no inspector,
 * budgets, cache, rate limits or bulkheads, and prices that never throw (a model no longer priced
 * costs 0).
 */
export function replayServices(live: Services, pricing: Pricing, clock: Clock): Services {
  const { limiter: _limiter, bulkheads: _bulkheads, ...rest } = live;
  return {
    ...rest,
    clock,
    inspect: undefined,
    budgets: undefined,
    cache: undefined,
    price: (model, usage) => (pricing.has(model) ? pricing.price(model, usage) : 0),
    priceCall: createCallPricer(pricing),
  };
}
