import { describe, expect, it } from 'vitest';
import type { Alert } from '../../src/monitor/alert.js';
import { pagerDutyEvent, pagerDutySink } from '../../src/monitor/sinks/pagerduty.js';
import { slackMessage, slackSink } from '../../src/monitor/sinks/slack.js';

const alert: Alert = {
  id: 'sla:workflow:invoice:991',
  kind: 'sla',
  severity: 'high',
  title: 'invoice: P95 latency 18,500 ms exceeds SLA 10,000 ms over last 1 hour (2 of 22 slower)',
  data: { p95Ms: 18_500 },
  ts: Date.UTC(2024, 0, 15, 10, 45),
};

describe('PagerDuty Events API v2 payload', () => {
  it('triggers with routing key, dedup key and a complete payload', () => {
    expect(pagerDutyEvent(alert, { routingKey: 'R0UT1NG', component: 'invoice-pipeline' })).toEqual({
      routing_key: 'R0UT1NG',
      event_action: 'trigger',
      dedup_key: 'sla:workflow:invoice:991',
      payload: {
        summary: alert.title,
        source: 'keel',
        severity: 'error',
        timestamp: '2024-01-15T10:45:00.000Z',
        component: 'invoice-pipeline',
        class: 'sla',
        custom_details: { id: alert.id, kind: 'sla', severity: 'high', data: { p95Ms: 18_500 } },
      },
    });
  });

  it('maps Keel severities onto critical | error | warning | info', () => {
    const sev = (severity: Alert['severity']) => {
      const e = pagerDutyEvent({ ...alert, severity }, { routingKey: 'k' });
      return e.event_action === 'trigger' ? e.payload.severity : undefined;
    };
    expect(['critical', 'high', 'medium', 'low', 'info'].map((s) => sev(s as Alert['severity']))).toEqual([
      'critical',
      'error',
      'warning',
      'info',
      'info',
    ]);
  });

  it('resolves with the same dedup key', () => {
    expect(pagerDutyEvent({ ...alert, status: 'resolved' }, { routingKey: 'R0UT1NG' })).toEqual({
      routing_key: 'R0UT1NG',
      event_action: 'resolve',
      dedup_key: 'sla:workflow:invoice:991',
    });
  });

  it('keeps summary and dedup key within PagerDuty limits', () => {
    const e = pagerDutyEvent(
      { ...alert, id: 'i'.repeat(300), title: 't'.repeat(2_000) },
      { routingKey: 'k' },
    );
    expect(e.dedup_key).toHaveLength(255);
    if (e.event_action !== 'trigger') throw new Error('expected a trigger');
    expect(e.payload.summary).toHaveLength(1_024);
  });

  it('needs a routing key', () => {
    expect(() => pagerDutySink({ routingKey: '' })).toThrow(/routingKey/);
  });
});

describe('Slack incoming-webhook message', () => {
  it('has fallback text and header, section and context blocks', () => {
    const m = slackMessage({ ...alert, title: 'p95 <10s & rising' });
    expect(m.text).toBe('[HIGH] sla: p95 <10s & rising');
    expect(m.blocks.map((b) => b.type)).toEqual(['header', 'section', 'context']);
    expect(m.blocks[0]).toEqual({
      type: 'header',
      text: { type: 'plain_text', text: '🚨 Latency SLA alert (high)' },
    });
    expect(m.blocks[1]).toMatchObject({
      type: 'section',
      text: { type: 'mrkdwn', text: 'p95 &lt;10s &amp; rising' },
      fields: [
        { type: 'mrkdwn', text: '*Severity*\nhigh' },
        { type: 'mrkdwn', text: '*Kind*\nsla' },
      ],
    });
    expect(m.blocks[2]).toEqual({
      type: 'context',
      elements: [{ type: 'mrkdwn', text: 'sla:workflow:invoice:991 · 2024-01-15T10:45:00.000Z' }],
    });
  });

  it('marks a resolve', () => {
    const m = slackMessage({ ...alert, status: 'resolved' });
    expect(m.text.startsWith('[RESOLVED]')).toBe(true);
    expect(m.blocks[0]).toMatchObject({ text: { text: '✅ Resolved: Latency SLA alert' } });
  });

  it("clips the section text to Slack's 3,000-character limit", () => {
    const m = slackMessage({ ...alert, kind: 'custom', title: 'x'.repeat(5_000) });
    const section = m.blocks[1];
    expect(section?.type === 'section' ? section.text.text.length : 0).toBe(3_000);
  });

  it('needs a webhook URL', () => {
    expect(() => slackSink({ webhookUrl: 'not a url' })).toThrow(/webhookUrl/);
  });
});
