import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import { isConfigError } from '../../src/core/errors.js';
import type { AlertSeverity } from '../../src/eventlog/events.js';
import { alertFromEvent, alertToEvent, type Alert } from '../../src/monitor/alert.js';
import { isAlertDeliveryError } from '../../src/monitor/errors.js';
import { createAlertRouter, type SinkFailure } from '../../src/monitor/router.js';
import { consoleSink } from '../../src/monitor/sinks/console.js';
import { functionSink } from '../../src/monitor/sinks/function.js';
import { jsonLinesSink } from '../../src/monitor/sinks/json-lines.js';
import { event } from './fixtures.js';

const T0 = Date.UTC(2026, 0, 1);

const alert = (severity: AlertSeverity, id = `a-${severity}`, kind: Alert['kind'] = 'error_rate'): Alert => ({
  id,
  kind,
  severity,
  title: `${severity} thing happened`,
  data: { n: 1 },
  ts: T0,
});

/** A function sink that records what it received. */
const spy = (name: string) => {
  const got: Alert[] = [];
  return { got, sink: functionSink(name, (a) => void got.push(a)) };
};

const nonRetryable = (message: string) => Object.assign(new Error(message), { retryable: false });

describe('createAlertRouter', () => {
  it('routes by severity like the tutorial: critical → PagerDuty, medium → Slack, low → email', async () => {
    const clock = simulatedClock(T0);
    const pager = spy('pagerduty');
    const slack = spy('slack');
    const email = spy('email');
    const journal = spy('journal');
    const router = createAlertRouter({
      clock,
      rules: [
        { match: { severity: 'critical' }, sinks: [pager.sink, journal.sink] },
        { match: { severity: ['high', 'medium'] }, sinks: [slack.sink] },
        { match: { severity: 'low' }, sinks: [email.sink] },
        { sinks: [journal.sink] }, // every alert, each sink once
      ],
    });
    for (const s of ['critical', 'medium', 'low', 'info'] as const) router.route(alert(s));
    expect(router.inFlight).toBe(7); // 2 + 2 + 2 + 1 deliveries
    expect(journal.got).toEqual([]); // nothing delivered synchronously: route() only schedules
    await router.drain();
    expect(pager.got.map((a) => a.severity)).toEqual(['critical']);
    expect(slack.got.map((a) => a.severity)).toEqual(['medium']);
    expect(email.got.map((a) => a.severity)).toEqual(['low']);
    expect(journal.got.map((a) => a.severity)).toEqual(['critical', 'medium', 'low', 'info']);
    expect(router.inFlight).toBe(0);
  });

  it('matches on kind as well as severity', async () => {
    const breakers = spy('ops');
    const router = createAlertRouter({
      clock: simulatedClock(T0),
      rules: [{ match: { kind: ['breaker', 'sla'], severity: 'high' }, sinks: [breakers.sink] }],
    });
    router.route(alert('high', 'x', 'breaker'));
    router.route(alert('high', 'y', 'budget'));
    router.route(alert('low', 'z', 'sla'));
    await router.drain();
    expect(breakers.got.map((a) => a.id)).toEqual(['x']);
  });

  it('route() returns at once even when a sink never finishes', async () => {
    const clock = simulatedClock(T0);
    let started = 0;
    const stuck = functionSink('stuck', () => {
      started++;
      return new Promise<void>(() => undefined);
    });
    const failures: SinkFailure[] = [];
    const router = createAlertRouter({
      clock,
      timeoutMs: 1_000,
      retry: { attempts: 1 },
      rules: [{ sinks: [stuck] }],
      onSinkError: (f) => failures.push(f),
    });
    const result: unknown = router.route(alert('critical'));
    expect(result).toBeUndefined();
    expect(started).toBe(0);
    await clock.advanceAsync(1_000); // the virtual timeout gives up on the stuck attempt
    await router.drain();
    expect(started).toBe(1);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.error.message).toMatch(/did not answer within 1000 ms/);
  });

  it('retries with exponential backoff on the injected clock', async () => {
    const clock = simulatedClock(T0);
    const attemptsAt: number[] = [];
    const flaky = functionSink('flaky', () => {
      attemptsAt.push(clock.now() - T0);
      if (attemptsAt.length < 3) throw new Error('503 from upstream');
    });
    const failures: SinkFailure[] = [];
    const router = createAlertRouter({
      clock,
      retry: { attempts: 4, baseDelayMs: 1_000, factor: 2 },
      rules: [{ sinks: [flaky] }],
      onSinkError: (f) => failures.push(f),
    });
    router.route(alert('critical'));
    await clock.advanceAsync(999);
    expect(attemptsAt).toEqual([0]);
    await clock.advanceAsync(1);
    expect(attemptsAt).toEqual([0, 1_000]);
    await clock.advanceAsync(2_000);
    await router.drain();
    expect(attemptsAt).toEqual([0, 1_000, 3_000]);
    expect(failures).toEqual([]);
  });

  it('reports a final failure through onSinkError and a sink alert to the other sinks, without loops', async () => {
    const clock = simulatedClock(T0);
    const bad1 = functionSink('bad1', () => {
      throw nonRetryable('refused');
    });
    const bad2 = functionSink('bad2', () => {
      throw nonRetryable('refused too');
    });
    const good = spy('good');
    const failures: SinkFailure[] = [];
    const router = createAlertRouter({
      clock,
      rules: [{ sinks: [bad1, bad2, good.sink] }],
      onSinkError: (f) => failures.push(f),
    });
    router.route(alert('critical', 'orig'));
    await router.drain();
    // the original fails on bad1 and bad2 (one attempt each: not retryable); each failure becomes a
    // sink alert sent to the other sinks; the sink alert failing on the other bad sink is only reported
    expect(failures.map((f) => [f.sink, f.alert.id, f.attempts])).toEqual([
      ['bad1', 'orig', 1],
      ['bad2', 'orig', 1],
      ['bad2', 'sink:bad1:orig', 1],
      ['bad1', 'sink:bad2:orig', 1],
    ]);
    expect(failures.every((f) => isAlertDeliveryError(f.error))).toBe(true);
    expect(good.got.map((a) => [a.kind, a.id])).toEqual([
      ['error_rate', 'orig'],
      ['sink', 'sink:bad1:orig'],
      ['sink', 'sink:bad2:orig'],
    ]);
    expect(good.got[1]?.title).toContain('Alert sink "bad1" failed to deliver "critical thing happened"');
    expect(router.inFlight).toBe(0);
  });

  it('drops deliveries beyond maxInFlight and reports them', async () => {
    const clock = simulatedClock(T0);
    const stuck = functionSink('stuck', () => new Promise<void>(() => undefined));
    const failures: SinkFailure[] = [];
    const router = createAlertRouter({
      clock,
      maxInFlight: 1,
      timeoutMs: 100,
      retry: { attempts: 1 },
      rules: [{ match: { kind: 'error_rate' }, sinks: [stuck] }],
      onSinkError: (f) => failures.push(f),
    });
    router.route(alert('critical', 'first'));
    router.route(alert('critical', 'second'));
    expect(failures.map((f) => [f.alert.id, f.error.reason, f.attempts])).toEqual([
      ['second', 'queue_full', 0],
    ]);
    await clock.advanceAsync(100);
    await router.drain();
    expect(failures.map((f) => f.alert.id)).toEqual(['second', 'first']);
  });

  it('survives a throwing onSinkError', async () => {
    const router = createAlertRouter({
      clock: simulatedClock(T0),
      rules: [{ sinks: [functionSink('bad', () => Promise.reject(nonRetryable('no')))] }],
      onSinkError: () => {
        throw new Error('handler bug');
      },
    });
    router.route(alert('low'));
    await expect(router.drain()).resolves.toBeUndefined();
  });

  it('names the offending rule in config errors', () => {
    let caught: unknown;
    try {
      createAlertRouter({ clock: simulatedClock(), rules: [{ sinks: [{} as never] }] });
    } catch (e) {
      caught = e;
    }
    expect(isConfigError(caught)).toBe(true);
    expect((caught as { field: string }).field).toBe('rules[0].sinks[0]');
    expect(() => createAlertRouter({ clock: simulatedClock(), rules: [], retry: { attempts: 0 } })).toThrow(
      /retry\.attempts/,
    );
  });
});

describe('sinks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keel-alerts-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('jsonLinesSink appends one JSON object per alert, in order', async () => {
    const path = join(dir, 'alerts.jsonl');
    const router = createAlertRouter({
      clock: simulatedClock(T0),
      rules: [{ sinks: [jsonLinesSink({ path })] }],
    });
    router.route(alert('critical', 'one'));
    router.route({ ...alert('critical', 'one'), status: 'resolved' });
    router.route(alert('low', 'two'));
    await router.drain();
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l) as Alert).map((a) => [a.id, a.status ?? 'firing'])).toEqual([
      ['one', 'firing'],
      ['one', 'resolved'],
      ['two', 'firing'],
    ]);
  });

  it('consoleSink writes one line per alert', async () => {
    const lines: string[] = [];
    const router = createAlertRouter({
      clock: simulatedClock(T0),
      rules: [{ sinks: [consoleSink({ write: (l) => lines.push(l) })] }],
    });
    router.route(alert('critical'));
    router.route({ ...alert('critical'), status: 'resolved' });
    await router.drain();
    expect(lines).toEqual([
      '[CRITICAL] error_rate: critical thing happened',
      '[RESOLVED] error_rate: critical thing happened',
    ]);
  });
});

describe('alert events', () => {
  it('round-trips an alert through its log event', () => {
    const original: Alert = { ...alert('critical', 'error_rate:vendor:7'), status: 'firing' };
    const raised = alertToEvent(original);
    expect(raised).toMatchObject({ type: 'alert.raised', workflowId: '_system', ts: T0 });
    const restored = alertFromEvent(event(raised.type, raised.payload as never, raised.ts));
    expect(restored).toEqual(original);

    const resolved = alertToEvent({ ...original, status: 'resolved' });
    expect(resolved.type).toBe('alert.resolved');
    const back = alertFromEvent(event(resolved.type, resolved.payload as never, resolved.ts));
    expect(back).toMatchObject({ id: original.id, kind: 'error_rate', status: 'resolved' });
  });
});
