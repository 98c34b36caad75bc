import { describe, expect, it } from 'vitest';
import { weekCalendar } from '../../src/monitor/iso-week.js';

const HOUR = 3_600_000;

describe('weekCalendar', () => {
  it('starts weeks on Monday 00:00 UTC by default (not Thursday, the epoch weekday)', () => {
    const weeks = weekCalendar();
    // Thursday 2026-01-08 12:00 UTC belongs to the week of Monday 2026-01-05.
    expect(weeks.weekOf(Date.UTC(2026, 0, 8, 12))).toEqual({
      monday: '2026-01-05',
      startMs: Date.UTC(2026, 0, 5),
      endMs: Date.UTC(2026, 0, 12),
    });
    expect(weeks.weekOf(Date.UTC(2026, 0, 11, 23, 59, 59, 999)).monday).toBe('2026-01-05');
    expect(weeks.weekOf(Date.UTC(2026, 0, 12)).monday).toBe('2026-01-12');
  });

  it('follows local midnight, across a daylight-saving change (a 167-hour week in Paris)', () => {
    const weeks = weekCalendar('Europe/Paris');
    // Sunday 2026-01-04 23:30 UTC is already Monday 00:30 in Paris (UTC+1).
    expect(weeks.weekOf(Date.UTC(2026, 0, 4, 23, 30)).monday).toBe('2026-01-05');
    // Clocks go forward on Sunday 2026-03-29: the week of Monday 03-23 is one hour short.
    const week = weeks.weekOf(Date.UTC(2026, 2, 26));
    expect(week.startMs).toBe(Date.UTC(2026, 2, 22, 23)); // Monday 00:00 CET
    expect(week.endMs).toBe(Date.UTC(2026, 2, 29, 22)); // next Monday 00:00 CEST
    expect(week.endMs - week.startMs).toBe(167 * HOUR);
  });

  it('names the field when the zone is unknown', () => {
    expect(() => weekCalendar('Atlantis/Capital', 'monitor.timeZone')).toThrow(/monitor\.timeZone/);
  });
});
