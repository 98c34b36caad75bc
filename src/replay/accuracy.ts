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

/** The run's correctness cannot be told, whatever its ground truth. @internal */
export const UNTOLD = 0;
/** The answer is the recorded one: the recorded verdict holds. @internal */
export const AS_RECORDED = 1;
/** The run fails under the policy: wrong, whatever its ground truth. @internal */
export const WRONG = 2;

/**
 * How a run under a policy will be judged once its ground truth is known, kept instead of the run
 * itself: {@link UNTOLD}, {@link AS_RECORDED}, {@link WRONG}, or the canonical JSON of a changed
 * answer to compare with `feedback.expected`. @internal
 */
export type Verdict = typeof UNTOLD | typeof AS_RECORDED | typeof WRONG | string;

/** Counts correct / labeled / unknown runs. @internal */
export class AccuracyTally {
  private labeled = 0;
  private correct = 0;
  private unknown = 0;

  /** Adds one run, judged by `verdict` against its ground truth (none: the run is not labeled). */
  add(feedback: Feedback | undefined, verdict: Verdict): void {
    if (!feedback) return;
    this.labeled++;
    let ok: boolean | undefined;
    if (verdict === AS_RECORDED) ok = feedback.correct;
    else if (verdict === WRONG) ok = false;
    else if (typeof verdict === 'string' && feedback.expectedJson !== undefined)
      ok = verdict === feedback.expectedJson;
    if (ok === undefined) this.unknown++;
    else if (ok) this.correct++;
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
