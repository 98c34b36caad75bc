/**
 * Drives one agent invocation through `machines/agent.machine.ts`. Two ways, one machine:
 *
 * - **Stepped** (no inspector): the machine's own transition function (`agentMachine.transition`,
 *   the `ActorLogic` method XState's pure `transition()` calls) computes every next snapshot, and
 *   the delays its states schedule (`after`: the attempt timeout, the retry backoff) run on the
 *   injected clock. No actor, actor system, mailbox or scheduler per call: about half the CPU of an
 *   actor's lifecycle.
 * - **As an actor** (an `inspect` observer is configured): a real XState actor, so the Stately
 *   inspector sees every agent invocation next to the breakers.
 *
 * Both hand the same snapshots to the listener in the same order: events sent while a snapshot is
 * being handled wait until the handler returns (an actor's mailbox), and a delay's event arrives
 * when the clock says so. `test/supervisor/agent-driver.test.ts` runs both side by side.
 */
import {
  createActor,
  type ActorScope,
  type ExecutableActionObject,
  type InspectionEvent,
  type Observer,
  type SnapshotFrom,
} from 'xstate';
import {
  agentMachine,
  type AgentMachineEvent,
  type AgentMachineInput,
} from '../../machines/agent.machine.js';
import type { Clock, TimerHandle } from '../core/clock.js';

/** A snapshot of the agent machine. */
export type AgentSnapshot = SnapshotFrom<typeof agentMachine>;

/** Receives each snapshot the machine reaches, and an error if a transition throws. */
export interface AgentListener {
  onSnapshot(snapshot: AgentSnapshot): void;
  onError(error: unknown): void;
}

/** One invocation's machine, started by {@link driveAgent}. */
export interface AgentDriver {
  /** Sends an event. Sent while a snapshot is being handled, it is processed once the handler returns. */
  send(event: AgentMachineEvent): void;
  /** The current snapshot. */
  getSnapshot(): AgentSnapshot;
}

/** How to run the machine: on `clock`; as an inspected actor when `inspect` is set. */
export interface DriveOptions {
  clock: Clock;
  inspect: Observer<InspectionEvent> | ((event: InspectionEvent) => void) | undefined;
}

/**
 * Starts the agent machine with `input`; `listener` gets the initial snapshot before this returns.
 *
 * @example
 * const driver = driveAgent(input, { clock, inspect: undefined }, {
 *   onSnapshot: (s) => console.log(s.value),
 *   onError: (e) => console.error(e),
 * });
 * driver.send({ type: 'START' });
 */
export function driveAgent(
  input: AgentMachineInput,
  options: DriveOptions,
  listener: AgentListener,
): AgentDriver {
  if (options.inspect !== undefined) return actorDriver(input, options, listener);
  return new SteppedDriver(input, options.clock, listener);
}

function actorDriver(input: AgentMachineInput, options: DriveOptions, listener: AgentListener): AgentDriver {
  const actor = createActor(agentMachine, { clock: options.clock, inspect: options.inspect, input });
  actor.subscribe({
    next: (snapshot) => listener.onSnapshot(snapshot),
    error: (error: unknown) => listener.onError(error),
  });
  actor.start();
  return actor;
}

type AgentScope = ActorScope<AgentSnapshot, AgentMachineEvent>;

/** Actions the last transition asked for (raise with a delay, cancel); reused, never shared across calls. */
const requested: ExecutableActionObject[] = [];
let sharedScope: AgentScope | undefined;

/** The initial snapshot of an input and the actions it asked for (none for this machine). */
interface Initial {
  snapshot: AgentSnapshot;
  actions: readonly ExecutableActionObject[];
}

/**
 * Initial snapshots by input. The initial state is a pure function of the input, and snapshots are
 * immutable, so every invocation of an agent starts from the one its input produced.
 */
const initials = new WeakMap<AgentMachineInput, Initial>();

/** A transition's result: the next snapshot and the actions it asked for. */
type Step = Initial;

/**
 * Transitions taken from shared snapshots (an initial one, and those reached from it by events that
 * carry nothing but their type), by event type. The transition function is pure, so from the same
 * snapshot the same bare event always leads to the same step: an agent's common path (START,
 * GATE.PASS, CALL.SUCCEEDED) is computed by the machine once and then looked up.
 */
const sharedSteps = new WeakMap<AgentSnapshot, Map<string, Step>>();

/** True for an event that is only its type (`{ type: 'GATE.PASS' }`, a delay's event). */
function isBare(event: AgentMachineEvent): boolean {
  for (const key in event) if (key !== 'type') return false;
  return true;
}

function initialOf(input: AgentMachineInput, scope: AgentScope): Initial {
  let initial = initials.get(input);
  if (initial === undefined) {
    requested.length = 0;
    initial = { snapshot: agentMachine.getInitialSnapshot(scope, input), actions: requested.slice() };
    requested.length = 0;
    initials.set(input, initial);
  }
  return initial;
}

/**
 * The scope transitions run in. Its `self` is a never-started actor lent to action arguments (the
 * machine's actions read only `context` and `event`); effects are collected, not executed.
 */
function scopeFor(input: AgentMachineInput): AgentScope {
  if (sharedScope !== undefined) return sharedScope;
  const self = createActor(agentMachine, { input });
  sharedScope = {
    self,
    id: '',
    sessionId: '',
    logger: () => undefined,
    defer: () => undefined,
    emit: () => undefined,
    system: self.system,
    stopChild: () => undefined,
    actionExecutor: (action) => {
      requested.push(action);
    },
  };
  return sharedScope;
}

interface RaiseParams {
  event: AgentMachineEvent;
  id: string;
  delay: number | undefined;
}

/** A delayed event on the clock beyond the first (the machine has at most one at a time). */
interface Delayed {
  id: string;
  handle: TimerHandle;
}

class SteppedDriver implements AgentDriver {
  private snapshot: AgentSnapshot;
  private readonly scope: AgentScope;
  /** Events sent while one is being processed, in order. */
  private queue: AgentMachineEvent[] | undefined;
  private busy = false;
  /** A transition threw: like an errored actor, the machine takes no more events. */
  private broken = false;
  /** The snapshot is shared by other invocations (see {@link sharedSteps}). */
  private shared = true;
  /**
   * The pending delayed event (the attempt timeout, or the retry backoff), held in fields rather
   * than a list: one per running agent, so it is the hot path's memory. A second one at once (no
   * state of this machine asks for it) goes to `moreTimers`.
   */
  private timerId: string | undefined;
  private timerEvent: AgentMachineEvent | undefined;
  private timerHandle: TimerHandle;
  /** Fires the pending delayed event: made once per driver that schedules one. */
  private fire: (() => void) | undefined;
  private moreTimers: Delayed[] | undefined;

  /** Starts from the input's initial snapshot (a throwing context factory throws here) and hands it over. */
  constructor(
    input: AgentMachineInput,
    private readonly clock: Clock,
    private readonly listener: AgentListener,
  ) {
    this.scope = scopeFor(input);
    const initial = initialOf(input, this.scope);
    this.snapshot = initial.snapshot;
    for (const action of initial.actions) requested.push(action);
    this.perform();
    this.notify();
  }

  getSnapshot(): AgentSnapshot {
    return this.snapshot;
  }

  send(event: AgentMachineEvent): void {
    if (this.busy) {
      (this.queue ??= []).push(event);
      return;
    }
    this.step(event);
    for (let next = this.queue?.shift(); next !== undefined; next = this.queue?.shift()) this.step(next);
  }

  private step(event: AgentMachineEvent): void {
    if (this.broken || this.snapshot.status !== 'active') return; // a finished actor ignores events too
    try {
      requested.length = 0;
      if (this.shared && isBare(event)) this.snapshot = this.sharedStep(event.type);
      else {
        this.shared = false;
        this.snapshot = agentMachine.transition(this.snapshot, event, this.scope);
      }
      this.perform();
    } catch (error) {
      this.fail(error);
      return;
    }
    this.notify();
  }

  /** The step of a bare event from the shared snapshot: computed once, then looked up. */
  private sharedStep(type: string): AgentSnapshot {
    const from = this.snapshot;
    let steps = sharedSteps.get(from);
    let step = steps?.get(type);
    if (step === undefined) {
      const snapshot = agentMachine.transition(from, { type } as AgentMachineEvent, this.scope);
      step = { snapshot, actions: requested.slice() };
      if (steps === undefined) sharedSteps.set(from, (steps = new Map<string, Step>()));
      steps.set(type, step);
      return snapshot;
    }
    for (const action of step.actions) requested.push(action);
    return step.snapshot;
  }

  /** Hands the snapshot to the listener; events it sends meanwhile are queued. */
  private notify(): void {
    this.busy = true;
    try {
      this.listener.onSnapshot(this.snapshot);
    } finally {
      this.busy = false;
    }
  }

  /** Schedules and cancels the delays the transition asked for; a finished machine keeps none. */
  private perform(): void {
    for (let i = 0; i < requested.length; i++) {
      const action = requested[i] as ExecutableActionObject;
      if (action.type === 'xstate.raise') {
        const p = action.params as RaiseParams;
        if (typeof p.delay === 'number') this.schedule(p.id, p.event, p.delay);
      } else if (action.type === 'xstate.cancel') {
        this.cancel((action.params as { sendId: string }).sendId);
      }
    }
    requested.length = 0;
    if (this.snapshot.status !== 'active') this.clearTimers();
  }

  private schedule(id: string, event: AgentMachineEvent, delayMs: number): void {
    this.cancel(id);
    if (this.timerId === undefined) {
      this.timerId = id;
      this.timerEvent = event;
      this.timerHandle = this.clock.setTimeout((this.fire ??= this.onTimer.bind(this)), delayMs);
      return;
    }
    const handle = this.clock.setTimeout(() => {
      this.forget(id);
      this.send(event);
    }, delayMs);
    (this.moreTimers ??= []).push({ id, handle });
  }

  /** The pending delayed event is due. */
  private onTimer(): void {
    const event = this.timerEvent;
    this.timerId = undefined;
    this.timerEvent = undefined;
    this.timerHandle = undefined;
    if (event !== undefined) this.send(event);
  }

  private cancel(id: string): void {
    if (this.timerId === id) {
      const handle = this.timerHandle;
      this.timerId = undefined;
      this.timerEvent = undefined;
      this.timerHandle = undefined;
      this.clock.clearTimeout(handle);
      return;
    }
    const t = this.forget(id);
    if (t !== undefined) this.clock.clearTimeout(t.handle);
  }

  /** Removes (and returns) the timer `id` of `moreTimers`. */
  private forget(id: string): Delayed | undefined {
    const timers = this.moreTimers;
    if (timers === undefined) return undefined;
    for (let i = 0; i < timers.length; i++) {
      const t = timers[i] as Delayed;
      if (t.id === id) {
        timers.splice(i, 1);
        return t;
      }
    }
    return undefined;
  }

  private clearTimers(): void {
    if (this.timerId !== undefined) this.cancel(this.timerId);
    if (this.moreTimers === undefined) return;
    for (const t of this.moreTimers) this.clock.clearTimeout(t.handle);
    this.moreTimers = undefined;
  }

  /** A transition threw: like an actor, stop (keeping no timers) and report the error. */
  private fail(error: unknown): void {
    requested.length = 0;
    this.broken = true;
    this.queue = undefined;
    this.clearTimers();
    this.listener.onError(error);
  }
}
