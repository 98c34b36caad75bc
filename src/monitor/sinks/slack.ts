/**
 * Slack incoming webhooks: the message formatter (`text` fallback + Block Kit `blocks`) and a sink
 * that posts it.
 */
import type { AlertKind } from '../../eventlog/events.js';
import type { Alert } from '../alert.js';
import { checkUrl } from '../../core/validate.js';
import type { AlertSink, DeliveryRetry } from '../sink.js';
import { alertLine } from './text.js';
import { webhookSink } from './webhook.js';

/** A Slack text object. */
export interface SlackText {
  type: 'plain_text' | 'mrkdwn';
  text: string;
}

/** The Block Kit blocks Keel sends. */
export type SlackBlock =
  | { type: 'header'; text: SlackText & { type: 'plain_text' } }
  | { type: 'section'; text: SlackText & { type: 'mrkdwn' }; fields?: (SlackText & { type: 'mrkdwn' })[] }
  | { type: 'context'; elements: (SlackText & { type: 'mrkdwn' })[] };

/** An incoming-webhook message: `text` is the notification fallback, `blocks` the layout. */
export interface SlackMessage {
  text: string;
  blocks: SlackBlock[];
}

const KIND_TITLES: { readonly [K in AlertKind]: string } = {
  budget: 'Cost budget alert',
  error_rate: 'Error rate alert',
  error_budget: 'Error budget alert',
  sla: 'Latency SLA alert',
  breaker: 'Circuit breaker alert',
  canary: 'Canary alert',
  sink: 'Alert delivery failure',
  custom: 'Alert',
};

const escape = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const clip = (text: string, max: number): string =>
  text.length <= max ? text : `${text.slice(0, max - 1)}…`;

/**
 * The Slack message for an alert.
 *
 * @example
 * slackMessage(alert); // { text: '[MEDIUM] error_rate: vendor: Error rate 7.2% …', blocks: [header, section, context] }
 */
export function slackMessage(alert: Alert): SlackMessage {
  const resolved = alert.status === 'resolved';
  const heading = resolved
    ? `✅ Resolved: ${KIND_TITLES[alert.kind]}`
    : `🚨 ${KIND_TITLES[alert.kind]} (${alert.severity})`;
  return {
    text: alertLine(alert),
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: clip(heading, 150) } },
      {
        type: 'section',
        text: { type: 'mrkdwn', text: clip(escape(alert.title), 3000) },
        fields: [
          { type: 'mrkdwn', text: `*Severity*\n${alert.severity}` },
          { type: 'mrkdwn', text: `*Kind*\n${alert.kind}` },
        ],
      },
      {
        type: 'context',
        elements: [{ type: 'mrkdwn', text: `${escape(alert.id)} · ${new Date(alert.ts).toISOString()}` }],
      },
    ],
  };
}

/** Options of {@link slackSink}. */
export interface SlackSinkOptions {
  /** The incoming webhook URL Slack gave you. */
  webhookUrl: string;
  /** Sink name (default `slack`). */
  name?: string;
  /** Per-attempt timeout in ms (default: the router's). */
  timeoutMs?: number;
  /** Retry policy (default: the router's). */
  retry?: DeliveryRetry;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

/**
 * Posts alerts to a Slack channel (the seed's route for `medium`).
 *
 * @example
 * const slack = slackSink({ webhookUrl: 'https://hooks.slack.com/services/T000/B000/XXXX' });
 */
export function slackSink(options: SlackSinkOptions): AlertSink {
  checkUrl('webhookUrl', options.webhookUrl);
  const { webhookUrl, name = 'slack', timeoutMs, retry } = options;
  return webhookSink({ url: webhookUrl, name, timeoutMs, retry, fetch: options.fetch, body: slackMessage });
}
