/**
 * Durable execution in a runtime: its instance id and lease, finding and claiming orphaned
 * workflows (`rt.resume()`), delivering signals to waiting ones (`rt.signal()`), and closing one
 * that cannot be resumed (`rt.markFailed()`). The runtime supplies the workflow lifecycle through
 * {@link DurableHost}; this file holds no workflow state beyond the lease.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { hostname } from 'node:os';
import type { Clock, TimerHandle } from '../core/clock.js';
import { canonicalJson } from '../core/json.js';
import type { KeelEvent, NewEvent } from '../eventlog/events.js';
import type { EventStore, OwnershipStore } from '../eventlog/store.js';
import { childSegment } from '../supervisor/execute.js';
import { describe, type AnyTopology, type Composite } from '../supervisor/topology.js';
import {
  OwnershipUnsupportedError,
  SignalValidationError,
  TopologyChangedError,
  TopologyNotRegisteredError,
  UnknownWorkflowError,
  WaitTimedOutError,
  WorkflowBusyError,
  WorkflowFinishedError,
  WorkflowNotWaitingError,
} from './errors.js';
import { resumeSource, type ResumeSource } from './resume-source.js';
import { scanWorkflows, type DurableWorkflow } from './scan.js';
import { waitNodeOf } from './wait.js';

/** Durable-execution options of `createRuntime({ durable })`. */
export interface DurableConfig {
  /**
   * How long a runtime's lease lasts without renewal, ms (default 30_000). It is renewed every
   * third of that while the runtime runs workflows (one write per renewal, whatever their number).
   * Another process takes over this runtime's workflows only after it lapsed.
   */
  leaseMs?: number;
}

/** Default {@link DurableConfig.leaseMs}. */
export const DEFAULT_LEASE_MS = 30_000;

/** Instance ids of the runtimes alive in this process (a local owner not in it is gone). */
const LIVE_INSTANCES = new Set<string>();

/**
 * Which pid space a pid belongs to, when Linux can say: the boot (`boot_id`, one per machine boot)
 * and the pid namespace (one per container). A hostname alone is not it — cloned VMs and container
 * replicas share hostnames while their pids mean different processes.
 */
function pidSpace(): string | undefined {
  try {
    const boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const ns = fs.readlinkSync('/proc/self/ns/pid');
    return createHash('sha256').update(`${boot}\n${ns}`).digest('hex').slice(0, 8);
  } catch {
    return undefined;
  }
}
const PID_SPACE = pidSpace();
/** `hostname/pidspace` where the pid space is known, else the hostname alone. */
const HOST = PID_SPACE === undefined ? hostname() : `${hostname()}/${PID_SPACE}`;

/** A new runtime instance id: `host:pid:random` (`host` is `hostname/pidspace` on Linux). */
export function newInstanceId(): string {
  const id = `${HOST}:${process.pid}:${randomBytes(4).toString('hex')}`;
  LIVE_INSTANCES.add(id);
  return id;
}

/**
 * True when `owner` is provably gone without waiting for its lease: a runtime of this very pid
 * space (same machine boot and pid namespace) whose process is not running, or of this process that
 * is no longer alive. Anywhere else (another machine or container, a platform that cannot name its
 * pid space) only the lease can tell.
 */
export function ownerIsGone(owner: string): boolean {
  const [host, pidText] = owner.split(':');
  if (PID_SPACE === undefined || host !== HOST || pidText === undefined) return false;
  if (!/^[1-9][0-9]{0,9}$/.test(pidText)) return false;
  const pid = Number(pidText);
  if (pid === process.pid) return !LIVE_INSTANCES.has(owner);
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** sha256 of a topology's canonical description: what `workflow.started.structureHash` records. */
export function structureHash(topology: AnyTopology, described?: unknown): string {
  return createHash('sha256')
    .update(canonicalJson(described ?? describe(topology)))
    .digest('hex');
}

/** Why a workflow is continued. */
export type ResumeReason = 'orphaned' | 'signalled' | 'timed_out';

/** What the runtime needs to continue a workflow. */
export interface ContinuePlan {
  workflowId: string;
  name: string;
  topology: AnyTopology;
  input: unknown;
  startedTs: number;
  /** The tenant recorded in its `workflow.started` (stamped on the events it writes now). */
  tenant?: string;
  source: ResumeSource;
  /** The `workflow.resumed` event to write instead of `workflow.started`. */
  resumed: NewEvent<'workflow.resumed'>;
}

/** A continued workflow's end, as the runtime reports it. */
export type ContinueOutcome = { ok: true } | { ok: false; error: unknown };

/** The runtime as durable execution uses it. */
export interface DurableHost {
  readonly store: EventStore;
  readonly clock: Clock;
  /** The topology registered (or last run) under a workflow name. */
  topology(name: string): AnyTopology | undefined;
  /** True while this runtime runs the workflow itself. */
  runsHere(workflowId: string): boolean;
  /** Continues a workflow; resolves once its end (or suspension) is committed. */
  continue(plan: ContinuePlan): Promise<ContinueOutcome>;
  /** Reports an error no caller awaits (a failed heartbeat). */
  onError(error: unknown): void;
  /** A workflow was resumed (metrics). */
  onResumed?(workflowId: string): void;
}

/** Options of `rt.resume()`. */
export interface ResumeOptions {
  /** Only these workflows (default: every orphan of the log). */
  workflowIds?: readonly string[];
  /** Workflows claimed and run at once (default 16): a batch is claimed, run, then the next. */
  batch?: number;
}

/** One workflow `rt.resume()` looked at. */
export interface ResumedWorkflow {
  workflowId: string;
  name: string;
  reason: ResumeReason;
  /** Agents that were in flight at the crash and ran again. */
  rerun: readonly string[];
  /** How it ended this time: completed, failed (the error), or suspended again (`waiting`). */
  outcome: 'completed' | 'failed' | 'waiting';
  error?: unknown;
}

/** What `rt.resume()` did. */
export interface ResumeReport {
  resumed: ResumedWorkflow[];
  /** Orphans it did not resume, with why: `TopologyChangedError`, `TopologyNotRegisteredError`. */
  refused: { workflowId: string; name: string; error: Error }[];
}

/** Statuses `keel workflows` lists. */
export type WorkflowStatus = 'running' | 'waiting' | 'interrupted' | 'completed' | 'failed' | 'cancelled';

/** One row of `keel workflows`. */
export interface WorkflowListing {
  workflowId: string;
  name: string;
  status: WorkflowStatus;
  startedTs: number;
  lastTs: number;
  owner: string | undefined;
  /** For a waiting workflow: the signal it waits for, and until when. */
  waitingFor?: string;
  timeoutAt?: number;
  resumes: number;
}

/**
 * Lists a log's workflows with their durable status: `running` (its owner's lease is live, or it is
 * being resumed), `waiting`, `interrupted` (open, and its owner is gone: `rt.resume()` continues
 * it; or marked interrupted), `completed`, `failed`, `cancelled`.
 */
export async function listWorkflows(store: EventStore, now: number): Promise<WorkflowListing[]> {
  const [workflows, leases, claims] = await Promise.all([
    scanWorkflows(store),
    store.ownership?.().leases() ?? [],
    store.ownership?.().claims() ?? [],
  ]);
  const alive = new Set(leases.filter((l) => l.expiresAt > now).map((l) => l.owner));
  const claimedBy = new Map(claims.filter((c) => alive.has(c.owner)).map((c) => [c.workflowId, c.owner]));
  const out: WorkflowListing[] = [];
  for (const w of workflows.values()) {
    let status: WorkflowStatus;
    let owner = w.owner;
    if (w.end !== undefined) {
      status =
        w.end.type === 'workflow.completed'
          ? 'completed'
          : w.end.type === 'workflow.failed'
            ? 'failed'
            : w.end.type === 'workflow.cancelled'
              ? 'cancelled'
              : 'interrupted';
    } else if (w.waiting !== undefined) status = 'waiting';
    else if (claimedBy.has(w.workflowId)) {
      status = 'running';
      owner = claimedBy.get(w.workflowId);
    } else
      status =
        w.owner !== undefined && alive.has(w.owner) && !ownerIsGone(w.owner) ? 'running' : 'interrupted';
    out.push({
      workflowId: w.workflowId,
      name: w.name,
      status,
      startedTs: w.startedTs,
      lastTs: w.lastTs,
      owner,
      ...(w.waiting ? { waitingFor: w.waiting.name } : {}),
      ...(w.waiting?.timeoutAt !== undefined ? { timeoutAt: w.waiting.timeoutAt } : {}),
      resumes: w.resumes,
    });
  }
  return out;
}

/** The durable side of one runtime. */
export class DurableEngine {
  readonly owner = newInstanceId();
  readonly leaseMs: number;
  private active = 0;
  private timer: { handle: TimerHandle } | undefined;
  private leased = false;
  private expiresAt = 0;
  private beat: Promise<void> = Promise.resolve();
  private retired = false;

  constructor(
    private readonly host: DurableHost,
    config: DurableConfig = {},
  ) {
    this.leaseMs = config.leaseMs ?? DEFAULT_LEASE_MS;
  }

  private ownership(): OwnershipStore {
    const o = this.host.store.ownership?.();
    if (!o) throw new OwnershipUnsupportedError();
    return o;
  }

  // ── lease ─────────────────────────────────────────────────────────────────────────────────

  /** A workflow of this runtime starts: keeps the lease renewed while any runs. */
  acquire(): void {
    this.active++;
    if (this.host.store.readonly || this.retired || this.host.store.ownership === undefined) return;
    if (this.expiresAt - this.host.clock.now() < (this.leaseMs * 2) / 3) this.heartbeat();
    if (this.timer === undefined) this.schedule();
  }

  /** A workflow of this runtime ended or was suspended. */
  release(): void {
    this.active = Math.max(0, this.active - 1);
    if (this.active === 0 && this.timer !== undefined) {
      this.host.clock.clearTimeout(this.timer.handle);
      this.timer = undefined;
    }
  }

  private schedule(): void {
    const handle = this.host.clock.setTimeout(() => {
      this.timer = undefined;
      if (this.active === 0 || this.retired) return;
      this.heartbeat();
      this.schedule();
    }, this.leaseMs / 3);
    this.timer = { handle };
  }

  private heartbeat(): void {
    const expiresAt = this.host.clock.now() + this.leaseMs;
    this.expiresAt = expiresAt;
    this.leased = true;
    this.beat = this.ownership()
      .heartbeat(this.owner, expiresAt)
      .catch((e: unknown) => {
        this.expiresAt = 0;
        this.host.onError(e);
      });
  }

  /** Waits for the last heartbeat to be written. */
  settled(): Promise<void> {
    return this.beat;
  }

  /** Ends the lease (clean shutdown): this runtime's claims pass on at once. */
  async retire(): Promise<void> {
    this.retired = true;
    if (this.timer !== undefined) this.host.clock.clearTimeout(this.timer.handle);
    this.timer = undefined;
    LIVE_INSTANCES.delete(this.owner);
    await this.beat;
    if (this.leased)
      await this.ownership()
        .retire(this.owner)
        .catch((e: unknown) => this.host.onError(e));
  }

  // ── starts under a caller-chosen id ───────────────────────────────────────────────────────

  /**
   * Claims a caller-chosen workflow id before its first start, on a log shared by processes: one
   * claim row per id (`keel_claims`, as a resume takes), so two processes starting the same id at
   * once cannot both run it. Resolves true when this runtime holds the id (the lease is kept while
   * it does; {@link releaseStart} lets go), false when another live runtime holds it.
   */
  async claimStart(workflowId: string): Promise<boolean> {
    const ownership = this.host.store.ownership?.();
    if (ownership === undefined || this.host.store.readonly) return true;
    this.acquire();
    try {
      await this.beat;
      const got = await ownership.claim(this.owner, [{ workflowId }], this.host.clock.now());
      if (got.length > 0) return true;
    } catch (e) {
      this.release();
      throw e;
    }
    this.release();
    return false;
  }

  /** Lets go of an id {@link claimStart} took (its run ended, or it was not started after all). */
  async releaseStart(workflowId: string): Promise<void> {
    this.release();
    await this.host.store
      .ownership?.()
      .release(this.owner, [workflowId])
      .catch((e: unknown) => this.host.onError(e));
  }

  // ── resume ────────────────────────────────────────────────────────────────────────────────

  /**
   * Finds the workflows whose owner is gone (or that a signal or a passed timeout woke), claims them
   * atomically in batches, and continues each; resolves once every claimed one ended or suspended.
   */
  async resume(options: ResumeOptions = {}): Promise<ResumeReport> {
    const ownership = this.ownership();
    const report: ResumeReport = { resumed: [], refused: [] };
    const only = options.workflowIds ? new Set(options.workflowIds) : undefined;
    const batch = options.batch ?? 16;
    const done = new Set<string>();
    for (;;) {
      const now = this.host.clock.now();
      const workflows = await scanWorkflows(this.host.store);
      const leases = await ownership.leases();
      const leased = new Map(leases.map((l) => [l.owner, l.expiresAt]));
      const candidates: { workflowId: string; owner?: string }[] = [];
      const byId = new Map<string, { w: DurableWorkflow; reason: ResumeReason }>();
      for (const w of workflows.values()) {
        if (done.has(w.workflowId) || (only && !only.has(w.workflowId))) continue;
        const reason = this.wakeReason(w, now, leased);
        if (reason === undefined) continue;
        byId.set(w.workflowId, { w, reason });
        const gone = w.owner === undefined || w.owner === this.owner || ownerIsGone(w.owner);
        candidates.push({ workflowId: w.workflowId, ...(gone ? {} : { owner: w.owner }) });
      }
      if (candidates.length === 0) break;
      this.acquire(); // our lease must be live while we hold claims
      let claimed: string[];
      try {
        await this.beat;
        claimed = await ownership.claim(this.owner, candidates, now, batch);
      } catch (e) {
        this.release();
        throw e;
      }
      if (claimed.length === 0) {
        this.release();
        break;
      }
      await Promise.all(
        claimed.map(async (id) => {
          done.add(id);
          const found = byId.get(id);
          if (!found) return;
          try {
            const r = await this.continueOne(found.w.workflowId, found.reason);
            if (r) report.resumed.push(r);
          } catch (e) {
            report.refused.push({
              workflowId: id,
              name: found.w.name,
              error: e instanceof Error ? e : new Error(String(e)),
            });
          } finally {
            await ownership.release(this.owner, [id]).catch((e: unknown) => this.host.onError(e));
          }
        }),
      );
      this.release();
    }
    return report;
  }

  /** Why `w` should be continued now, or `undefined`. */
  private wakeReason(w: DurableWorkflow, now: number, leased: Map<string, number>): ResumeReason | undefined {
    if (w.end !== undefined || this.host.runsHere(w.workflowId)) return undefined;
    if (w.waiting !== undefined) {
      return w.waiting.timeoutAt !== undefined && now >= w.waiting.timeoutAt ? 'timed_out' : undefined;
    }
    if (w.owner !== undefined && w.owner !== this.owner && !ownerIsGone(w.owner)) {
      const expires = leased.get(w.owner);
      if (expires === undefined) {
        // Never leased: a workflow that just started may have committed before its owner's first
        // heartbeat; only one quiet for a whole lease is an orphan.
        if (now - w.lastTs < this.leaseMs) return undefined;
      } else if (expires > now) return undefined;
    }
    return w.signalled ? 'signalled' : 'orphaned';
  }

  /**
   * Runs a workflow on from its recorded `events` (the record replayed, the rest live), logging
   * `workflow.resumed` with who owned it before and which invocations run again.
   */
  private continueFrom(
    events: readonly KeelEvent[],
    started: KeelEvent<'workflow.started'>,
    topology: AnyTopology,
    previousOwner: string | undefined,
    lastSeq: number,
    reason: ResumeReason,
  ): { source: ResumeSource; run: Promise<ContinueOutcome> } {
    const workflowId = started.workflowId;
    const source = resumeSource(events);
    const run = this.host.continue({
      workflowId,
      name: started.payload.name,
      topology,
      input: started.payload.input,
      startedTs: started.ts,
      ...(started.payload.tenant !== undefined ? { tenant: started.payload.tenant } : {}),
      source,
      resumed: {
        ts: this.host.clock.now(),
        workflowId,
        type: 'workflow.resumed',
        payload: {
          owner: this.owner,
          ...(previousOwner !== undefined ? { previousOwner } : {}),
          startedSeq: started.seq,
          lastSeq,
          reason,
          rerun: [...source.inFlight],
        },
      },
    });
    return { source, run };
  }

  /**
   * Continues one claimed workflow: re-reads its events (it may have ended meanwhile), checks its
   * topology, and runs it with its record replayed.
   */
  private async continueOne(workflowId: string, reason: ResumeReason): Promise<ResumedWorkflow | undefined> {
    const events = await this.host.store.query({ workflowId });
    const state = [...(await scanWorkflows({ iterate: () => events })).values()][0];
    if (state === undefined || state.end !== undefined) return undefined;
    const started = events.find((e): e is KeelEvent<'workflow.started'> => e.type === 'workflow.started');
    if (!started) return undefined;
    const topology = this.checkedTopology(workflowId, started);
    const last = events.at(-1) ?? started;
    const { source, run } = this.continueFrom(events, started, topology, state.owner, last.seq, reason);
    const outcome = await run;
    this.host.onResumed?.(workflowId);
    const waiting =
      !outcome.ok && (outcome.error as { code?: string } | undefined)?.code === 'WORKFLOW_WAITING';
    return {
      workflowId,
      name: started.payload.name,
      reason,
      rerun: source.inFlight,
      outcome: outcome.ok ? 'completed' : waiting ? 'waiting' : 'failed',
      ...(outcome.ok || waiting ? {} : { error: outcome.error }),
    };
  }

  /** The registered topology for a recorded start, refusing a changed one. */
  private checkedTopology(workflowId: string, started: KeelEvent<'workflow.started'>): AnyTopology {
    const name = started.payload.name;
    const topology = this.host.topology(name);
    if (!topology) throw new TopologyNotRegisteredError(workflowId, name);
    const recorded = started.payload.structureHash ?? structureHash(topology, started.payload.topology);
    const now = structureHash(topology);
    if (recorded !== now) throw new TopologyChangedError(workflowId, name, recorded, now);
    return topology;
  }

  // ── signals ───────────────────────────────────────────────────────────────────────────────

  /**
   * Delivers `value` to the wait `name` of a waiting workflow: validates it, records
   * `workflow.signalled`, and continues the workflow in this runtime. Resolves once the signal is
   * committed, with the continuation's end as `finished`.
   */
  async signal(
    workflowId: string,
    name: string,
    value: unknown,
  ): Promise<{ workflowId: string; seq: number; finished: Promise<ContinueOutcome> }> {
    const ownership = this.ownership();
    const events = await this.host.store.query({ workflowId });
    const state = [...(await scanWorkflows({ iterate: () => events })).values()][0];
    if (state === undefined) throw new UnknownWorkflowError(workflowId);
    if (state.end !== undefined) throw new WorkflowFinishedError(workflowId, state.end.type);
    const wait = state.waiting;
    if (wait === undefined || wait.name !== name)
      throw new WorkflowNotWaitingError(workflowId, name, wait?.name);
    const now = this.host.clock.now();
    if (wait.timeoutAt !== undefined && now >= wait.timeoutAt) {
      throw new WaitTimedOutError(workflowId, name, wait.timeoutAt, wait.path);
    }
    const started = events.find((e): e is KeelEvent<'workflow.started'> => e.type === 'workflow.started');
    if (!started) throw new UnknownWorkflowError(workflowId);
    const topology = this.checkedTopology(workflowId, started);
    const node = findWaitNode(topology, started.payload.name, wait.path, name);
    const schema = node ? waitNodeOf(node).schema : undefined;
    let checked = value;
    if (schema) {
      const parsed = schema.safeParse(value);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new SignalValidationError(
          workflowId,
          name,
          `${issue?.path.length ? issue.path.join('.') : 'value'}: ${issue?.message ?? 'invalid'}`,
        );
      }
      checked = parsed.data;
    }
    this.acquire();
    let claimed: string[];
    try {
      await this.beat;
      claimed = await ownership.claim(this.owner, [{ workflowId }], now);
    } catch (e) {
      this.release();
      throw e;
    }
    if (claimed.length === 0) {
      this.release();
      throw new WorkflowBusyError(workflowId);
    }
    let committed: KeelEvent[];
    try {
      committed = await this.host.store.append([
        {
          ts: now,
          workflowId,
          type: 'workflow.signalled',
          payload: { name, path: wait.path, value: checked, owner: this.owner },
        },
      ]);
    } catch (e) {
      this.release();
      await ownership.release(this.owner, [workflowId]).catch(() => undefined);
      throw e;
    }
    const { run } = this.continueFrom(
      [...events, ...committed],
      started,
      topology,
      state.owner,
      committed[0]?.seq ?? state.lastSeq,
      'signalled',
    );
    const finished = run.finally(() => {
      this.release();
      return ownership.release(this.owner, [workflowId]).catch((e: unknown) => this.host.onError(e));
    });
    this.host.onResumed?.(workflowId);
    return { workflowId, seq: committed[0]?.seq ?? 0, finished };
  }
}

/** The `waitFor` node at `path` (paths as the executor builds them), else the only one named `signal`. */
function findWaitNode(
  root: AnyTopology,
  rootName: string,
  path: string,
  signal: string,
): Composite | undefined {
  const byName: Composite[] = [];
  const walk = (t: AnyTopology, p: string): Composite | undefined => {
    if (t.kind === 'agent') return undefined;
    if (t.kind === 'waitFor') {
      if (p === path) return t;
      if (waitNodeOf(t).signal === signal) byName.push(t);
    }
    for (let i = 0; i < t.children.length; i++) {
      const found = walk(t.children[i] as AnyTopology, `${p}/${childSegment(t.children, i)}`);
      if (found) return found;
    }
    return undefined;
  };
  return walk(root, rootName) ?? (byName.length === 1 ? byName[0] : undefined);
}
