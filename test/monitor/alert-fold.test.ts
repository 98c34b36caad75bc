import { describe, expect, it } from 'vitest';
import { alertToEvent, type Alert } from '../../src/monitor/alert.js';
import { createAlertFold, createAlertLedger } from '../../src/monitor/alert-fold.js';
import { createErrorRateProjection } from '../../src/monitor/error-rate-projection.js';
import { createLatencyProjection } from '../../src/monitor/latency-projection.js';
import { event, failed } from './fixtures.js';

const fold = () =>
  createAlertFold({
    errorRates: createErrorRateProjection({ targets: { vendor: 0.05 }, windowSize: 10 }),
    latency: createLatencyProjection({ slaP95Ms: 10_000 }),
  });

describe('createAlertFold: every alert from committed events', () => {
  it('derives budget, breaker (open fires, close resolves) and canary alerts, and error-rate ones', () => {
    const f = fold();
    const out: Alert[] = [];
    const push = (a: readonly Alert[]) => out.push(...a);
    push(
      f.apply(
        event(
          'budget.alert',
          { scope: 'global', threshold: 0.8, spentUsd: 80, limitUsd: 100, day: '2026-01-06' },
          1_000,
          '_system',
        ),
      ),
    );
    push(
      f.apply(
        event(
          'breaker.transitioned',
          { breaker: 'open<ai>', from: 'closed', to: 'open', reason: 'failures', failures: 5 },
          2_000,
          '_system',
        ),
      ),
    );
    push(
      f.apply(
        event(
          'breaker.transitioned',
          { breaker: 'open<ai>', from: 'open', to: 'halfOpen', reason: 'timeout', failures: 5 },
          3_000,
          '_system',
        ),
      ),
    );
    push(
      f.apply(
        event(
          'breaker.transitioned',
          { breaker: 'open<ai>', from: 'halfOpen', to: 'closed', reason: 'probe', failures: 0 },
          4_000,
          '_system',
        ),
      ),
    );
    const rolledBack = event(
      'canary.rolled_back',
      { canary: 'v2', path: 'invoice/canary', reason: 'candidate error rate 50.0%', data: null },
      5_000,
      '_system',
    );
    push(f.apply(rolledBack));
    for (let i = 0; i < 10; i++) push(f.apply(failed('ocr_error', { ts: 6_000 + i })));
    expect(out.map((a) => `${a.kind}:${a.status ?? 'firing'}:${a.severity}:${a.id}`)).toEqual([
      'budget:firing:high:budget:global:0.8:2026-01-06',
      'breaker:firing:high:breaker:open<ai>',
      'breaker:resolved:info:breaker:open<ai>',
      `canary:firing:high:canary:v2:${rolledBack.seq}`,
      expect.stringMatching(/^error_rate:firing:medium:error_rate:vendor:\d+$/),
    ]);
    expect(out[0]?.title).toBe('Budget global: $80.00 of $100.00 (80%) on 2026-01-06');
    expect(out.map((a) => a.ts)).toEqual([1_000, 2_000, 4_000, 5_000, 6_009]);
  });

  it('allocates nothing for an event that raises nothing', () => {
    const f = fold();
    const a = f.apply(event('cache.miss', { path: 'p', agent: 'a' } as never, 1));
    const b = f.apply(event('cache.miss', { path: 'p', agent: 'a' } as never, 2));
    expect(a).toHaveLength(0);
    expect(a).toBe(b);
  });
});

describe('createAlertLedger: delivery reads the committed alert events', () => {
  it('gives a resolve the severity of the alert it closes, so a severity rule delivers both', () => {
    const ledger = createAlertLedger();
    const raised: Alert = {
      id: 'error_rate:payment:7',
      kind: 'error_rate',
      severity: 'critical',
      title: 'payment: 2.0% > 0.1%',
      data: null,
      ts: 1,
    };
    const up = alertToEvent(raised);
    const down = alertToEvent({ ...raised, status: 'resolved', ts: 2 });
    const r1 = ledger.read({ ...up, seq: 1, v: 1, class: 'operational' } as never);
    const r2 = ledger.read({ ...down, seq: 2, v: 1, class: 'operational' } as never);
    expect(r1).toMatchObject({ status: 'firing', severity: 'critical' });
    expect(r2).toMatchObject({ status: 'resolved', severity: 'critical', id: raised.id });
    // A resolve whose raise the ledger never saw: info.
    const orphan = ledger.read({ ...down, seq: 3, v: 1, class: 'operational' } as never);
    expect(orphan?.severity).toBe('info');
    expect(ledger.read(failed('ocr_error'))).toBeUndefined();
  });
});
