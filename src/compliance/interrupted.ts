/**
 * Workflows cut off by a crash. A process killed mid-workflow (SIGKILL, out of memory, power loss)
 * leaves its `workflow.started` and whatever else was committed, and no end event. This file finds
 * them with one pass over the log ({@link findOpenWorkflows}) and builds the `workflow.interrupted`
 * event that closes one; `rt.markInterrupted()` and `keel audit interrupt` append those events.
 *
 * It lives with compliance because it is audit-log housekeeping: it reads only the event log, and
 * its output is what lets an auditor tell "still running somewhere" from "lost in a crash".
 */
import { ConfigError } from '../core/errors.js';
import type { KeelEvent, KeelEventType, NewEvent } from '../eventlog/events.js';
import type { EventStore } from '../eventlog/store.js';

/** A workflow with a `workflow.started` and no end event (completed, failed, cancelled, interrupted). */
export interface OpenWorkflow {
  workflowId: string;
  /** Workflow name from its `workflow.started`. */
  name: string;
  /** When it started, ms since epoch. */
  startedTs: number;
  /** Seq of its `workflow.started`. */
  startedSeq: number;
  /** Seq of its last event in the log: where it stopped. */
  lastSeq: number;
  /** Time of its last event, ms since epoch. */
  lastTs: number;
  /** Type of its last event (e.g. `agent.invoked`: a model call was in flight). */
  lastType: KeelEventType;
  /** Its events in the log, `workflow.started` included. */
  events: number;
}

/** Options of {@link findOpenWorkflows}. */
export interface FindOpenWorkflowsOptions {
  /**
   * Only workflows that started strictly before this time, ms since epoch (default: every open
   * workflow, including those running right now).
   */
  startedBefore?: number;
}

/** Options of `rt.markInterrupted()`. */
export interface MarkInterruptedOptions {
  /**
   * Marks open workflows that started strictly before this time, ms since epoch. Required, and not
   * in the future: the caller declares that whatever was still running before it is dead. Keel
   * never guesses — on a shared Postgres log, other processes may still be running their own
   * workflows, so pick a cutoff older than the longest workflow (or stop the fleet first).
   */
  startedBefore: number;
  /** Why, in words, stored in each event (default {@link DEFAULT_INTERRUPTED_REASON}). */
  reason?: string;
  /** Who marked them, stored in each event (default `'runtime'`; `keel audit interrupt` writes `'cli'`). */
  markedBy?: string;
}

/** An open workflow that `rt.markInterrupted()` closed. */
export interface InterruptedWorkflow extends OpenWorkflow {
  /** Seq of the `workflow.interrupted` event written for it. */
  seq: number;
}

/** What `rt.markInterrupted()` did. */
export interface MarkInterruptedResult {
  /** One `workflow.interrupted` appended for each, in the order they started. */
  marked: InterruptedWorkflow[];
  /**
   * Open workflows started before the cutoff that this runtime is running itself: left open (they
   * are alive, and will end on their own).
   */
  running: OpenWorkflow[];
}

/** The reason stored when the caller gives none. */
export const DEFAULT_INTERRUPTED_REASON =
  'the process running it stopped before it finished (crash, kill or power loss)';

/**
 * Finds the workflows of a log that started and never ended, reading the log once (`for await`
 * over `store.iterate()`: SQLite's synchronous stream or Postgres's asynchronous one). Memory grows
 * with the workflows open at once, never with the log. Finding them changes nothing: close the
 * dead ones with `rt.markInterrupted()` or `keel audit interrupt`.
 *
 * @param store - any event store (only `iterate` is used).
 * @param options - `startedBefore` keeps those that started before a time (ms since epoch).
 * @returns the open workflows, in the order they started.
 * @throws ConfigError naming `startedBefore` when it is not a finite number.
 * @example
 * const store = openSqliteStore({ path: 'keel.db', readonly: true });
 * const stale = await findOpenWorkflows(store, { startedBefore: realClock.now() - 3_600_000 });
 * for (const w of stale) console.log(w.workflowId, w.name, `stopped after seq ${w.lastSeq} (${w.lastType})`);
 */
export async function findOpenWorkflows(
  store: Pick<EventStore, 'iterate'>,
  options: FindOpenWorkflowsOptions = {},
): Promise<OpenWorkflow[]> {
  const { startedBefore } = options;
  if (startedBefore !== undefined) checkTime('startedBefore', startedBefore);
  const cutoff = startedBefore ?? Number.POSITIVE_INFINITY;
  const open = new Map<string, OpenWorkflow>();
  const apply = (e: KeelEvent): void => {
    if (e.type === 'workflow.started') {
      // One that started at or after the cutoff is never returned: not even held.
      if (e.ts < cutoff) open.set(e.workflowId, openWorkflowOf(e));
      return;
    }
    const w = open.get(e.workflowId);
    if (w === undefined) return;
    if (isEnd(e.type)) {
      open.delete(e.workflowId);
      return;
    }
    w.lastSeq = e.seq;
    w.lastTs = e.ts;
    w.lastType = e.type;
    w.events++;
  };
  const events = store.iterate();
  if (Symbol.iterator in events) for (const e of events) apply(e);
  else for await (const e of events) apply(e);
  return [...open.values()];
}

/**
 * The `workflow.interrupted` event that closes `open`, stamped `ts` (internal: the runtime's
 * `markInterrupted` appends these).
 */
export function interruptedEvent(
  open: OpenWorkflow,
  ts: number,
  reason: string,
  markedBy: string,
): NewEvent<'workflow.interrupted'> {
  return {
    ts,
    workflowId: open.workflowId,
    type: 'workflow.interrupted',
    payload: { reason, startedSeq: open.startedSeq, lastSeq: open.lastSeq, markedBy },
  };
}

/**
 * Checks `rt.markInterrupted()`'s options against the runtime's clock and fills the defaults
 * (internal).
 *
 * @throws ConfigError naming the field: `startedBefore` missing, not a number or in the future;
 *   `reason` or `markedBy` not a non-empty string.
 */
export function checkMarkOptions(
  options: MarkInterruptedOptions | undefined,
  nowMs: number,
): Required<MarkInterruptedOptions> {
  const {
    startedBefore,
    reason = DEFAULT_INTERRUPTED_REASON,
    markedBy = 'runtime',
  } = options ?? ({} as MarkInterruptedOptions);
  checkTime('startedBefore', startedBefore);
  if (startedBefore > nowMs) {
    throw new ConfigError(
      'startedBefore',
      `${iso(startedBefore)} is in the future (the runtime's clock reads ${iso(nowMs)}): a workflow that may not have started yet cannot be declared dead; pass a time at or before rt.clock.now(), e.g. rt.clock.now() - 3_600_000`,
    );
  }
  for (const [field, value] of [
    ['reason', reason],
    ['markedBy', markedBy],
  ] as const) {
    if (typeof value !== 'string' || value.trim() === '') {
      throw new ConfigError(
        field,
        `must be a non-empty string, e.g. ${field === 'reason' ? "'node killed during deploy'" : "'ops:alice'"}`,
      );
    }
  }
  return { startedBefore, reason, markedBy };
}

function checkTime(field: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new ConfigError(
      field,
      `must be a time in ms since epoch, e.g. rt.clock.now() - 3_600_000 for workflows started over an hour ago; got ${String(value)}`,
    );
  }
}

const iso = (ms: number): string =>
  Number.isFinite(ms) && Math.abs(ms) < 8.64e15 ? new Date(ms).toISOString() : String(ms);

function openWorkflowOf(e: KeelEvent<'workflow.started'>): OpenWorkflow {
  return {
    workflowId: e.workflowId,
    name: e.payload.name,
    startedTs: e.ts,
    startedSeq: e.seq,
    lastSeq: e.seq,
    lastTs: e.ts,
    lastType: e.type,
    events: 1,
  };
}

function isEnd(type: KeelEventType): boolean {
  return (
    type === 'workflow.completed' ||
    type === 'workflow.failed' ||
    type === 'workflow.cancelled' ||
    type === 'workflow.interrupted'
  );
}
