/**
 * The contract of Keel: every decision the runtime takes is a typed, versioned `KeelEvent`.
 * Cost totals, error windows, latency histograms, metrics, traces, reports and replay are all
 * projections (folds) of this one stream. Adding a type here is how a new concern joins Keel.
 */

/**
 * Retention class. `audit` events are decisions kept for compliance (default 7 years);
 * `operational` events are diagnostics (default 90 days). Each class is its own hash chain, so
 * retention can drop an old prefix of one class without breaking the other's chain.
 */
export type EventClass = 'audit' | 'operational';

/** Root-cause category carried by every failure (the seed's RCA categories plus runtime ones). */
export type ErrorCategory =
  | 'hallucination'
  | 'timeout'
  | 'validation_error'
  | 'ocr_error'
  | 'missing_field'
  | 'rate_limited'
  | 'provider_error'
  | 'malformed_output'
  | 'circuit_open'
  | 'budget_exceeded'
  | 'cancelled'
  | 'unknown'
  /** The event log could not record a call's reservation, so the model was not called. */
  | 'log_unavailable';

/** All error categories, in a stable order (for reports and metric labels). */
export const ERROR_CATEGORIES: readonly ErrorCategory[] = [
  'hallucination',
  'timeout',
  'validation_error',
  'ocr_error',
  'missing_field',
  'rate_limited',
  'provider_error',
  'malformed_output',
  'circuit_open',
  'budget_exceeded',
  'cancelled',
  'unknown',
  'log_unavailable',
];

/** Token usage reported by a provider. */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

/** Breaker states as the machine names them. */
export type BreakerState = 'closed' | 'open' | 'halfOpen';

/** Alert severities, from the seed's routing table. */
export type AlertSeverity = 'critical' | 'high' | 'medium' | 'low' | 'info';

/** What kind of condition an alert reports. */
export type AlertKind =
  'budget' | 'error_rate' | 'error_budget' | 'sla' | 'breaker' | 'canary' | 'sink' | 'custom';

/** Every {@link AlertSeverity}, most urgent first (for validating config). */
export const ALERT_SEVERITIES: readonly AlertSeverity[] = ['critical', 'high', 'medium', 'low', 'info'];

/** Every {@link AlertKind} (for validating config). */
export const ALERT_KINDS: readonly AlertKind[] = [
  'budget',
  'error_rate',
  'error_budget',
  'sla',
  'breaker',
  'canary',
  'sink',
  'custom',
];

/** Where in a topology tree an event happened, e.g. `invoice/par[0]/vendor_extraction`. */
export type NodePath = string;

/**
 * Payload of each event type, as emitted (the key is the event's `type`); every one of them may
 * also carry the workflow's tenant ({@link TenantStamp}): see {@link EventPayloads}.
 */
export interface EventPayloadFields {
  // ── workflows ────────────────────────────────────────────────────────────────────────────────
  /**
   * A topology run began. `topology` is the serialisable description replay re-runs. `owner` is the
   * runtime instance that runs it (`host:pid:random`) and `structureHash` the sha256 of
   * `topology`'s canonical form: what `rt.resume()` checks before it continues the workflow
   * (both absent in logs written before durable execution).
   */
  'workflow.started': {
    name: string;
    topology: unknown;
    input: unknown;
    inputHash: string;
    owner?: string;
    structureHash?: string;
  };
  /**
   * A `waitFor` node suspended the workflow until `rt.signal(workflowId, name, value)` delivers a
   * value or `timeoutAt` (ms since epoch) passes. No process holds the workflow meanwhile.
   */
  'workflow.waiting': { name: string; path: NodePath; timeoutAt?: number };
  /** `rt.signal()` delivered a validated value to the `waitFor` node at `path`. */
  'workflow.signalled': { name: string; path: NodePath; value: unknown; owner: string };
  /**
   * A runtime took over a workflow whose owner is gone (crash, deploy) or that a signal woke: the
   * recorded agent outcomes are replayed, the rest runs live. `rerun` lists the agents that were in
   * flight when it stopped (they run again: at-least-once for that attempt).
   */
  'workflow.resumed': {
    owner: string;
    /** The owner the log last recorded for it (absent in logs written before durable execution). */
    previousOwner?: string;
    /** Seq of its `workflow.started`. */
    startedSeq: number;
    /** Seq of its last event before this one. */
    lastSeq: number;
    /** Why: `orphaned` (its owner's lease lapsed), `signalled`, or `timed_out` (a wait passed its timeout). */
    reason: 'orphaned' | 'signalled' | 'timed_out';
    /** Paths of agents that were in flight and run again. */
    rerun: NodePath[];
  };
  'workflow.completed': {
    output: unknown;
    /** Confidence of the root result, when the topology reports one. */
    confidence?: number;
    latencyMs: number;
    costUsd: number;
    agentsCalled: number;
  };
  'workflow.failed': {
    category: ErrorCategory;
    message: string;
    path?: NodePath;
    latencyMs: number;
    costUsd: number;
    agentsCalled: number;
  };
  'workflow.cancelled': { reason: string; latencyMs: number; costUsd: number };
  /**
   * Closes a workflow its process never finished (killed, out of memory, power lost): written
   * afterwards by `rt.markInterrupted()` or `keel audit interrupt`, for workflows the caller
   * declared dead. Not a failure of any agent: no latency, no error rate; what-ifs treat the run as
   * unfinished and replay reports it as not replayable.
   */
  'workflow.interrupted': {
    /** Why it was marked, in words (e.g. `process killed during deploy`). */
    reason: string;
    /** Seq of the workflow's `workflow.started`. */
    startedSeq: number;
    /** Seq of the workflow's last event before this mark: where the crash cut it off. */
    lastSeq: number;
    /** Who marked it: `'cli'`, `'runtime'`, or the caller's label. */
    markedBy: string;
  };

  // ── agents (one invocation = one actor) ─────────────────────────────────────────────────────
  'agent.invoked': {
    path: NodePath;
    agent: string;
    agentVersion?: string;
    taskType: string;
    model: string;
    /** Who serves the model (the agent's `providerName`, e.g. `openai`); absent when not declared. */
    provider?: string;
    /**
     * The number of its first attempt when it is not 1: `rt.resume()` re-running an invocation a
     * crash cut off numbers its attempts after the ones the log already holds.
     */
    firstAttempt?: number;
  };
  /**
   * The invocation finished with an accepted output. `output` is what replay feeds back instead of
   * calling the model; `costUsd` is the actual cost of all attempts.
   */
  'agent.succeeded': {
    path: NodePath;
    agent: string;
    taskType: string;
    model: string;
    output: unknown;
    confidence?: number;
    attempts: number;
    latencyMs: number;
    usage: Usage;
    costUsd: number;
    cached?: boolean;
  };
  'agent.failed': {
    path: NodePath;
    agent: string;
    taskType: string;
    model: string;
    category: ErrorCategory;
    message: string;
    attempts: number;
    latencyMs: number;
    costUsd: number;
    /** The output that failed validation, when there was one (kept for replay and RCA). */
    output?: unknown;
  };
  /** One attempt failed and another will follow after `delayMs`. */
  'agent.retried': {
    path: NodePath;
    agent: string;
    attempt: number;
    category: ErrorCategory;
    message: string;
    delayMs: number;
    retryAfterMs?: number;
  };
  'agent.timed_out': { path: NodePath; agent: string; attempt: number; timeoutMs: number };
  /** Refused before any model call (breaker open, budget exhausted). */
  'agent.rejected': {
    path: NodePath;
    agent: string;
    taskType: string;
    category: ErrorCategory;
    reason: string;
  };

  /**
   * A streamed attempt's first text arrived (`rt.run$()` streams): `ttftMs` after the attempt
   * started. One per streamed attempt; the text itself is not logged (the final output is).
   */
  'agent.first_token': { path: NodePath; agent: string; model: string; attempt: number; ttftMs: number };

  // ── tools (inside a tool-using agent's loop) ──────────────────────────────────────────────────
  /**
   * The model asked for a tool in step `step` (1-based model turn) of the agent at `path`, and the
   * tool was started. `args` are redacted like every payload.
   */
  'tool.called': {
    path: NodePath;
    agent: string;
    tool: string;
    /** The model's call id, unique within the step. */
    callId: string;
    step: number;
    args: unknown;
  };
  /** The tool answered; `result` (redacted) is what the model was shown and what replay feeds back. */
  'tool.succeeded': {
    path: NodePath;
    agent: string;
    tool: string;
    callId: string;
    step: number;
    result: unknown;
    latencyMs: number;
    /** Attempts it took (retries included). */
    attempts: number;
  };
  /** The tool failed (after its retries): the model is shown the error and may go on without it. */
  'tool.failed': {
    path: NodePath;
    agent: string;
    tool: string;
    callId: string;
    step: number;
    category: ErrorCategory;
    message: string;
    latencyMs: number;
    attempts: number;
  };

  // ── cost and budget ─────────────────────────────────────────────────────────────────────────
  /** Estimated cost reserved against budgets before a call starts. */
  'cost.reserved': {
    path: NodePath;
    agent: string;
    model: string;
    taskType: string;
    estimateUsd: number;
    /** The attempt it was reserved for (absent in logs written before it was recorded). */
    attempt?: number;
    /**
     * The model turn of a tool loop it was reserved for (1-based; present from turn 2 on: the
     * first turn goes out on the attempt's own reservation).
     */
    step?: number;
  };
  /**
   * Actual cost of one model call, from the provider's reported usage: one per attempt, or one per
   * model turn of a tool loop (with `step`).
   */
  'cost.incurred': {
    path: NodePath;
    agent: string;
    model: string;
    taskType: string;
    attempt: number;
    /** The model turn of a tool loop (1-based); absent for an attempt that is one call. */
    step?: number;
    usage: Usage;
    costUsd: number;
    estimateUsd: number;
    /**
     * True when the attempt ended without reported usage (timed out, cancelled) and was charged its
     * estimate: providers may bill an aborted call, and budgets must not forget it on restart.
     */
    estimated?: boolean;
  };
  /** A budget crossed a threshold (0.8 warning, 1.0 exhausted) — once per threshold per day. */
  'budget.alert': {
    scope: string;
    threshold: number;
    spentUsd: number;
    limitUsd: number;
    day: string;
  };
  /**
   * A model id that resolves to no price (not even once its version suffixes are stripped) was
   * seen on a call: the call was priced by `pricedAs` (the requested model) or, without it, at $0.
   * Once per id per runtime. Add the id to `createRuntime({ pricing })`.
   */
  'pricing.unknown_model': {
    /** The id that has no price. */
    model: string;
    requestedModel: string;
    answeredModel: string;
    /** The table id the call was priced by instead; absent when it was priced at $0. */
    pricedAs?: string;
    agent: string;
  };
  /**
   * A call cost more than it reserved: the budget may pass its limit by `overrunUsd` (at most what
   * the calls in flight cost beyond their reservations). `capped` says whether the agent declared
   * `maxOutputTokens` (then only an input above its estimate can overrun).
   */
  'budget.overrun': {
    path: NodePath;
    agent: string;
    model: string;
    taskType: string;
    attempt: number;
    /** The model turn of a tool loop (1-based); absent for an attempt that is one call. */
    step?: number;
    reservedUsd: number;
    actualUsd: number;
    overrunUsd: number;
    capped: boolean;
  };
  /** A call went to a cheaper model because the budget was exhausted (`onExhausted: 'downgrade'`). */
  'budget.downgraded': { path: NodePath; agent: string; fromModel: string; toModel: string; scope: string };

  // ── cache ───────────────────────────────────────────────────────────────────────────────────
  'cache.hit': { path: NodePath; agent: string; key: string; ageMs: number; savedUsd: number };
  'cache.miss': { path: NodePath; agent: string; key: string };
  'cache.stale_served': { path: NodePath; agent: string; key: string; ageMs: number; reason: ErrorCategory };

  // ── breakers ────────────────────────────────────────────────────────────────────────────────
  'breaker.transitioned': {
    breaker: string;
    from: BreakerState;
    to: BreakerState;
    reason: string;
    failures: number;
    /** The reset timeout in force when it opened (grows with backoff), ms. */
    resetTimeoutMs?: number;
  };

  // ── rate limits and bulkheads ───────────────────────────────────────────────────────────────
  /**
   * An attempt waited `waitedMs` for the rate limit of `key` (`config.limits`: its requests or
   * tokens a minute, its concurrency, or a 429's pause) before it went on to the provider.
   */
  'ratelimit.waited': { path: NodePath; agent: string; key: string; waitedMs: number };
  /**
   * An attempt was shed by the rate limit of `key` and never reached the provider: `queue_full`
   * (`maxQueue` calls were waiting), `queue_timeout` (it waited `maxQueueMs`), `closed` (the
   * runtime closed) or `unavailable` (buckets shared on Redis could not be reached, with
   * `onUnavailable: 'shed'`). The invocation fails with `rate_limited`.
   */
  'ratelimit.shed': {
    path: NodePath;
    agent: string;
    key: string;
    reason: 'queue_full' | 'queue_timeout' | 'closed' | 'unavailable';
    waitedMs: number;
  };
  /**
   * An attempt was turned away by its agent's bulkhead (`agent({ concurrency, maxQueue,
   * maxQueueMs })`) and never reached the provider; reasons as for `ratelimit.shed`.
   */
  'bulkhead.rejected': {
    path: NodePath;
    agent: string;
    reason: 'queue_full' | 'queue_timeout' | 'closed' | 'unavailable';
    waitedMs: number;
  };

  // ── topologies ──────────────────────────────────────────────────────────────────────────────
  'vote.cast': { path: NodePath; agent: string; value: unknown; weight: number; index: number };
  /** The vote stopped before every agent ran because the majority could no longer change. */
  'vote.early_stop': { path: NodePath; cast: number; total: number; leader: unknown; skipped: number };
  'vote.decided': {
    path: NodePath;
    value: unknown;
    confidence: number;
    agentsUsed: number;
    total: number;
    savedUsd: number;
  };
  'cascade.escalated': {
    path: NodePath;
    fromStage: number;
    toStage: number;
    fromAgent: string;
    toAgent: string;
    confidence?: number;
    reason: string;
  };
  'cascade.accepted': { path: NodePath; stage: number; agent: string; confidence?: number; savedUsd: number };

  // ── monitoring and alerts ───────────────────────────────────────────────────────────────────
  'alert.raised': { id: string; kind: AlertKind; severity: AlertSeverity; title: string; data: unknown };
  'alert.resolved': { id: string; kind: AlertKind; title: string; data: unknown };
  /** The canary at `path` stopped sending traffic to its candidate (`path` absent in older logs). */
  'canary.rolled_back': { canary: string; reason: string; data: unknown; path?: NodePath };
  'canary.promoted': { canary: string; path?: NodePath };
  /** One workflow's outcome at a canary node: what its judgement folds over. */
  'canary.observed': {
    canary: string;
    path: NodePath;
    arm: 'candidate' | 'stable';
    success: boolean;
    latencyMs: number;
    costUsd: number;
  };
  /** Ground truth for a recorded workflow (what-if accuracy). */
  'feedback.recorded': { correct: boolean; expected?: unknown };

  // ── compliance ──────────────────────────────────────────────────────────────────────────────
  /** How many values of each kind were redacted from the events of a workflow. */
  'redaction.applied': { counts: Record<string, number> };
  /**
   * Written by retention: events of `prunedClass` up to `prunedThroughSeq` were removed; the first
   * remaining event of that class chains from `lastPrunedHash`.
   */
  'log.anchor': {
    prunedClass: EventClass;
    prunedThroughSeq: number;
    lastPrunedHash: string;
    prunedCount: number;
    olderThanTs: number;
  };
  /**
   * Written by the store when a writable open changed the file's schema: `migrated` (an event log of
   * an earlier Keel brought to the current version and stamped as Keel's) or `triggers_restored`
   * (append-only triggers that were missing or altered were re-created: someone changed the schema).
   */
  'log.maintained': {
    action: 'migrated' | 'triggers_restored';
    /** What was done or found, one line each. */
    details: string[];
    fromVersion?: number;
    toVersion?: number;
  };
}

/** Payload of each event type: its own fields, and the tenant of a tenant's workflow. */
export type EventPayloads = { [K in keyof EventPayloadFields]: EventPayloadFields[K] & TenantStamp };

/** Every event type name. */
export type KeelEventType = keyof EventPayloadFields;

/** Current schema version of each event type (bump when a payload changes shape). */
export const EVENT_VERSIONS: { readonly [K in KeelEventType]: number } = {
  'workflow.started': 1,
  'workflow.completed': 1,
  'workflow.failed': 1,
  'workflow.cancelled': 1,
  'workflow.interrupted': 1,
  'workflow.waiting': 1,
  'workflow.signalled': 1,
  'workflow.resumed': 1,
  'agent.invoked': 1,
  'agent.succeeded': 1,
  'agent.failed': 1,
  'agent.retried': 1,
  'agent.timed_out': 1,
  'agent.rejected': 1,
  'agent.first_token': 1,
  'tool.called': 1,
  'tool.succeeded': 1,
  'tool.failed': 1,
  'cost.reserved': 1,
  'cost.incurred': 1,
  'budget.alert': 1,
  'budget.overrun': 1,
  'budget.downgraded': 1,
  'pricing.unknown_model': 1,
  'cache.hit': 1,
  'cache.miss': 1,
  'cache.stale_served': 1,
  'breaker.transitioned': 1,
  'ratelimit.waited': 1,
  'ratelimit.shed': 1,
  'bulkhead.rejected': 1,
  'vote.cast': 1,
  'vote.early_stop': 1,
  'vote.decided': 1,
  'cascade.escalated': 1,
  'cascade.accepted': 1,
  'alert.raised': 1,
  'alert.resolved': 1,
  'canary.rolled_back': 1,
  'canary.promoted': 1,
  'canary.observed': 1,
  'feedback.recorded': 1,
  'redaction.applied': 1,
  'log.anchor': 1,
  'log.maintained': 1,
};

/** Default retention class of each event type: decisions are audit, diagnostics operational. */
export const DEFAULT_EVENT_CLASS: { readonly [K in KeelEventType]: EventClass } = {
  'workflow.started': 'audit',
  'workflow.completed': 'audit',
  'workflow.failed': 'audit',
  'workflow.cancelled': 'audit',
  'workflow.interrupted': 'audit',
  'workflow.waiting': 'audit',
  'workflow.signalled': 'audit',
  'workflow.resumed': 'audit',
  'agent.invoked': 'audit',
  'agent.succeeded': 'audit',
  'agent.failed': 'audit',
  'agent.retried': 'operational',
  'agent.timed_out': 'operational',
  'agent.rejected': 'audit',
  'agent.first_token': 'operational',
  'tool.called': 'audit',
  'tool.succeeded': 'audit',
  'tool.failed': 'audit',
  'cost.reserved': 'operational',
  'cost.incurred': 'audit',
  'budget.alert': 'audit',
  'budget.overrun': 'audit',
  'budget.downgraded': 'audit',
  'pricing.unknown_model': 'operational',
  'cache.hit': 'audit',
  'cache.miss': 'operational',
  'cache.stale_served': 'audit',
  'breaker.transitioned': 'audit',
  'ratelimit.waited': 'operational',
  'ratelimit.shed': 'audit',
  'bulkhead.rejected': 'audit',
  'vote.cast': 'audit',
  'vote.early_stop': 'audit',
  'vote.decided': 'audit',
  'cascade.escalated': 'audit',
  'cascade.accepted': 'audit',
  'alert.raised': 'operational',
  'alert.resolved': 'operational',
  'canary.rolled_back': 'audit',
  'canary.promoted': 'audit',
  'canary.observed': 'audit',
  'feedback.recorded': 'audit',
  'redaction.applied': 'operational',
  'log.anchor': 'audit',
  'log.maintained': 'audit',
};

/** Workflow id used for events that belong to the runtime rather than one workflow (breakers, budgets). */
export const SYSTEM_WORKFLOW_ID = '_system';

/**
 * What every event of a tenant's workflow carries besides its own payload fields: the workflow's
 * tenant (`rt.run(t, input, { tenant })`), stamped on each event the workflow emits — its
 * `workflow.started`, agent, cost, budget, tool, cache, vote and cascade events and its end. Absent
 * (no bytes) on the events of a workflow run without a tenant and on the runtime's own events
 * (`_system`), except `budget.alert` of a tenant's budget scope (`tenant:<id>`), which names it.
 */
// A type alias, not an interface: payloads stay assignable to `Record<string, unknown>`.
export type TenantStamp = {
  /** The tenant id (1–64 letters, digits, `_-.:`), validated and free of PII. */
  tenant?: string;
};

/** An event as committed to the log. */
export type KeelEvent<T extends KeelEventType = KeelEventType> = {
  [K in T]: {
    /** Position in the log, 1-based, gap-free except where retention pruned. */
    seq: number;
    /** Milliseconds since epoch, from the runtime's Clock. */
    ts: number;
    workflowId: string;
    type: K;
    /** Payload schema version (see {@link EVENT_VERSIONS}). */
    v: number;
    class: EventClass;
    payload: EventPayloads[K];
  };
}[T];

/** An event before it is appended: the store assigns `seq`; `v` and `class` default from the type. */
export type NewEvent<T extends KeelEventType = KeelEventType> = {
  [K in T]: {
    ts: number;
    workflowId: string;
    type: K;
    v?: number;
    class?: EventClass;
    payload: EventPayloads[K];
  };
}[T];

/** Narrows an event to one type. */
export function isEventType<T extends KeelEventType>(
  event: KeelEvent,
  type: T,
): event is Extract<KeelEvent, { type: T }> {
  return event.type === type;
}

/** True when `type` names a known event type. */
export function isKnownEventType(type: unknown): type is KeelEventType {
  return typeof type === 'string' && Object.prototype.hasOwnProperty.call(EVENT_VERSIONS, type);
}
