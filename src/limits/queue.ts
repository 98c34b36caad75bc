/**
 * The wait queue of one rate-limit key, shared by the in-process limiter (`createLimiter`) and the
 * Redis-shared one (`keel/redis`): weighted fair queueing between tenants (a min-heap by virtual
 * finish tag), arrival order for `maxQueueMs` deadlines, and the one timer a key may have pending.
 * Both limiters decide *whether* the head may start (a local bucket, or a Lua script on Redis); this
 * module only decides *who* is the head, who waited too long, and when to look again.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import type { AcquireResult, LimitPermit } from './limiter.js';

/** Calls that may wait on a key unless its spec says otherwise. */
export const DEFAULT_MAX_QUEUE = 1_000;
/** How long a call may wait unless its spec says otherwise, ms. */
export const DEFAULT_MAX_QUEUE_MS = 30_000;

/** A shared permit for calls that hold nothing: nothing to release. */
export const FREE: LimitPermit = Object.freeze({ release() {} });
export const FREE_RESULT: AcquireResult = Object.freeze({ ok: true, permit: FREE });

/**
 * The shape of a bucket of `perMinute` (requests or tokens): it holds `burst = max(1,
 * floor(perMinute / 60))` (one second's worth) and refills `rate` per ms, `(perMinute - burst)` per
 * `minuteMs`, so no more than `perMinute` start in any half-open window of `minuteMs` (for
 * `perMinute >= 2`). `minuteMs` is 60_000 but for tests that shorten the window.
 */
export function bucketShape(perMinute: number, minuteMs = 60_000): { burst: number; rate: number } {
  const burst = Math.max(1, Math.floor(perMinute / 60));
  const rate = (perMinute > burst ? perMinute - burst : perMinute) / minuteMs;
  return { burst, rate };
}

/** One waiting call. */
export interface Waiter {
  readonly seq: number;
  /** WFQ virtual finish tag: the smallest starts first. */
  readonly tag: number;
  readonly tenant: string | undefined;
  readonly tokens: number;
  readonly enqueuedAt: number;
  /** Set once the waiter left the queue (started, shed or expired); removal is lazy. */
  done: boolean;
  resolve: (r: AcquireResult) => void;
}

/** Waiting calls of one key: WFQ order for starting, arrival order for deadlines. */
export class FairQueue {
  /** Calls waiting. */
  size = 0;
  /** Waiting calls by fair-queueing tag (min-heap). */
  private heap: Waiter[] = [];
  /** Waiting calls in arrival order (their deadlines are in the same order). */
  private fifo: Waiter[] = [];
  private fifoHead = 0;
  private seq = 0;
  /** WFQ virtual time: the tag of the last call started from the queue. */
  private vtime = 0;
  /** Last tag given to each tenant with calls waiting. */
  private lastTag = new Map<string | undefined, number>();
  private waitingOf = new Map<string | undefined, number>();

  /**
   * Queues a call costing `cost` (1 per request, or its tokens) for a tenant of `weight`: its tag is
   * `max(virtual time, tenant's last tag) + cost / weight`, so a tenant's burst queues behind itself.
   */
  enqueue(
    tenant: string | undefined,
    tokens: number,
    cost: number,
    weight: number,
    now: number,
    resolve: (r: AcquireResult) => void,
  ): Waiter {
    const tag = Math.max(this.vtime, this.lastTag.get(tenant) ?? 0) + cost / weight;
    this.lastTag.set(tenant, tag);
    this.waitingOf.set(tenant, (this.waitingOf.get(tenant) ?? 0) + 1);
    const w: Waiter = { seq: this.seq++, tag, tenant, tokens, enqueuedAt: now, done: false, resolve };
    this.push(w);
    this.fifo.push(w);
    this.size++;
    return w;
  }

  /** The call that starts next (smallest tag, then arrival), still queued. */
  peek(): Waiter | undefined {
    while (this.heap.length > 0 && this.heap[0]!.done) this.pop();
    return this.heap[0];
  }

  /** Removes the head {@link peek} returned, as started: virtual time moves to its tag. */
  takeHead(): Waiter {
    const w = this.peek();
    if (w === undefined) throw new Error('FairQueue.takeHead: the queue is empty');
    this.pop();
    this.settle(w);
    this.vtime = w.tag;
    return w;
  }

  /** The longest-waiting call, still queued. */
  oldest(): Waiter | undefined {
    const f = this.fifo;
    while (this.fifoHead < f.length && f[this.fifoHead]!.done) this.fifoHead++;
    if (this.fifoHead > 1024 && this.fifoHead * 2 > f.length) {
      this.fifo = f.slice(this.fifoHead);
      this.fifoHead = 0;
    }
    return this.fifo[this.fifoHead];
  }

  /** Removes the longest-waiting call if it has waited `maxQueueMs` by `now`, and returns it. */
  expireOne(now: number, maxQueueMs: number): Waiter | undefined {
    const w = this.oldest();
    if (w === undefined || now - w.enqueuedAt < maxQueueMs) return undefined;
    this.settle(w);
    return w;
  }

  /** Removes the longest-waiting call (to shed it: the limiter closed), and returns it. */
  removeOldest(): Waiter | undefined {
    const w = this.oldest();
    if (w !== undefined) this.settle(w);
    if (this.size === 0) this.heap = [];
    return w;
  }

  /** Removes a waiting call wherever it is (cancelled: virtual time does not move). */
  remove(w: Waiter): void {
    if (w.done) return;
    this.settle(w);
    if (this.size === 0) {
      this.heap = [];
      this.fifo = [];
      this.fifoHead = 0;
    }
  }

  /** Ms from `now` until the longest-waiting call reaches `maxQueueMs`; Infinity when none waits. */
  deadlineIn(now: number, maxQueueMs: number): number {
    const w = this.oldest();
    return w ? w.enqueuedAt + maxQueueMs - now : Infinity;
  }

  /** Takes a waiter off the books (lazily from the heap and the fifo). */
  private settle(w: Waiter): void {
    w.done = true;
    this.size--;
    const left = (this.waitingOf.get(w.tenant) ?? 1) - 1;
    if (left === 0) {
      this.waitingOf.delete(w.tenant);
      this.lastTag.delete(w.tenant);
    } else this.waitingOf.set(w.tenant, left);
  }

  private static before(a: Waiter, b: Waiter): boolean {
    return a.tag < b.tag || (a.tag === b.tag && a.seq < b.seq);
  }

  private push(w: Waiter): void {
    const h = this.heap;
    h.push(w);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!FairQueue.before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && FairQueue.before(h[l]!, h[m]!)) m = l;
      if (r < h.length && FairQueue.before(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}

/** The one pending timer of a key: re-arming at the same time is free, an earlier or later time replaces it. */
export class KeyTimer {
  private timer: TimerHandle = undefined;
  private at = Infinity;

  constructor(
    private readonly clock: Clock,
    private readonly fire: () => void,
  ) {}

  /** Fires `ms` after `now` (Infinity: not at all). */
  arm(ms: number, now: number): void {
    const at = ms === Infinity ? Infinity : now + Math.max(0, ms);
    if (at === this.at) return;
    this.clear();
    this.at = at;
    if (at === Infinity) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.at = Infinity;
      this.fire();
    }, at - now);
  }

  clear(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.at = Infinity;
  }
}
