/** A sink that prints one line per alert. */
import type { Alert } from '../alert.js';
import type { AlertSink } from '../sink.js';
import { alertLine } from './text.js';

/** Options of {@link consoleSink}. */
export interface ConsoleSinkOptions {
  /** Sink name (default `console`). */
  name?: string;
  /** Where lines go (default: standard error, one line per alert). */
  write?: (line: string) => void;
  /** Line format (default `[SEVERITY] kind: title`, `[RESOLVED] …` for resolves). */
  format?: (alert: Alert) => string;
}

/**
 * Prints alerts, one line each.
 *
 * @example
 * createAlertRouter({ clock, rules: [{ sinks: [consoleSink()] }] });
 */
export function consoleSink(options: ConsoleSinkOptions = {}): AlertSink {
  const {
    name = 'console',
    write = (line: string) => void process.stderr.write(`${line}\n`),
    format = alertLine,
  } = options;
  return {
    name,
    deliver(alert) {
      write(format(alert));
    },
  };
}
