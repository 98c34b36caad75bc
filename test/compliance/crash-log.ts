/**
 * Crash leftovers for the interrupted-workflow tests: a recorded log copied event for event, with
 * chosen workflows cut off where a killed process would leave them — after their agent work and
 * before their outcome (`cascade.accepted`, `vote.decided`, the end event and what follows it).
 * `sigkill` in interrupted.test.ts checks the same shape on the log of a really killed process.
 */
import type { KeelEvent, KeelEventType, NewEvent } from '../../src/eventlog/events.js';
import type { EventStore } from '../../src/eventlog/store.js';

/** Event types a crashed workflow never got to write: its outcome, its end and what follows the end. */
const CUT_FROM: ReadonlySet<KeelEventType> = new Set<KeelEventType>([
  'cascade.accepted',
  'vote.decided',
  'workflow.completed',
  'workflow.failed',
  'workflow.cancelled',
  'redaction.applied',
  'feedback.recorded',
]);

/** The log with each workflow of `cut` stopped before its first {@link CUT_FROM} event. */
export function cutOff(events: readonly KeelEvent[], cut: ReadonlySet<string>): KeelEvent[] {
  const stopped = new Set<string>();
  return events.filter((e) => {
    if (!cut.has(e.workflowId)) return true;
    if (stopped.has(e.workflowId)) return false;
    if (CUT_FROM.has(e.type)) {
      stopped.add(e.workflowId);
      return false;
    }
    return true;
  });
}

/** The event as it was appended (the store assigns seq again). */
export function toNew(e: KeelEvent): NewEvent {
  return {
    ts: e.ts,
    workflowId: e.workflowId,
    type: e.type,
    v: e.v,
    class: e.class,
    payload: e.payload,
  } as NewEvent;
}

/** Appends `events` to `store` in order, 500 per transaction. */
export async function appendAll(
  store: Pick<EventStore, 'append'>,
  events: readonly KeelEvent[],
): Promise<void> {
  for (let i = 0; i < events.length; i += 500) await store.append(events.slice(i, i + 500).map(toNew));
}

/** Ids of the workflows in `events` that ran a given event type (e.g. escalated cascades). */
export function workflowsWith(events: readonly KeelEvent[], type: KeelEventType): string[] {
  return [...new Set(events.filter((e) => e.type === type).map((e) => e.workflowId))];
}
