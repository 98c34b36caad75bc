/**
 * The `onCommit` listeners of a store and its commit counters, the same for both stores: each
 * committed batch goes to every listener in order, and a listener that throws never breaks the
 * commit (its error goes to the store's `onListenerError`). Internal to src/eventlog.
 */
import type { KeelEvent } from './events.js';
import type { CommitInfo, CommitListener } from './store.js';

/** Listeners of committed batches, with counts of transactions and events committed. */
export class CommitListeners {
  /** Write transactions committed (group commits and prunes). */
  transactions = 0;
  /** Events committed, anchors included. */
  events = 0;
  private listeners: CommitListener[] = [];

  constructor(private readonly onListenerError: (error: unknown, events: readonly KeelEvent[]) => void) {}

  /** Adds a listener; returns its removal. */
  add(listener: CommitListener): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners = [...this.listeners.slice(0, i), ...this.listeners.slice(i + 1)];
    };
  }

  /** Counts a committed transaction and tells every listener, before its appends resolve. */
  committed(events: readonly KeelEvent[], info?: CommitInfo): void {
    this.transactions++;
    this.events += events.length;
    for (const listener of this.listeners) {
      try {
        listener(events, info);
      } catch (error) {
        try {
          this.onListenerError(error, events);
        } catch {
          // A failing error reporter must not break the commit either.
        }
      }
    }
  }
}
