/**
 * The durable state of every workflow of a log, read from its lifecycle events in one pass:
 * who owns it, whether it waits (and for what, until when), whether a signal woke it, how it ended.
 * A pure fold; `rt.resume()`, `rt.signal()` and `keel workflows` read it.
 */
import type { KeelEvent, KeelEventType } from '../eventlog/events.js';
import type { EventStore } from '../eventlog/store.js';

/** The lifecycle events the fold reads. */
export const DURABLE_TYPES: readonly KeelEventType[] = [
  'workflow.started',
  'workflow.completed',
  'workflow.failed',
  'workflow.cancelled',
  'workflow.interrupted',
  'workflow.waiting',
  'workflow.signalled',
  'workflow.resumed',
];

/** How a workflow ended, when it did. */
export type EndType =
  'workflow.completed' | 'workflow.failed' | 'workflow.cancelled' | 'workflow.interrupted';

/** One workflow's durable state. */
export interface DurableWorkflow {
  workflowId: string;
  name: string;
  startedSeq: number;
  startedTs: number;
  /** The runtime instance that holds it now: the starter, or the last resumer or signaller. */
  owner: string | undefined;
  /** Structure hash recorded at its start (absent in older logs). */
  structureHash: string | undefined;
  /** Its last lifecycle event. */
  lastSeq: number;
  lastTs: number;
  /** The wait it is suspended in (no signal delivered to it yet). */
  waiting: { name: string; path: string; timeoutAt?: number; seq: number; ts: number } | undefined;
  /** A signal delivered since its last (re)start: it must be continued. */
  signalled: boolean;
  /** How many times it was resumed. */
  resumes: number;
  end: { type: EndType; seq: number; ts: number; category?: string } | undefined;
}

/** Folds lifecycle events (seq order) into workflows by id. */
export function foldDurable(
  events: Iterable<KeelEvent>,
  into = new Map<string, DurableWorkflow>(),
): Map<string, DurableWorkflow> {
  for (const e of events) applyDurable(into, e);
  return into;
}

/** Applies one event to the fold. */
export function applyDurable(map: Map<string, DurableWorkflow>, e: KeelEvent): void {
  if (e.type === 'workflow.started') {
    map.set(e.workflowId, {
      workflowId: e.workflowId,
      name: e.payload.name,
      startedSeq: e.seq,
      startedTs: e.ts,
      owner: e.payload.owner,
      structureHash: e.payload.structureHash,
      lastSeq: e.seq,
      lastTs: e.ts,
      waiting: undefined,
      signalled: false,
      resumes: 0,
      end: undefined,
    });
    return;
  }
  const w = map.get(e.workflowId);
  if (w === undefined || !DURABLE_TYPES.includes(e.type)) return;
  w.lastSeq = e.seq;
  w.lastTs = e.ts;
  switch (e.type) {
    case 'workflow.waiting':
      w.waiting = {
        name: e.payload.name,
        path: e.payload.path,
        seq: e.seq,
        ts: e.ts,
        ...(e.payload.timeoutAt !== undefined ? { timeoutAt: e.payload.timeoutAt } : {}),
      };
      w.signalled = false;
      // A suspended workflow has no owner: whoever delivers the signal continues it.
      w.owner = undefined;
      break;
    case 'workflow.signalled':
      w.waiting = undefined;
      w.signalled = true;
      w.owner = e.payload.owner;
      break;
    case 'workflow.resumed':
      w.owner = e.payload.owner;
      w.signalled = false;
      w.resumes++;
      break;
    case 'workflow.completed':
    case 'workflow.cancelled':
      if (w.end === undefined || w.end.type === 'workflow.interrupted')
        w.end = { type: e.type, seq: e.seq, ts: e.ts };
      break;
    case 'workflow.failed':
      if (w.end === undefined || w.end.type === 'workflow.interrupted') {
        w.end = { type: e.type, seq: e.seq, ts: e.ts, category: e.payload.category };
      }
      break;
    case 'workflow.interrupted':
      w.end ??= { type: e.type, seq: e.seq, ts: e.ts };
      break;
    default:
      break;
  }
}

/** Reads every workflow's durable state from a store (one pass over its lifecycle events). */
export async function scanWorkflows(
  store: Pick<EventStore, 'iterate'>,
  filter: { workflowId?: string } = {},
): Promise<Map<string, DurableWorkflow>> {
  const map = new Map<string, DurableWorkflow>();
  const events = store.iterate({ type: DURABLE_TYPES, ...filter });
  if (Symbol.iterator in events) for (const e of events) applyDurable(map, e);
  else for await (const e of events) applyDurable(map, e);
  return map;
}
