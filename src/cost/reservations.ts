/**
 * Learned reservations: what a call without an output cap reserves, learned from what calls of
 * the same agent on the same model really cost. A fold over committed `cost.incurred` events (the
 * runtime feeds it live and warms it from the log on start), keeping the most recent actual costs
 * per (agent, model) in a fixed-size ring, so memory is bounded by `window × maxKeys` numbers.
 *
 * A call reserves the larger of its static estimate and the `percentile` of those recent costs:
 * once an agent is seen to cost more than its estimate, later calls hold what it really costs.
 */
import type { KeelEvent } from '../eventlog/events.js';
import { ConfigError } from '../core/errors.js';

/** Options of {@link createReservationLearner}. */
export interface ReservationLearnerOptions {
  /** Recent actual costs kept per (agent, model) (default 100). */
  window?: number;
  /** The percentile of those costs reserved, in (0, 1] (default 0.95: p95). */
  percentile?: number;
  /** Most (agent, model) pairs remembered; the first learned is forgotten first (default 10_000). */
  maxKeys?: number;
}

/** What {@link createReservationLearner} returns. */
export interface ReservationLearner {
  /**
   * The amount to reserve for a call of `agent` on `model` whose static estimate is `estimateUsd`:
   * the larger of it and the learned percentile of recent actual costs (USD).
   */
  reserveUsd(agent: string, model: string, estimateUsd: number): number;
  /** The learned percentile for (agent, model), or undefined before any actual cost was seen. */
  learnedUsd(agent: string, model: string): number | undefined;
  /** Folds one committed event (only `cost.incurred` with reported usage counts). */
  apply(event: KeelEvent): void;
}

/** Recent costs of one (agent, model). */
interface Ring {
  costs: Float64Array;
  /** Costs written so far (the ring holds the last `costs.length`). */
  count: number;
  /** The percentile, or undefined when it must be computed again. */
  cached: number | undefined;
  /** Costs folded since `cached` was computed. */
  since: number;
}

/**
 * Costs folded before the percentile is computed again (sooner when a cost exceeds it): the hot
 * path sorts a window at most once per this many calls.
 */
const RECOMPUTE_EVERY = 16;

/**
 * Creates an empty learner; a bad option throws a ConfigError naming it.
 *
 * @example
 * const learner = createReservationLearner({ window: 50, percentile: 0.95 });
 * store.onCommit((batch) => batch.forEach((e) => learner.apply(e)));
 * const usd = learner.reserveUsd('vendor', 'gpt-4', 0.06); // >= 0.06
 */
export function createReservationLearner(options: ReservationLearnerOptions = {}): ReservationLearner {
  const window = options.window ?? 100;
  const percentile = options.percentile ?? 0.95;
  const maxKeys = options.maxKeys ?? 10_000;
  if (!Number.isSafeInteger(window) || window < 1)
    throw new ConfigError('reservations.window', `must be an integer >= 1, got ${window}`);
  if (!(percentile > 0 && percentile <= 1))
    throw new ConfigError(
      'reservations.percentile',
      `must be a fraction in (0, 1], e.g. 0.95, got ${percentile}`,
    );
  if (!Number.isSafeInteger(maxKeys) || maxKeys < 1)
    throw new ConfigError('reservations.maxKeys', `must be an integer >= 1, got ${maxKeys}`);
  /** Keyed by agent, then model: no key string is built per call. In the order first learned. */
  const rings = new Map<string, Map<string, Ring>>();
  let keys = 0;

  const ringOf = (agent: string, model: string): Ring | undefined => rings.get(agent)?.get(model);

  const forgetOldest = (): void => {
    for (const [agent, models] of rings) {
      for (const model of models.keys()) {
        models.delete(model);
        keys--;
        break;
      }
      if (models.size === 0) rings.delete(agent);
      return;
    }
  };

  const valueOf = (ring: Ring): number => {
    if (ring.cached !== undefined) return ring.cached;
    const n = Math.min(ring.count, ring.costs.length);
    const sorted = ring.costs.slice(0, n).sort();
    const rank = Math.min(n - 1, Math.max(0, Math.ceil(percentile * n) - 1));
    ring.cached = sorted[rank] ?? 0;
    ring.since = 0;
    return ring.cached;
  };

  return {
    reserveUsd(agent, model, estimateUsd) {
      const ring = ringOf(agent, model);
      if (ring === undefined) return estimateUsd;
      const learned = valueOf(ring);
      return learned > estimateUsd ? learned : estimateUsd;
    },
    learnedUsd(agent, model) {
      const ring = ringOf(agent, model);
      return ring === undefined ? undefined : valueOf(ring);
    },
    apply(event) {
      if (event.type !== 'cost.incurred') return;
      const p = event.payload;
      if (p.estimated === true || !(p.costUsd >= 0) || !Number.isFinite(p.costUsd)) return;
      let models = rings.get(p.agent);
      let ring = models?.get(p.model);
      if (ring === undefined) {
        if (keys >= maxKeys) forgetOldest();
        if (models === undefined || !rings.has(p.agent)) {
          models = new Map();
          rings.set(p.agent, models);
        }
        ring = { costs: new Float64Array(window), count: 0, cached: undefined, since: 0 };
        models.set(p.model, ring);
        keys++;
      }
      ring.costs[ring.count % window] = p.costUsd;
      ring.count++;
      // A cost above the learned value raises it at once; otherwise it is refreshed now and then.
      if (ring.cached !== undefined && (p.costUsd > ring.cached || ++ring.since >= RECOMPUTE_EVERY))
        ring.cached = undefined;
    },
  };
}
