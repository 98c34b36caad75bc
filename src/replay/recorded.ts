/**
 * Reading a recorded workflow back: the outcomes replay feeds instead of calling models, and the
 * decisions it compares. Pure functions of the workflow's events.
 */
import { canonicalJson } from '../core/json.js';
import type { ErrorCategory, KeelEvent } from '../eventlog/events.js';
import type { RecordedHit, RecordedOutcome, ReplaySource } from '../supervisor/scope.js';

/** A recorded gate refusal (breaker open, budget exhausted, deadline) replayed as a refusal. */
export interface RecordedRejection {
  category: ErrorCategory;
  reason: string;
  /** When the record refused it (see `RecordedOutcome.at`). */
  at?: number;
}

/** Replay source with gate refusals too. */
export interface RecordedSource extends ReplaySource {
  /** The recorded refusal for the next invocation at `path`, if it was refused. */
  rejection(path: string): RecordedRejection | undefined;
  /** The recorded outcome of the next invocation at `path` when it made no call of its own. */
  cached(path: string): RecordedHit | undefined;
  /** When the last non-cancelled answer at `path` or below arrived (see `ReplaySource.settledBy`). */
  settledBy(path: string): number | undefined;
  /** Outcomes recorded but not consumed by the replay. */
  unused(): { path: string; count: number }[];
  /** The value signalled to the `waitFor` node at `path` (consumed), when the record has one. */
  signal(path: string): { name: string; timeoutAt?: number; signalled?: { value: unknown } } | undefined;
}

type Step =
  | { kind: 'attempt'; outcome: RecordedOutcome }
  | { kind: 'rejected'; rejection: RecordedRejection; at: number }
  | { kind: 'cached'; value: unknown; confidence?: number; at: number }
  | { kind: 'sharedFailure'; category: ErrorCategory; message: string; at: number };

/**
 * Builds the per-path queue of recorded attempt outcomes of one workflow: each failed attempt from
 * `agent.retried` (and its `cost.incurred`, summed over a tool loop's turns), the final one from `agent.succeeded` / `agent.failed`,
 * refusals from `agent.rejected`.
 *
 * @example
 * const source = recordedSource(store.query({ workflowId }));
 */
export function recordedSource(events: readonly KeelEvent[]): RecordedSource {
  const steps = new Map<string, Step[]>();
  const waits = new Map<string, { name: string; timeoutAt?: number; signalled?: { value: unknown } }[]>();
  const costs = new Map<string, number[]>();
  const push = (path: string, step: Step): void => {
    let q = steps.get(path);
    if (!q) steps.set(path, (q = []));
    q.push(step);
  };
  const takeCost = (path: string): number => costs.get(path)?.shift() ?? 0;
  // When each outcome was seen: its ts, plus a fraction ordering outcomes of the same millisecond
  // by log order (at most 999 per millisecond keep distinct; ms since epoch leave room for that).
  let lastTs = Number.NEGATIVE_INFINITY;
  let sameMs = 0;
  let at = 0;
  const failed = (
    path: string,
    category: ErrorCategory,
    message: string,
    costUsd: number,
    retryAfterMs?: number,
  ): void =>
    push(path, {
      kind: 'attempt',
      outcome: {
        ok: false,
        category,
        message,
        costUsd,
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
        at,
      },
    });
  for (const e of events) {
    if (e.ts === lastTs) sameMs = Math.min(sameMs + 1, 999);
    else {
      lastTs = e.ts;
      sameMs = 0;
    }
    at = e.ts + sameMs / 1000;
    switch (e.type) {
      case 'cost.incurred': {
        let q = costs.get(e.payload.path);
        if (!q) costs.set(e.payload.path, (q = []));
        // A tool loop's turns after the first (`step` > 1) add to their attempt's cost.
        const step = e.payload.step;
        if (step !== undefined && step > 1 && q.length > 0)
          q[q.length - 1] = (q[q.length - 1] ?? 0) + e.payload.costUsd;
        else q.push(e.payload.costUsd);
        break;
      }
      case 'agent.retried':
        failed(
          e.payload.path,
          e.payload.category,
          e.payload.message,
          takeCost(e.payload.path),
          e.payload.retryAfterMs,
        );
        break;
      case 'agent.succeeded':
        if (e.payload.cached && e.payload.attempts > 0) {
          // stale-if-error: the last attempt failed and a stale value was served
          failed(e.payload.path, 'provider_error', 'recorded failure (stale served)', 0);
          push(e.payload.path, { kind: 'cached', value: e.payload.output, at });
          break;
        }
        if (e.payload.cached) {
          push(e.payload.path, {
            kind: 'cached',
            value: e.payload.output,
            ...(e.payload.confidence !== undefined ? { confidence: e.payload.confidence } : {}),
            at,
          });
          break;
        }
        push(e.payload.path, {
          kind: 'attempt',
          outcome: {
            ok: true,
            value: e.payload.output,
            ...(e.payload.confidence !== undefined ? { confidence: e.payload.confidence } : {}),
            usage: e.payload.usage,
            model: e.payload.model,
            costUsd: takeCost(e.payload.path),
            at,
          },
        });
        break;
      case 'agent.failed':
        if (e.payload.attempts === 0 && e.payload.category !== 'cancelled') {
          push(e.payload.path, {
            kind: 'sharedFailure',
            category: e.payload.category,
            message: e.payload.message,
            at,
          });
          break;
        }
        // A cancellation is queued like an attempt that never answers: if the replay calls again
        // (the record was cut during a call, or a backoff that ran longer live), that call stays
        // pending until the same cancellation arrives; if not (cut during a backoff), it is unused.
        failed(e.payload.path, e.payload.category, e.payload.message, takeCost(e.payload.path));
        break;
      case 'workflow.waiting': {
        const q = waits.get(e.payload.path) ?? [];
        q.push({
          name: e.payload.name,
          ...(e.payload.timeoutAt !== undefined ? { timeoutAt: e.payload.timeoutAt } : {}),
        });
        waits.set(e.payload.path, q);
        break;
      }
      case 'workflow.signalled': {
        const w = waits.get(e.payload.path)?.findLast((x) => x.signalled === undefined);
        if (w) w.signalled = { value: e.payload.value };
        break;
      }
      case 'agent.rejected':
        push(e.payload.path, {
          kind: 'rejected',
          rejection: { category: e.payload.category, reason: e.payload.reason },
          at,
        });
        break;
      default:
        break;
    }
  }
  return {
    signal(path) {
      return waits.get(path)?.shift();
    },
    next(path) {
      const q = steps.get(path);
      const head = q?.[0];
      if (!head || head.kind !== 'attempt') return undefined;
      q.shift();
      return head.outcome;
    },
    cached(path) {
      const q = steps.get(path);
      const head = q?.[0];
      if (!head) return undefined;
      if (head.kind === 'sharedFailure') {
        q.shift();
        return { ok: false, category: head.category, message: head.message, at: head.at };
      }
      if (head.kind !== 'cached') return undefined;
      q.shift();
      return {
        ok: true,
        value: head.value,
        ...(head.confidence !== undefined ? { confidence: head.confidence } : {}),
        at: head.at,
      };
    },
    settledBy(path) {
      let last: number | undefined;
      for (const [p, q] of steps) {
        if (p !== path && !(p.startsWith(path) && p.charCodeAt(path.length) === 47)) continue;
        for (const step of q) {
          const at =
            step.kind !== 'attempt'
              ? step.at
              : step.outcome.ok || step.outcome.category !== 'cancelled'
                ? step.outcome.at
                : undefined;
          if (at !== undefined && (last === undefined || at > last)) last = at;
        }
      }
      return last;
    },
    rejection(path) {
      const q = steps.get(path);
      const head = q?.[0];
      if (!head || head.kind !== 'rejected') return undefined;
      q.shift();
      return { ...head.rejection, at: head.at };
    },
    unused() {
      const out: { path: string; count: number }[] = [];
      for (const [path, q] of steps) {
        // A recorded cancellation is not an output: whether the replay reached it is timing.
        const count = q.filter(
          (s) => !(s.kind === 'attempt' && !s.outcome.ok && s.outcome.category === 'cancelled'),
        ).length;
        if (count > 0) out.push({ path, count });
      }
      return out;
    },
  };
}

/** One comparable decision: what happened at a path, without times or costs. */
export interface Decision {
  path: string;
  type: string;
  /** Canonical JSON of the fields that make the decision. */
  detail: string;
}

/** The decisions of a workflow's events, in order. */
export function decisionsOf(events: readonly KeelEvent[]): Decision[] {
  const out: Decision[] = [];
  const add = (path: string, type: string, detail: unknown): void => {
    out.push({ path, type, detail: canonicalJson(detail) });
  };
  for (const e of events) {
    const p = e.payload;
    switch (e.type) {
      case 'agent.succeeded':
        add(e.payload.path, e.type, { output: e.payload.output, attempts: e.payload.attempts });
        break;
      case 'agent.failed':
        // A cancellation is not a decision of the agent: how far it got before it is timing.
        add(
          e.payload.path,
          e.type,
          e.payload.category === 'cancelled'
            ? { category: 'cancelled' }
            : { category: e.payload.category, attempts: e.payload.attempts },
        );
        break;
      case 'agent.rejected':
        add(e.payload.path, e.type, { category: e.payload.category });
        break;
      case 'vote.cast':
        add(e.payload.path, e.type, { agent: e.payload.agent, value: e.payload.value });
        break;
      case 'vote.early_stop':
        add(e.payload.path, e.type, { cast: e.payload.cast, skipped: e.payload.skipped });
        break;
      case 'vote.decided':
        add(e.payload.path, e.type, { value: e.payload.value, agentsUsed: e.payload.agentsUsed });
        break;
      case 'cascade.escalated':
        add(e.payload.path, e.type, { fromStage: e.payload.fromStage, toStage: e.payload.toStage });
        break;
      case 'cascade.accepted':
        add(e.payload.path, e.type, { stage: e.payload.stage });
        break;
      case 'workflow.completed':
        add('', e.type, { output: e.payload.output });
        break;
      case 'workflow.failed':
        add('', e.type, { category: e.payload.category });
        break;
      case 'workflow.cancelled':
        add('', e.type, {});
        break;
      case 'workflow.interrupted':
        // Written after a crash, never by the run itself: no decision (replay refuses such runs).
        break;
      default:
        void p;
        break;
    }
  }
  return out;
}

/** A difference between the recorded run and its replay. */
export interface Divergence {
  kind: 'topology_changed' | 'decision' | 'missing_output' | 'extra_output' | 'not_replayable';
  path: string;
  message: string;
  recorded: unknown;
  replayed: unknown;
}

const parse = (s: string | undefined): unknown => (s === undefined ? undefined : (JSON.parse(s) as unknown));

/**
 * Compares two decision lists path by path (sibling branches may interleave differently between
 * runs; order within one path must match; votes cast in parallel are compared as a set).
 */
export function compareDecisions(recorded: readonly Decision[], replayed: readonly Decision[]): Divergence[] {
  const group = (ds: readonly Decision[]): Map<string, Decision[]> => {
    const m = new Map<string, Decision[]>();
    for (const d of ds) {
      const key = `${d.path}\u0000${d.type === 'vote.cast' ? 'vote.cast' : '*'}`;
      let q = m.get(key);
      if (!q) m.set(key, (q = []));
      q.push(d);
    }
    for (const [k, q] of m) if (k.endsWith('vote.cast')) q.sort((a, b) => a.detail.localeCompare(b.detail));
    return m;
  };
  const a = group(recorded);
  const b = group(replayed);
  const out: Divergence[] = [];
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    const ra = a.get(key) ?? [];
    const rb = b.get(key) ?? [];
    const n = Math.max(ra.length, rb.length);
    for (let i = 0; i < n; i++) {
      const x = ra[i];
      const y = rb[i];
      if (x && y && x.type === y.type && x.detail === y.detail) continue;
      const path = (x ?? y)?.path ?? '';
      out.push({
        kind: 'decision',
        path,
        message:
          x && y
            ? `${path || 'workflow'}: recorded ${x.type} ${x.detail}, replay gave ${y.type} ${y.detail}`
            : x
              ? `${path || 'workflow'}: recorded ${x.type} ${x.detail} did not happen in replay`
              : `${path || 'workflow'}: replay made ${y?.type ?? ''} ${y?.detail ?? ''} which the record does not have`,
        recorded: x ? { type: x.type, ...(parse(x.detail) as object) } : undefined,
        replayed: y ? { type: y.type, ...(parse(y.detail) as object) } : undefined,
      });
      break; // first difference per path is enough: later ones follow from it
    }
  }
  return out;
}
