/**
 * One-line text of an alert, shared by the console sink and chat formatters.
 * Internal to the sinks: not part of the public surface.
 */
import type { Alert } from '../alert.js';

/** `[CRITICAL] error_rate: vendor: Error rate 7.2% …` or `[RESOLVED] …`. */
export function alertLine(alert: Alert): string {
  const tag = alert.status === 'resolved' ? 'RESOLVED' : alert.severity.toUpperCase();
  return `[${tag}] ${alert.kind}: ${alert.title}`;
}
