/**
 * One teardown stack for a runtime's parts: each part is built by a small factory returning
 * `{ part, close }`, and its `close` is pushed as the part is built. `rt.close()` runs the stack
 * last-built first, awaiting each; a constructor that fails part-way runs the same stack at once,
 * so a failed `createRuntime` leaves no file handle, thread, timer or connection behind.
 */

/** Why the stack is unwound: `rt.close()`, or a constructor that failed. */
export type TeardownReason = 'close' | 'failed';

/** Releases a part; may return a promise (awaited by `rt.close()`). */
export type Close = (reason: TeardownReason) => unknown;

/** What a part factory returns. */
export interface Part<T> {
  part: T;
  close: Close;
}

/**
 * @example
 * const teardown = new Teardown();
 * try {
 *   const store = teardown.add(openLog(config, clock));
 *   const root = teardown.add(startActorSystem(config, clock));
 * } catch (e) {
 *   teardown.abandon();
 *   throw e;
 * }
 * await teardown.close(); // root stops, then the log closes
 */
export class Teardown {
  private readonly stack: Close[] = [];

  /** Pushes the part's `close` and returns the part. */
  add<T>(built: Part<T>): T {
    this.stack.push(built.close);
    return built.part;
  }

  /** Pushes a `close` of its own. */
  push(close: Close): void {
    this.stack.push(close);
  }

  /** `rt.close()`: each `close`, last pushed first, each awaited before the next; the first error stops it. */
  async close(): Promise<void> {
    for (let close = this.stack.pop(); close !== undefined; close = this.stack.pop()) {
      await close('close');
    }
  }

  /**
   * A constructor failed: each `close`, last pushed first, at once. Their errors are swallowed — the
   * constructor's own error is the one to report.
   */
  abandon(): void {
    for (let close = this.stack.pop(); close !== undefined; close = this.stack.pop()) {
      try {
        const pending = close('failed');
        if (pending instanceof Promise) pending.catch(() => undefined);
      } catch {
        // already closed, or never fully opened
      }
    }
  }
}
