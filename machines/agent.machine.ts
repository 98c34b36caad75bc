/**
 * One agent invocation as an XState v5 actor.
 *
 * idle → gated → calling → (retrying → gated → calling)* → succeeded | failed | rejected | timedOut
 *
 * The machine is pure: it holds no I/O and no timers of its own. The runtime performs the effects it
 * asks for — in `gated` it checks the breaker and the budget and answers `GATE.PASS` / `GATE.REJECT`;
 * in `calling` it calls the model and answers `CALL.SUCCEEDED` / `CALL.FAILED` — while the per-attempt
 * timeout and the retry backoff are XState delayed transitions on the actor's clock. So the machine
 * is the single source of truth for every transition, and a simulated clock drives it in tests.
 */
import { assign, setup } from 'xstate';
import type { ErrorCategory } from '../src/eventlog/events.js';

/**
 * Static policy of an invocation, resolved from the agent's config: the same for every call of an
 * agent (unless a workflow deadline shortens `timeoutMs`), so one input object serves them all.
 */
export interface AgentMachineInput {
  agent: string;
  /** Per-attempt timeout, ms. */
  timeoutMs: number;
  /** Total attempts including the first. */
  maxAttempts: number;
  backoff: 'exponential' | 'fixed';
  /** First retry delay, ms. */
  baseDelayMs: number;
  /** Cap on one retry delay, ms. */
  maxDelayMs: number;
  /** Spread each delay over [delay/2, delay) with a seeded draw (seeded by `START.jitterSeed`). */
  jitter: boolean;
  /** Categories worth another attempt. */
  retryOn: readonly ErrorCategory[];
}

/** Runtime state of one invocation. */
export interface AgentMachineContext {
  /** The invocation's policy: the input, as given (shared, never copied). */
  policy: AgentMachineInput;
  /** Seed of this invocation's jitter draws (from `START`; 0 without one), so replays wait the same. */
  jitterSeed: number;
  /** Attempts started so far. */
  attempt: number;
  /** Category and message of the last failure. */
  category: ErrorCategory | undefined;
  message: string | undefined;
  /** Delay before the next attempt, ms (backoff, or the provider's retry-after if longer). */
  retryDelayMs: number;
  retryAfterMs: number | undefined;
}

/** Events the runtime sends. */
export type AgentMachineEvent =
  /**
   * Begins the invocation. `jitterSeed` (from the workflow's seed and the call's path) seeds the
   * retry jitter; leave it out when no delay can be jittered (one attempt, or `jitter: false`).
   */
  | { type: 'START'; jitterSeed?: number }
  | { type: 'GATE.PASS' }
  | { type: 'GATE.REJECT'; category: ErrorCategory; reason: string }
  | { type: 'CALL.SUCCEEDED' }
  | { type: 'CALL.FAILED'; category: ErrorCategory; message: string; retryAfterMs?: number }
  | { type: 'CANCEL'; reason: string };

/** Default categories that get another attempt. */
export const DEFAULT_RETRY_ON: readonly ErrorCategory[] = [
  'timeout',
  'rate_limited',
  'provider_error',
  'malformed_output',
];

/** Deterministic draw in [0, 1) from (seed, attempt): keeps the machine pure. */
function jitterDraw(seed: number, attempt: number): number {
  let t = (seed ^ Math.imul(attempt + 1, 0x9e3779b1)) >>> 0;
  t = Math.imul(t ^ (t >>> 16), 0x85ebca6b) >>> 0;
  t = Math.imul(t ^ (t >>> 13), 0xc2b2ae35) >>> 0;
  return ((t ^ (t >>> 16)) >>> 0) / 4294967296;
}

/** Backoff before attempt `attempt + 1`, honouring a longer `retryAfterMs`. */
export function retryDelay(
  policy: AgentMachineInput,
  jitterSeed: number,
  attempt: number,
  retryAfterMs?: number,
): number {
  const raw =
    policy.backoff === 'fixed' ? policy.baseDelayMs : policy.baseDelayMs * 2 ** Math.max(0, attempt - 1);
  let delay = Math.min(raw, policy.maxDelayMs);
  if (policy.jitter) delay = delay / 2 + (delay / 2) * jitterDraw(jitterSeed, attempt);
  delay = Math.round(delay);
  return retryAfterMs !== undefined && retryAfterMs > delay ? retryAfterMs : delay;
}

/**
 * The agent-invocation machine.
 *
 * @example
 * const actor = createActor(agentMachine, { input: { agent: 'vendor', timeoutMs: 10_000, maxAttempts: 2,
 *   backoff: 'exponential', baseDelayMs: 200, maxDelayMs: 30_000, jitter: true,
 *   retryOn: DEFAULT_RETRY_ON }, clock });
 * actor.start(); actor.send({ type: 'START', jitterSeed: 1 }); actor.send({ type: 'GATE.PASS' });
 */
export const agentMachine = setup({
  types: {
    input: {} as AgentMachineInput,
    context: {} as AgentMachineContext,
    events: {} as AgentMachineEvent,
  },
  delays: {
    attemptTimeout: ({ context }) => context.policy.timeoutMs,
    backoff: ({ context }) => context.retryDelayMs,
  },
  guards: {
    seeded: ({ event }) => event.type === 'START' && event.jitterSeed !== undefined,
    canRetry: ({ context, event }) => {
      const category = event.type === 'CALL.FAILED' ? event.category : 'timeout';
      return context.attempt < context.policy.maxAttempts && context.policy.retryOn.includes(category);
    },
  },
  actions: {
    beginAttempt: assign(({ context }) => ({ attempt: context.attempt + 1 })),
    recordFailure: assign(({ context, event }) => {
      if (event.type === 'CALL.FAILED') {
        return {
          category: event.category,
          message: event.message,
          retryAfterMs: event.retryAfterMs,
          retryDelayMs: retryDelay(context.policy, context.jitterSeed, context.attempt, event.retryAfterMs),
        };
      }
      return {
        category: 'timeout' as const,
        message: `attempt ${context.attempt} timed out after ${context.policy.timeoutMs} ms`,
        retryAfterMs: undefined,
        retryDelayMs: retryDelay(context.policy, context.jitterSeed, context.attempt),
      };
    }),
    seedJitter: assign(({ event }) =>
      event.type === 'START' && event.jitterSeed !== undefined ? { jitterSeed: event.jitterSeed } : {},
    ),
    recordRejection: assign(({ event }) =>
      event.type === 'GATE.REJECT' ? { category: event.category, message: event.reason } : {},
    ),
    recordCancel: assign(({ event }) =>
      event.type === 'CANCEL' ? { category: 'cancelled' as const, message: event.reason } : {},
    ),
  },
}).createMachine({
  id: 'agent',
  context: ({ input }) => ({
    policy: input,
    jitterSeed: 0,
    attempt: 0,
    category: undefined,
    message: undefined,
    retryDelayMs: 0,
    retryAfterMs: undefined,
  }),
  initial: 'idle',
  on: {
    CANCEL: { target: '.cancelled', actions: 'recordCancel' },
  },
  states: {
    idle: {
      on: {
        START: [{ guard: 'seeded', target: 'gated', actions: 'seedJitter' }, { target: 'gated' }],
      },
    },
    gated: {
      on: {
        'GATE.PASS': { target: 'calling', actions: 'beginAttempt' },
        'GATE.REJECT': { target: 'rejected', actions: 'recordRejection' },
      },
    },
    calling: {
      after: {
        attemptTimeout: [
          { guard: 'canRetry', target: 'retrying', actions: 'recordFailure' },
          { target: 'timedOut', actions: 'recordFailure' },
        ],
      },
      on: {
        'CALL.SUCCEEDED': 'succeeded',
        'CALL.FAILED': [
          { guard: 'canRetry', target: 'retrying', actions: 'recordFailure' },
          { target: 'failed', actions: 'recordFailure' },
        ],
      },
    },
    retrying: { after: { backoff: 'gated' } },
    succeeded: { type: 'final' },
    failed: { type: 'final' },
    rejected: { type: 'final' },
    timedOut: { type: 'final' },
    cancelled: { type: 'final' },
  },
});

/** Names of the machine's states. */
export type AgentState =
  'idle' | 'gated' | 'calling' | 'retrying' | 'succeeded' | 'failed' | 'rejected' | 'timedOut' | 'cancelled';
