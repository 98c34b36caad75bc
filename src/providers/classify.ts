/**
 * Error classification shared by the HTTP-backed providers (AI SDK, OpenAI-compatible): HTTP status
 * to {@link ErrorCategory}, `retry-after` parsing, abort detection and JSON output parsing. Internal:
 * not part of the public surface.
 */
import type { ErrorCategory, Usage } from '../eventlog/events.js';
import { ProviderError } from './types.js';

/**
 * Category of an HTTP failure. 429 is `rate_limited`, 408 `timeout`, 5xx and transport failures (no
 * status) `provider_error`; any other 4xx is `unknown`, which the default retry policy does not retry
 * and breakers do not count (a bad request or API key will not fix itself).
 */
export function categoryForStatus(status: number | undefined): ErrorCategory {
  if (status === undefined) return 'provider_error';
  if (status === 429) return 'rate_limited';
  if (status === 408) return 'timeout';
  if (status >= 500) return 'provider_error';
  return 'unknown';
}

/**
 * Server-requested wait in ms, from `retry-after-ms` (ms, OpenAI's header) or `retry-after`
 * (seconds, or an HTTP date measured against `nowMs`). `undefined` when absent or unparseable.
 */
export function retryAfterMsFrom(
  header: (name: string) => string | null | undefined,
  nowMs: number,
): number | undefined {
  const ms = header('retry-after-ms');
  if (ms) {
    const n = Number.parseFloat(ms);
    if (Number.isFinite(n) && n >= 0) return n;
  }
  const after = header('retry-after');
  if (!after) return undefined;
  const seconds = Number(after.trim());
  if (after.trim() !== '' && Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(after);
  return Number.isFinite(at) ? Math.max(0, at - nowMs) : undefined;
}

/** The error every provider rejects with once the call's signal has aborted. */
export function cancelledError(provider: string, signal: AbortSignal, cause?: unknown): ProviderError {
  const reason: unknown = signal.reason;
  const why = reason instanceof Error ? `: ${reason.message}` : '';
  return new ProviderError('cancelled', `${provider}: the call was aborted by its signal${why}`, {
    cause: cause ?? reason,
  });
}

/**
 * Parses a model's JSON answer; unparseable text is a `malformed_output` failure that still carries
 * the usage it cost.
 */
export function parseJsonOutput(text: string, provider: string, usage: Usage): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    const head = text.length > 80 ? `${text.slice(0, 80)}…` : text;
    return rejectMalformed(
      provider,
      `returned text that is not JSON (${JSON.stringify(head)})`,
      usage,
      cause,
    );
  }
}

function rejectMalformed(provider: string, what: string, usage: Usage, cause: unknown): never {
  throw new ProviderError(
    'malformed_output',
    `${provider}: JSON output was requested but the model ${what}; retry, or tighten the prompt`,
    { usage, cause },
  );
}

/** The model's self-reported `confidence` in a JSON object output, when it is a number in [0, 1]. */
export function confidenceOf(output: unknown): number | undefined {
  if (typeof output !== 'object' || output === null) return undefined;
  const c = (output as { confidence?: unknown }).confidence;
  return typeof c === 'number' && c >= 0 && c <= 1 ? c : undefined;
}

/** Usage with missing counts read as 0. */
export function usageOf(input: number | null | undefined, output: number | null | undefined): Usage {
  return { inputTokens: input ?? 0, outputTokens: output ?? 0 };
}

/**
 * Settles with `work`, or rejects with `cancelled` the moment `signal` aborts, even when the
 * underlying client is slow to notice. A late rejection of `work` is swallowed (it was classified
 * as `cancelled` already).
 */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal, provider: string): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(cancelledError(provider, signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(cancelledError(provider, signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.finally(() => signal.removeEventListener('abort', onAbort)).then(resolve, reject);
  });
}

/** Case-insensitive header lookup in a plain record (AI SDK `responseHeaders`). */
export function headerIn(headers: Record<string, string> | undefined): (name: string) => string | undefined {
  return (name) => {
    if (headers === undefined) return undefined;
    const direct = headers[name];
    if (direct !== undefined) return direct;
    for (const key of Object.keys(headers)) if (key.toLowerCase() === name) return headers[key];
    return undefined;
  };
}
