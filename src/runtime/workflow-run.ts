/**
 * One workflow's run, from its `workflow.started` to its committed end event, as a small state
 * machine:
 *
 * ```
 *   running ──(completed | failed | cancelled | log refused an event)──▶ settling ──▶ ended
 * ```
 *
 * - `running`: `workflow.started` is emitted and the topology executes; the run can be cancelled
 *   (caller's signal, unsubscribed `run$`, `rt.close()`), and a log that refuses one of its events
 *   stops it before any further model call runs unrecorded.
 * - `settling`: the outcome is decided and the end event emitted; the run waits until its last
 *   event is committed (again if a refusal appended a `workflow.failed` meanwhile).
 * - `ended`: `onDone` has been called, once, with the outcome (or the log's error).
 *
 * The phase before `running` — a caller-chosen id being looked up in the log (`claimed`) — lives
 * in `workflows.ts`, which admits runs. Replay runs the same class with a recorded
 * `WorkflowEnv.replay` source and a buffer as the log.
 */
import type { ContinuePlan } from '../durable/engine.js';
import { WorkflowWaitingError } from '../durable/errors.js';
import { isWorkflowSuspension } from '../durable/wait.js';
import { concatMap, from, type Unsubscribable } from 'rxjs';
import type { Clock } from '../core/clock.js';
import { isKeelError } from '../core/errors.js';
import { findUnstorable } from '../core/json.js';
import type { Fingerprint } from '../compliance/key.js';
import type { Redactor } from '../compliance/redact.js';
import type { KeelEvent, NewEvent } from '../eventlog/events.js';
import { EventValidationError, isWorkflowAlreadyStartedError } from '../eventlog/errors.js';
import { WorkflowCancelledError, categoryOf, messageOf } from '../supervisor/errors.js';
import { exec } from '../supervisor/execute.js';
import { runChild } from '../supervisor/run-child.js';
import type {
  NodeContext,
  ReplaySource,
  ResumeSource,
  Services,
  WorkflowScope,
} from '../supervisor/scope.js';
import type { AnyTopology, NodeResult } from '../supervisor/topology.js';
import { UnstorableOutputError } from './errors.js';
import type { WorkflowResult } from './types.js';

/**
 * How a started workflow ended. `fromLog` names the workflow whose recorded events a `run$`
 * subscriber is sent instead of live ones (a joined run, or a recorded outcome).
 */
export type Outcome = ({ ok: true; result: WorkflowResult<unknown> } | { ok: false; error: unknown }) & {
  fromLog?: string;
};

/** How a workflow reaches the outside: its services, where its events go, and replay input. */
export interface WorkflowEnv {
  services: Services;
  append: (event: NewEvent) => Promise<unknown>;
  /**
   * Set for a start that must be the only one of its id in a log other processes share: its
   * `workflow.started` goes through this (written only if the log holds none for the id; else it
   * rejects with `WorkflowAlreadyStartedError`, see EventStore.appendStart) and the topology runs
   * once it is committed.
   */
  appendStart?: (event: NewEvent) => Promise<unknown>;
  /** Recorded outcomes fed instead of model calls; `undefined` for a live run. */
  replay: ReplaySource | undefined;
  /** Set when continuing a workflow from its record (src/durable): live, with its record replayed. */
  resume?: ContinuePlan;
}

/** The phases of a run (see the module comment). */
export type WorkflowPhase = 'running' | 'settling' | 'ended';

/** What a run needs of the runtime that admitted it. */
export interface WorkflowRunHost {
  /** Redacts the run's events before they are appended (live runs only). */
  readonly redactor: Redactor | undefined;
  /** Keyed fingerprint of the input (`inputHash`). */
  readonly fingerprint: Fingerprint;
  /** The recorded description of a topology (`workflow.started.payload.topology`). */
  describe(topology: AnyTopology): unknown;
  /** The runtime instance that owns the runs it starts (`workflow.started.payload.owner`). */
  readonly owner?: string;
  /** The topology's structure hash (`workflow.started.payload.structureHash`). */
  structureHash?(topology: AnyTopology): string;
  /** False while the log refuses appends: a run then starts once its `workflow.started` commits. */
  storeHealthy(): boolean;
  /** The log refused an event (locked, full, read-only): later runs wait for it. */
  storeFailed(): void;
  /** The run is executing and can be cancelled. */
  running(run: WorkflowRun): void;
  /** The run's outcome is decided: it can no longer be cancelled. */
  settling(run: WorkflowRun): void;
  /** The run's final event is committed (or failed to be). */
  ended(run: WorkflowRun): void;
}

/** What a run is started with. */
export interface WorkflowRunInit {
  topology: AnyTopology;
  input: unknown;
  /** `canonicalJson(input)`, already computed by the admission checks. */
  inputJson: string;
  workflowId: string;
  name: string;
  /** Aborting it cancels the run. */
  signal?: AbortSignal | undefined;
  /** The workflow's tenant (`RunOptions.tenant`, or the recorded one when resumed or replayed). */
  tenant?: string | undefined;
  /** Set for a `run$` run: receives the text agents stream, by node path. */
  delta?: ((path: string, text: string) => void) | undefined;
}

/**
 * One workflow's run (see the module comment for its phases). It is also the workflow's
 * {@link WorkflowScope}: what its nodes reach (one object per workflow, no closures).
 *
 * @example
 * const run = new WorkflowRun(host, env, { topology, input, inputJson, workflowId, name }, (outcome) => …);
 * run.start();
 * run.cancel('runtime closed');
 */
export class WorkflowRun implements WorkflowScope {
  readonly workflowId: string;
  readonly name: string;
  readonly replaying: boolean;
  /** The tenant stamped on every event of the run (`payload.tenant`), if any. */
  readonly tenant: string | undefined;
  readonly services: Services;
  readonly stats = { costUsd: 0, agentsCalled: 0 };
  readonly replay: ReplaySource | undefined;
  readonly resume: ResumeSource | undefined;
  readonly delta: ((path: string, text: string) => void) | undefined;
  private phaseNow: WorkflowPhase = 'running';
  private readonly clock: Clock;
  private readonly startedAt: number;
  private readonly redactor: Redactor | undefined;
  /** Findings of this workflow's redactions, by kind; made on the first finding. */
  private redactions: Record<string, number> | undefined;
  /** What started the run: dropped once it started (the input's JSON is not kept while it runs). */
  private init: WorkflowRunInit | undefined;
  /** Aborting it cancels the run. */
  private readonly signal: AbortSignal | undefined;
  /** The first error the log answered an append with (not a content refusal). */
  private appendError: unknown;
  /** The last append's commit: what the run waits for before it ends. */
  private last: Promise<unknown> = Promise.resolve();
  /** Type of the end event this workflow emitted, once it did. */
  private endType: KeelEvent['type'] | undefined;
  /** Replaces the outcome when the log refused the content of the `workflow.completed` event. */
  private refusedOutcome: Outcome | undefined;
  /** The execution's subscription, once it exists (a refusal before it is handled after). */
  private subscription: Unsubscribable | undefined;
  private result: { value: unknown; confidence?: number } | undefined;
  /** Listens to `signal`, while the run is running. */
  private onAbort: (() => void) | undefined;

  constructor(
    private readonly host: WorkflowRunHost,
    private readonly env: WorkflowEnv,
    init: WorkflowRunInit,
    private readonly onDone: (outcome: Outcome) => void,
  ) {
    this.workflowId = init.workflowId;
    this.name = init.name;
    this.replaying = env.replay !== undefined;
    this.services = env.services;
    this.replay = env.replay;
    this.resume = env.resume?.source;
    this.delta = init.delta;
    this.redactor = this.replaying ? undefined : host.redactor;
    this.clock = env.services.clock;
    // A resumed workflow keeps its first start: its latency spans the interruption.
    this.startedAt = env.resume ? env.resume.startedTs : this.clock.now();
    this.tenant = init.tenant;
    this.init = init;
    this.signal = init.signal;
  }

  /** Settles once every event emitted so far is committed (the scope's write-ahead wait). */
  committed(): Promise<unknown> {
    return this.last;
  }

  /** The run's phase. */
  get phase(): WorkflowPhase {
    return this.phaseNow;
  }

  /** Emits `workflow.started` and executes the topology. Call once. */
  start(): void {
    if (this.init === undefined) throw new Error('WorkflowRun.start(): the run was started already');
    const { topology, input, inputJson } = this.init;
    this.init = undefined;
    const { signal } = this;
    const { owner } = this.host;
    const startOnce = this.env.resume === undefined ? this.env.appendStart : undefined;
    if (this.env.resume) this.emit(this.env.resume.resumed);
    else {
      this.emit(
        {
          ts: this.startedAt,
          workflowId: this.workflowId,
          type: 'workflow.started',
          payload: {
            name: this.name,
            topology: this.host.describe(topology),
            input,
            inputHash: this.host.fingerprint(inputJson),
            ...(owner !== undefined && !this.replaying ? { owner } : {}),
            ...(this.host.structureHash ? { structureHash: this.host.structureHash(topology) } : {}),
          },
        },
        startOnce,
      );
    }
    const ctx: NodeContext = { scope: this, path: this.name, deadlineAt: undefined };
    const observer = new ExecutionObserver(this);
    // While the log is failing, and for a start that must be the only one of its id, a workflow
    // runs only once its `workflow.started` is committed.
    this.subscription =
      (this.host.storeHealthy() && startOnce === undefined) || this.replaying
        ? runChild(exec, topology, input, ctx, observer)
        : from(this.last.then(() => undefined))
            .pipe(concatMap(() => exec(topology, input, ctx)))
            .subscribe(observer);
    if (this.appendError !== undefined) this.abort(this.appendError);
    if (this.phaseNow === 'running') {
      this.host.running(this);
      if (signal) {
        const onAbort = (): void => this.cancel(String(signal.reason ?? 'aborted'));
        if (signal.aborted) onAbort();
        else {
          this.onAbort = onAbort;
          signal.addEventListener('abort', onAbort, { once: true });
        }
      }
    }
  }

  /** The execution gave its result. */
  executed(r: NodeResult): void {
    this.result = r;
  }

  /** The execution failed (or suspended in a wait). */
  executionFailed(error: unknown): void {
    if (!this.decide()) return;
    if (isWorkflowSuspension(error)) {
      // Suspended in a wait (`workflow.waiting` is written): not an end; a signal continues it.
      this.settle({
        ok: false,
        error: new WorkflowWaitingError(this.workflowId, error.signal, error.timeoutAt),
      });
      return;
    }
    this.emitFailed(error);
    this.settle({ ok: false, error });
  }

  /** The execution completed. */
  executionCompleted(): void {
    if (!this.decide()) return;
    this.complete();
  }

  /** Cancels a running run: `workflow.cancelled`, and the caller gets `WorkflowCancelledError`. */
  cancel(reason: string): void {
    if (!this.decide()) return;
    this.subscription?.unsubscribe();
    this.endType = 'workflow.cancelled';
    this.emit({
      ts: this.clock.now(),
      workflowId: this.workflowId,
      type: 'workflow.cancelled',
      payload: {
        reason: reason.toWellFormed(),
        latencyMs: this.clock.now() - this.startedAt,
        costUsd: this.stats.costUsd,
      },
    });
    this.settle({ ok: false, error: new WorkflowCancelledError(reason) });
  }

  /** Leaves `running` (true), or says the outcome was already decided (false). */
  private decide(): boolean {
    if (this.phaseNow !== 'running') return false;
    this.phaseNow = 'settling';
    return true;
  }

  /** The topology completed: `workflow.completed`, unless its output cannot be stored. */
  private complete(): void {
    const latencyMs = this.clock.now() - this.startedAt;
    const value = this.result?.value;
    const confidence = this.result?.confidence;
    // An output the log cannot store faithfully fails the workflow, recorded as such.
    const bad = findUnstorable(value);
    if (bad !== undefined) {
      const error = new UnstorableOutputError(bad.path, bad.problem);
      this.emitFailed(error);
      this.settle({ ok: false, error });
      return;
    }
    const { costUsd, agentsCalled } = this.stats;
    this.endType = 'workflow.completed';
    this.emit({
      ts: this.clock.now(),
      workflowId: this.workflowId,
      type: 'workflow.completed',
      payload: {
        output: value,
        ...(confidence !== undefined ? { confidence } : {}),
        latencyMs,
        costUsd,
        agentsCalled,
      },
    });
    this.settle({
      ok: true,
      result: {
        workflowId: this.workflowId,
        value,
        ...(confidence !== undefined ? { confidence } : {}),
        costUsd,
        latencyMs,
        agentsCalled,
      },
    });
  }

  /** The log refused an event: the run stops now, without an end event (the log cannot take one). */
  private abort(error: unknown): void {
    if (this.subscription === undefined || !this.decide()) return;
    this.subscription.unsubscribe();
    this.settle({ ok: false, error });
  }

  /** The log refused an event's content: the run fails, recorded as `workflow.failed`. */
  private fail(error: unknown): void {
    if (this.subscription === undefined || !this.decide()) return;
    this.subscription.unsubscribe();
    this.emitFailed(error);
    this.settle({ ok: false, error });
  }

  /**
   * Appends one event of the run (redacted), keeping its commit as `last`; through `via` (the
   * environment's `appendStart`) instead of `append` when given.
   */
  emit(event: NewEvent, via?: (event: NewEvent) => Promise<unknown>): void {
    // Once the log refused one of its events the workflow has failed: a later event (an agent
    // cancelled by that failure) would only half-write it.
    if (this.appendError !== undefined) return;
    // A resumed workflow does not write again a vote or cascade decision its record holds.
    if (this.env.resume?.source.recorded(event)) return;
    let p: Promise<unknown>;
    try {
      p = this.append(event, via);
    } catch (e) {
      // It could not even be prepared for the log (a value the redaction walk cannot handle).
      p = Promise.reject(
        e instanceof EventValidationError
          ? e
          : new EventValidationError('payload', `could not be prepared for the log (${messageOf(e)})`),
      );
    }
    // Events of one transaction may share one promise: one handler for them is enough.
    if (p !== this.last) p.catch((e: unknown) => this.onAppendError(e, event.type));
    this.last = p;
  }

  /**
   * Redacts the event, stamps the workflow's tenant on its payload (after redaction: the id was
   * checked free of PII at admission) and hands it to the log.
   */
  private append(event: NewEvent, via = this.env.append): Promise<unknown> {
    const redactor = this.redactor;
    const tenant = this.tenant;
    let payload = event.payload;
    if (redactor) {
      try {
        payload = redactor.redactInto(payload, FOUND);
      } finally {
        if (hasKeys(FOUND)) this.takeFindings();
      }
    }
    if (tenant !== undefined) payload = { ...payload, tenant };
    return via(payload === event.payload ? event : ({ ...event, payload } as NewEvent));
  }

  /** Moves what the last redaction found into this run's counts. */
  private takeFindings(): void {
    const counts = (this.redactions ??= {});
    for (const k in FOUND) {
      if (!Object.hasOwn(FOUND, k)) continue;
      counts[k] = (counts[k] ?? 0) + (FOUND[k] ?? 0);
      delete FOUND[k];
    }
  }

  private onAppendError(e: unknown, type: KeelEvent['type']): void {
    // Another process started this id first: nothing of this run was written; the caller is
    // answered from that run's record (Workflows).
    if (isContentRefusal(e) || isWorkflowAlreadyStartedError(e)) {
      // The log is fine; this event's content is not storable (NaN, bigint, cycle...).
      this.onRefused(e, type);
      return;
    }
    if (this.appendError === undefined) {
      this.appendError = e;
      // The log refused an event (locked, full, read-only): stop the workflow now, so no further
      // model call runs unrecorded, and make later workflows wait for the log.
      if (!this.replaying) this.host.storeFailed();
      this.abort(e);
    }
  }

  /**
   * The log refused an event of this workflow for its content. Before the end: the workflow fails
   * (`workflow.failed`, malformed_output). Its `workflow.completed`: a `workflow.failed` is recorded
   * in its place and the run rejects. Its `workflow.started`: nothing of it could be recorded, so
   * it stops without an end event.
   */
  private onRefused(e: unknown, type: KeelEvent['type']): void {
    if (type === 'workflow.started') {
      if (this.appendError === undefined) {
        this.appendError = e;
        this.abort(e);
      }
      return;
    }
    const error = refusalError(e, type);
    if (this.phaseNow === 'running') this.fail(error);
    else if (type === 'workflow.completed' && this.endType === type) {
      this.emitFailed(error);
      this.refusedOutcome = { ok: false, error };
    }
  }

  private emitFailed(error: unknown): void {
    this.endType = 'workflow.failed';
    this.emit({
      ts: this.clock.now(),
      workflowId: this.workflowId,
      type: 'workflow.failed',
      payload: {
        category: categoryOf(error),
        // Well-formed, so the end event stays storable whatever a user's error message holds.
        message: messageOf(error).toWellFormed(),
        latencyMs: this.clock.now() - this.startedAt,
        costUsd: this.stats.costUsd,
        agentsCalled: this.stats.agentsCalled,
      },
    });
  }

  /** `settling`: records what redaction found, then ends once the last event is committed. */
  private settle(outcome: Outcome): void {
    this.host.settling(this);
    if (this.redactions !== undefined) {
      const counts = this.redactions;
      this.redactions = undefined;
      this.emit({
        ts: this.clock.now(),
        workflowId: this.workflowId,
        type: 'redaction.applied',
        payload: { counts },
      });
    }
    if (this.onAbort !== undefined) {
      this.signal?.removeEventListener('abort', this.onAbort);
      this.onAbort = undefined;
    }
    this.drain(outcome);
  }

  /**
   * Waits for the last event; again if a refusal appended a `workflow.failed` meanwhile. Every
   * rejection already went through onAppendError, which set `appendError` or `refusedOutcome`.
   */
  private drain(outcome: Outcome): void {
    const final = this.last;
    const next = (): void => {
      if (this.last !== final) {
        this.drain(outcome);
        return;
      }
      this.phaseNow = 'ended';
      this.host.ended(this);
      this.onDone(
        this.appendError !== undefined
          ? { ok: false, error: this.appendError }
          : (this.refusedOutcome ?? outcome),
      );
    };
    final.then(next, next);
  }
}

/**
 * What one redaction found, by kind: one object for every run (a redaction is synchronous), moved
 * into the run's counts when not empty, so a run that never redacts anything keeps no counts.
 */
const FOUND: Record<string, number> = {};

/** Where a run's execution reports (one small object, not three closures). */
class ExecutionObserver {
  constructor(private readonly run: WorkflowRun) {}
  next(r: NodeResult): void {
    this.run.executed(r);
  }
  error(error: unknown): void {
    this.run.executionFailed(error);
  }
  complete(): void {
    this.run.executionCompleted();
  }
}

/** True when `o` has an own enumerable key (no array built, unlike `Object.keys`). */
function hasKeys(o: Record<string, unknown>): boolean {
  for (const k in o) if (Object.hasOwn(o, k)) return true;
  return false;
}

/** True when the log refused an event for its content (not for its own state: locked, closed, full). */
function isContentRefusal(e: unknown): boolean {
  return isKeelError(e) && e.code === 'EVENT_INVALID';
}

/** The error a workflow fails with when the log refused the content of one of its events. */
function refusalError(e: unknown, type: KeelEvent['type']): UnstorableOutputError {
  const field = (e as { field?: unknown }).field;
  const message = messageOf(e);
  if (typeof field !== 'string')
    return new UnstorableOutputError(type, `was refused by the event log (${message})`);
  const prefix = `Event refused: ${field} `;
  const problem = message.startsWith(prefix)
    ? message.slice(prefix.length).replace(/\. Nothing in the batch was written\.$/, '')
    : `was refused by the event log (${message})`;
  return new UnstorableOutputError(`${type} ${field.replace(/^events\[\d+\]\./, '')}`, problem);
}
