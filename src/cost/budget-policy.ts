/**
 * Internal: the budget rules both budgets follow — the local one (`createBudgets`, actors in this
 * process) and the one shared across processes (`createSharedBudgets`, Lua scripts on Redis). The
 * config and its validation, the scopes a call touches, the alert thresholds and the downgrade
 * choice live here once, so the two cannot drift apart. Not part of the public surface.
 */
import { z } from 'zod';
import { budgetThresholds } from '../../machines/budget.machine.js';
import { ConfigError } from '../core/errors.js';
import { TENANT_ID_FIX, tenantIdProblem } from '../core/tenant.js';
import type { Usage } from '../eventlog/events.js';
import type { Reservation, ReserveResult } from './budget.js';
import { dayCalendar, type DayCalendar } from './day.js';
import type { Pricing } from './pricing.js';
import { parseConfig } from './validate.js';

/** Daily budget configuration (`createRuntime({ budget })`). */
export interface BudgetConfig {
  /** Daily limit across all calls, USD (> 0). The seed's default is 100. */
  dailyUsd: number;
  /** Fraction of each limit at which a warning alert fires, in (0, 1] (default 0.8). */
  alertAt?: number;
  /**
   * What happens to a call whose estimate does not fit (default `reject`): `reject` refuses it with a
   * `BudgetExceededError`; `downgrade` retries the reservation with `downgradeTo[model]`.
   */
  onExhausted?: 'reject' | 'downgrade';
  /** Model → strictly cheaper model to use when a budget is exhausted (with `onExhausted: 'downgrade'`). */
  downgradeTo?: Record<string, string>;
  /** IANA time zone whose midnight starts a budget day (default `UTC`). */
  timeZone?: string;
  /** Extra daily limits per model id, USD. */
  perModel?: Record<string, number>;
  /** Extra daily limits per task type, USD. */
  perTaskType?: Record<string, number>;
  /**
   * Extra daily limits per tenant (`RunOptions.tenant`), USD: `{ default: 20, acme: 100 }`. A listed
   * tenant gets its own limit; `default` applies to each tenant not listed, each on its own (twenty
   * tenants at `default: 20` may spend 20 each). Workflows without a tenant are not limited by it,
   * nor are tenants not listed when there is no `default`. Scopes are named `tenant:<id>`; like the
   * others they alert at `alertAt`, refuse (or downgrade) at 100% and are restored from the log
   * after a restart. Keys are tenant ids (1–64 letters, digits, `_-.:`, no PII) or `default`.
   */
  perTenant?: Record<string, number>;
  /**
   * Tenant budget actors kept in memory while idle (no reservation open), least recently used
   * evicted first (default 1,000; 0 evicts each one as soon as it is idle). An evicted tenant keeps
   * today's spend and alerted thresholds as two numbers and gets its actor back, exactly where it
   * was, on its next call; at the day's end they are dropped. On a budget shared on Redis the
   * same bound applies to the tenants' mirror actors, and an evicted one keeps nothing here (Redis
   * holds its figures; its next call's reply fills a new mirror). A whole number >= 0.
   */
  idleTenantActors?: number;
}

/** Idle tenant budget actors kept in memory unless `budget.idleTenantActors` says otherwise. */
export const DEFAULT_IDLE_TENANT_ACTORS = 1_000;

/** Key of `budget.perTenant` whose limit applies to every tenant not listed. */
export const DEFAULT_TENANT_KEY = 'default';

/** Prefix of a tenant's budget scope: `tenant:acme`. */
export const TENANT_SCOPE_PREFIX = 'tenant:';

/** The validated rules of a budget. */
export interface BudgetPolicy {
  /** Scope name (`global`, `model:<id>`, `taskType:<name>`) → daily limit, USD; `global` first. */
  readonly limits: ReadonlyMap<string, number>;
  /** Alert thresholds as fractions of each limit, ascending (`[alertAt, 1]`). */
  readonly thresholds: readonly number[];
  /** Idle tenant actors kept in memory (`idleTenantActors`). */
  readonly idleTenantActors: number;
  /** Fraction at which the warning fires. */
  readonly alertAt: number;
  /** Days in the budget's time zone. */
  readonly calendar: DayCalendar;
  /**
   * The scopes a call on `model` for `taskType` (in a workflow of `tenant`) reserves in: `global`,
   * then its limited model, task type and tenant.
   */
  scopesOf(model: string, taskType: string, tenant?: string): string[];
  /**
   * A scope's daily limit, USD: those of {@link limits}, and `tenant:<id>` for every tenant
   * `perTenant` limits (by name or by `default`); undefined for a scope that has none.
   */
  limitOf(scope: string): number | undefined;
  /**
   * The next step after `model` was refused: the cheaper model and the estimate re-priced for it,
   * or undefined when there is none (`onExhausted: 'reject'`, or the end of the downgrade chain).
   * Every step is strictly cheaper (checked at config time), so the chain ends.
   */
  downgrade(
    model: string,
    estimateUsd: number,
    usage: Usage | undefined,
  ): { model: string; estimateUsd: number } | undefined;
}

/** Usage used to compare model prices and re-estimate downgrades when none is given. */
const NOMINAL_USAGE: Usage = { inputTokens: 1000, outputTokens: 500 };

const LIMIT_ERROR = { error: 'must be a number of USD > 0' };
const limitSchema = z.number(LIMIT_ERROR).positive(LIMIT_ERROR);
const FRACTION_ERROR = { error: 'must be a fraction in (0, 1], e.g. 0.8 for 80%' };
const configSchema = z.strictObject(
  {
    dailyUsd: limitSchema,
    alertAt: z.number(FRACTION_ERROR).gt(0, FRACTION_ERROR).max(1, FRACTION_ERROR).optional(),
    onExhausted: z.enum(['reject', 'downgrade'], { error: "must be 'reject' or 'downgrade'" }).optional(),
    downgradeTo: z
      .record(
        z.string(),
        z.string({ error: 'must name a cheaper model' }).min(1, { error: 'must name a cheaper model' }),
        {
          error: "must map models to cheaper models, e.g. { 'gpt-4': 'gpt-4o-mini' }",
        },
      )
      .optional(),
    timeZone: z.string({ error: 'must be an IANA time zone, e.g. "UTC" or "Europe/Paris"' }).optional(),
    perModel: z
      .record(z.string(), limitSchema, { error: "must map model ids to USD, e.g. { 'gpt-4': 50 }" })
      .optional(),
    perTaskType: z
      .record(z.string(), limitSchema, { error: 'must map task types to USD, e.g. { vendor: 20 }' })
      .optional(),
    perTenant: z
      .record(z.string(), limitSchema, {
        error:
          'must map tenant ids to USD, with "default" for every other tenant, e.g. { default: 20, acme: 100 }',
      })
      .optional(),
    idleTenantActors: z
      .number({ error: 'must be a whole number >= 0 of idle tenant actors to keep, e.g. 1000' })
      .int({ error: 'must be a whole number >= 0 of idle tenant actors to keep, e.g. 1000' })
      .min(0, { error: 'must be a whole number >= 0 of idle tenant actors to keep, e.g. 1000' })
      .optional(),
  },
  { error: 'must be an object like { dailyUsd: 100, alertAt: 0.8 }' },
);

/**
 * Validates `config` (a bad field throws a ConfigError naming it, e.g. `budget.alertAt`) and returns
 * the budget's rules.
 */
export function budgetPolicy(config: BudgetConfig, pricing: Pricing): BudgetPolicy {
  const cfg = parseConfig(configSchema, config, 'budget');
  const calendar = dayCalendar(cfg.timeZone ?? 'UTC', 'budget.timeZone');
  const downgrading = cfg.onExhausted === 'downgrade';
  const downgradeTo = new Map(Object.entries(cfg.downgradeTo ?? {}));
  validateModels(cfg, pricing, downgrading, downgradeTo);

  const alertAt = cfg.alertAt ?? 0.8;
  const limits = new Map<string, number>([['global', cfg.dailyUsd]]);
  const modelScopes = new Map<string, string>();
  const taskTypeScopes = new Map<string, string>();
  for (const [model, usd] of Object.entries(cfg.perModel ?? {})) {
    modelScopes.set(model, `model:${model}`);
    limits.set(`model:${model}`, usd);
  }
  for (const [taskType, usd] of Object.entries(cfg.perTaskType ?? {})) {
    taskTypeScopes.set(taskType, `taskType:${taskType}`);
    limits.set(`taskType:${taskType}`, usd);
  }

  const perTenant = new Map<string, number>();
  let tenantDefault: number | undefined;
  for (const [tenant, usd] of Object.entries(cfg.perTenant ?? {})) {
    if (tenant === DEFAULT_TENANT_KEY) {
      tenantDefault = usd;
      continue;
    }
    const problem = tenantIdProblem(tenant);
    if (problem !== undefined)
      throw new ConfigError(
        `budget.perTenant.${tenant}`,
        `the key ${problem}: keys are tenant ids as given to rt.run(…, { tenant }), or "default"; ${TENANT_ID_FIX}`,
      );
    perTenant.set(tenant, usd);
  }
  const tenantLimit = (tenant: string): number | undefined => perTenant.get(tenant) ?? tenantDefault;

  return {
    limits,
    alertAt,
    thresholds: budgetThresholds(alertAt),
    idleTenantActors: cfg.idleTenantActors ?? DEFAULT_IDLE_TENANT_ACTORS,
    calendar,
    scopesOf(model, taskType, tenant) {
      const scopes = ['global'];
      const m = modelScopes.get(model);
      if (m !== undefined) scopes.push(m);
      const t = taskTypeScopes.get(taskType);
      if (t !== undefined) scopes.push(t);
      if (tenant !== undefined && tenantLimit(tenant) !== undefined)
        scopes.push(TENANT_SCOPE_PREFIX + tenant);
      return scopes;
    },
    limitOf(scope) {
      const fixed = limits.get(scope);
      if (fixed !== undefined || !scope.startsWith(TENANT_SCOPE_PREFIX)) return fixed;
      return tenantLimit(scope.slice(TENANT_SCOPE_PREFIX.length));
    },
    downgrade(model, estimateUsd, usage) {
      const cheaper = downgrading ? downgradeTo.get(model) : undefined;
      if (cheaper === undefined) return undefined;
      const repriced = usage
        ? pricing.price(cheaper, usage)
        : (estimateUsd * pricing.price(cheaper, NOMINAL_USAGE)) / pricing.price(model, NOMINAL_USAGE);
      return { model: cheaper, estimateUsd: repriced };
    },
  };
}

/** Throws a ConfigError naming `field` unless `usd` is a finite number of USD >= 0. */
export function assertUsd(field: string, usd: number): void {
  if (!(usd >= 0) || usd === Infinity)
    throw new ConfigError(field, `must be a finite number of USD >= 0, got ${usd}`);
}

/** Config-time checks that need the pricing table. */
function validateModels(
  cfg: z.output<typeof configSchema>,
  pricing: Pricing,
  downgrade: boolean,
  downgradeTo: ReadonlyMap<string, string>,
): void {
  pricing.assertKnown(Object.keys(cfg.perModel ?? {}), (m) => `budget.perModel.${m}`);
  if (downgrade && downgradeTo.size === 0)
    throw new ConfigError(
      'budget.downgradeTo',
      "must map at least one model to a cheaper one when onExhausted is 'downgrade', e.g. { 'gpt-4': 'gpt-4o-mini' }",
    );
  if (!downgrade && downgradeTo.size > 0)
    throw new ConfigError(
      'budget.onExhausted',
      "is 'reject' (the default), so downgradeTo would never be used; set onExhausted: 'downgrade' or remove downgradeTo",
    );
  for (const [from, to] of downgradeTo) {
    const field = `budget.downgradeTo.${from}`;
    pricing.assertKnown([from], () => field);
    pricing.assertKnown([to], () => field);
    const fromUsd = pricing.price(from, NOMINAL_USAGE);
    const toUsd = pricing.price(to, NOMINAL_USAGE);
    if (!(toUsd < fromUsd))
      throw new ConfigError(
        field,
        `"${to}" ($${toUsd.toFixed(5)} per 1K-in/500-out call) is not cheaper than "${from}" ($${fromUsd.toFixed(5)}); name a cheaper model`,
      );
  }
}

/**
 * The success result of a reservation: `requestedModel` is the model asked for, and `refusedScope`
 * the scope whose refusal started a downgrade (undefined when none did).
 */
export function admitted(
  reservation: Reservation,
  requestedModel: string,
  refusedScope: string | undefined,
): Extract<ReserveResult, { ok: true }> {
  const base = {
    ok: true as const,
    reservation,
    model: reservation.model,
    estimateUsd: reservation.estimateUsd,
  };
  return refusedScope === undefined
    ? base
    : { ...base, downgradedFrom: requestedModel, downgradeScope: refusedScope };
}
