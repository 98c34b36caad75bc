/**
 * Calendar days in an IANA time zone: which day a timestamp falls on (`YYYY-MM-DD`) and when that
 * day starts and ends. Budgets reset and cost is attributed by these days. Day boundaries are found
 * from `Intl` once per day and cached, so the per-event cost is a range check.
 */
import { ConfigError } from '../core/errors.js';

/** One local day: `[startMs, endMs)` in ms since epoch. */
export interface DaySpan {
  /** `YYYY-MM-DD` in the calendar's time zone. */
  day: string;
  /** First millisecond of the day. */
  startMs: number;
  /** First millisecond of the next day. */
  endMs: number;
}

/** Days in one time zone. */
export interface DayCalendar {
  /** The IANA time zone, e.g. `UTC` or `Europe/Paris`. */
  readonly timeZone: string;
  /** The day (`YYYY-MM-DD`) containing `ms`. O(1) while `ms` stays in the last span looked up. */
  dayOf(ms: number): string;
  /** The span of the day containing `ms`. */
  spanOf(ms: number): DaySpan;
}

const DAY_MS = 86_400_000;
/** Local days last 23–25 hours; search two days either side to be safe. */
const SEARCH_MS = 2 * DAY_MS;

const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/**
 * A calendar for `timeZone` (default `UTC`). `field` names the config field in the error thrown for
 * an unknown zone.
 *
 * @example
 * const cal = dayCalendar('America/New_York');
 * cal.dayOf(Date.UTC(2026, 0, 2, 3)); // '2026-01-01' (10 pm the evening before in New York)
 */
export function dayCalendar(timeZone = 'UTC', field = 'timeZone'): DayCalendar {
  const utc = timeZone === 'UTC' || timeZone === 'Etc/UTC';
  let format: (ms: number) => string;
  if (utc) {
    format = utcDay;
  } else {
    let fmt: Intl.DateTimeFormat;
    try {
      fmt = new Intl.DateTimeFormat('en-US', {
        timeZone,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
      });
    } catch {
      throw new ConfigError(
        field,
        `"${timeZone}" is not an IANA time zone this Node.js knows; use e.g. "UTC", "Europe/Paris" or "America/New_York"`,
      );
    }
    format = (ms) => {
      let y = '';
      let m = '';
      let d = '';
      for (const part of fmt.formatToParts(ms)) {
        if (part.type === 'year') y = part.value.padStart(4, '0');
        else if (part.type === 'month') m = part.value;
        else if (part.type === 'day') d = part.value;
      }
      return `${y}-${m}-${d}`;
    };
  }

  /** Smallest t in (lo, hi] with `pred(t)`; `pred(hi)` is true and `pred(lo)` false. */
  const search = (lo: number, hi: number, pred: (t: number) => boolean): number => {
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (pred(mid)) hi = mid;
      else lo = mid;
    }
    return hi;
  };

  const computeSpan = (ms: number): DaySpan => {
    if (utc) {
      const startMs = Math.floor(ms / DAY_MS) * DAY_MS;
      return { day: utcDay(ms), startMs, endMs: startMs + DAY_MS };
    }
    const day = format(ms);
    const startMs = search(ms - SEARCH_MS, ms, (t) => format(t) >= day);
    const endMs = search(ms, ms + SEARCH_MS, (t) => format(t) > day);
    return { day, startMs, endMs };
  };

  let last: DaySpan = { day: '', startMs: 0, endMs: 0 };
  const spanOf = (ms: number): DaySpan => {
    if (ms >= last.startMs && ms < last.endMs) return last;
    last = computeSpan(ms);
    return last;
  };
  return { timeZone, spanOf, dayOf: (ms) => spanOf(ms).day };
}
