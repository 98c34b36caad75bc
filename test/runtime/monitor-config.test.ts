import { describe, expect, it } from 'vitest';
import { isConfigError, type ConfigError } from '../../src/core/errors.js';
import { createErrorRateProjection } from '../../src/monitor/error-rate-projection.js';
import { createLatencyProjection } from '../../src/monitor/latency-projection.js';
import { createAlertRouter } from '../../src/monitor/router.js';
import { simulatedClock } from '../../src/core/clock.js';
import { createRuntime } from '../../src/runtime.js';

/** The ConfigError `build` throws (fails the test when it throws none, or another error). */
function configErrorOf(build: () => unknown): ConfigError {
  try {
    build();
  } catch (e) {
    if (isConfigError(e)) return e;
    throw e;
  }
  throw new Error('expected a ConfigError, got none');
}

/** The ConfigError `createRuntime(config)` throws, for a config as an untyped caller might pass it. */
const runtimeError = (config: Record<string, unknown>): ConfigError =>
  configErrorOf(() => createRuntime({ db: ':memory:', ...config }));

describe('createRuntime names the monitoring field its caller wrote', () => {
  it.each([
    [
      { monitor: { weeklyVolume: { vendor: -1 } } },
      'monitor.weeklyVolume.vendor',
      /task count >= 0 .*got -1/,
    ],
    [
      { monitor: { weeklyVolume: { shipping: 10_000 } } },
      'monitor.weeklyVolume.shipping',
      /no error-rate target; add errorTargets\.shipping \(e\.g\. 0\.05\) or use one of: payment, vendor/,
    ],
    [
      { errorTargets: { vendor: 0.05 }, monitor: { weeklyVolume: { payment: 10_000 } } },
      'monitor.weeklyVolume.payment',
      /add errorTargets\.payment .* one of: vendor\./,
    ],
    [{ monitor: { weeklyVolume: 10_000 } }, 'monitor.weeklyVolume', /e\.g\. \{ vendor: 10_000 \}/],
    [{ monitor: { windowSize: 0 } }, 'monitor.windowSize', /integer >= 1 .*e\.g\. 100\), got 0/],
    [{ monitor: { windowMs: -5 } }, 'monitor.windowMs', /number > 0 .*e\.g\. 3_600_000.*got -5/],
    [{ monitor: { minSamples: 2.5 } }, 'monitor.minSamples', /integer >= 1 .*e\.g\. 20\), got 2\.5/],
    [{ monitor: { windowsize: 50 } }, 'monitor', /unknown option\(s\) "windowsize"/],
    [
      { errorTargets: { vendor: 1.5 } },
      'errorTargets.vendor',
      /ratio between 0 and 1 .*e\.g\. 0\.05.*got 1\.5/,
    ],
    [
      { errorTargets: { vendor: null } },
      'errorTargets.vendor',
      /ratio between 0 and 1 or \{ rate, severity \}/,
    ],
    [{ errorTargets: { vendor: { rate: -0.1 } } }, 'errorTargets.vendor.rate', /ratio between 0 and 1/],
    [
      { errorTargets: { vendor: { rate: 0.05, severity: 'urgent' } } },
      'errorTargets.vendor.severity',
      /one of critical, high, medium, low, info .*got "urgent"/,
    ],
    [{ errorTargets: 0.05 }, 'errorTargets', /map task types to error-rate targets, e\.g\. \{ vendor: 0\.05/],
    [{ sla: { p95Ms: 0 } }, 'sla.p95Ms', /number > 0 \(the P95 latency target in ms, e\.g\. 10_000\), got 0/],
    [{ sla: { windowMs: 60_000 } }, 'sla.p95Ms', /number > 0 .*got undefined/],
    [{ sla: { p95Ms: 10_000, windowMs: 0 } }, 'sla.windowMs', /e\.g\. 3_600_000/],
    [{ sla: { p95Ms: 10_000, minSamples: 0 } }, 'sla.minSamples', /integer >= 1 .*e\.g\. 20/],
    [{ alerts: { rules: 'pagerduty' } }, 'alerts.rules', /array of \{ match, sinks \} rules/],
    [{ alerts: { rules: [{ sinks: 'slack' }] } }, 'alerts.rules[0].sinks', /e\.g\. \[consoleSink\(\)\]/],
    [{ alerts: { rules: [{ sinks: [{}] }] } }, 'alerts.rules[0].sinks[0]', /build one with webhookSink\(\)/],
    [
      { alerts: { rules: [{ match: { severity: 'critcal' }, sinks: [] }] } },
      'alerts.rules[0].match.severity',
      /one of critical, high, medium, low, info, got "critcal"/,
    ],
    [
      { alerts: { rules: [{ match: { kind: ['sla', 'budgets'] }, sinks: [] }] } },
      'alerts.rules[0].match.kind[1]',
      /one of budget, error_rate, .* got "budgets"/,
    ],
    [
      { alerts: { rules: [{ match: { level: 'high' }, sinks: [] }] } },
      'alerts.rules[0].match.level',
      /not a match field: use severity and\/or kind/,
    ],
    [{ alerts: { rules: [], timeoutMs: -1 } }, 'alerts.timeoutMs', /number > 0 .*e\.g\. 10_000\), got -1/],
    [{ alerts: { rules: [], onSinkError: 'log' } }, 'alerts.onSinkError', /must be a function/],
    [{ alerts: { rule: [] } }, 'alerts', /unknown option\(s\) "rule"/],
    [{ budget: { dailyUsd: -1 } }, 'budget.dailyUsd', /USD > 0/],
    [{ metrics: { prefix: 'keel-' } }, 'metrics.prefix', /letters, digits and _ \(e\.g\. "keel_"\)/],
    [{ logs: { destination: 'keel.ndjson', level: 'debug' } }, 'logs.level', /'error', 'warn' or 'info'/],
    [{ logs: { destination: 42 } }, 'logs.destination', /file path or a writable stream/],
  ])('%j → %s', (config, field, message) => {
    const error = runtimeError(config);
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
    expect(error.message).toContain(`"${field}"`);
  });

  it('names a bad sink deep in an alert rule, with the sink field', () => {
    const sink = { name: 'pager', deliver: () => Promise.resolve(), retry: { attempts: 0 } };
    const error = runtimeError({ alerts: { rules: [{ sinks: [] }, { sinks: [sink] }] } });
    expect(error.field).toBe('alerts.rules[1].sinks[0].retry.attempts');
    expect(error.message).toMatch(/total attempts including the first, e\.g\. 3/);
  });

  it('accepts the documented monitoring config', async () => {
    const rt = createRuntime({
      db: ':memory:',
      errorTargets: { vendor: 0.05, payment: { rate: 0.001, severity: 'critical' } },
      monitor: { windowSize: 100, minSamples: 20, weeklyVolume: { vendor: 10_000, payment: 5_000 } },
      sla: { p95Ms: 10_000, windowMs: 3_600_000, minSamples: 20 },
      alerts: { rules: [{ sinks: [{ name: 'log', deliver: () => Promise.resolve() }] }], timeoutMs: 5_000 },
      budget: { dailyUsd: 100 },
      metrics: { prefix: 'keel_' },
    });
    expect(rt.stats().latency.slaP95Ms).toBe(10_000);
    await rt.close();
  });
});

describe('the monitor factories used directly keep naming their own fields', () => {
  it.each([
    [
      'error rates: a volume',
      'budget.volumes.vendor',
      () => createErrorRateProjection({ targets: {}, budget: { volumes: { vendor: -1 } } }),
    ],
    [
      'error rates: the volumes',
      'budget.volumes',
      () =>
        createErrorRateProjection({
          targets: {},
          budget: { volumes: null as unknown as Record<string, number> },
        }),
    ],
    [
      'error rates: a target',
      'targets.vendor.rate',
      () => createErrorRateProjection({ targets: { vendor: { rate: 2 } } }),
    ],
    [
      'error rates: the default target',
      'defaultTarget',
      () => createErrorRateProjection({ targets: {}, defaultTarget: 3 }),
    ],
    [
      'error rates: the window',
      'windowSize',
      () => createErrorRateProjection({ targets: {}, windowSize: 0 }),
    ],
    ['latency: the SLA', 'slaP95Ms', () => createLatencyProjection({ slaP95Ms: 0 })],
    [
      'alert router: the timeout',
      'timeoutMs',
      () => createAlertRouter({ clock: simulatedClock(), rules: [], timeoutMs: 0 }),
    ],
  ])('%s → %s', (_label, field, build: () => unknown) => {
    expect(configErrorOf(build).field).toBe(field);
  });
});
