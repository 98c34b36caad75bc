/**
 * Runtime-level events (breaker transitions, budget alerts, derived alerts, canary verdicts,
 * unknown models): appended to the system workflow, redacted like any other event, their failures
 * reported rather than thrown.
 */
import type { Redactor } from '../compliance/redact.js';
import type { NewEvent } from '../eventlog/events.js';
import type { EventStore } from '../eventlog/store.js';

/**
 * @example
 * const recorder = new Recorder(store, redactor, (e) => emitter.emit('error', e));
 * recorder.record({ ts, workflowId: SYSTEM_WORKFLOW_ID, type: 'budget.alert', payload });
 * await recorder.settled();
 */
export class Recorder {
  /** Commit of the last runtime-level event appended. */
  private last: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: EventStore,
    private readonly redactor: Redactor | undefined,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Appends one runtime-level event; a failure is reported to `onError`. */
  record(event: NewEvent): void {
    const redacted = this.redactor ? this.redactor.redact(event.payload).value : event.payload;
    const stored = redacted === event.payload ? event : ({ ...event, payload: redacted } as NewEvent);
    const committed = this.store.append([stored]);
    committed.catch((e: unknown) => {
      this.onError(e);
    });
    // What `ready()` and `close()` wait for: settles either way (the failure went to `onError`).
    this.last = committed.then(
      () => undefined,
      () => undefined,
    );
  }

  /** Waits until the events appended so far (and those their commits append) are committed. */
  async settled(): Promise<void> {
    let last: Promise<void> | undefined;
    while (last !== this.last) {
      last = this.last;
      await last;
    }
  }
}
