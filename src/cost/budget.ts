/**
 * Daily budgets that hold under concurrency. Each scope (the global budget, each `perModel` and
 * `perTaskType` limit) is a long-lived budget actor in the runtime's XState system; a call reserves
 * its estimate in every scope it touches before it starts, and settles the actual cost after.
 * Because admission counts in-flight reservations, 100 concurrent calls against a nearly spent
 * budget admit exactly as many as fit.
 */
import { createActor, type Actor, type AnyActorRef } from 'xstate';
import { z } from 'zod';
import { budgetMachine, type BudgetAlertEmitted } from '../../machines/budget.machine.js';
import type { Clock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import type { EventPayloads, KeelEvent, Usage } from '../eventlog/events.js';
import { dayCalendar, type DaySpan } from './day.js';
import { BudgetExceededError, BudgetsClosedError } from './errors.js';
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
   * {@link BudgetExceededError}; `downgrade` retries the reservation with `downgradeTo[model]`.
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
}

/** What budgets need from the runtime. */
export interface BudgetDeps {
  /** Source of time: the day boundary follows it (a simulated clock in tests). */
  clock: Clock;
  /** Validates `perModel` / `downgradeTo` models and re-estimates downgraded calls. */
  pricing: Pricing;
  /** The runtime's root actor: budget actors join its system (`system.get('budget:global')`). */
  parent?: AnyActorRef;
  /** Called once per scope, threshold and day, with the payload of a `budget.alert` event. */
  onAlert(alert: EventPayloads['budget.alert']): void;
}

/** A request to hold budget for one call (one attempt). */
export interface ReserveRequest {
  model: string;
  taskType: string;
  /** Estimated cost of the call on `model`, USD. */
  estimateUsd: number;
  /** Expected usage; when given, a downgraded call is re-priced from it (else scaled by price ratio). */
  usage?: Usage;
}

/** Budget held for one call. Settle or release it exactly once; later calls are ignored. */
export interface Reservation {
  readonly id: string;
  /** The model the call must use (a downgrade may have changed it). */
  readonly model: string;
  /** The amount held, USD. */
  readonly estimateUsd: number;
  /** The call finished: charge its actual cost (USD) to every scope it was reserved in. */
  settle(actualUsd: number): void;
  /** The call will not be made: return the held amount. */
  release(): void;
}

/** Outcome of {@link Budgets.reserve}. */
export type ReserveResult =
  | {
      ok: true;
      reservation: Reservation;
      /** The model to call: the requested one, or a cheaper one after a downgrade. */
      model: string;
      /** The amount held, USD. */
      estimateUsd: number;
      /** Set when downgraded: the model asked for. */
      downgradedFrom?: string;
      /** Set when downgraded: the scope whose exhaustion forced it. */
      downgradeScope?: string;
    }
  | { ok: false; scope: string; error: BudgetExceededError };

/** Where a scope stands today. */
export interface BudgetScopeState {
  /** `global`, `model:<id>` or `taskType:<name>`. */
  scope: string;
  /** `stopped` once {@link Budgets.stop} was called. */
  level: 'within' | 'warning' | 'exhausted' | 'stopped';
  limitUsd: number;
  /** Settled spend today, USD. */
  spentUsd: number;
  /** Outstanding reservations, USD. */
  reservedUsd: number;
  day: string;
  /** Thresholds already alerted today. */
  alerted: readonly number[];
}

/** The runtime's budgets. */
export interface Budgets {
  /**
   * Holds `estimateUsd` in every scope the call touches, or says which scope refused.
   * @throws BudgetsClosedError after {@link Budgets.stop}.
   */
  reserve(request: ReserveRequest): ReserveResult;
  /** Settled spend today in a scope, USD (default scope `global`; 0 for an unknown scope). */
  spent(scope?: string): number;
  /** A scope's state today (default `global`), or undefined for an unknown scope. */
  state(scope?: string): BudgetScopeState | undefined;
  /** Names of every scope. */
  scopes(): string[];
  /** Today's span in the budget's time zone (use `startMs` to query the log for {@link restore}). */
  today(): DaySpan;
  /**
   * Resumes today from the event log on reopen: sums today's `cost.incurred` per scope and marks
   * thresholds already alerted today (`budget.alert`), so they do not fire again. Call it before
   * the first reservation; it replaces today's spend (idempotent).
   */
  restore(events: Iterable<KeelEvent>): void;
  /** Stops the budget actors (they leave the actor system); later reservations throw. Idempotent. */
  stop(): void;
}

/** Usage used to compare model prices and re-estimate downgrades when none is given. */
const NOMINAL_USAGE: Usage = { inputTokens: 1000, outputTokens: 500 };

const LIMIT_ERROR = { error: 'must be a number of USD > 0' };
const limitSchema = z.number(LIMIT_ERROR).positive(LIMIT_ERROR);
const configSchema = z.strictObject(
  {
    dailyUsd: limitSchema,
    alertAt: z
      .number({ error: 'must be a fraction in (0, 1], e.g. 0.8 for 80%' })
      .gt(0, { error: 'must be a fraction in (0, 1], e.g. 0.8 for 80%' })
      .max(1, { error: 'must be a fraction in (0, 1], e.g. 0.8 for 80%' })
      .optional(),
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
  },
  { error: 'must be an object like { dailyUsd: 100, alertAt: 0.8 }' },
);

type BudgetActor = Actor<typeof budgetMachine>;

interface Scope {
  name: string;
  actor: BudgetActor;
}

/**
 * Creates the runtime's budgets: one budget actor per scope (`budget:global`, `budget:model:<id>`,
 * `budget:taskType:<name>`), all in the parent's XState system when `deps.parent` is given. The
 * config is validated; a bad field throws a ConfigError naming it (`budget.alertAt`).
 *
 * @example
 * const budgets = createBudgets(
 *   { dailyUsd: 100, alertAt: 0.8, onExhausted: 'downgrade', downgradeTo: { 'gpt-4': 'gpt-4o-mini' } },
 *   { clock: realClock, pricing: createPricing(), onAlert: (a) => console.warn(`budget ${a.scope} at ${a.threshold * 100}%`) },
 * );
 * const r = budgets.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 0.03 });
 * if (r.ok) {
 *   // call r.model, then:
 *   r.reservation.settle(0.028);
 * }
 */
export function createBudgets(config: BudgetConfig, deps: BudgetDeps): Budgets {
  const cfg = parseConfig(configSchema, config, 'budget');
  const calendar = dayCalendar(cfg.timeZone ?? 'UTC', 'budget.timeZone');
  const { clock, pricing } = deps;
  const downgrade = cfg.onExhausted === 'downgrade';
  const downgradeTo = new Map(Object.entries(cfg.downgradeTo ?? {}));
  validateModels(cfg, pricing, downgrade, downgradeTo);

  let span = calendar.spanOf(clock.now());
  let stopped = false;
  const alertAt = cfg.alertAt ?? 0.8;
  const byName = new Map<string, Scope>();
  const byModel = new Map<string, Scope>();
  const byTaskType = new Map<string, Scope>();

  const makeScope = (name: string, limitUsd: number): Scope => {
    const actor = createActor(budgetMachine, {
      ...(deps.parent ? { parent: deps.parent } : {}),
      systemId: `budget:${name}`,
      input: { scope: name, limitUsd, alertAt, day: span.day },
    });
    actor.on('alert', (a: BudgetAlertEmitted) =>
      deps.onAlert({
        scope: a.scope,
        threshold: a.threshold,
        spentUsd: a.spentUsd,
        limitUsd: a.limitUsd,
        day: a.day,
      }),
    );
    actor.start();
    const scope = { name, actor };
    byName.set(name, scope);
    return scope;
  };
  const global = makeScope('global', cfg.dailyUsd);
  for (const [model, usd] of Object.entries(cfg.perModel ?? {}))
    byModel.set(model, makeScope(`model:${model}`, usd));
  for (const [taskType, usd] of Object.entries(cfg.perTaskType ?? {}))
    byTaskType.set(taskType, makeScope(`taskType:${taskType}`, usd));

  /** Starts a new budget day in every scope once the clock passes midnight in the time zone. */
  const rollDay = (): void => {
    const now = clock.now();
    if (now < span.endMs || stopped) return;
    span = calendar.spanOf(now);
    for (const scope of byName.values()) scope.actor.send({ type: 'DAY', day: span.day });
  };

  let nextId = 0;
  const tryReserve = (
    model: string,
    taskType: string,
    usd: number,
  ): { ok: true; reservation: Reservation } | { ok: false; scope: string; error: BudgetExceededError } => {
    const id = `r${++nextId}`;
    const scopes: Scope[] = [global];
    const m = byModel.get(model);
    if (m) scopes.push(m);
    const t = byTaskType.get(taskType);
    if (t) scopes.push(t);
    for (let i = 0; i < scopes.length; i++) {
      const scope = scopes[i] as Scope;
      scope.actor.send({ type: 'RESERVE', id, usd });
      const ctx = scope.actor.getSnapshot().context;
      if (ctx.reservations[id] === undefined) {
        for (let j = 0; j < i; j++) (scopes[j] as Scope).actor.send({ type: 'RELEASE', id });
        const error = new BudgetExceededError({
          scope: scope.name,
          limitUsd: ctx.limitUsd,
          spentUsd: ctx.spentUsd,
          reservedUsd: ctx.reservedUsd,
          requestedUsd: usd,
          day: ctx.day,
        });
        return { ok: false, scope: scope.name, error };
      }
    }
    return { ok: true, reservation: makeReservation(id, model, usd, scopes) };
  };

  const makeReservation = (id: string, model: string, estimateUsd: number, scopes: Scope[]): Reservation => {
    let open = true;
    return {
      id,
      model,
      estimateUsd,
      settle(actualUsd) {
        if (!open) return;
        if (!(actualUsd >= 0) || actualUsd === Infinity)
          throw new ConfigError(
            'reservation.settle(actualUsd)',
            `must be a finite number of USD >= 0, got ${actualUsd}`,
          );
        open = false;
        if (stopped) return;
        rollDay();
        for (const scope of scopes) scope.actor.send({ type: 'SETTLE', id, actualUsd });
      },
      release() {
        if (!open) return;
        open = false;
        if (stopped) return;
        for (const scope of scopes) scope.actor.send({ type: 'RELEASE', id });
      },
    };
  };

  const reestimate = (from: string, to: string, request: ReserveRequest, usd: number): number =>
    request.usage
      ? pricing.price(to, request.usage)
      : (usd * pricing.price(to, NOMINAL_USAGE)) / pricing.price(from, NOMINAL_USAGE);

  const stateOf = (scope: Scope): BudgetScopeState => {
    const snap = scope.actor.getSnapshot();
    const ctx = snap.context;
    return {
      scope: scope.name,
      level: snap.value,
      limitUsd: ctx.limitUsd,
      spentUsd: ctx.spentUsd,
      reservedUsd: ctx.reservedUsd,
      day: ctx.day,
      alerted: ctx.alerted,
    };
  };

  return {
    reserve(request) {
      if (stopped) throw new BudgetsClosedError();
      const { taskType } = request;
      if (!(request.estimateUsd >= 0) || request.estimateUsd === Infinity)
        throw new ConfigError(
          'reserve.estimateUsd',
          `must be a finite number of USD >= 0, got ${request.estimateUsd}`,
        );
      rollDay();
      let model = request.model;
      let usd = request.estimateUsd;
      let first: { scope: string } | undefined;
      for (;;) {
        const r = tryReserve(model, taskType, usd);
        if (r.ok) {
          return first
            ? {
                ok: true,
                reservation: r.reservation,
                model,
                estimateUsd: usd,
                downgradedFrom: request.model,
                downgradeScope: first.scope,
              }
            : { ok: true, reservation: r.reservation, model, estimateUsd: usd };
        }
        const cheaper = downgrade ? downgradeTo.get(model) : undefined;
        // Every downgrade is to a strictly cheaper model (checked at config time): the chain ends.
        if (cheaper === undefined) return r;
        first ??= r;
        usd = reestimate(model, cheaper, request, usd);
        model = cheaper;
      }
    },
    spent(scope = 'global') {
      rollDay();
      return byName.get(scope)?.actor.getSnapshot().context.spentUsd ?? 0;
    },
    state(scope = 'global') {
      rollDay();
      const s = byName.get(scope);
      return s ? stateOf(s) : undefined;
    },
    scopes: () => [...byName.keys()],
    today() {
      rollDay();
      return span;
    },
    restore(events) {
      rollDay();
      const spent = new Map<Scope, number>();
      const alerted = new Map<Scope, number[]>();
      const add = (scope: Scope | undefined, usd: number): void => {
        if (scope) spent.set(scope, (spent.get(scope) ?? 0) + usd);
      };
      for (const e of events) {
        if (e.type === 'cost.incurred') {
          if (e.ts < span.startMs || e.ts >= span.endMs) continue;
          const { costUsd, model, taskType } = e.payload;
          add(global, costUsd);
          add(byModel.get(model), costUsd);
          add(byTaskType.get(taskType), costUsd);
        } else if (e.type === 'budget.alert' && e.payload.day === span.day) {
          const scope = byName.get(e.payload.scope);
          if (!scope) continue;
          const list = alerted.get(scope) ?? [];
          if (!list.includes(e.payload.threshold)) list.push(e.payload.threshold);
          alerted.set(scope, list);
        }
      }
      for (const scope of byName.values()) {
        scope.actor.send({
          type: 'RESTORE',
          day: span.day,
          spentUsd: spent.get(scope) ?? 0,
          alerted: alerted.get(scope) ?? [],
        });
      }
    },
    stop() {
      if (stopped) return;
      stopped = true;
      for (const scope of byName.values()) scope.actor.send({ type: 'STOP' });
    },
  };
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
