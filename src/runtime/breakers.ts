/**
 * The runtime's shared circuit breakers, by name: created on first use from the agent's config over
 * the configured defaults, resumed from their last recorded `breaker.transitioned` (read from the
 * log on open), and recording each transition they make.
 */
import type { AnyActorRef } from 'xstate';
import type { Clock } from '../core/clock.js';
import { SYSTEM_WORKFLOW_ID, type BreakerState, type KeelEvent, type NewEvent } from '../eventlog/events.js';
import { withEvents, type EventStore } from '../eventlog/store.js';
import type { BreakerConfig } from '../supervisor/agent.js';
import { breakerRestoreFrom, createBreaker, type Breaker } from '../supervisor/breaker.js';
import type { RestoreStep } from './restore.js';

/** What the breakers need of the runtime. */
export interface BreakerRegistryDeps {
  readonly clock: Clock;
  /** The actor system's root: breakers are its children. */
  readonly parent: AnyActorRef;
  /** Defaults by breaker name; an agent's own fields override them. */
  readonly defaults: Record<string, Omit<BreakerConfig, 'name'>>;
  /** Appends a runtime-level event (the transition). */
  record(event: NewEvent): void;
  /** Tells `rt.on('breaker')` listeners. */
  changed(change: { breaker: string; from: BreakerState; to: BreakerState; reason: string }): void;
}

/**
 * @example
 * const breakers = new BreakerRegistry({ clock, parent: root, defaults: {}, record, changed });
 * restorer.push(breakers.restoreStep(store));
 * breakers.forAgent({ name: 'openai', failureThreshold: 5 }).acquire();
 */
export class BreakerRegistry {
  private readonly breakers = new Map<string, Breaker>();
  /** Each breaker's last recorded transition, read from the log at startup. */
  private readonly history = new Map<string, KeelEvent<'breaker.transitioned'>>();
  /** Breakers built from the log's transitions and the configured defaults, before any agent used them. */
  private readonly restoredOnly = new Set<string>();

  constructor(private readonly deps: BreakerRegistryDeps) {}

  /**
   * Reads each breaker's last transition. Transitions belong to the system workflow, whose index
   * finds them in a log of any size.
   */
  restoreStep(store: EventStore): RestoreStep {
    return () =>
      withEvents(
        store.iterate({ workflowId: SYSTEM_WORKFLOW_ID, type: 'breaker.transitioned' }),
        (events) => {
          for (const e of events) {
            if (e.type === 'breaker.transitioned') this.history.set(e.payload.breaker, e);
          }
        },
      );
  }

  /**
   * The breaker of that name, if any agent used it or the log records a transition of it: such a
   * breaker is built from its last transition when first asked for (no timer of it runs before
   * anyone looks).
   */
  get(name: string): Breaker | undefined {
    if (!this.breakers.has(name) && this.history.has(name)) this.restoredBreaker(name);
    return this.breakers.get(name);
  }

  /** The shared breaker for an agent's config (created on first use). */
  forAgent(config: BreakerConfig): Breaker {
    const existing = this.breakers.get(config.name);
    if (existing && !this.restoredOnly.has(config.name)) return existing;
    // A breaker created from the log alone (for `rt.breaker(name)`) takes its agent's config on
    // first use: rebuilt from its last transition, which it recorded if it made one since.
    existing?.stop();
    this.restoredOnly.delete(config.name);
    const breaker = this.newBreaker({ ...this.deps.defaults[config.name], ...config });
    this.breakers.set(config.name, breaker);
    return breaker;
  }

  /** Stops every breaker's timers. */
  stop(): void {
    for (const b of this.breakers.values()) b.stop();
  }

  /** Creates the breaker `name` from its recorded state, for `rt.breaker(name)` before first use. */
  private restoredBreaker(name: string): void {
    if (this.breakers.has(name)) return;
    this.breakers.set(name, this.newBreaker({ ...this.deps.defaults[name], name }));
    this.restoredOnly.add(name);
  }

  private newBreaker(merged: BreakerConfig): Breaker {
    const last = this.history.get(merged.name);
    return createBreaker(merged, {
      clock: this.deps.clock,
      parent: this.deps.parent,
      ...(last ? { restore: breakerRestoreFrom({ ...last.payload, ts: last.ts }) } : {}),
      onTransition: (t) => {
        // The alert fold derives `breaker` alerts from the committed transition.
        const event: NewEvent<'breaker.transitioned'> = {
          ts: t.atMs,
          workflowId: SYSTEM_WORKFLOW_ID,
          type: 'breaker.transitioned',
          payload: {
            breaker: t.breaker,
            from: t.from,
            to: t.to,
            reason: t.reason,
            failures: t.failures,
            ...(t.resetTimeoutMs !== undefined ? { resetTimeoutMs: t.resetTimeoutMs } : {}),
          },
        };
        this.history.set(t.breaker, { ...event, seq: 0, v: 1, class: 'audit' });
        this.deps.record(event);
        this.deps.changed({ breaker: t.breaker, from: t.from, to: t.to, reason: t.reason });
      },
    });
  }
}
