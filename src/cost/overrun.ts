/**
 * Overrun alerts as a fold over the event stream: the first `budget.overrun` of an agent on a
 * model in a UTC day raises one alert naming the agent (later ones that day only add events), so
 * 200 overrunning calls page once, not 200 times. The runtime feeds it committed events, live and
 * when it warms up from the log, so a restart does not page again for an overrun already raised.
 */
import type { Alert } from '../monitor/alert.js';
import type { KeelEvent } from '../eventlog/events.js';

const DAY_MS = 86_400_000;

/** What {@link createOverrunAlerts} returns. */
export interface OverrunAlerts {
  /** The alert `event` raises, if it is the day's first overrun of its agent and model. */
  apply(event: KeelEvent): Alert | undefined;
}

/**
 * Creates the fold. Memory: one key per (agent, model) that overran today.
 *
 * @example
 * const overruns = createOverrunAlerts();
 * store.onCommit((batch) => batch.forEach((e) => { const a = overruns.apply(e); if (a) page(a); }));
 */
export function createOverrunAlerts(): OverrunAlerts {
  let day = -1;
  const seen = new Set<string>();
  return {
    apply(event) {
      if (event.type !== 'budget.overrun') return undefined;
      const p = event.payload;
      const d = Math.floor(event.ts / DAY_MS);
      if (d !== day) {
        if (d < day) return undefined;
        day = d;
        seen.clear();
      }
      const key = `${p.agent}\u0000${p.model}`;
      if (seen.has(key)) return undefined;
      seen.add(key);
      const date = new Date(d * DAY_MS).toISOString().slice(0, 10);
      return {
        id: `budget:overrun:${p.agent}:${p.model}:${date}`,
        kind: 'budget',
        severity: 'high',
        title:
          `Agent ${p.agent} spent more than it reserved on ${p.model}: $${p.actualUsd.toFixed(4)} against ` +
          `$${p.reservedUsd.toFixed(4)} reserved (+$${p.overrunUsd.toFixed(4)})` +
          (p.capped
            ? '; its input was larger than estimated — raise estimate.inputTokens'
            : '; declare maxOutputTokens to bound its spend'),
        data: p,
        ts: event.ts,
      };
    },
  };
}
