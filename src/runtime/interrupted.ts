/**
 * Crash marking (`rt.markInterrupted`): closes the workflows a crash cut off with one
 * `workflow.interrupted` each, so reports, projections and what-ifs stop counting them as running
 * and replay reports them as not replayable. The runtime's own unfinished workflows are left open.
 */
import type { Clock } from '../core/clock.js';
import {
  checkMarkOptions,
  findOpenWorkflows,
  interruptedEvent,
  type InterruptedWorkflow,
  type MarkInterruptedOptions,
  type MarkInterruptedResult,
  type OpenWorkflow,
} from '../compliance/interrupted.js';
import type { Redactor } from '../compliance/redact.js';
import type { EventStore } from '../eventlog/store.js';
import { readOnlyError } from './workflows.js';

/** Most `workflow.interrupted` events appended in one transaction by `markInterrupted`. */
const MARK_BATCH = 500;

/** What crash marking needs of the runtime. */
export interface InterruptMarkerDeps {
  readonly store: EventStore;
  readonly clock: Clock;
  readonly redactor: Redactor | undefined;
  /** Ids of workflows this runtime started whose final event is not committed yet. */
  unsettled(): Set<string>;
}

/**
 * `rt.markInterrupted`: calls run one after the other, so none marks a workflow twice.
 *
 * @example
 * const markInterrupted = createInterruptMarker({ store, clock, redactor, unsettled });
 * await markInterrupted({ startedBefore: bootMs, reason: 'crash', markedBy: 'ops' });
 */
export function createInterruptMarker(
  deps: InterruptMarkerDeps,
): (options: MarkInterruptedOptions) => Promise<MarkInterruptedResult> {
  let marking: Promise<unknown> = Promise.resolve();
  return (options) => {
    const run = marking.then(() => markNow(deps, options));
    marking = run.catch(() => undefined);
    return run;
  };
}

async function markNow(
  deps: InterruptMarkerDeps,
  options: MarkInterruptedOptions,
): Promise<MarkInterruptedResult> {
  const { store, clock } = deps;
  const { startedBefore, reason, markedBy } = checkMarkOptions(options, clock.now());
  if (store.readonly) throw readOnlyError(store);
  // Live before or after the (possibly asynchronous) read: either way, not dead.
  const liveBefore = deps.unsettled();
  const open = await findOpenWorkflows(store, { startedBefore });
  const liveAfter = deps.unsettled();
  const running: OpenWorkflow[] = [];
  const dead: OpenWorkflow[] = [];
  for (const w of open) {
    if (liveBefore.has(w.workflowId) || liveAfter.has(w.workflowId)) running.push(w);
    else dead.push(w);
  }
  const redact = deps.redactor;
  const marked: InterruptedWorkflow[] = [];
  for (let i = 0; i < dead.length; i += MARK_BATCH) {
    const batch = dead.slice(i, i + MARK_BATCH);
    const ts = clock.now();
    const events = batch.map((w) => {
      const e = interruptedEvent(w, ts, reason, markedBy);
      return redact ? { ...e, payload: redact.redact(e.payload).value } : e;
    });
    const committed = await store.append(events);
    batch.forEach((w, j) => marked.push({ ...w, seq: committed[j]?.seq ?? 0 }));
  }
  return { marked, running };
}
