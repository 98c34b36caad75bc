/**
 * Projects a per-run cost to weekly and yearly figures, the way the tutorial's exercises do
 * ("20,000 invoices/week with GPT-4 at $0.03 = $600/week = $31,200/year").
 */
import { ConfigError } from '../core/errors.js';

/** Weeks in the tutorial's year ($190/week = $9,880/year). */
export const WEEKS_PER_YEAR = 52;

/** A cost per run projected to a weekly volume, optionally against a baseline. All figures USD. */
export interface VolumeProjection {
  /** Runs per week the projection assumes. */
  perWeek: number;
  /** Cost per run × runs per week. */
  costPerWeekUsd: number;
  /** Weekly cost × {@link WEEKS_PER_YEAR}. */
  costPerYearUsd: number;
  /** The baseline's weekly cost, when a baseline was given. */
  baselinePerWeekUsd?: number;
  /** Baseline weekly cost − this weekly cost (negative when this costs more). */
  savingPerWeekUsd?: number;
  /** Weekly saving × {@link WEEKS_PER_YEAR}. */
  savingPerYearUsd?: number;
  /** Saving as a share of the baseline, in [0, 1] when cheaper (`null` for a free baseline). */
  savingShare?: number | null;
}

/** Rounds a USD figure to 1/10,000 of a cent, hiding float noise (189.99999999999997 → 190). */
function usd(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

/**
 * Projects `costPerRunUsd` to `perWeek` runs a week and a 52-week year; with a baseline cost per
 * run, also the weekly and yearly saving.
 *
 * @param costPerRunUsd - cost of one run under the policy, USD (>= 0).
 * @param perWeek - runs per week (> 0), e.g. 20_000 invoices.
 * @param baselinePerRunUsd - cost of one run under the policy compared with, USD.
 * @throws ConfigError when a figure is negative or not finite.
 * @example
 * // The tutorial's Exercise 3: 75% answered by GPT-3.5 ($0.002), 25% escalated to GPT-4 ($0.032).
 * const p = projectVolume(0.75 * 0.002 + 0.25 * 0.032, 20_000, 0.03);
 * // p.costPerWeekUsd 190, p.baselinePerWeekUsd 600, p.savingPerYearUsd 21_320
 */
export function projectVolume(
  costPerRunUsd: number,
  perWeek: number,
  baselinePerRunUsd?: number,
): VolumeProjection {
  if (!(costPerRunUsd >= 0) || !Number.isFinite(costPerRunUsd))
    throw new ConfigError('costPerRunUsd', `must be a finite number of USD >= 0, got ${costPerRunUsd}`);
  if (!(perWeek > 0) || !Number.isFinite(perWeek))
    throw new ConfigError(
      'volumePerWeek',
      `must be a number of runs per week > 0, e.g. 20000; got ${perWeek}`,
    );
  const week = costPerRunUsd * perWeek;
  const out: VolumeProjection = {
    perWeek,
    costPerWeekUsd: usd(week),
    costPerYearUsd: usd(week * WEEKS_PER_YEAR),
  };
  if (baselinePerRunUsd !== undefined) {
    if (!(baselinePerRunUsd >= 0) || !Number.isFinite(baselinePerRunUsd))
      throw new ConfigError(
        'baselinePerRunUsd',
        `must be a finite number of USD >= 0, got ${baselinePerRunUsd}`,
      );
    const base = baselinePerRunUsd * perWeek;
    out.baselinePerWeekUsd = usd(base);
    out.savingPerWeekUsd = usd(base - week);
    out.savingPerYearUsd = usd((base - week) * WEEKS_PER_YEAR);
    out.savingShare = base > 0 ? (base - week) / base : null;
  }
  return out;
}
