/**
 * Accuracy of a what-if policy, from the ground truth users record with `rt.feedback()`. A run's
 * correctness under a changed policy is known only when the record can tell: the answer did not
 * change (so the recorded verdict holds), or the node is the workflow's root and the feedback
 * names the `expected` answer to compare with. Otherwise it is unknown, never guessed.
 */
import { canonicalJson } from '../core/json.js';
import type { Feedback } from './internal/recorded-runs.js';

/** Accuracy of one policy over the runs that have ground truth. */
export interface Accuracy {
  /**
   * Correct / labeled, in [0, 1]; `null` when no run has ground truth, or when the record cannot
   * tell whether some labeled run would have been right under this policy (`unknown` > 0).
   */
  ratio: number | null;
  /** Runs with a `feedback.recorded` event. */
  labeled: number;
  /** Labeled runs whose answer under this policy is known to be correct. */
  correct: number;
  /** Labeled runs whose correctness under this policy the record cannot tell. */
  unknown: number;
}

/** What a run's answer under a policy looks like to the judge. @internal */
export type Outcome =
  { kind: 'answer'; value: unknown; known: boolean } | { kind: 'failed' } | { kind: 'unknown' };

/** Counts correct / labeled / unknown runs. @internal */
export class AccuracyTally {
  private labeled = 0;
  private correct = 0;
  private unknown = 0;

  /**
   * Adds one run. `same` says the policy's answer equals the recorded one; `isRoot` that the node
   * is the workflow's root, so `feedback.expected` is its expected answer.
   */
  add(feedback: Feedback | undefined, outcome: Outcome, same: boolean, isRoot: boolean): void {
    if (!feedback) return;
    this.labeled++;
    let verdict: boolean | undefined;
    if (outcome.kind === 'unknown') verdict = undefined;
    else if (same) verdict = feedback.correct;
    else if (outcome.kind === 'failed') verdict = false;
    else if (isRoot && outcome.known && feedback.expected !== undefined) {
      verdict = canonicalJson(outcome.value ?? null) === canonicalJson(feedback.expected);
    }
    if (verdict === undefined) this.unknown++;
    else if (verdict) this.correct++;
  }

  result(): Accuracy {
    return {
      ratio: this.labeled > 0 && this.unknown === 0 ? this.correct / this.labeled : null,
      labeled: this.labeled,
      correct: this.correct,
      unknown: this.unknown,
    };
  }
}

/** True when two recorded answers are the same value. @internal */
export function sameAnswer(a: { value: unknown } | undefined, b: { value: unknown } | undefined): boolean {
  if (!a || !b) return false;
  return canonicalJson(a.value ?? null) === canonicalJson(b.value ?? null);
}
