/**
 * `vote(agents, { stop })`: majority vote with adaptive early termination — stop as soon as no
 * remaining vote can change the leader (the seed's "3 unanimous of 5 → stop; 3-1 after 4 → stop").
 */
import { Observable, type Subscription } from 'rxjs';
import { canonicalJson } from '../core/json.js';
import { isWorkflowCancelledError, AgentFailedError } from './errors.js';
import { childContext } from './children.js';
import type { Executor } from './execute.js';
import { estimateUsd } from './invoke.js';
import type { NodeResult, Topology } from './topology.js';
import { composite, type AnyTopology, type Composite } from './topology.js';

/** One cast vote. */
export interface Ballot<O = unknown> {
  agent: string;
  index: number;
  value: O;
  weight: number;
}

/** What a custom stop rule sees after each vote. */
export interface Tally<O = unknown> {
  votes: readonly Ballot<O>[];
  /** Weight of the voters not yet heard from (excluding failed ones). */
  remainingWeight: number;
  totalWeight: number;
  /** Current leader's value and weight, and the runner-up's weight. */
  leader: { value: O; weight: number } | undefined;
  runnerUpWeight: number;
}

/** Options of {@link vote}. */
export interface VoteOptions<O> {
  /**
   * When to stop: `'decided'` (default) stops once the leader cannot be overtaken by the remaining
   * votes; `'all'` hears every voter; a function decides from the tally.
   */
  stop?: 'decided' | 'all' | ((tally: Tally<O>) => boolean);
  /**
   * How voters start: `'sequential'` (default) one at a time; `'quorum-first'` the minimum that
   * could decide in parallel, then one at a time (same cost, fewer rounds); `'parallel'` all at once.
   */
  launch?: 'sequential' | 'quorum-first' | 'parallel';
  /** Weight of each voter, in agent order (default 1 each). */
  weights?: readonly number[];
  /** Groups equal votes (default: canonical JSON of the output). */
  key?: (value: O) => string;
}

/** Result of a vote. */
export interface VoteResult<O> {
  value: O;
  /** Agreeing weight / cast weight. */
  confidence: number;
  /** Voters that were called (cast or failed). */
  agentsUsed: number;
  votes: Ballot<O>[];
}

/**
 * A majority vote among agents that answer the same question.
 *
 * @example
 * const fraud = vote([s1, s2, s3, s4, s5], { stop: 'decided' }); // 3.4 agents on the seed's mix
 */
export function vote<I, O>(
  voters: readonly Topology<I, O>[],
  options: VoteOptions<O> = {},
): Composite<I, VoteResult<O>> {
  if (voters.length === 0) throw new RangeError('vote(): give at least one voter');
  if (options.weights && options.weights.length !== voters.length)
    throw new RangeError(`vote(): weights has ${options.weights.length} entries for ${voters.length} voters`);
  if (options.weights?.some((w) => !(w > 0))) throw new RangeError('vote(): every weight must be > 0');
  return composite('vote', voters as unknown as AnyTopology[], {
    stop: options.stop ?? 'decided',
    launch: options.launch ?? 'sequential',
    ...(options.weights ? { weights: [...options.weights] } : {}),
    ...(options.key ? { key: options.key } : {}),
  });
}

/** The smallest number of first voters whose weight could be a majority. */
function quorumSize(weights: readonly number[]): number {
  const total = weights.reduce((a, b) => a + b, 0);
  let sum = 0;
  for (let i = 0; i < weights.length; i++) {
    sum += weights[i] as number;
    if (sum > total / 2) return i + 1;
  }
  return weights.length;
}

/** Runs a `vote` node (its entry in `execute.ts`'s executor map). */
export const executeVote: Executor = (node, input, ctx, exec) =>
  new Observable<NodeResult>((subscriber) => {
    const voters = node.children;
    const n = voters.length;
    const o = node.options;
    const weights = (o.weights as number[] | undefined) ?? voters.map(() => 1);
    const stop = o.stop as 'decided' | 'all' | ((t: Tally) => boolean);
    const launchMode = o.launch as 'sequential' | 'quorum-first' | 'parallel';
    const keyOf = (o.key as ((v: unknown) => string) | undefined) ?? canonicalJson;
    const totalWeight = weights.reduce((a, b) => a + b, 0);
    const { scope, path } = ctx;

    const votes: Ballot[] = [];
    const byKey = new Map<string, { value: unknown; weight: number; first: number }>();
    const running = new Map<number, Subscription>();
    let remainingWeight = totalWeight;
    let next = 0;
    let called = 0;
    let finished = false;
    let lastError: unknown;

    const leaderOf = (): { value: unknown; weight: number; runnerUp: number } | undefined => {
      let best: { value: unknown; weight: number; first: number } | undefined;
      let second = 0;
      for (const e of byKey.values()) {
        if (!best || e.weight > best.weight || (e.weight === best.weight && e.first < best.first)) {
          if (best) second = Math.max(second, best.weight);
          best = e;
        } else second = Math.max(second, e.weight);
      }
      return best && { value: best.value, weight: best.weight, runnerUp: second };
    };

    const decided = (): boolean => {
      const l = leaderOf();
      if (stop === 'all') return false;
      if (stop === 'decided') return l !== undefined && l.weight > l.runnerUp + remainingWeight;
      return stop({
        votes,
        remainingWeight,
        totalWeight,
        leader: l && { value: l.value, weight: l.weight },
        runnerUpWeight: l?.runnerUp ?? 0,
      });
    };

    const conclude = (): void => {
      if (finished) return;
      finished = true;
      for (const s of running.values()) s.unsubscribe();
      running.clear();
      const l = leaderOf();
      if (!l) {
        subscriber.error(
          lastError ??
            new AgentFailedError('unknown', `vote at ${path}: no voter returned a value`, { path }),
        );
        return;
      }
      const skippedIdx: number[] = [];
      for (let i = next; i < n; i++) skippedIdx.push(i);
      const ts = scope.services.clock.now();
      if (skippedIdx.length > 0) {
        scope.emit({
          ts,
          workflowId: scope.workflowId,
          type: 'vote.early_stop',
          payload: { path, cast: votes.length, total: n, leader: l.value, skipped: skippedIdx.length },
        });
      }
      const savedUsd = skippedIdx.reduce((sum, i) => {
        const v = voters[i] as AnyTopology;
        return sum + (v.kind === 'agent' ? estimateUsd(ctx, v) : 0);
      }, 0);
      const castWeight = votes.reduce((a, b) => a + b.weight, 0);
      const confidence = castWeight > 0 ? l.weight / castWeight : 0;
      scope.emit({
        ts,
        workflowId: scope.workflowId,
        type: 'vote.decided',
        payload: { path, value: l.value, confidence, agentsUsed: called, total: n, savedUsd },
      });
      // Ballots in voter order, whatever order they arrived in: the result is the same on replay.
      const ordered = [...votes].sort((a, b) => a.index - b.index);
      const result: VoteResult<unknown> = {
        value: l.value,
        confidence,
        agentsUsed: called,
        votes: ordered,
      };
      subscriber.next({ value: result, confidence });
      subscriber.complete();
    };

    const afterOutcome = (): void => {
      if (finished) return;
      if (decided() || (next >= n && running.size === 0)) {
        conclude();
        return;
      }
      // sequential and quorum-first: one more once everything started has answered
      if (launchMode !== 'parallel' && running.size === 0 && next < n) launch(next++);
    };

    const launch = (i: number): void => {
      called++;
      const voter = voters[i] as AnyTopology;
      const agentName = voter.kind === 'agent' ? voter.name : (voter.name ?? voter.kind);
      let sub: Subscription | undefined = undefined;
      let sync = true;
      const settle = (): void => {
        running.delete(i);
        if (!sync) afterOutcome();
      };
      sub = exec(voter, input, childContext(ctx, voters, i)).subscribe({
        next: (r) => {
          const weight = weights[i] as number;
          const ballot: Ballot = { agent: agentName, index: i, value: r.value, weight };
          votes.push(ballot);
          remainingWeight -= weight;
          const k = keyOf(r.value);
          const entry = byKey.get(k);
          if (entry) {
            entry.weight += weight;
            entry.first = Math.min(entry.first, i);
          } else byKey.set(k, { value: r.value, weight, first: i });
          scope.emit({
            ts: scope.services.clock.now(),
            workflowId: scope.workflowId,
            type: 'vote.cast',
            payload: { path, agent: agentName, value: r.value, weight, index: i },
          });
        },
        error: (err: unknown) => {
          if (isWorkflowCancelledError(err)) {
            finished = true;
            subscriber.error(err);
            return;
          }
          lastError = err;
          remainingWeight -= weights[i] as number;
          settle();
        },
        complete: settle,
      });
      sync = false;
      if (!sub.closed) running.set(i, sub);
      else if (!starting) afterOutcome();
    };

    const initial =
      launchMode === 'parallel' ? n : launchMode === 'quorum-first' ? Math.min(n, quorumSize(weights)) : 1;
    let starting = true;
    while (next < initial && !finished) launch(next++);
    starting = false;
    afterOutcome();
    return () => {
      finished = true;
      for (const s of running.values()) s.unsubscribe();
      running.clear();
    };
  });
