/**
 * One daily budget scope (global, a model, a task type) as an XState v5 actor.
 *
 * within → warning (settled spend ≥ alertAt × limit) → exhausted (≥ limit) → within (next DAY);
 * any → stopped (final) on STOP.
 *
 * Admission is reservation-based: `RESERVE` is admitted only if settled spend + outstanding
 * reservations + the new estimate fit in the limit, so concurrent callers can never all pass the
 * check and overshoot together (the failure mode of a spent-only check, e.g. LiteLLM #26672).
 * `SETTLE` turns a reservation into spend; `RELEASE` drops it; `DAY` starts a new budget day.
 * `SYNC` makes the actor a mirror of a budget kept elsewhere (a budget shared across processes on
 * Redis): it takes the figures as given and emits no alert, since the shared store decides those.
 *
 * The machine is pure: no I/O, no timers. The owner sends `DAY` when its clock crosses midnight in
 * the budget's time zone and listens to the emitted `alert` / `rejected` events.
 */
import { assign, enqueueActions, setup } from 'xstate';

/**
 * Tolerance for money comparisons, USD (one nano-dollar): sums of float prices drift by far less,
 * so reaching exactly 80% of a limit through many small charges still counts as 80%.
 */
export const USD_EPSILON = 1e-9;

/** How the scope is set up. */
export interface BudgetMachineInput {
  /** Scope name, e.g. `global`, `model:gpt-4`, `taskType:vendor`. */
  scope: string;
  /** Daily limit, USD (> 0). */
  limitUsd: number;
  /** Fraction of the limit at which the warning alert fires, in (0, 1] (default 0.8). */
  alertAt?: number;
  /** The current budget day, `YYYY-MM-DD`. */
  day: string;
  /** Spend already settled today, USD (default 0). */
  spentUsd?: number;
  /** Thresholds already alerted today (default none). */
  alerted?: readonly number[];
}

/** State of one budget scope. */
export interface BudgetMachineContext {
  scope: string;
  /** Daily limit, USD. */
  limitUsd: number;
  /** Alert thresholds as fractions of the limit, ascending: `[alertAt, 1]`. */
  thresholds: readonly number[];
  /** The current budget day, `YYYY-MM-DD`. */
  day: string;
  /** Spend settled today, USD. */
  spentUsd: number;
  /** Sum of outstanding reservations, USD. */
  reservedUsd: number;
  /**
   * Outstanding reservations by id, USD. Owned by this actor and updated in place, so a reservation
   * costs O(1) however many calls are in flight.
   */
  reservations: Record<string, number>;
  /** Thresholds already alerted today. */
  alerted: readonly number[];
}

/** Events the owner sends. */
export type BudgetMachineEvent =
  /** Ask to hold `usd` for a call about to start. */
  | { type: 'RESERVE'; id: string; usd: number }
  /** The call finished and cost `actualUsd` (charged even if the reservation is unknown). */
  | { type: 'SETTLE'; id: string; actualUsd: number }
  /** The call will not happen: drop the reservation. */
  | { type: 'RELEASE'; id: string }
  /** A new budget day began: spend and alerts reset; in-flight reservations carry over. */
  | { type: 'DAY'; day: string }
  /** Resume a day from the event log (replaces today's spend and alerted thresholds). */
  | { type: 'RESTORE'; day: string; spentUsd: number; alerted: readonly number[] }
  /**
   * Mirror a budget kept elsewhere: replaces the day, spend, in-flight total and alerted thresholds
   * with the given figures (no alert is emitted; whoever keeps the budget raises those).
   */
  | { type: 'SYNC'; day: string; spentUsd: number; reservedUsd: number; alerted: readonly number[] }
  /** The runtime is closing: the actor finishes (and leaves its system). */
  | { type: 'STOP' };

/** Alert payload: a threshold was crossed (once per threshold per day). */
export interface BudgetAlertEmitted {
  type: 'alert';
  scope: string;
  /** Fraction of the limit crossed: `alertAt` or 1. */
  threshold: number;
  spentUsd: number;
  limitUsd: number;
  day: string;
}

/** Events the machine emits (listen with `actor.on(type, fn)`). */
export type BudgetMachineEmitted =
  | BudgetAlertEmitted
  | { type: 'reserved'; scope: string; id: string; usd: number }
  | {
      type: 'rejected';
      scope: string;
      id: string;
      usd: number;
      spentUsd: number;
      reservedUsd: number;
      limitUsd: number;
      day: string;
    };

const reached = (spentUsd: number, limitUsd: number, fraction: number): boolean =>
  spentUsd + USD_EPSILON >= limitUsd * fraction;

/**
 * The alert thresholds of a scope, as fractions of its limit, ascending: `[alertAt, 1]`, or `[1]`
 * when `alertAt` is 1. Every budget (local or shared) alerts at exactly these.
 *
 * @example
 * budgetThresholds(0.8); // [0.8, 1]
 */
export function budgetThresholds(alertAt = 0.8): readonly number[] {
  return alertAt < 1 ? [alertAt, 1] : [1];
}

/**
 * The budget machine. Send events synchronously from one owner; read admission from
 * `snapshot.context.reservations[id]` right after `RESERVE`, or listen for `reserved`/`rejected`.
 *
 * @example
 * const actor = createActor(budgetMachine, { input: { scope: 'global', limitUsd: 100, day: '2026-01-01' } });
 * actor.on('alert', (a) => console.log(`${a.scope} at ${a.threshold * 100}%`));
 * actor.start();
 * actor.send({ type: 'RESERVE', id: 'r1', usd: 0.03 });
 * actor.send({ type: 'SETTLE', id: 'r1', actualUsd: 0.028 });
 */
export const budgetMachine = setup({
  types: {
    input: {} as BudgetMachineInput,
    context: {} as BudgetMachineContext,
    events: {} as BudgetMachineEvent,
    emitted: {} as BudgetMachineEmitted,
  },
  guards: {
    fits: ({ context, event }) =>
      event.type === 'RESERVE' &&
      event.usd >= 0 &&
      Number.isFinite(event.usd) &&
      context.reservations[event.id] === undefined &&
      context.spentUsd + context.reservedUsd + event.usd <= context.limitUsd + USD_EPSILON,
    isExhausted: ({ context }) => reached(context.spentUsd, context.limitUsd, 1),
    isWarning: ({ context }) =>
      !reached(context.spentUsd, context.limitUsd, 1) &&
      reached(context.spentUsd, context.limitUsd, context.thresholds[0] ?? 1),
    isWithin: ({ context }) => !reached(context.spentUsd, context.limitUsd, context.thresholds[0] ?? 1),
  },
  actions: {
    reserve: assign(({ context, event }) => {
      if (event.type !== 'RESERVE') return {};
      context.reservations[event.id] = event.usd;
      return { reservedUsd: context.reservedUsd + event.usd };
    }),
    announceReserved: enqueueActions(({ context, event, enqueue }) => {
      if (event.type === 'RESERVE')
        enqueue.emit({ type: 'reserved', scope: context.scope, id: event.id, usd: event.usd });
    }),
    reject: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'RESERVE') return;
      enqueue.emit({
        type: 'rejected',
        scope: context.scope,
        id: event.id,
        usd: event.usd,
        spentUsd: context.spentUsd,
        reservedUsd: context.reservedUsd,
        limitUsd: context.limitUsd,
        day: context.day,
      });
    }),
    settle: assign(({ context, event }) => {
      if (event.type !== 'SETTLE') return {};
      const held = takeReservation(context, event.id);
      const actual = Number.isFinite(event.actualUsd) && event.actualUsd > 0 ? event.actualUsd : 0;
      return { spentUsd: context.spentUsd + actual, reservedUsd: clampZero(context.reservedUsd - held) };
    }),
    release: assign(({ context, event }) => {
      if (event.type !== 'RELEASE') return {};
      const held = takeReservation(context, event.id);
      return { reservedUsd: clampZero(context.reservedUsd - held) };
    }),
    startDay: assign(({ context, event }) =>
      event.type === 'DAY' && event.day !== context.day ? { day: event.day, spentUsd: 0, alerted: [] } : {},
    ),
    restore: assign(({ event }) =>
      event.type === 'RESTORE'
        ? { day: event.day, spentUsd: Math.max(0, event.spentUsd), alerted: [...event.alerted] }
        : {},
    ),
    sync: assign(({ event }) =>
      event.type === 'SYNC'
        ? {
            day: event.day,
            spentUsd: Math.max(0, event.spentUsd),
            reservedUsd: Math.max(0, event.reservedUsd),
            alerted: event.alerted,
          }
        : {},
    ),
    /** Emits an alert for each threshold reached and not yet alerted today. */
    alertCrossed: enqueueActions(({ context, enqueue }) => {
      let alerted: number[] | undefined;
      for (const threshold of context.thresholds) {
        if (!reached(context.spentUsd, context.limitUsd, threshold)) break;
        if (context.alerted.includes(threshold)) continue;
        (alerted ??= [...context.alerted]).push(threshold);
        enqueue.emit({
          type: 'alert',
          scope: context.scope,
          threshold,
          spentUsd: context.spentUsd,
          limitUsd: context.limitUsd,
          day: context.day,
        });
      }
      if (alerted) {
        const next = alerted;
        enqueue.assign({ alerted: next });
      }
    }),
  },
}).createMachine({
  id: 'budget',
  context: ({ input }) => ({
    scope: input.scope,
    limitUsd: input.limitUsd,
    thresholds: budgetThresholds(input.alertAt),
    day: input.day,
    spentUsd: input.spentUsd ?? 0,
    reservedUsd: 0,
    reservations: {},
    alerted: [...(input.alerted ?? [])],
  }),
  initial: 'within',
  on: {
    RESERVE: [{ guard: 'fits', actions: ['reserve', 'announceReserved'] }, { actions: 'reject' }],
    SETTLE: { actions: ['settle', 'alertCrossed'] },
    RELEASE: { actions: 'release' },
    DAY: { actions: 'startDay' },
    RESTORE: { actions: ['restore', 'alertCrossed'] },
    SYNC: { actions: 'sync' },
    STOP: '.stopped',
  },
  states: {
    within: {
      always: [
        { guard: 'isExhausted', target: 'exhausted' },
        { guard: 'isWarning', target: 'warning' },
      ],
    },
    warning: {
      always: [
        { guard: 'isExhausted', target: 'exhausted' },
        { guard: 'isWithin', target: 'within' },
      ],
    },
    exhausted: {
      on: {
        // Nothing more is admitted today, not even a zero estimate.
        RESERVE: { actions: 'reject' },
      },
      always: [
        { guard: 'isWithin', target: 'within' },
        { guard: 'isWarning', target: 'warning' },
      ],
    },
    /** Final: a child of the runtime cannot be stopped from outside, so it finishes instead. */
    stopped: { type: 'final' },
  },
});

function takeReservation(context: BudgetMachineContext, id: string): number {
  const held = context.reservations[id];
  if (held === undefined) return 0;
  delete context.reservations[id];
  return held;
}

/** Float sums of reservations can drift a hair below zero once all are returned. */
function clampZero(usd: number): number {
  return usd < USD_EPSILON ? 0 : usd;
}
