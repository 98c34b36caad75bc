/**
 * Keel's one error classifier: any thrown value — a provider's failure, an SDK error, a `fetch`
 * failure, or whatever a user's `agent({ run })` code throws — to an {@link ErrorCategory}, the
 * server's `retry-after` wait and the usage it cost. The providers, the agent invocation and
 * `categoryOf()` all use {@link classifyError}. Also holds the providers' shared helpers (abort
 * handling, JSON output parsing, usage checks).
 *
 * The table, first match wins, looked up on the error and then along its `cause` chain
 * ({@link MAX_CAUSE_DEPTH} links at most):
 *
 * | what the error carries | category |
 * |---|---|
 * | a Keel error with a `category` (`ProviderError`, `AgentError`, `CircuitOpenError` …) | that category |
 * | `name` `AbortError` (a `DOMException` from an aborted signal) | `cancelled` |
 * | `name` `TimeoutError` (`AbortSignal.timeout()`) | `timeout` |
 * | the openai SDK's `APIConnectionTimeoutError` / `APIUserAbortError` (class name) | `timeout` / `cancelled` |
 * | HTTP status on `status`, `statusCode` or `response.status`: 429 | `rate_limited` |
 * | 408 | `timeout` |
 * | 5xx | `provider_error` |
 * | 400, 413, 415, 422 (this request was wrong: bad or oversized input, refused content) | `validation_error` |
 * | any other 4xx (401/403 key, 404 model, 409 …: every call would fail the same way) | `unknown` |
 * | `code` `ETIMEDOUT`, `ESOCKETTIMEDOUT`, `ECONNABORTED` (axios timeout), `UND_ERR_*_TIMEOUT` | `timeout` |
 * | `code` `UND_ERR_ABORTED` | `cancelled` |
 * | `code` `ECONNRESET`, `ECONNREFUSED`, `EAI_AGAIN`, `ENOTFOUND`, `EPIPE`, `EHOSTUNREACH`, `ENETUNREACH`, `ENETDOWN`, any other `UND_ERR_*` | `provider_error` |
 * | the openai SDK's `APIConnectionError` whose cause said nothing (class name) | `provider_error` |
 * | anything else (a plain `new Error('boom')`) | `unknown` |
 *
 * `retryAfterMs` comes from `retry-after-ms` (ms) or `retry-after` (seconds or an HTTP date) in
 * `headers`, `response.headers` or `responseHeaders` — a plain object, a `Headers` instance or
 * anything with a `get(name)` method.
 */
import { isKeelError } from '../core/errors.js';
import { ERROR_CATEGORIES, type ErrorCategory, type Usage } from '../eventlog/events.js';
import { ProviderError } from './types.js';

/** How many links of a `cause` chain {@link classifyError} looks at (cycles stop it earlier). */
export const MAX_CAUSE_DEPTH = 8;

/** What {@link classifyError} found out about a thrown value. */
export interface ErrorClassification {
  /** Root-cause category: drives retries, breakers and RCA. */
  category: ErrorCategory;
  /** A short message for the log (the thrown value's own message). */
  message: string;
  /** The HTTP status the category came from, when it came from one. */
  status?: number;
  /** Server-requested wait before retrying, ms (from `retry-after-ms` / `retry-after`). */
  retryAfterMs?: number;
  /**
   * Usage the failed call still cost, when the error reports it: a Keel error's `usage`, or on the
   * error or a `cause` — `usage` or `response.usage` — in the AI SDK's shape (`inputTokens` /
   * `outputTokens`, e.g. `NoObjectGeneratedError.usage`; v4's `promptTokens` / `completionTokens`)
   * or the wire's (`prompt_tokens` / `completion_tokens`, `input_tokens` / `output_tokens`).
   */
  usage?: Usage;
  /**
   * True when the error shows the provider did not bill the call although it reports no usage: a
   * Keel error (Keel's providers attach the usage of every call that was billed), an HTTP error
   * status (the provider refused the request), or a connection that never opened (`ECONNREFUSED`,
   * `ENOTFOUND`, `EAI_AGAIN`, `EHOSTUNREACH`, `ENETUNREACH`, `ENETDOWN`). Otherwise — a plain
   * `Error`, a reset or timed-out connection, an SDK's parse error — the call may have been served
   * and billed: the runtime charges its reservation, marked `estimated`.
   */
  unbilled?: boolean;
}

/**
 * Category of an HTTP status: 429 `rate_limited`, 408 `timeout`, 5xx `provider_error`, 400, 413,
 * 415 and 422 `validation_error` (the request itself was wrong), other 4xx `unknown` (a bad key or
 * a missing model: not retried, but counted by breakers, since every call fails the same way). A
 * status outside 400..599 (or none: a transport failure) is `provider_error`.
 */
export function categoryForStatus(status: number | undefined): ErrorCategory {
  return (status !== undefined ? statusCategory(status) : undefined) ?? 'provider_error';
}

const INPUT_STATUSES: ReadonlySet<number> = new Set([400, 413, 415, 422]);

function statusCategory(status: number): ErrorCategory | undefined {
  if (status === 429) return 'rate_limited';
  if (status === 408) return 'timeout';
  if (status >= 500 && status <= 599) return 'provider_error';
  if (INPUT_STATUSES.has(status)) return 'validation_error';
  if (status >= 400 && status <= 499) return 'unknown';
  return undefined;
}

const TIMEOUT_CODES: ReadonlySet<string> = new Set([
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'ECONNABORTED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
]);

function codeCategory(code: string): ErrorCategory | undefined {
  if (TIMEOUT_CODES.has(code)) return 'timeout';
  if (code === 'UND_ERR_ABORTED') return 'cancelled';
  if (NETWORK_CODES.has(code) || code.startsWith('UND_ERR_')) return 'provider_error';
  return undefined;
}

/**
 * The openai SDK's errors without a status, by class name (their `name` is plain `Error`, and
 * Keel's core cannot import the optional SDK): its own timeout, a caller's abort, a failed connection.
 */
const SDK_CLASSES: ReadonlyMap<string, ErrorCategory> = new Map<string, ErrorCategory>([
  ['APIConnectionTimeoutError', 'timeout'],
  ['APIUserAbortError', 'cancelled'],
]);
/** Its `cause` (the `fetch` failure) is looked at first; when that says nothing, `provider_error`. */
const SDK_CONNECTION_ERROR = 'APIConnectionError';

function constructorName(e: Bag): string | undefined {
  const ctor = prop(e, 'constructor');
  const name = isBag(ctor) ? prop(ctor, 'name') : undefined;
  return typeof name === 'string' ? name : undefined;
}

type Bag = Readonly<Record<string, unknown>>;

const isBag = (v: unknown): v is Bag => (typeof v === 'object' || typeof v === 'function') && v !== null;

/** Reads a property without letting a throwing getter or proxy escape. */
function prop(v: Bag, key: string): unknown {
  try {
    return v[key];
  } catch {
    return undefined;
  }
}

/** An HTTP status: an integer 100..599, or a string of one. */
function httpStatus(v: unknown): number | undefined {
  const n = typeof v === 'string' && /^\d{3}$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n >= 100 && n <= 599 ? n : undefined;
}

function statusOf(e: Bag): number | undefined {
  const response = prop(e, 'response');
  return (
    httpStatus(prop(e, 'status')) ??
    httpStatus(prop(e, 'statusCode')) ??
    (isBag(response)
      ? (httpStatus(prop(response, 'status')) ?? httpStatus(prop(response, 'statusCode')))
      : undefined)
  );
}

/** A header lookup over a `Headers`-like object (`get(name)`) or a plain record, case-insensitive. */
function headerReader(headers: unknown): ((name: string) => string | undefined) | undefined {
  if (!isBag(headers)) return undefined;
  const get = prop(headers, 'get');
  if (typeof get === 'function') {
    return (name) => {
      try {
        const v: unknown = get.call(headers, name);
        return headerValue(v);
      } catch {
        return undefined;
      }
    };
  }
  return (name) => {
    const direct = headerValue(prop(headers, name));
    if (direct !== undefined) return direct;
    for (const key of Object.keys(headers))
      if (key.toLowerCase() === name) return headerValue(prop(headers, key));
    return undefined;
  };
}

function headerValue(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (Array.isArray(v) && typeof v[0] === 'string') return v[0];
  return undefined;
}

function retryAfterOf(e: Bag, nowMs: number): number | undefined {
  const response = prop(e, 'response');
  for (const headers of [
    prop(e, 'headers'),
    prop(e, 'responseHeaders'),
    isBag(response) ? prop(response, 'headers') : undefined,
  ]) {
    const read = headerReader(headers);
    const ms = read && retryAfterMsFrom(read, nowMs);
    if (ms !== undefined) return ms;
  }
  return undefined;
}

function isUsage(v: unknown): v is Usage {
  return (
    isBag(v) && typeof prop(v, 'inputTokens') === 'number' && typeof prop(v, 'outputTokens') === 'number'
  );
}

/** The category a Keel error carries, with the retry wait and usage it reports. */
function keelClassification(e: Bag): Omit<ErrorClassification, 'message'> | undefined {
  if (!isKeelError(e)) return undefined;
  const category = prop(e, 'category');
  if (typeof category !== 'string' || !ERROR_CATEGORIES.includes(category as ErrorCategory)) return undefined;
  const details = prop(e, 'details');
  const retryAfterMs = prop(e, 'retryAfterMs');
  const status = isBag(details) ? prop(details, 'status') : undefined;
  const usage = prop(e, 'usage') ?? (isBag(details) ? prop(details, 'usage') : undefined);
  return {
    category: category as ErrorCategory,
    ...(typeof status === 'number' ? { status } : {}),
    ...(typeof retryAfterMs === 'number' && retryAfterMs >= 0 ? { retryAfterMs } : {}),
    ...(isUsage(usage) ? { usage } : {}),
  };
}

/** One link of the chain on its own: its category, or undefined to look at its cause. */
function classifyLink(e: unknown, nowMs: number): Omit<ErrorClassification, 'message'> | undefined {
  if (!isBag(e)) return undefined;
  const keel = keelClassification(e);
  if (keel) return keel;
  const name = prop(e, 'name');
  if (name === 'AbortError') return { category: 'cancelled' };
  if (name === 'TimeoutError') return { category: 'timeout' };
  const sdk = SDK_CLASSES.get(constructorName(e) ?? '');
  if (sdk !== undefined) return { category: sdk };
  const status = statusOf(e);
  const byStatus = status !== undefined ? statusCategory(status) : undefined;
  if (status !== undefined && byStatus !== undefined) {
    const retryAfterMs = retryAfterOf(e, nowMs);
    return { category: byStatus, status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  }
  const code = prop(e, 'code');
  const byCode = typeof code === 'string' ? codeCategory(code) : undefined;
  return byCode !== undefined ? { category: byCode } : undefined;
}

/**
 * Classifies any thrown value by the table in this module's header: the value itself first, then
 * each `cause` in turn (at most {@link MAX_CAUSE_DEPTH}), first match wins; nothing recognisable is
 * `unknown`. Never throws, whatever it is given (a getter that throws, a cyclic `cause`, a string).
 * `nowMs` (the runtime clock's time) measures a `retry-after` given as an HTTP date.
 *
 * @example
 * classifyError(Object.assign(new Error('upstream 503'), { status: 503 }), clock.now()).category; // 'provider_error'
 * classifyError(new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } }), clock.now()).category; // 'provider_error'
 * classifyError(new Error('boom'), clock.now()).category; // 'unknown'
 */
export function classifyError(e: unknown, nowMs: number): ErrorClassification {
  const c = categorize(e, nowMs);
  const billing = billingOf(e);
  if (c.usage === undefined && billing.usage !== undefined) c.usage = billing.usage;
  if (c.usage === undefined && billing.unbilled) c.unbilled = true;
  return c;
}

/** Connection failures that mean the request never reached the provider. */
const NEVER_SENT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
]);

/** Token-count field pairs an SDK or a wire format reports usage in. */
const USAGE_FIELDS: readonly (readonly [string, string])[] = [
  ['inputTokens', 'outputTokens'],
  ['promptTokens', 'completionTokens'],
  ['prompt_tokens', 'completion_tokens'],
  ['input_tokens', 'output_tokens'],
];

/** Usage in any of {@link USAGE_FIELDS} (a missing count of the pair reads 0), as reported. */
function usageIn(v: unknown): Usage | undefined {
  if (!isBag(v)) return undefined;
  for (const [inKey, outKey] of USAGE_FIELDS) {
    const input = prop(v, inKey);
    const output = prop(v, outKey);
    if (input === undefined && output === undefined) continue;
    if (input === null && output === null) continue;
    return { inputTokens: (input ?? 0) as number, outputTokens: (output ?? 0) as number };
  }
  return undefined;
}

/** What the error and its causes say about what the call cost (see {@link ErrorClassification}). */
function billingOf(e: unknown): { usage?: Usage; unbilled: boolean } {
  const seen = new Set<unknown>();
  let unbilled = false;
  let link: unknown = e;
  try {
    for (let depth = 0; depth <= MAX_CAUSE_DEPTH && isBag(link) && !seen.has(link); depth++) {
      seen.add(link);
      const response = prop(link, 'response');
      const usage =
        usageIn(prop(link, 'usage')) ?? (isBag(response) ? usageIn(prop(response, 'usage')) : undefined);
      if (usage !== undefined) return { usage, unbilled: false };
      const status = statusOf(link);
      const code = prop(link, 'code');
      if (
        isKeelError(link) ||
        (status !== undefined && status >= 400) ||
        (typeof code === 'string' && NEVER_SENT_CODES.has(code))
      )
        unbilled = true;
      link = prop(link, 'cause');
    }
  } catch {
    // a proxy or getter that throws says nothing more
  }
  return { unbilled };
}

function categorize(e: unknown, nowMs: number): ErrorClassification {
  const message = messageOfThrown(e);
  const seen = new Set<unknown>();
  let fallback: ErrorCategory = 'unknown';
  let link: unknown = e;
  for (let depth = 0; depth <= MAX_CAUSE_DEPTH && isBag(link) && !seen.has(link); depth++) {
    seen.add(link);
    let found: Omit<ErrorClassification, 'message'> | undefined;
    try {
      found = classifyLink(link, nowMs);
    } catch {
      break; // a proxy or getter that throws says nothing more
    }
    if (found) return { ...found, message };
    if (constructorName(link) === SDK_CONNECTION_ERROR) fallback = 'provider_error';
    link = prop(link, 'cause');
  }
  return { category: fallback, message };
}

/** A short message for any thrown value (never throws). */
export function messageOfThrown(e: unknown): string {
  try {
    if (e instanceof Error) return e.message;
    if (typeof e === 'string') return e;
    return JSON.stringify(e) ?? String(e);
  } catch {
    return 'a thrown value that cannot be described';
  }
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
 * The usage a provider reported, checked: missing counts read as 0; a count that is present but not
 * a finite number >= 0 (negative, NaN, `Infinity`, a string) is a `malformed_output` failure, since
 * nothing can be priced from it.
 */
export function reportedUsage(input: unknown, output: unknown, provider: string): Usage {
  const count = (v: unknown, field: string): number => {
    if (v === undefined || v === null) return 0;
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
    throw new ProviderError(
      'malformed_output',
      `${provider}: the API reported usage.${field} = ${typeof v === 'string' ? JSON.stringify(v) : typeof v === 'number' ? String(v) : typeof v}, not a token count (a finite number >= 0); the answer was dropped`,
    );
  };
  return { inputTokens: count(input, 'inputTokens'), outputTokens: count(output, 'outputTokens') };
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
