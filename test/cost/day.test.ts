import { describe, expect, it } from 'vitest';
import { isConfigError } from '../../src/core/errors.js';
import { dayCalendar } from '../../src/cost/day.js';

const HOUR = 3_600_000;

describe('day calendar', () => {
  it('UTC days run midnight to midnight UTC', () => {
    const cal = dayCalendar();
    expect(cal.spanOf(Date.UTC(2026, 0, 1, 20))).toEqual({
      day: '2026-01-01',
      startMs: Date.UTC(2026, 0, 1),
      endMs: Date.UTC(2026, 0, 2),
    });
  });

  it("a zone's day starts at its own midnight", () => {
    const ny = dayCalendar('America/New_York');
    expect(ny.dayOf(Date.UTC(2026, 0, 2, 3))).toBe('2026-01-01');
    expect(ny.spanOf(Date.UTC(2026, 0, 2, 3))).toEqual({
      day: '2026-01-01',
      startMs: Date.UTC(2026, 0, 1, 5),
      endMs: Date.UTC(2026, 0, 2, 5),
    });
    const kolkata = dayCalendar('Asia/Kolkata'); // UTC+05:30
    expect(kolkata.spanOf(Date.UTC(2026, 0, 1, 20)).startMs).toBe(Date.UTC(2026, 0, 1, 18, 30));
  });

  it('the day clocks spring forward lasts 23 hours', () => {
    const span = dayCalendar('America/New_York').spanOf(Date.UTC(2026, 2, 8, 12));
    expect(span.day).toBe('2026-03-08');
    expect(span.endMs - span.startMs).toBe(23 * HOUR);
  });

  it('an unknown zone is a ConfigError naming the field', () => {
    let caught: unknown;
    try {
      dayCalendar('Mars/Olympus_Mons', 'budget.timeZone');
    } catch (e) {
      caught = e;
    }
    expect(isConfigError(caught)).toBe(true);
    expect(caught).toMatchObject({ field: 'budget.timeZone' });
    expect((caught as Error).message).toContain('"Mars/Olympus_Mons"');
  });
});
