/**
 * Daily budgets that hold under concurrency. Each scope (the global budget, each `perModel` and
 * `perTaskType` limit, and each tenant `perTenant` limits) is a long-lived budget actor in the runtime's XState system; a call reserves
 * its estimate in every scope it touches before it starts, and settles the actual cost after.
 * Because admission counts in-flight reservations, 100 concurrent calls against a nearly spent
 * budget admit exactly as many as fit.
 */
import type { AnyActorRef } from 'xstate';
import type { Clock } from '../core/clock.js';
import type { EventPayloads, KeelEvent, KeelEventType, Usage } from '../eventlog/events.js';
import { admitted, assertUsd, budgetPolicy, type BudgetConfig } from './budget-policy.js';
import {
  scopeState,
  startScopeActor,
  startScopeActors,
  type BudgetActor,
  type BudgetScopeState,
} from './budget-scopes.js';
import type { DaySpan } from './day.js';
import { BudgetExceededError, BudgetsClosedError } from './errors.js';
import type { Pricing } from './pricing.js';

export type { BudgetConfig } from './budget-policy.js';
export type { BudgetScopeState } from './budget-scopes.js';

/**
 * The event types {@link BudgetView.restore} reads (from the start of today): charges, alerts, and
 * the reservations and workflow ends that tell which calls were made but never charged.
 */
export const RESTORED_BUDGET_EVENTS: readonly KeelEventType[] = [
  'cost.incurred',
  'budget.alert',
  'cost.reserved',
  'workflow.completed',
  'workflow.failed',
  'workflow.cancelled',
  'workflow.resumed',
];

/** A reservation seen in the log and not yet charged (by workflow, then `path#attempt`). */
interface OpenReservation {
  usd: number;
  model: string;
  taskType: string;
  tenant: string | undefined;
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
  /** The workflow's tenant: the call also reserves in its `budget.perTenant` scope (`tenant:<id>`). */
  tenant?: string;
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

/** What every budget answers about today, local or shared across processes. */
export interface BudgetView {
  /** Settled spend today in a scope, USD (default scope `global`; 0 for an unknown scope). */
  spent(scope?: string): number;
  /** A scope's state today (default `global`), or undefined for an unknown scope. */
  state(scope?: string): BudgetScopeState | undefined;
  /** Names of every scope. */
  scopes(): string[];
  /** Today's span in the budget's time zone (use `startMs` to query the log for `restore`). */
  today(): DaySpan;
  /**
   * Budget actors in memory now: one per fixed scope (global, per model, per task type), plus the
   * tenants' — those with a reservation open and at most `idleTenantActors` idle ones.
   */
  liveActors(): number;
  /**
   * Resumes today from the event log on reopen: sums today's `cost.incurred` per scope and marks
   * thresholds already alerted today (`budget.alert`), so they do not fire again. A call whose
   * `cost.reserved` was committed (write-ahead) but whose workflow never ended — the process died
   * during the call — is charged its reservation, so a restart forgets no call that was made.
   * Feed it {@link RESTORED_BUDGET_EVENTS} from `today().startMs`, in log order. Call it before
   * the first reservation; it replaces today's spend (idempotent).
   */
  restore(events: Iterable<KeelEvent>): void;
  /** Stops the budget actors (they leave the actor system); later reservations throw. Idempotent. */
  stop(): void;
}

/** The runtime's budgets, kept in this process. */
export interface Budgets extends BudgetView {
  /**
   * Holds `estimateUsd` in every scope the call touches, or says which scope refused.
   * @throws BudgetsClosedError after {@link Budgets.stop}.
   */
  reserve(request: ReserveRequest): ReserveResult;
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
  const policy = budgetPolicy(config, deps.pricing);
  const { clock } = deps;
  let span = policy.calendar.spanOf(clock.now());
  let stopped = false;
  const onAlert = (a: EventPayloads['budget.alert']): void => deps.onAlert(a);
  const actors = startScopeActors(policy, span.day, deps.parent, onAlert);
  // Tenant scopes come and go: a tenant's actor lives while it has a reservation open, then waits
  // among the idle ones (least recently used first) until `idleTenantActors` newer ones push it out.
  // An evicted tenant keeps today's spend and alerted thresholds (what its actor would restore from
  // the log) and gets its actor back where it was on its next call.
  /** Open reservations by tenant scope. */
  const openOf = new Map<string, number>();
  /** Live tenant scopes with no reservation open, least recently used first. */
  const idle = new Set<string>();
  /** Today's figures of evicted tenant scopes. */
  const evicted = new Map<string, { spentUsd: number; alerted: readonly number[] }>();
  const isTenant = (scope: string): boolean => !policy.limits.has(scope);

  /** A scope's actor; a tenant's is started on first use (`tenant:<id>`, limited by `perTenant`). */
  const actorOf = (scope: string): BudgetActor => {
    let actor = actors.get(scope);
    if (actor === undefined) {
      const limitUsd = policy.limitOf(scope) as number;
      actor = startScopeActor(scope, limitUsd, policy, span.day, deps.parent, onAlert);
      actors.set(scope, actor);
      const kept = evicted.get(scope);
      if (kept !== undefined) {
        evicted.delete(scope);
        actor.send({ type: 'RESTORE', day: span.day, ...kept });
      }
    }
    return actor;
  };

  /** A tenant scope holds one more reservation: not idle. */
  const hold = (scope: string): void => {
    openOf.set(scope, (openOf.get(scope) ?? 0) + 1);
    idle.delete(scope);
  };

  /** A tenant scope's reservation ended (or it was only looked at): idle once none is open. */
  const letGo = (scope: string, ended: boolean): void => {
    const open = (openOf.get(scope) ?? 0) - (ended ? 1 : 0);
    if (open > 0) {
      openOf.set(scope, open);
      return;
    }
    openOf.delete(scope);
    idle.delete(scope); // most recently used: to the end
    idle.add(scope);
    if (idle.size > policy.idleTenantActors) evictIdle();
  };

  /** Stops the least recently used idle tenant actors past the bound, keeping today's figures. */
  const evictIdle = (): void => {
    if (stopped) return;
    rollDay();
    for (const scope of idle) {
      if (idle.size <= policy.idleTenantActors) return;
      idle.delete(scope);
      const actor = actors.get(scope);
      if (actor === undefined) continue;
      const { spentUsd, alerted } = actor.getSnapshot().context;
      if (spentUsd > 0 || alerted.length > 0) evicted.set(scope, { spentUsd, alerted });
      actors.delete(scope);
      // Its final state: the actor leaves the system (a child of the runtime's root cannot be
      // stopped directly), so a later one may take its system id.
      actor.send({ type: 'STOP' });
    }
  };

  /** Starts a new budget day in every scope once the clock passes midnight in the time zone. */
  const rollDay = (): void => {
    const now = clock.now();
    if (now < span.endMs || stopped) return;
    span = policy.calendar.spanOf(now);
    evicted.clear(); // a new day: nothing spent yet
    for (const actor of actors.values()) actor.send({ type: 'DAY', day: span.day });
  };

  let nextId = 0;
  const tryReserve = (
    model: string,
    taskType: string,
    usd: number,
    tenant: string | undefined,
  ): { ok: true; reservation: Reservation } | { ok: false; scope: string; error: BudgetExceededError } => {
    const id = `r${++nextId}`;
    const names = policy.scopesOf(model, taskType, tenant);
    const scopes = names.map(actorOf);
    // A tenant's scope is the last one a call touches; the call holds it from here.
    const last = names[names.length - 1] as string;
    const tenantScope = isTenant(last) ? last : undefined;
    if (tenantScope !== undefined) hold(tenantScope);
    for (let i = 0; i < scopes.length; i++) {
      const actor = scopes[i] as BudgetActor;
      actor.send({ type: 'RESERVE', id, usd });
      const ctx = actor.getSnapshot().context;
      if (ctx.reservations[id] === undefined) {
        for (let j = 0; j < i; j++) (scopes[j] as BudgetActor).send({ type: 'RELEASE', id });
        if (tenantScope !== undefined) letGo(tenantScope, true);
        const error = new BudgetExceededError({
          scope: ctx.scope,
          limitUsd: ctx.limitUsd,
          spentUsd: ctx.spentUsd,
          reservedUsd: ctx.reservedUsd,
          requestedUsd: usd,
          day: ctx.day,
        });
        return { ok: false, scope: ctx.scope, error };
      }
    }
    return { ok: true, reservation: makeReservation(id, model, usd, scopes, tenantScope) };
  };

  const makeReservation = (
    id: string,
    model: string,
    estimateUsd: number,
    scopes: BudgetActor[],
    tenantScope: string | undefined,
  ): Reservation => {
    let open = true;
    return {
      id,
      model,
      estimateUsd,
      settle(actualUsd) {
        if (!open) return;
        assertUsd('reservation.settle(actualUsd)', actualUsd);
        open = false;
        if (stopped) return;
        rollDay();
        for (const actor of scopes) actor.send({ type: 'SETTLE', id, actualUsd });
        if (tenantScope !== undefined) letGo(tenantScope, true);
      },
      release() {
        if (!open) return;
        open = false;
        if (stopped) return;
        for (const actor of scopes) actor.send({ type: 'RELEASE', id });
        if (tenantScope !== undefined) letGo(tenantScope, true);
      },
    };
  };

  return {
    reserve(request) {
      if (stopped) throw new BudgetsClosedError();
      assertUsd('reserve.estimateUsd', request.estimateUsd);
      rollDay();
      let model = request.model;
      let usd = request.estimateUsd;
      let refusedScope: string | undefined;
      for (;;) {
        const r = tryReserve(model, request.taskType, usd, request.tenant);
        if (r.ok) return admitted(r.reservation, request.model, refusedScope);
        const next = policy.downgrade(model, usd, request.usage);
        if (next === undefined) return r;
        refusedScope ??= r.scope;
        ({ model, estimateUsd: usd } = next);
      }
    },
    spent(scope = 'global') {
      rollDay();
      const actor = actors.get(scope);
      return actor ? actor.getSnapshot().context.spentUsd : (evicted.get(scope)?.spentUsd ?? 0);
    },
    state(scope = 'global') {
      rollDay();
      const actor = actors.get(scope);
      if (actor !== undefined) return scopeState(scope, actor);
      if (!evicted.has(scope) || stopped) return undefined;
      // An evicted tenant: its actor back for the read, then idle again.
      const state = scopeState(scope, actorOf(scope));
      letGo(scope, false);
      return state;
    },
    scopes: () => [...actors.keys(), ...evicted.keys()],
    today() {
      rollDay();
      return span;
    },
    liveActors: () => actors.size,
    restore(events) {
      rollDay();
      const spent = new Map<string, number>();
      const alerted = new Map<string, number[]>();
      const open = new Map<string, Map<string, OpenReservation>>();
      const charge = (model: string, taskType: string, usd: number, tenant: string | undefined): void => {
        for (const scope of policy.scopesOf(model, taskType, tenant))
          spent.set(scope, (spent.get(scope) ?? 0) + usd);
      };
      for (const e of events) {
        if (e.type === 'cost.incurred') {
          open.get(e.workflowId)?.delete(`${e.payload.path}#${e.payload.attempt}`);
          if (e.ts < span.startMs || e.ts >= span.endMs) continue;
          const { costUsd, model, taskType, tenant } = e.payload;
          charge(model, taskType, costUsd, tenant);
        } else if (e.type === 'cost.reserved') {
          const { attempt, path, estimateUsd, model, taskType, tenant } = e.payload;
          if (attempt === undefined || e.ts < span.startMs || e.ts >= span.endMs) continue;
          let calls = open.get(e.workflowId);
          if (calls === undefined) open.set(e.workflowId, (calls = new Map<string, OpenReservation>()));
          calls.set(`${path}#${attempt}`, { usd: estimateUsd, model, taskType, tenant });
        } else if (e.type === 'workflow.resumed') {
          // What it reserved and did not charge before the resume was cut off mid-call by the crash:
          // charged now, as at a restart before the resume — its end (below) must not forget it.
          const calls = open.get(e.workflowId);
          if (calls !== undefined) {
            for (const r of calls.values()) charge(r.model, r.taskType, r.usd, r.tenant);
            open.delete(e.workflowId);
          }
        } else if (
          e.type === 'workflow.completed' ||
          e.type === 'workflow.failed' ||
          e.type === 'workflow.cancelled'
        ) {
          // An ended workflow charged every call it made; what it reserved and did not charge was
          // never called (cancelled before the call, or refused by the log).
          open.delete(e.workflowId);
        } else if (e.type === 'budget.alert' && e.payload.day === span.day) {
          const { scope, threshold } = e.payload;
          if (policy.limitOf(scope) === undefined) continue;
          const list = alerted.get(scope) ?? [];
          if (!list.includes(threshold)) list.push(threshold);
          alerted.set(scope, list);
        }
      }
      // Workflows cut off mid-call (a crash, or marked `workflow.interrupted`): charge their reservations.
      for (const calls of open.values())
        for (const r of calls.values()) charge(r.model, r.taskType, r.usd, r.tenant);
      // Tenants that spent or were alerted today get their figures back; their actors start on their
      // next call (see actorOf), so a restart does not start one per tenant seen today.
      evicted.clear();
      for (const scope of [...spent.keys(), ...alerted.keys()]) {
        if (!isTenant(scope) || actors.has(scope)) continue;
        evicted.set(scope, { spentUsd: spent.get(scope) ?? 0, alerted: alerted.get(scope) ?? [] });
      }
      for (const [scope, actor] of actors) {
        actor.send({
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
      for (const actor of actors.values()) actor.send({ type: 'STOP' });
    },
  };
}
