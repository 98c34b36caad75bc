/**
 * Attempt step (`calling`): one call of the agent's `run()` — or, in replay, the recorded outcome —
 * with the attempt's `AbortSignal` and seeded `rng` made on first use. The per-attempt timeout is
 * the machine's delayed transition; when it fires (or the invocation is cancelled) the attempt is
 * abandoned here: its signal aborts, it is charged its reservation and its breaker permit returned.
 */
import { seededRandom, type Random } from '../../core/random.js';
import type { NewEvent } from '../../eventlog/events.js';
import type { AgentContext, AgentOutput } from '../agent.js';
import { releaseLimits } from './limits.js';
import { replayOutcome } from './replay.js';
import { modelTurn } from './turn.js';
import { toolBreakerName } from '../../tools/call.js';
import type { AnyAgent, AttemptStep, CallState } from './types.js';
import { AttemptSignal, safeMessage } from './types.js';

function start(call: CallState, attempt: number): void {
  const { agent, ctx } = call;
  const { scope, path } = ctx;
  const signal = new AttemptSignal();
  call.attempt = signal;
  call.turns = 0;
  call.step = undefined;
  call.turnCalling = false;
  const work: Promise<AgentOutput<unknown>> = scope.replay
    ? replayOutcome(scope.replay.next(path), agent.name, path, scope.services.clock)
    : runAgent(agent, call.input, attemptContext(call, attempt, signal));
  const { outcome } = call.steps;
  work.then(
    (out) => outcome.answered(call, signal, attempt, out),
    (e: unknown) => outcome.threw(call, signal, attempt, e),
  );
}

/**
 * What `run` sees of attempt `attempt`: `signal` and the state behind `rng` are made on first use.
 * `rng` is a plain property (a {@link LazyRandom}), not a getter: every accessor in an object
 * literal costs ~0.7 µs per attempt to create (the object is built in dictionary mode), and
 * `signal` needs one (an `AbortController` costs ~5 µs, most agents never read it).
 */
function attemptContext(call: CallState, attempt: number, signal: AttemptSignal): AgentContext {
  const { scope, path } = call.ctx;
  return {
    get signal(): AbortSignal {
      return signal.get();
    },
    attempt,
    model: call.model,
    workflowId: scope.workflowId,
    path,
    clock: scope.services.clock,
    rng: new LazyRandom(call, attempt),
    maxOutputTokens: call.agent.maxOutputTokens,
    recordTool: (type, payload) => {
      if (signal.reason !== undefined) return; // the attempt ended: what it does now is not recorded
      scope.emit({ ts: scope.services.clock.now(), workflowId: scope.workflowId, type, payload } as NewEvent);
    },
    turn: modelTurn(call, attempt, signal),
    toolBreaker: (config) => scope.services.breaker({ ...config, name: toolBreakerName(config.name) }),
    ...(scope.delta !== undefined ? { onDelta: deltaTo(call, attempt, scope.delta, signal) } : {}),
  };
}

/**
 * The seeded `rng` of one attempt (seed: the call's seed and the attempt number, as before): its
 * generator is made on the first draw. Its methods are bound (arrow fields), so
 * `const { int } = ctx.rng` works as with `seededRandom`.
 */
class LazyRandom implements Random {
  private inner: Random | undefined;

  constructor(
    private readonly call: CallState,
    private readonly attempt: number,
  ) {}

  private get rng(): Random {
    return (this.inner ??= seededRandom(`${this.call.seed}:${this.attempt}`));
  }

  readonly next = (): number => this.rng.next();
  readonly int = (min: number, max: number): number => this.rng.int(min, max);
  readonly chance = (p: number): boolean => this.rng.chance(p);
  readonly normal = (mean: number, stddev: number): number => this.rng.normal(mean, stddev);
  readonly pick = <T>(items: readonly T[]): T => this.rng.pick(items);
  readonly fork = (label: string): Random => this.rng.fork(label);
}

/**
 * Text deltas of a live attempt go to the workflow's stream; an abandoned attempt's are dropped.
 * The first one records the attempt's time to first token (`agent.first_token`).
 */
function deltaTo(
  call: CallState,
  attempt: number,
  delta: (path: string, text: string) => void,
  signal: AttemptSignal,
): (text: string) => void {
  const { scope, path } = call.ctx;
  const clock = scope.services.clock;
  const startedAt = clock.now();
  let first = true;
  return (text) => {
    if (signal.reason !== undefined || typeof text !== 'string' || text === '') return;
    if (first) {
      first = false;
      scope.emit({
        ts: clock.now(),
        workflowId: scope.workflowId,
        type: 'agent.first_token',
        payload: {
          path,
          agent: call.agent.name,
          model: call.model,
          attempt,
          ttftMs: clock.now() - startedAt,
        },
      });
    }
    delta(path, text);
  };
}

/**
 * Calls the agent's `run`: a synchronous throw becomes a rejection, and a value that is not a
 * promise is taken as the answer.
 */
function runAgent(agent: AnyAgent, input: unknown, context: AgentContext): Promise<AgentOutput<unknown>> {
  try {
    return Promise.resolve(
      (agent.run as (input: unknown, context: AgentContext) => Promise<AgentOutput<unknown>>)(input, context),
    );
  } catch (e) {
    return Promise.reject(e instanceof Error ? e : new Error(safeMessage(e)));
  }
}

function abandon(call: CallState, attempt: number, cancelled: boolean): void {
  const signal = call.attempt;
  if (signal === undefined) return;
  signal.abort(cancelled ? 'cancelled' : 'timeout');
  call.attempt = undefined;
  if (call.turns > 0 && !call.turnCalling) {
    // A tool loop between model turns (or admitting one): no model call is out to pay for.
    call.reservation?.release();
    call.reservation = undefined;
    call.permit?.release();
    call.permit = undefined;
  } else call.steps.cost.chargeEstimate(call, attempt);
  // The provider may have served (and billed) it: its token reservation stands.
  releaseLimits(call);
  if (cancelled) {
    call.permit?.release();
    call.permit = undefined;
    return;
  }
  call.permit?.failure('timeout');
  call.permit = undefined;
  call.emit({
    ts: call.now(),
    workflowId: call.ctx.scope.workflowId,
    type: 'agent.timed_out',
    payload: { path: call.ctx.path, agent: call.agent.name, attempt, timeoutMs: call.timeoutMs },
  });
}

/** The attempt step. */
export const attempt: AttemptStep = { start, abandon };
