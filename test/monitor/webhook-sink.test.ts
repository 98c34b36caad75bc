import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { simulatedClock, type Clock } from '../../src/core/clock.js';
import type { Alert } from '../../src/monitor/alert.js';
import { isSinkTimeoutError, isWebhookStatusError } from '../../src/monitor/errors.js';
import { createAlertRouter, type SinkFailure } from '../../src/monitor/router.js';
import { functionSink } from '../../src/monitor/sinks/function.js';
import { pagerDutySink } from '../../src/monitor/sinks/pagerduty.js';
import { slackSink } from '../../src/monitor/sinks/slack.js';
import { webhookSink } from '../../src/monitor/sinks/webhook.js';

const T0 = Date.UTC(2026, 0, 1);

const alert: Alert = {
  id: 'error_rate:vendor:42',
  kind: 'error_rate',
  severity: 'critical',
  title: 'vendor: Error rate 7.2% exceeds threshold 5.0% over last 1,000 tasks',
  data: { taskType: 'vendor' },
  ts: T0,
};

interface Received {
  atMs: number;
  method: string | undefined;
  contentType: string | undefined;
  body: unknown;
}

/** Virtual time, with a log of every delay scheduled on it. */
function recordingClock() {
  const sim = simulatedClock(T0);
  const delays: number[] = [];
  const clock: Clock = {
    now: () => sim.now(),
    setTimeout: (fn, ms) => {
      delays.push(ms);
      return sim.setTimeout(fn, ms);
    },
    clearTimeout: (h) => sim.clearTimeout(h),
  };
  return { sim, clock, delays };
}

const waitFor = (check: () => void) => vi.waitFor(check, { timeout: 5_000, interval: 2 });

describe('webhook delivery (loopback server, virtual time)', () => {
  let server: Server;
  let url: string;
  let received: Received[];
  let answer: (n: number, res: ServerResponse) => void;
  let sim: ReturnType<typeof simulatedClock>;

  beforeEach(async () => {
    received = [];
    answer = (_n, res) => res.writeHead(200).end('ok');
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({
          atMs: sim.now() - T0,
          method: req.method,
          contentType: req.headers['content-type'],
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
        });
        answer(received.length, res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('POSTs the alert as JSON', async () => {
    const t = recordingClock();
    sim = t.sim;
    const router = createAlertRouter({ clock: t.clock, rules: [{ sinks: [webhookSink({ url })] }] });
    router.route(alert);
    await waitFor(() => expect(router.inFlight).toBe(0));
    await router.drain();
    expect(received).toEqual([{ atMs: 0, method: 'POST', contentType: 'application/json', body: alert }]);
  });

  it('retries 500s with exponential backoff and delivers on the third attempt', async () => {
    const t = recordingClock();
    sim = t.sim;
    answer = (n, res) => res.writeHead(n < 3 ? 500 : 200).end();
    const failures: SinkFailure[] = [];
    const router = createAlertRouter({
      clock: t.clock,
      timeoutMs: 10_000,
      retry: { attempts: 3, baseDelayMs: 1_000, factor: 2 },
      rules: [{ sinks: [webhookSink({ url })] }],
      onSinkError: (f) => failures.push(f),
    });
    router.route(alert);

    await waitFor(() => expect(t.delays).toContain(1_000)); // first answer (500) came back
    expect(received.map((r) => r.atMs)).toEqual([0]);
    t.sim.advance(1_000);
    await waitFor(() => expect(t.delays).toContain(2_000));
    expect(received.map((r) => r.atMs)).toEqual([0, 1_000]);
    t.sim.advance(2_000);
    await waitFor(() => expect(router.inFlight).toBe(0));

    expect(received.map((r) => r.atMs)).toEqual([0, 1_000, 3_000]);
    expect(t.delays.filter((ms) => ms !== 10_000)).toEqual([1_000, 2_000]); // backoff only
    expect(failures).toEqual([]);
    expect(t.sim.pendingTimers()).toBe(0); // per-attempt timeouts were cleared
  });

  it('aborts a silent endpoint on the virtual timeout, retries, then reports a sink failure', async () => {
    const t = recordingClock();
    sim = t.sim;
    answer = () => undefined; // never answers
    const failures: SinkFailure[] = [];
    const sinkAlerts: Alert[] = [];
    const router = createAlertRouter({
      clock: t.clock,
      rules: [
        {
          match: { severity: 'critical' },
          sinks: [webhookSink({ url, timeoutMs: 5_000, retry: { attempts: 2 } })],
        },
        { match: { kind: 'sink' }, sinks: [functionSink('ops-email', (a) => void sinkAlerts.push(a))] },
      ],
      onSinkError: (f) => failures.push(f),
    });

    const before = t.sim.now();
    router.route(alert); // returns at once: the workflow is never blocked
    expect(t.sim.now()).toBe(before);
    expect(router.inFlight).toBe(1);

    await waitFor(() => expect(received).toHaveLength(1));
    t.sim.advance(5_000); // attempt 1 times out
    await waitFor(() => expect(t.delays).toContain(1_000));
    t.sim.advance(1_000); // backoff
    await waitFor(() => expect(received).toHaveLength(2));
    t.sim.advance(5_000); // attempt 2 times out
    await waitFor(() => expect(router.inFlight).toBe(0));
    await router.drain();

    expect(received.map((r) => r.atMs)).toEqual([0, 6_000]);
    expect(failures).toHaveLength(1);
    const f = failures[0] as SinkFailure;
    expect([f.sink, f.attempts, f.alert.id]).toEqual(['webhook', 2, alert.id]);
    expect(isSinkTimeoutError(f.error.cause)).toBe(true);
    expect(sinkAlerts).toHaveLength(1);
    expect(sinkAlerts[0]).toMatchObject({ kind: 'sink', id: `sink:webhook:${alert.id}`, ts: T0 + 11_000 });
  });

  it('does not retry a 4xx refusal', async () => {
    const t = recordingClock();
    sim = t.sim;
    answer = (_n, res) => res.writeHead(400).end('bad routing key');
    const failures: SinkFailure[] = [];
    const router = createAlertRouter({
      clock: t.clock,
      rules: [{ sinks: [webhookSink({ url, name: 'hook' })] }],
      onSinkError: (f) => failures.push(f),
    });
    router.route(alert);
    await waitFor(() => expect(router.inFlight).toBe(0));
    expect(received).toHaveLength(1);
    expect(failures[0]?.attempts).toBe(1);
    expect(isWebhookStatusError(failures[0]?.error.cause)).toBe(true);
    expect((failures[0]?.error.cause as { status: number }).status).toBe(400);
  });

  it('pagerDutySink and slackSink post their formats', async () => {
    const t = recordingClock();
    sim = t.sim;
    const router = createAlertRouter({
      clock: t.clock,
      rules: [
        { match: { severity: 'critical' }, sinks: [pagerDutySink({ routingKey: 'KEY', url })] },
        { match: { severity: 'medium' }, sinks: [slackSink({ webhookUrl: url })] },
      ],
    });
    router.route(alert);
    await waitFor(() => expect(router.inFlight).toBe(0));
    router.route({ ...alert, severity: 'medium' });
    await waitFor(() => expect(router.inFlight).toBe(0));
    expect(received[0]?.body).toMatchObject({
      routing_key: 'KEY',
      event_action: 'trigger',
      dedup_key: alert.id,
    });
    expect(received[1]?.body).toMatchObject({ text: expect.stringContaining('7.2%') as unknown });
  });
});
