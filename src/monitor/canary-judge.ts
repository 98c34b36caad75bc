/**
 * The canary judge: a pure decision over candidate and stable outcomes. It says `rollback` (with a
 * reason) as soon as the candidate breaches a target with enough samples, `promote` once the
 * candidate has run `promoteAfter` workflows without a breach, and `continue` otherwise. The
 * `canary()` topology feeds it and acts on the verdict.
 */
import { build, type Histogram } from 'hdr-histogram-js';
import { ConfigError } from '../core/errors.js';
import { formatMs, grouped, percent1 } from '../core/format.js';
import { nearestRankIndex } from './internal/ring.js';
import { checkInteger, checkPositive, checkRatio } from '../core/validate.js';

/** Limits the candidate must stay within. At least one is required. */
export interface CanaryTargets {
  /** Highest acceptable failure ratio in [0, 1], e.g. 0.05. */
  errorRate?: number;
  /** Highest acceptable P95 latency in ms, e.g. 10_000. */
  p95Ms?: number;
  /** Highest acceptable mean cost per workflow in USD, e.g. 0.05. */
  costUsdPerWorkflow?: number;
}

/** Configuration of {@link createCanaryJudge}. */
export interface CanaryJudgeConfig {
  targets: CanaryTargets;
  /** Candidate samples a metric needs before it can trigger a rollback (default 20). */
  minSamples?: number;
  /** Candidate workflows without a breach after which the verdict is `promote` (default: never). */
  promoteAfter?: number;
}

/** Which side of the split an outcome came from. */
export type CanaryArm = 'candidate' | 'stable';

/** One workflow's outcome. */
export interface CanaryOutcome {
  success: boolean;
  /** End-to-end latency in ms (omit when unknown). */
  latencyMs?: number;
  /** Cost of the workflow in USD (omit when unknown). */
  costUsd?: number;
}

/** A metric the judge watches. */
export type CanaryMetric = keyof CanaryTargets;

/** The judge's decision. `rollback` and `promote` are final. */
export type CanaryVerdict =
  | { decision: 'continue' }
  | {
      decision: 'rollback';
      metric: CanaryMetric;
      /** The candidate's value of the metric. */
      candidate: number;
      target: number;
      /** The stable arm's value, for comparison (`undefined` without stable samples). */
      stable: number | undefined;
      /** Candidate samples behind the value. */
      samples: number;
      /** E.g. "candidate error rate 12.0% exceeds target 5.0% over 50 workflows (stable 2.0% over 450)". */
      reason: string;
    }
  | { decision: 'promote'; samples: number; reason: string };

/** What one arm has seen. */
export interface CanaryArmStats {
  samples: number;
  failures: number;
  errorRate: number;
  /** Samples with a latency. */
  latencySamples: number;
  /** P95 latency in ms (HDR, 3 significant digits; `undefined` without samples). */
  p95Ms: number | undefined;
  /** Samples with a cost. */
  costSamples: number;
  /** Mean cost per workflow in USD (`undefined` without samples). */
  costUsdPerWorkflow: number | undefined;
}

/** A canary judge. */
export interface CanaryJudge {
  /** Records one outcome and returns the verdict (final once it is `rollback` or `promote`). */
  record(arm: CanaryArm, outcome: CanaryOutcome): CanaryVerdict;
  /** The current verdict. */
  readonly verdict: CanaryVerdict;
  /** What an arm has seen so far. */
  stats(arm: CanaryArm): CanaryArmStats;
}

interface Arm {
  samples: number;
  failures: number;
  latency: Histogram;
  overP95: number;
  costSum: number;
  costSamples: number;
}

const CONTINUE: CanaryVerdict = Object.freeze({ decision: 'continue' });

/**
 * Creates a canary judge.
 *
 * @example
 * const judge = createCanaryJudge({ targets: { errorRate: 0.05, p95Ms: 10_000 }, minSamples: 50 });
 * const verdict = judge.record('candidate', { success: false, latencyMs: 4_200, costUsd: 0.03 });
 * if (verdict.decision === 'rollback') console.warn(verdict.reason);
 */
export function createCanaryJudge(config: CanaryJudgeConfig): CanaryJudge {
  const { targets, minSamples = 20, promoteAfter } = config;
  if (typeof targets !== 'object' || targets === null) {
    throw new ConfigError('targets', 'must set at least one of errorRate, p95Ms, costUsdPerWorkflow.');
  }
  const { errorRate, p95Ms, costUsdPerWorkflow } = targets;
  if (errorRate === undefined && p95Ms === undefined && costUsdPerWorkflow === undefined) {
    throw new ConfigError('targets', 'must set at least one of errorRate, p95Ms, costUsdPerWorkflow.');
  }
  if (errorRate !== undefined) checkRatio('targets.errorRate', errorRate, 'e.g. 0.05');
  if (p95Ms !== undefined) checkPositive('targets.p95Ms', p95Ms, 'the P95 latency limit in ms, e.g. 10_000');
  if (costUsdPerWorkflow !== undefined && !(Number.isFinite(costUsdPerWorkflow) && costUsdPerWorkflow >= 0)) {
    throw new ConfigError('targets.costUsdPerWorkflow', `must be USD >= 0, got ${costUsdPerWorkflow}.`);
  }
  checkInteger('minSamples', minSamples, 1, 'candidate samples needed before judging, e.g. 20');
  if (promoteAfter !== undefined) {
    checkInteger(
      'promoteAfter',
      promoteAfter,
      minSamples,
      'candidate workflows before promotion, >= minSamples',
    );
  }

  const newArm = (): Arm => ({
    samples: 0,
    failures: 0,
    latency: build({
      bitBucketSize: 32,
      autoResize: true,
      useWebAssembly: false,
      numberOfSignificantValueDigits: 3,
    }),
    overP95: 0,
    costSum: 0,
    costSamples: 0,
  });
  const arms: Record<CanaryArm, Arm> = { candidate: newArm(), stable: newArm() };
  let verdict: CanaryVerdict = CONTINUE;

  const statsOf = (a: Arm): CanaryArmStats => ({
    samples: a.samples,
    failures: a.failures,
    errorRate: a.samples === 0 ? 0 : a.failures / a.samples,
    latencySamples: a.latency.totalCount,
    p95Ms: a.latency.totalCount === 0 ? undefined : a.latency.getValueAtPercentile(95),
    costSamples: a.costSamples,
    costUsdPerWorkflow: a.costSamples === 0 ? undefined : a.costSum / a.costSamples,
  });

  const rollback = (
    metric: CanaryMetric,
    candidate: number,
    target: number,
    samples: number,
    show: (v: number) => string,
    label: string,
  ): CanaryVerdict => {
    const s = arms.stable;
    const st = statsOf(s);
    const stable = s.samples === 0 ? undefined : st[metric];
    const stableText = stable === undefined ? '' : ` (stable ${show(stable)} over ${grouped(s.samples)})`;
    return {
      decision: 'rollback',
      metric,
      candidate,
      target,
      stable,
      samples,
      reason: `candidate ${label} ${show(candidate)} exceeds target ${show(target)} over ${grouped(samples)} workflows${stableText}`,
    };
  };

  const judge = (): CanaryVerdict => {
    const c = arms.candidate;
    if (errorRate !== undefined && c.samples >= minSamples && c.failures / c.samples > errorRate) {
      const rate = c.failures / c.samples;
      return rollback('errorRate', rate, errorRate, c.samples, percent1, 'error rate');
    }
    const n = c.latency.totalCount;
    if (p95Ms !== undefined && n >= minSamples && n - c.overP95 < nearestRankIndex(95, n) + 1) {
      return rollback('p95Ms', c.latency.getValueAtPercentile(95), p95Ms, n, formatMs, 'P95 latency');
    }
    if (
      costUsdPerWorkflow !== undefined &&
      c.costSamples >= minSamples &&
      c.costSum / c.costSamples > costUsdPerWorkflow
    ) {
      return rollback(
        'costUsdPerWorkflow',
        c.costSum / c.costSamples,
        costUsdPerWorkflow,
        c.costSamples,
        (v) => `$${v.toFixed(4)}`,
        'cost per workflow',
      );
    }
    if (promoteAfter !== undefined && c.samples >= promoteAfter) {
      return {
        decision: 'promote',
        samples: c.samples,
        reason: `candidate stayed within every target over ${grouped(c.samples)} workflows`,
      };
    }
    return CONTINUE;
  };

  return {
    record(arm, outcome) {
      if (verdict.decision !== 'continue') return verdict;
      const a = arms[arm];
      a.samples++;
      if (!outcome.success) a.failures++;
      const { latencyMs, costUsd } = outcome;
      if (latencyMs !== undefined && latencyMs >= 0 && Number.isFinite(latencyMs)) {
        a.latency.recordValue(Math.round(latencyMs));
        if (p95Ms !== undefined && latencyMs > p95Ms) a.overP95++;
      }
      if (costUsd !== undefined && Number.isFinite(costUsd)) {
        a.costSum += costUsd;
        a.costSamples++;
      }
      if (arm === 'candidate') verdict = judge();
      return verdict;
    },
    get verdict() {
      return verdict;
    },
    stats: (arm) => statsOf(arms[arm]),
  };
}
