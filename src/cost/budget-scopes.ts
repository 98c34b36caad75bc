/**
 * Internal: the budget actors of a budget's scopes, one per scope, in the runtime's XState system
 * under `budget:<scope>` (so the inspector shows every budget level), and how a scope reads as a
 * {@link BudgetScopeState}. The local budget keeps its figures in these actors; the shared budget
 * keeps them on Redis and mirrors them here. Not part of the public surface.
 */
import { createActor, type Actor, type AnyActorRef } from 'xstate';
import { budgetMachine, type BudgetAlertEmitted } from '../../machines/budget.machine.js';
import type { EventPayloads } from '../eventlog/events.js';
import { TENANT_SCOPE_PREFIX, type BudgetPolicy } from './budget-policy.js';
import type { DaySpan } from './day.js';

/** Where a scope stands today. */
export interface BudgetScopeState {
  /** `global`, `model:<id>`, `taskType:<name>` or `tenant:<id>`. */
  scope: string;
  /** `stopped` once the budgets were stopped. */
  level: 'within' | 'warning' | 'exhausted' | 'stopped';
  /** Daily limit, USD. */
  limitUsd: number;
  /** Settled spend today, USD. */
  spentUsd: number;
  /** Outstanding reservations, USD. */
  reservedUsd: number;
  /** The budget day, `YYYY-MM-DD` in the budget's time zone. */
  day: string;
  /** Thresholds already alerted today. */
  alerted: readonly number[];
}

/** One scope's actor. */
export type BudgetActor = Actor<typeof budgetMachine>;

/**
 * Starts one budget actor per scope of `policy` on `day`, children of `parent` when given. With
 * `onAlert`, the actors' own alerts are forwarded (the local budget); without, they only mirror.
 */
export function startScopeActors(
  policy: BudgetPolicy,
  day: string,
  parent: AnyActorRef | undefined,
  onAlert?: (alert: EventPayloads['budget.alert']) => void,
): Map<string, BudgetActor> {
  const actors = new Map<string, BudgetActor>();
  for (const [scope, limitUsd] of policy.limits)
    actors.set(scope, startScopeActor(scope, limitUsd, policy, day, parent, onAlert));
  return actors;
}

/**
 * Starts the actor of one scope (a tenant's, `tenant:<id>`, is started on its tenant's first call).
 * A tenant scope's alerts name the tenant (`budget.alert.payload.tenant`).
 */
export function startScopeActor(
  scope: string,
  limitUsd: number,
  policy: BudgetPolicy,
  day: string,
  parent: AnyActorRef | undefined,
  onAlert?: (alert: EventPayloads['budget.alert']) => void,
): BudgetActor {
  const actor = createActor(budgetMachine, {
    ...(parent ? { parent } : {}),
    systemId: `budget:${scope}`,
    input: { scope, limitUsd, alertAt: policy.alertAt, day },
  });
  const tenant = scope.startsWith(TENANT_SCOPE_PREFIX) ? scope.slice(TENANT_SCOPE_PREFIX.length) : undefined;
  if (onAlert)
    actor.on('alert', (a: BudgetAlertEmitted) =>
      onAlert({
        scope: a.scope,
        threshold: a.threshold,
        spentUsd: a.spentUsd,
        limitUsd: a.limitUsd,
        day: a.day,
        ...(tenant !== undefined ? { tenant } : {}),
      }),
    );
  actor.start();
  return actor;
}

/** A scope's actor read as a {@link BudgetScopeState}. */
export function scopeState(scope: string, actor: BudgetActor): BudgetScopeState {
  const snap = actor.getSnapshot();
  const ctx = snap.context;
  return {
    scope,
    level: snap.value,
    limitUsd: ctx.limitUsd,
    spentUsd: ctx.spentUsd,
    reservedUsd: ctx.reservedUsd,
    day: ctx.day,
    alerted: ctx.alerted,
  };
}

/**
 * The read side both budgets share: each call first rolls the day over (`rollDay`), then reads the
 * scope actors. `span()` is the current day after the roll.
 */
export function scopeView(
  actors: ReadonlyMap<string, BudgetActor>,
  rollDay: () => void,
  span: () => DaySpan,
): {
  spent(scope?: string): number;
  state(scope?: string): BudgetScopeState | undefined;
  scopes(): string[];
  today(): DaySpan;
  liveActors(): number;
} {
  return {
    spent(scope = 'global') {
      rollDay();
      return actors.get(scope)?.getSnapshot().context.spentUsd ?? 0;
    },
    state(scope = 'global') {
      rollDay();
      const actor = actors.get(scope);
      return actor ? scopeState(scope, actor) : undefined;
    },
    scopes: () => [...actors.keys()],
    liveActors: () => actors.size,
    today() {
      rollDay();
      return span();
    },
  };
}
