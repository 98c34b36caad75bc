/**
 * Admitting workflows: the checks a run passes before anything is written, the idempotency of a
 * caller-chosen id, and the registry of runs in flight. A run that passes becomes a
 * {@link WorkflowRun} (`running → settling → ended`); before that, a run under a caller-chosen id
 * is `claimed`: the id is held while the log is asked what it recorded under it, so concurrent
 * duplicates join the one run instead of running twice.
 */
import { structureHash, type ContinueOutcome, type ContinuePlan } from '../durable/engine.js';
import { WorkflowBusyError } from '../durable/errors.js';
import { Observable, type Subscriber } from 'rxjs';
import { canonicalJson, isJsonValueError } from '../core/json.js';
import { assertWellFormed } from '../core/unicode.js';
import type { Random } from '../core/random.js';
import type { Pricing } from '../cost/pricing.js';
import {
  assertNameHasNoPii,
  assertTenantHasNoPii,
  assertWorkflowIdHasNoPii,
} from '../compliance/identifiers.js';
import type { Fingerprint } from '../compliance/key.js';
import type { Redactor } from '../compliance/redact.js';
import type { KeelEvent, NewEvent } from '../eventlog/events.js';
import { ReadOnlyDatabaseError, isWorkflowAlreadyStartedError } from '../eventlog/errors.js';
import type { Awaitable, EventStore } from '../eventlog/store.js';
import { WorkflowCancelledError, messageOf } from '../supervisor/errors.js';
import { agentsOf, describe, type AnyTopology, type Topology } from '../supervisor/topology.js';
import {
  UnstorableInputError,
  WorkflowIdConflictError,
  isWorkflowIdConflictError,
  WorkflowTenantConflictError,
  isWorkflowTenantConflictError,
  isWorkflowInProgressError,
} from './errors.js';
import type { RunItem, RunOptions, WorkflowResult } from './types.js';
import { checkTenant, checkTopologyStrings, checkWorkflowId, recordedWorkflow } from './workflow-ids.js';
import { WorkflowRun, type Outcome, type WorkflowEnv, type WorkflowRunHost } from './workflow-run.js';

/** End events of a workflow, and its start: what the idempotency lookup reads of an id. */
const LIFECYCLE_TYPES = [
  'workflow.started',
  'workflow.completed',
  'workflow.failed',
  'workflow.cancelled',
  'workflow.interrupted',
] as const;

/** What admitting and running workflows needs of the runtime. */
export interface WorkflowsDeps {
  readonly store: EventStore;
  readonly pricing: Pricing;
  readonly redactor: Redactor | undefined;
  readonly fingerprint: Fingerprint;
  /** Seeded draws for generated workflow ids. */
  readonly rng: Random;
  /** Where a live run's services and events go. */
  readonly liveEnv: WorkflowEnv;
  /**
   * The store's conditional start (EventStore.appendStart), used for a caller-chosen id on a file
   * other processes may share instead of claiming the id first.
   */
  readonly appendStart?: (event: NewEvent) => Promise<unknown>;
  /** The startup read of the log in progress (or retried after a failure): runs wait for it. */
  restoring(): Promise<void> | undefined;
  /** A live run is about to emit `workflow.started` (the caller's OTel context is still active). */
  onLiveStart?(workflowId: string): void;
  /** ...and its start was refused (another process started the id first): nothing of it is traced. */
  onLiveStartAbandoned?(workflowId: string): void;
  /** Durable execution: the owner recorded in `workflow.started`, and the lease kept while runs are live. */
  durable?: {
    owner: string;
    acquire(): void;
    release(): void;
    /** Claims a caller-chosen id on a log shared by processes; false when another holds it. */
    claimStart?(workflowId: string): Promise<boolean>;
    releaseStart?(workflowId: string): Promise<void>;
  };
}

/**
 * The workflows of one runtime: `run`, `run$` and replay's `execute` start them here.
 *
 * @example
 * const workflows = new Workflows(deps);
 * const { value } = await workflows.run(invoice, input);
 * workflows.close(); // cancels what is running
 */
export class Workflows {
  private readonly topologies = new Map<string, AnyTopology>();
  /** `run$` subscribers of live runs, by workflow id: sent each committed event of theirs. */
  private readonly live = new Map<string, Subscriber<RunItem>>();
  /** Runs executing (cancellable), by workflow id. */
  private readonly running = new Map<string, WorkflowRun>();
  /**
   * Caller-chosen workflow ids this runtime is looking up or running, until their end is committed:
   * a second run under one of them joins it (same outcome) instead of starting another.
   */
  private readonly claims = new Map<
    string,
    { name: string; tenant: string | undefined; done: Promise<Outcome> }
  >();
  /**
   * Ids of workflows this runtime started whose final event is not committed yet (longer than
   * `running`, which forgets a workflow once it settles): what `markInterrupted` must not mark.
   */
  private readonly unsettledIds = new Set<string>();
  private readonly checkedTopologies = new WeakSet<object>();
  private readonly descriptions = new WeakMap<object, unknown>();
  /** Structure hashes of topologies run (`workflow.started.structureHash`). */
  private readonly hashes = new WeakMap<object, string>();
  /** False after the log refused an append, until a commit succeeds again. */
  private storeHealthy = true;
  private idCounter = 0;
  private closed = false;
  private readonly host: WorkflowRunHost;

  constructor(private readonly deps: WorkflowsDeps) {
    this.host = {
      redactor: deps.redactor,
      fingerprint: deps.fingerprint,
      describe: (topology) => this.describeOnce(topology),
      ...(deps.durable ? { owner: deps.durable.owner } : {}),
      structureHash: (topology) => this.hashOnce(topology),
      storeHealthy: () => this.storeHealthy,
      storeFailed: () => {
        this.storeHealthy = false;
      },
      running: (run) => {
        this.running.set(run.workflowId, run);
      },
      settling: (run) => {
        this.running.delete(run.workflowId);
      },
      ended: (run) => {
        if (!run.replaying) {
          this.unsettledIds.delete(run.workflowId);
          this.deps.durable?.release();
        }
      },
    };
  }

  /** Registers a topology under a workflow name, for replay. */
  register(name: string, topology: Topology<never, unknown>): void {
    this.topologies.set(name, topology);
  }

  /** The topology run or registered last under `name`. */
  topology(name: string): AnyTopology | undefined {
    return this.topologies.get(name);
  }

  /** True while this runtime has started `workflowId` and its final event is not committed. */
  unsettled(workflowId: string): boolean {
    return this.unsettledIds.has(workflowId);
  }

  /** A copy of the unsettled ids. */
  unsettledNow(): Set<string> {
    return new Set(this.unsettledIds);
  }

  /** A batch was committed: the log takes appends again. */
  committed(): void {
    this.storeHealthy = true;
  }

  /** Sends a committed event to its workflow's `run$` subscriber, if any. */
  forward(e: KeelEvent): void {
    if (this.live.size > 0) this.live.get(e.workflowId)?.next(e);
  }

  /** Refuses new runs and cancels those running (their calls are charged). */
  close(): void {
    this.closed = true;
    for (const run of [...this.running.values()]) run.cancel('runtime closed');
  }

  /** Drops the `run$` subscribers (after the log closed). */
  forget(): void {
    this.live.clear();
  }

  run<I, O>(topology: Topology<I, O>, input: I, options?: RunOptions): Promise<WorkflowResult<O>> {
    return new Promise((resolve, reject) => {
      this.start(topology, input, options, this.deps.liveEnv, (outcome) => {
        if (outcome.ok) resolve(outcome.result as WorkflowResult<O>);
        else reject(outcome.error instanceof Error ? outcome.error : new Error(messageOf(outcome.error)));
      });
    });
  }

  run$<I, O>(topology: Topology<I, O>, input: I, options?: RunOptions): Observable<RunItem> {
    return new Observable<RunItem>((subscriber) => {
      let id: string | undefined;
      let done = false;
      this.start(
        topology,
        input,
        options,
        this.deps.liveEnv,
        (outcome) => {
          done = true;
          if (id) this.live.delete(id);
          const end = (): void => {
            if (outcome.ok) subscriber.complete();
            else subscriber.error(outcome.error);
          };
          if (outcome.fromLog === undefined) {
            end();
            return;
          }
          // A joined or already recorded workflowId: its committed events come from the log.
          const send = (events: readonly KeelEvent[]): void => {
            for (const e of events) {
              if (subscriber.closed) return;
              subscriber.next(e);
            }
            end();
          };
          const fail = (error: unknown): void => subscriber.error(error);
          try {
            const events = this.deps.store.query({ workflowId: outcome.fromLog });
            if (events instanceof Promise) events.then(send, fail);
            else send(events);
          } catch (error) {
            fail(error);
          }
        },
        (workflowId) => {
          id = workflowId;
          this.live.set(workflowId, subscriber);
        },
      );
      return () => {
        if (!done && id) {
          this.running.get(id)?.cancel('unsubscribed');
          this.live.delete(id);
        }
      };
    });
  }

  /** Replays a recorded workflow in `env` under its recorded id and name (see `src/replay/engine.ts`). */
  execute(
    topology: AnyTopology,
    input: unknown,
    options: { workflowId: string; name: string; tenant?: string },
    env: WorkflowEnv,
    onDone: () => void,
  ): void {
    this.start(topology, input, options, env, onDone);
  }

  /**
   * Starts a workflow. `onDone` runs once, after its final event committed (or failed to).
   * A live run is refused before anything is written when its id, name, topology strings or input
   * cannot be stored; a caller-chosen id that is running or recorded gets that run's outcome.
   */
  private start(
    topology: AnyTopology,
    input: unknown,
    options: RunOptions | undefined,
    env: WorkflowEnv,
    onDone: (outcome: Outcome) => void,
    beforeStart?: (workflowId: string) => void,
  ): void {
    let inputJson: string;
    try {
      if (!env.replay) {
        // Replay re-runs what the log holds under its recorded id and name: only live runs are checked.
        if (options?.workflowId !== undefined) checkWorkflowId(options.workflowId);
        if (options?.name !== undefined) assertWellFormed('RunOptions.name', options.name);
        if (options?.tenant !== undefined) checkTenant(options.tenant);
      }
      inputJson = canonicalJson(input ?? null);
    } catch (error) {
      onDone({
        ok: false,
        error: isJsonValueError(error) ? new UnstorableInputError(error.path, error.problem) : error,
      });
      return;
    }
    if (this.closed) {
      onDone({ ok: false, error: closedError() });
      return;
    }
    const restoring = this.deps.restoring();
    if (restoring) {
      // An asynchronous store is still being read: start once the runtime has caught up.
      restoring.then(
        () => this.start(topology, input, options, env, onDone, beforeStart),
        (error: unknown) => onDone({ ok: false, error }),
      );
      return;
    }
    const redactor = this.deps.redactor;
    try {
      this.check(topology);
      if (!env.replay && redactor) assertRunIdentifiersHaveNoPii(options, redactor);
      // A tenant id is exported as it is everywhere: checked by the default detectors even with
      // redaction off.
      if (!env.replay && options?.tenant !== undefined) assertTenantHasNoPii(options.tenant, redactor);
    } catch (error) {
      onDone({ ok: false, error });
      return;
    }
    const store = this.deps.store;
    if (!env.replay && store.readonly) {
      // Refuse before any model call: nothing the workflow did could be recorded.
      onDone({ ok: false, error: readOnlyError(store) });
      return;
    }
    if (!env.replay && options?.workflowId !== undefined) {
      this.claim(
        topology,
        input,
        { ...options, workflowId: options.workflowId },
        inputJson,
        onDone,
        beforeStart,
      );
      return;
    }
    this.begin(topology, input, options, inputJson, env, onDone, beforeStart);
  }

  /**
   * `claimed`: a live run under a caller-chosen id joins the run of that id in this runtime, or
   * answers with what the log recorded under it, or else begins it — holding a claim on the id
   * meanwhile, so concurrent duplicates join instead of running twice.
   */
  private claim(
    topology: AnyTopology,
    input: unknown,
    options: RunOptions & { workflowId: string },
    inputJson: string,
    onDone: (outcome: Outcome) => void,
    beforeStart?: (workflowId: string) => void,
  ): void {
    const workflowId = options.workflowId;
    const name = workflowName(topology, options);
    const tenant = options.tenant;
    const claim = this.claims.get(workflowId);
    if (claim) {
      if (claim.name !== name) {
        onDone({ ok: false, error: new WorkflowIdConflictError(workflowId, claim.name, name) });
      } else if (claim.tenant !== tenant) {
        onDone({ ok: false, error: new WorkflowTenantConflictError(workflowId, claim.tenant, tenant) });
      } else join(claim.done, workflowId, options.signal, onDone);
      return;
    }
    let settleClaim: (outcome: Outcome) => void = () => undefined;
    const done = new Promise<Outcome>((resolve) => {
      settleClaim = resolve;
    });
    this.claims.set(workflowId, { name, tenant, done });
    const finish = (outcome: Outcome): void => {
      this.claims.delete(workflowId);
      settleClaim(outcome);
      onDone(outcome);
    };
    const asked = { tenant };
    const decide = (events: readonly KeelEvent[]): void => {
      const recorded = recordedWorkflow(workflowId, name, events, asked);
      if (recorded === undefined) {
        if (this.closed) finish({ ok: false, error: closedError() });
        else this.begin(topology, input, options, inputJson, this.deps.liveEnv, finish, beforeStart);
      } else if (recorded.kind === 'completed') {
        finish({
          ok: true,
          result: {
            workflowId,
            value: recorded.output,
            ...(recorded.confidence !== undefined ? { confidence: recorded.confidence } : {}),
            costUsd: recorded.costUsd,
            latencyMs: recorded.latencyMs,
            agentsCalled: recorded.agentsCalled,
            recorded: true,
          },
          fromLog: workflowId,
        });
      } else {
        // Another workflow's (or tenant's) events are not this caller's to stream.
        const fromLog =
          isWorkflowIdConflictError(recorded.error) ||
          isWorkflowTenantConflictError(recorded.error) ||
          isWorkflowInProgressError(recorded.error);
        finish({ ok: false, error: recorded.error, ...(fromLog ? {} : { fromLog: workflowId }) });
      }
    };
    let events: Awaitable<KeelEvent[]>;
    try {
      events = this.deps.store.query({ workflowId, type: LIFECYCLE_TYPES });
    } catch (error) {
      finish({ ok: false, error });
      return;
    }
    // A log other processes may share — Postgres, or a SQLite file — can see this id started by
    // another process between our read and our start. The id's claim row decides which one runs it
    // (a completed or failed id is answered from the read alone, without a claim).
    const shared = events instanceof Promise || sharedFile(this.deps.store);
    const durable = this.deps.durable;
    const claimStart = durable?.claimStart?.bind(durable);
    const releaseStart = durable?.releaseStart?.bind(durable);
    if (
      !(events instanceof Promise) &&
      (!shared || recordedWorkflow(workflowId, name, events, asked) !== undefined)
    ) {
      decide(events);
      return;
    }
    const appendStart = this.deps.appendStart;
    if (!(events instanceof Promise) && appendStart !== undefined) {
      // The log decides in the transaction that would write the start (EventStore.appendStart):
      // if another process started the id since our read, nothing is written and the caller is
      // answered from the record, as a lost claim would be. No claim transactions on the way.
      const env: WorkflowEnv = { ...this.deps.liveEnv, appendStart };
      const started = (outcome: Outcome): void => {
        if (outcome.ok || !isWorkflowAlreadyStartedError(outcome.error)) return finish(outcome);
        this.deps.onLiveStartAbandoned?.(workflowId);
        let now: Awaitable<KeelEvent[]>;
        try {
          now = this.deps.store.query({ workflowId, type: LIFECYCLE_TYPES });
        } catch (error) {
          return finish({ ok: false, error });
        }
        Promise.resolve(now).then(
          (recorded) =>
            recordedWorkflow(workflowId, name, recorded, asked) !== undefined
              ? decide(recorded)
              : finish({ ok: false, error: new WorkflowBusyError(workflowId) }),
          (error: unknown) => finish({ ok: false, error }),
        );
      };
      if (this.closed) finish({ ok: false, error: closedError() });
      else this.begin(topology, input, options, inputJson, env, started, beforeStart);
      return;
    }
    if (!claimStart || !releaseStart) {
      Promise.resolve(events).then(decide, (error: unknown) => finish({ ok: false, error }));
      return;
    }
    const read = (): Promise<KeelEvent[]> =>
      Promise.resolve(this.deps.store.query({ workflowId, type: LIFECYCLE_TYPES }));
    Promise.resolve(events)
      .then(async (first) => {
        if (recordedWorkflow(workflowId, name, first, asked) !== undefined || this.closed)
          return decide(first);
        if (!(await claimStart(workflowId))) {
          // Another live runtime holds the id: its start, once committed, answers; until then, busy.
          const now = await read();
          if (recordedWorkflow(workflowId, name, now, asked) !== undefined) return decide(now);
          return finish({ ok: false, error: new WorkflowBusyError(workflowId) });
        }
        // Re-read under the claim: the other process may have run it to its end meanwhile.
        let held: KeelEvent[];
        try {
          held = await read();
        } catch (error) {
          await releaseStart(workflowId);
          throw error;
        }
        if (recordedWorkflow(workflowId, name, held, asked) !== undefined || this.closed) {
          await releaseStart(workflowId);
          return decide(held);
        }
        const onDone = finish;
        const release = (outcome: Outcome): void => {
          void releaseStart(workflowId).then(() => onDone(outcome));
        };
        this.begin(topology, input, options, inputJson, this.deps.liveEnv, release, beforeStart);
      })
      .catch((error: unknown) => finish({ ok: false, error }));
  }

  /** Runs a workflow that passed every check, from its `workflow.started` to its end event. */
  private begin(
    topology: AnyTopology,
    input: unknown,
    options: RunOptions | undefined,
    inputJson: string,
    env: WorkflowEnv,
    onDone: (outcome: Outcome) => void,
    beforeStart?: (workflowId: string) => void,
  ): void {
    const workflowId = options?.workflowId ?? this.newWorkflowId();
    const live = !env.replay;
    if (live) {
      this.unsettledIds.add(workflowId);
      this.deps.durable?.acquire();
    }
    if (live) this.deps.onLiveStart?.(workflowId);
    beforeStart?.(workflowId);
    const name = workflowName(topology, options);
    if (live) this.topologies.set(name, topology);
    const signal = options?.signal;
    // A `run$` subscriber also gets the text agents stream, beside the committed events.
    const delta =
      live && this.live.has(workflowId)
        ? (path: string, text: string): void =>
            this.live.get(workflowId)?.next({ type: 'delta', workflowId, path, text })
        : undefined;
    new WorkflowRun(
      this.host,
      env,
      { topology, input, inputJson, workflowId, name, signal, delta, tenant: options?.tenant },
      onDone,
    ).start();
  }

  private newWorkflowId(): string {
    const t = this.deps.liveEnv.services.clock.now().toString(36).padStart(9, '0');
    const r = Math.floor(this.deps.rng.next() * 2 ** 32)
      .toString(36)
      .padStart(7, '0');
    return `wf_${t}${r}${(this.idCounter++ % 1296).toString(36).padStart(2, '0')}`;
  }

  private check(topology: AnyTopology): void {
    if (this.checkedTopologies.has(topology)) return;
    checkTopologyStrings(topology);
    this.deps.pricing.assertKnown(
      agentsOf(topology).map((a) => a.model),
      (model) => `agent model "${model}" (add it to createRuntime({ pricing }))`,
    );
    if (this.deps.redactor) assertTopologyNamesHaveNoPii(topology, this.deps.redactor);
    this.checkedTopologies.add(topology);
  }

  private hashOnce(topology: AnyTopology): string {
    let h = this.hashes.get(topology);
    if (h === undefined) {
      h = structureHash(topology, this.describeOnce(topology));
      this.hashes.set(topology, h);
    }
    return h;
  }

  /** The outcome of a run this runtime holds under `workflowId` (running or being looked up), if any. */
  joinable(workflowId: string): Promise<Outcome> | undefined {
    return this.claims.get(workflowId)?.done;
  }

  /**
   * Continues a workflow from its record (src/durable): held under its id like a caller-chosen one,
   * so `rt.run(…, { workflowId })` and `rt.result(id)` join it; resolves after its end (or
   * suspension) is committed.
   */
  continue(plan: ContinuePlan): Promise<ContinueOutcome> {
    return new Promise((resolve) => {
      const { workflowId, name, topology, input, tenant } = plan;
      let settleClaim: (outcome: Outcome) => void = () => undefined;
      const done = new Promise<Outcome>((r) => {
        settleClaim = r;
      });
      this.claims.set(workflowId, { name, tenant, done });
      const finish = (outcome: Outcome): void => {
        this.claims.delete(workflowId);
        settleClaim(outcome);
        resolve(outcome.ok ? { ok: true } : { ok: false, error: outcome.error });
      };
      if (this.closed) {
        finish({ ok: false, error: closedError() });
        return;
      }
      try {
        this.check(topology);
        const env: WorkflowEnv = { ...this.deps.liveEnv, resume: plan };
        this.begin(
          topology,
          input,
          { workflowId, name, ...(tenant !== undefined ? { tenant } : {}) },
          canonicalJson(input ?? null),
          env,
          finish,
        );
      } catch (error) {
        finish({ ok: false, error });
      }
    });
  }

  private describeOnce(topology: AnyTopology): unknown {
    let d = this.descriptions.get(topology);
    if (d === undefined) {
      d = describe(topology);
      this.descriptions.set(topology, d);
    }
    return d;
  }
}

/** A joiner waits for the claimed run's outcome; its own signal stops its wait, not that run. */
function join(
  done: Promise<Outcome>,
  workflowId: string,
  signal: AbortSignal | undefined,
  onDone: (outcome: Outcome) => void,
): void {
  let waiting = true;
  const onAbort = (): void => {
    if (!waiting) return;
    waiting = false;
    onDone({ ok: false, error: new WorkflowCancelledError(String(signal?.reason ?? 'aborted')) });
  };
  void done.then((outcome) => {
    signal?.removeEventListener('abort', onAbort);
    if (!waiting) return;
    waiting = false;
    onDone({ ...outcome, fromLog: workflowId });
  });
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
}

function closedError(): WorkflowCancelledError {
  return new WorkflowCancelledError('the runtime is closed; create a new one with createRuntime()');
}

/** The error of a run or a mark refused by a read-only store. */
export function readOnlyError(store: EventStore): ReadOnlyDatabaseError {
  return new ReadOnlyDatabaseError(
    (store as { path?: string }).path ?? 'the event log',
    'the runtime was given a read-only store',
  );
}

/** The workflow name used in paths and metrics. */
function workflowName(t: AnyTopology, options?: RunOptions): string {
  return options?.name ?? t.name ?? t.kind;
}

/** Refuses a topology whose node, agent, task-type or breaker names carry PII (they label metrics and spans). */
function assertTopologyNamesHaveNoPii(t: AnyTopology, redactor: Redactor): void {
  if (t.kind === 'agent') {
    assertNameHasNoPii('agent.name', t.name, redactor);
    assertNameHasNoPii('agent.taskType', t.taskType, redactor);
    if (t.breaker !== undefined) assertNameHasNoPii('agent.breaker.name', t.breaker.name, redactor);
    return;
  }
  if (t.name !== undefined) assertNameHasNoPii('named(name)', t.name, redactor);
  for (const child of t.children) assertTopologyNamesHaveNoPii(child, redactor);
}

/** Refuses a run whose given workflow id or name carries PII: both are stored and exported as they are. */
function assertRunIdentifiersHaveNoPii(options: RunOptions | undefined, redactor: Redactor): void {
  if (typeof options?.workflowId === 'string') assertWorkflowIdHasNoPii(options.workflowId, redactor);
  if (typeof options?.name === 'string') assertNameHasNoPii('options.name', options.name, redactor);
}

/**
 * True for a SQLite file (`path` other than `:memory:`): another process may open it and start the
 * same workflow id, so a caller-chosen id is claimed before it starts, as on Postgres.
 */
function sharedFile(store: EventStore): boolean {
  const path = (store as { path?: unknown }).path;
  return typeof path === 'string' && path !== ':memory:' && path !== '';
}
