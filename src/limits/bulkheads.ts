/**
 * Bulkheads: a cap on the calls of one agent in flight at once across every workflow of a runtime
 * (`agent({ name, concurrency, maxQueue, maxQueueMs })`), so one agent's burst cannot take every
 * connection, socket or worker the service has. Built on the limiter (one key `agent:<name>` per
 * agent, made on the agent's first call): a call past `concurrency` waits in a bounded queue, and
 * one that cannot wait (`maxQueue` waiting already, or `maxQueueMs` passed) is rejected with
 * {@link BulkheadRejectedError} before it reaches the provider.
 */
import type { Clock } from '../core/clock.js';
import { KeelError } from '../core/errors.js';
import {
  createLimiter,
  type CancelSignal,
  type LimitPermit,
  type Limiter,
  type ShedReason,
} from './limiter.js';

/** What an agent declares for its bulkhead. */
export interface BulkheadSpec {
  /** The agent's name: its calls share one bulkhead. */
  readonly name: string;
  /** Calls of the agent in flight at once, across every workflow of the runtime. */
  readonly concurrency?: number;
  /** Calls that may wait for a slot (default 1,000); one more is rejected at once. */
  readonly maxQueue?: number;
  /** Longest a call waits for a slot before it is rejected, ms (default 30,000). */
  readonly maxQueueMs?: number;
}

/** A call rejected by its agent's bulkhead: it never reached the provider. Category `rate_limited`. */
export class BulkheadRejectedError extends KeelError {
  readonly category = 'rate_limited' as const;
  constructor(
    readonly agent: string,
    readonly reason: ShedReason,
    readonly tenant: string | undefined,
    readonly waitedMs: number,
    detail: string,
  ) {
    super(
      'BULKHEAD_REJECTED',
      `agent "${agent}": bulkhead full, call rejected before reaching the provider: ${detail}; raise the agent's concurrency, maxQueue or maxQueueMs, or send fewer calls at once`,
    );
  }
}

/** True when `e` is a {@link BulkheadRejectedError}. */
export function isBulkheadRejectedError(e: unknown): e is BulkheadRejectedError {
  return e instanceof KeelError && e.code === 'BULKHEAD_REJECTED';
}

/** The answer of {@link Bulkheads.acquire}. */
export type BulkheadResult = { ok: true; permit: LimitPermit } | { ok: false; error: BulkheadRejectedError };

/** The bulkheads of one runtime, by agent name. */
export interface Bulkheads {
  /**
   * A slot for one call of `agent` (made on first use from that agent's spec; later agents of the
   * same name share it). Synchronous when a slot is free or the queue is full; a promise when the
   * call waits. Never rejects. `signal`: aborted while the call waits, it leaves the queue at once
   * (answered with reason `cancelled`) and the next waiting call moves up.
   */
  acquire(
    agent: BulkheadSpec,
    tenant: string | undefined,
    signal?: CancelSignal,
  ): BulkheadResult | Promise<BulkheadResult>;
  /** Rejects every waiting call (`closed`); later calls are not limited. */
  close(): void;
}

/**
 * Creates the bulkheads of a runtime.
 *
 * @example
 * const bulkheads = createBulkheads(clock);
 * const r = await bulkheads.acquire({ name: 'ocr', concurrency: 4, maxQueue: 100 }, undefined);
 * if (!r.ok) throw r.error; // BulkheadRejectedError
 * try { await callOcr(); } finally { r.permit.release(); }
 */
export function createBulkheads(clock: Clock): Bulkheads {
  const byAgent = new Map<string, Limiter>();
  let closed = false;
  const limiterOf = (agent: BulkheadSpec): Limiter => {
    let limiter = byAgent.get(agent.name);
    if (limiter === undefined) {
      limiter = createLimiter({
        clock,
        limits: {
          [`agent:${agent.name}`]: {
            ...(agent.concurrency !== undefined ? { concurrency: agent.concurrency } : {}),
            ...(agent.maxQueue !== undefined ? { maxQueue: agent.maxQueue } : {}),
            ...(agent.maxQueueMs !== undefined ? { maxQueueMs: agent.maxQueueMs } : {}),
          },
        },
      });
      byAgent.set(agent.name, limiter);
    }
    return limiter;
  };
  /** The limiter's answer as the bulkhead's: a shed call is a {@link BulkheadRejectedError}. */
  const answer = (
    agent: BulkheadSpec,
    tenant: string | undefined,
    waitedMs: number,
    r: Awaited<ReturnType<Limiter['acquire']>>,
  ): BulkheadResult => {
    if (r.ok) return r;
    const { reason } = r.error;
    const detail =
      reason === 'queue_full'
        ? `${agent.concurrency} in flight and ${agent.maxQueue ?? 1_000} waiting (maxQueue)`
        : reason === 'queue_timeout'
          ? `waited ${waitedMs} ms (maxQueueMs ${agent.maxQueueMs ?? 30_000})`
          : reason === 'cancelled'
            ? `the caller cancelled it after ${waitedMs} ms of waiting`
            : 'the runtime closed';
    return { ok: false, error: new BulkheadRejectedError(agent.name, reason, tenant, waitedMs, detail) };
  };
  return {
    acquire(agent, tenant, signal) {
      if (closed || agent.concurrency === undefined) return FREE;
      const started = clock.now();
      const r = limiterOf(agent).acquire({
        key: `agent:${agent.name}`,
        ...(tenant !== undefined ? { tenant } : {}),
        ...(signal !== undefined ? { signal } : {}),
      });
      if (!(r instanceof Promise)) return answer(agent, tenant, 0, r);
      return r.then((x) => answer(agent, tenant, clock.now() - started, x));
    },
    close() {
      closed = true;
      for (const limiter of byAgent.values()) limiter.close();
    },
  };
}

const FREE: BulkheadResult = Object.freeze({ ok: true, permit: Object.freeze({ release() {} }) });
