import { describe, expect, it } from 'vitest';
import { timer } from 'rxjs';
import { clockScheduler, simulatedClock } from '../../src/core/clock.js';
import { seededRandom } from '../../src/core/random.js';
import { canonicalJson } from '../../src/core/json.js';

describe('simulatedClock', () => {
  it('fires timers in due order only when time is advanced', () => {
    const clock = simulatedClock(1_000);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('b@300'), 300);
    clock.setTimeout(() => fired.push('a@100'), 100);
    const c = clock.setTimeout(() => fired.push('cancelled'), 200);
    clock.clearTimeout(c);
    clock.advance(99);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual(['a@100']);
    expect(clock.now()).toBe(1_100);
    clock.advance(500);
    expect(fired).toEqual(['a@100', 'b@300']);
    expect(clock.now()).toBe(1_600);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('runs timers scheduled by timers inside the same window', () => {
    const clock = simulatedClock(0);
    const at: number[] = [];
    clock.setTimeout(() => {
      at.push(clock.now());
      clock.setTimeout(() => at.push(clock.now()), 50);
    }, 50);
    clock.advance(100);
    expect(at).toEqual([50, 100]);
  });

  it('advanceAsync lets promise continuations schedule the next timer', async () => {
    const clock = simulatedClock(0);
    const sleep = (ms: number) => new Promise<void>((r) => clock.setTimeout(r, ms));
    const steps: number[] = [];
    const run = (async () => {
      for (let i = 0; i < 3; i++) {
        await sleep(10);
        steps.push(clock.now());
      }
    })();
    await clock.advanceAsync(30);
    await run;
    expect(steps).toEqual([10, 20, 30]);
  });

  it('refuses to go backwards', () => {
    const clock = simulatedClock(100);
    expect(() => clock.set(50)).toThrow(RangeError);
  });

  it('drives RxJS through clockScheduler', () => {
    const clock = simulatedClock(0);
    const seen: number[] = [];
    timer(250, clockScheduler(clock)).subscribe(() => seen.push(clock.now()));
    clock.advance(249);
    expect(seen).toEqual([]);
    clock.advance(1);
    expect(seen).toEqual([250]);
  });
});

describe('seededRandom', () => {
  it('gives the same sequence for the same seed and a different one for another', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const c = seededRandom(43);
    const xs = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(xs);
    for (const x of xs) expect(x >= 0 && x < 1).toBe(true);
  });

  it('forks independent, reproducible streams', () => {
    const f1 = seededRandom('s').fork('vendor');
    const f2 = seededRandom('s').fork('vendor');
    expect(f1.int(0, 1_000_000)).toBe(f2.int(0, 1_000_000));
  });
});

describe('canonicalJson', () => {
  it('sorts keys and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, undefined], c: undefined } })).toBe(
      '{"a":{"d":[1,null]},"b":1}',
    );
  });
  it('refuses values that JSON cannot carry, naming where', () => {
    expect(() => canonicalJson({ a: { b: Number.NaN } })).toThrow(/\$\.a\.b/);
    expect(() => canonicalJson({ a: 1n })).toThrow(/bigint/);
  });
});
