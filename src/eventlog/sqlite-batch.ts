/**
 * The SQLite store's group commit: the appends of one transaction, and the limits of the writer
 * thread (`writer: 'thread'` / `'auto'`) that decide where a batch commits. Internal to `sqlite.ts`.
 */
import { WorkflowAlreadyStartedError } from './errors.js';
import type { KeelEvent } from './events.js';

/**
 * Times a stopped writer thread is replaced over a store's life: a thread that keeps dying (it
 * cannot open the file, say) is not restarted for ever.
 */
export const MAX_THREAD_RESTARTS = 3;

/** Full batches the writer thread may have queued at once (`writer: 'thread'`). */
export const MAX_BATCHES_IN_FLIGHT = 4;

/**
 * Batches in flight below which a smaller batch is posted too (it waits otherwise). With 1, a
 * batch that filled while a full one was committing waited for that answer and then for its own
 * commit, with this thread idle meanwhile: 256 workflows in flight ran slower on the thread than
 * inline (147 vs 115 µs each); with 2 the thread commits it right after and is level with inline
 * there, and faster with 1,000 in flight (86 vs 112 µs).
 */
export const MAX_PARTIAL_IN_FLIGHT = 2;

/**
 * `writer: 'auto'` moves to its thread after this many flushes in a row that each filled a batch
 * (`maxBatch`): appends keep arriving faster than a tick commits them. With 1, 256 workflows in
 * flight (one full flush and a smaller one per round) went to the thread, where they ran no faster
 * than inline and cost more CPU (7–40% in different runs).
 */
export const AUTO_FULL_IN_A_ROW = 2;

/**
 * ...and back inline after this many flushes in a row smaller than a quarter batch. Staying put
 * in between matters: a version that went back on the first smaller flush alternated between the
 * connections every round at 512 in flight (168 µs per workflow, vs 125 inline and 129 on the
 * thread; each switch costs the other connection's page cache).
 */
export const AUTO_SMALL_IN_A_ROW = 8;

export interface PendingAppend {
  from: number;
  to: number;
  resolve: (events: KeelEvent[]) => void;
  reject: (error: unknown) => void;
}

/**
 * The appends of one transaction, flat: events and their payload text in append order, the
 * `append` calls waiting for their share, and one promise shared by every `appendOne` of the batch
 * (so a producer of single events allocates no promise of its own per event).
 */
/** A conditional start ({@link Batch.starts}): the index of its `workflow.started` in the batch. */
export interface PendingStart {
  at: number;
  resolve: () => void;
  reject: (error: unknown) => void;
  /** Set by the transaction when the log already held a start for the id: nothing was written. */
  refused?: true;
}

export class Batch {
  readonly events: KeelEvent[] = [];
  readonly payloadJson: string[] = [];
  readonly waiters: PendingAppend[] = [];
  /**
   * `appendStart`s of this batch, in index order: each written only if the log holds no start for
   * its id when the transaction reaches it. A batch with any commits on the store's own connection.
   */
  readonly starts: PendingStart[] = [];
  private shared: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | undefined;

  /** The promise every `appendOne` of this batch returns. */
  sharedPromise(): Promise<void> {
    if (this.shared === undefined) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.shared = { promise, resolve, reject };
    }
    return this.shared.promise;
  }

  resolve(): void {
    const { events, waiters } = this;
    for (const w of waiters)
      w.resolve(w.from === 0 && w.to === events.length ? events : events.slice(w.from, w.to));
    this.shared?.resolve();
    for (const s of this.starts) {
      if (s.refused) {
        const id = (events[s.at] as KeelEvent).workflowId;
        s.reject(new WorkflowAlreadyStartedError(id));
      } else s.resolve();
    }
  }

  reject(error: unknown): void {
    for (const w of this.waiters) w.reject(error);
    this.shared?.reject(error);
    for (const s of this.starts) s.reject(error);
  }

  /** The events the transaction wrote: all of them, unless a conditional start was refused. */
  written(): KeelEvent[] {
    const { events } = this;
    if (!this.starts.some((s) => s.refused)) return events;
    return events.filter((e) => e.seq !== 0);
  }
}
