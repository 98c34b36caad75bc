/** A sink that appends each alert as one JSON line to a file (an alert journal). */
import { appendFile } from 'node:fs/promises';
import { ConfigError } from '../../core/errors.js';
import type { Alert } from '../alert.js';
import type { AlertSink } from '../sink.js';

/** Options of {@link jsonLinesSink}. */
export interface JsonLinesSinkOptions {
  /** File to append to; created if missing. */
  path: string;
  /** Sink name (default `jsonl`). */
  name?: string;
  /** The record written per alert (default: the alert itself). */
  format?: (alert: Alert) => unknown;
}

/**
 * Appends one JSON object per line. Writes are serialised, so lines keep routing order.
 *
 * @example
 * const journal = jsonLinesSink({ path: 'alerts.jsonl' });
 */
export function jsonLinesSink(options: JsonLinesSinkOptions): AlertSink {
  const { path, name = 'jsonl', format = (alert: Alert) => alert } = options;
  if (typeof path !== 'string' || path === '') {
    throw new ConfigError('path', 'must be the file to append alerts to, e.g. "alerts.jsonl".');
  }
  let tail: Promise<void> = Promise.resolve();
  return {
    name,
    deliver(alert) {
      const line = `${JSON.stringify(format(alert))}\n`;
      const write = tail.then(() => appendFile(path, line, 'utf8'));
      tail = write.catch(() => undefined);
      return write;
    },
  };
}
