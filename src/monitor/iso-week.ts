/**
 * ISO weeks in an IANA time zone: a week starts on Monday at 00:00 local time and ends at the next
 * Monday's 00:00 (168 hours, or 167/169 across a daylight-saving change). Weekly error budgets are
 * counted per such week. Local midnights come from the day calendar (`Intl.DateTimeFormat`), so no
 * time-zone database beyond Node's own is needed.
 */
import { dayCalendar, type DayCalendar } from '../cost/day.js';

/** One week: `[startMs, endMs)` in ms since epoch. */
export interface WeekSpan {
  /** Monday of the week, `YYYY-MM-DD` in the calendar's time zone. */
  monday: string;
  /** Monday 00:00 local time. */
  startMs: number;
  /** The next Monday 00:00 local time. */
  endMs: number;
}

/** ISO weeks in one time zone. */
export interface WeekCalendar {
  /** The IANA time zone, e.g. `UTC` or `Europe/Paris`. */
  readonly timeZone: string;
  /** The week containing `ms`. O(1) while `ms` stays in the last week looked up. */
  weekOf(ms: number): WeekSpan;
}

const DAY_MS = 86_400_000;
/** Noon: local days are 23–25 hours long, so noon of a local day is well inside it. */
const NOON_MS = 12 * 3_600_000;

/** Days since Monday (0 on Monday … 6 on Sunday) of a `YYYY-MM-DD` calendar date. */
function daysSinceMonday(day: string): number {
  const y = Number(day.slice(0, 4));
  const m = Number(day.slice(5, 7));
  const d = Number(day.slice(8, 10));
  // getUTCDay: 0 is Sunday. The date is a calendar date, so UTC arithmetic on it is exact.
  return (new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7;
}

/**
 * A week calendar for `timeZone` (default `UTC`). `field` names the config field in the error
 * thrown for an unknown zone.
 *
 * @throws ConfigError naming `field` when `timeZone` is not an IANA zone Node knows.
 * @example
 * const weeks = weekCalendar('Europe/Paris');
 * weeks.weekOf(Date.UTC(2026, 0, 4, 23, 30)).monday; // '2026-01-05': already Monday 00:30 in Paris
 */
export function weekCalendar(timeZone = 'UTC', field = 'timeZone'): WeekCalendar {
  const days: DayCalendar = dayCalendar(timeZone, field);
  let last: WeekSpan = { monday: '', startMs: 0, endMs: 0 };
  const computeWeek = (ms: number): WeekSpan => {
    const today = days.spanOf(ms);
    const back = daysSinceMonday(today.day);
    // Noon of each day is inside that local day whatever the daylight-saving shifts between them.
    const monday = days.spanOf(today.startMs - back * DAY_MS + NOON_MS);
    const next = days.spanOf(monday.startMs + 7 * DAY_MS + NOON_MS);
    return { monday: monday.day, startMs: monday.startMs, endMs: next.startMs };
  };
  return {
    timeZone,
    weekOf(ms) {
      if (ms >= last.startMs && ms < last.endMs) return last;
      last = computeWeek(ms);
      return last;
    },
  };
}
