// The redactor as it was before the hot-path work of issue 26 (src/compliance/redact.ts at b140032),
// kept unmodified as the oracle of test/compliance/redact-equivalence.test.ts. Only the imports differ.
/**
 * PII redaction. Every event passes through a {@link Redactor} before it reaches the log, so the
 * audit trail never holds an email address, card number or API key — only a pseudonymous token
 * that still correlates (`⟨EMAIL:1f3a9c2b4d5e⟩` is the same customer in every event).
 */
import {
  resolveRedactorConfig,
  type ResolvedCustomPattern,
  type RedactorConfig,
} from '../../src/compliance/config.js';
import { builtinDetectors, type Detector } from '../../src/compliance/detectors.js';
import { heuristicNames, listedNames } from '../../src/compliance/names.js';
import { pseudonymiser, TOKEN_SOURCE, type Pseudonymise } from '../../src/compliance/token.js';

/** Number of values redacted per kind (`email`, `phone`, `card`, `iban`, `ssn`, `ip`, `secret`, `name`, custom names). */
export type RedactionCounts = Record<string, number>;

/** A redacted value and what was taken out of it. */
export interface RedactionResult<T> {
  /**
   * The redacted copy. Parts with nothing to redact are the input's own objects (copy-on-write),
   * so treat the result as read-only.
   */
  value: T;
  /** Findings per kind; kinds with no finding are absent. */
  counts: RedactionCounts;
}

/** A redacted string and what was taken out of it. */
export interface RedactedText {
  /** The text with each finding replaced by its token; the same string when nothing matched. */
  text: string;
  /** Findings per kind; kinds with no finding are absent. */
  counts: RedactionCounts;
}

/** Removes PII from strings and from the strings inside JSON-like values. */
export interface Redactor {
  /**
   * Redacts every string inside `value` as JSON would store it (the input is never mutated):
   * - arrays and plain objects are walked deeply, object keys included: a key holding PII becomes
   *   its token (equal keys give equal tokens); two keys that would become the same text are kept
   *   apart by a suffix (`⟨EMAIL:…⟩#2`), never merged;
   * - an object with `toJSON` (Date → ISO string, user classes) is replaced by its walked `toJSON()`;
   * - a URL (a `URL` object is stored as its text) with user-info has it replaced by `⟨REDACTED⟩`;
   *   one with user-info or percent-encoding has host, path, query keys and values and fragment
   *   redacted after decoding (`?email=erin%40corp.example` → `?email=⟨EMAIL:…⟩`);
   * - a `Map` becomes an array of `[key, value]` entries, a `Set` an array, both walked;
   * - an `Error` becomes `{ name, message, cause?, errors?, …own enumerable fields }`, walked; its
   *   stack is not kept;
   * - typed arrays, `Buffer`s and `ArrayBuffer`s become `⟨BINARY:n bytes⟩` (bytes cannot be redacted);
   * - boxed primitives become their value; other class instances a plain object of their own
   *   enumerable fields, as JSON would store them.
   *
   * The result therefore has the input's JSON shape, not its runtime type. A reference cycle becomes
   * `⟨CIRCULAR⟩`; nesting deeper than `maxDepth` becomes `⟨DEPTH_LIMIT⟩`; a `toJSON` or field that
   * throws becomes `⟨UNREADABLE⟩`.
   */
  redact<T>(value: T): RedactionResult<T>;
  /**
   * {@link redact}, adding its findings to `counts` and returning the redacted copy: no result
   * object per call, for callers that redact many values and total the findings (the runtime, per
   * workflow).
   */
  redactInto<T>(value: T, counts: RedactionCounts): T;
  /** Redacts one string. */
  redactString(text: string): RedactedText;
}

/** Replaces a reference back to an enclosing object. */
const CIRCULAR = '⟨CIRCULAR⟩';
/** Replaces a value nested deeper than `maxDepth`. */
const DEPTH_LIMIT = '⟨DEPTH_LIMIT⟩';
/** A URL inside a text: a scheme, `://`, then up to whitespace, a quote or an angle bracket. */
const URL_IN_TEXT = /\b[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s"'<>`]+/gu;
/** Replaces the user-info (`user:password@`) of a URL. */
const CREDENTIALS = '⟨REDACTED⟩';
/** Replaces a value that threw while being read (`toJSON`, an error's fields). */
const UNREADABLE = '⟨UNREADABLE⟩';
/** Marks an object whose walk has started but not finished (a cycle when met again). */
const IN_PROGRESS: unique symbol = Symbol('in-progress');
/** Strings up to this length that had nothing to redact are remembered, so their next scan is a lookup. */
const CLEAN_MAX_LENGTH = 128;
/** How many clean strings a redactor remembers before it starts over (paths, names, models repeat). */
const CLEAN_MAX_ENTRIES = 4096;

type Seen = Map<object, unknown>;

/** A finding (or an existing token, `rank` -1) at `[start, end)` of the scanned string. */
interface Span {
  start: number;
  end: number;
  /** Index of the detector (its priority); -1 for an existing token. */
  rank: number;
}

/**
 * Scans strings: custom patterns first, then each enabled detector whose trigger occurs. Findings
 * are merged leftmost-first (on a tie, the higher-priority detector wins) and replaced in one pass.
 */
class StringScanner {
  private readonly prefilter: RegExp;
  private readonly triggers: RegExp[];
  private readonly patterns: RegExp[];
  private readonly tokens = new RegExp(TOKEN_SOURCE, 'gu');
  private readonly tokenSplit = new RegExp(`(${TOKEN_SOURCE})`, 'u');
  /**
   * Short strings found to hold nothing to redact. Redaction depends on the text alone, and event
   * payloads repeat the same paths, agent, model and task names, so most scans become one lookup.
   */
  private readonly clean = new Set<string>();

  constructor(
    private readonly detectors: readonly Detector[],
    private readonly custom: readonly ResolvedCustomPattern[],
    private readonly pseudonymise: Pseudonymise,
  ) {
    this.prefilter = new RegExp(
      detectors.length > 0 ? detectors.map((d) => d.trigger).join('|') : '(?!)',
      'u',
    );
    this.triggers = detectors.map((d) => new RegExp(d.trigger, 'u'));
    this.patterns = detectors.map((d) => new RegExp(d.source, 'gu'));
  }

  redact(text: string, counts: RedactionCounts): string {
    if (this.clean.has(text)) return text;
    const plain = text.includes('://') ? this.redactUrls(text, counts) : text;
    const s = this.custom.length > 0 ? this.applyCustom(plain, counts) : plain;
    const spans = this.prefilter.test(s) ? this.findSpans(s) : undefined;
    if (spans !== undefined) return this.replace(s, spans, counts);
    if (s === text && text.length <= CLEAN_MAX_LENGTH) {
      if (this.clean.size >= CLEAN_MAX_ENTRIES) this.clean.clear();
      this.clean.add(text);
    }
    return s;
  }

  /**
   * Redacts the URLs in a text that carry user-info or percent-encoded parts (which the detectors
   * cannot read) as {@link redactUrl} does; other URLs are left to the detectors.
   */
  private redactUrls(text: string, counts: RedactionCounts): string {
    return text.replace(URL_IN_TEXT, (found: string) => {
      if (!found.includes('@') && !found.includes('%')) return found;
      let url: URL;
      try {
        url = new URL(found);
      } catch {
        return found;
      }
      if (url.username === '' && url.password === '' && !found.includes('%')) return found;
      return redactUrl(url, (part) => this.redact(part, counts), counts);
    });
  }

  private findSpans(s: string): Span[] | undefined {
    let spans: Span[] | undefined;
    for (let rank = 0; rank < this.detectors.length; rank++) {
      if (!(this.triggers[rank] as RegExp).test(s)) continue;
      const detector = this.detectors[rank] as Detector;
      if (detector.scan !== undefined) {
        detector.scan(s, (start, end) => (spans ??= []).push({ start, end, rank }));
        continue;
      }
      const re = this.patterns[rank] as RegExp;
      re.lastIndex = 0;
      for (let m = re.exec(s); m !== null; m = re.exec(s)) {
        // Group 1, when the pattern has one, is the value; anything before it is context.
        const value = m[1] ?? m[0];
        const start = m.index + m[0].length - value.length;
        const length = detector.accept ? detector.accept(value) : value.length;
        if (length === 0) {
          // Rejected (bad checksum, wrong shape): a real value may still start inside it.
          re.lastIndex = m.index + 1;
          continue;
        }
        (spans ??= []).push({ start, end: start + length, rank });
        re.lastIndex = start + length;
      }
    }
    if (spans !== undefined && s.includes('⟨')) {
      const tokens = this.tokens;
      tokens.lastIndex = 0;
      for (let m = tokens.exec(s); m !== null; m = tokens.exec(s)) {
        spans.push({ start: m.index, end: m.index + m[0].length, rank: -1 });
      }
    }
    return spans;
  }

  private replace(s: string, spans: Span[], counts: RedactionCounts): string {
    if (spans.length > 1) spans.sort((a, b) => a.start - b.start || a.rank - b.rank);
    let out = '';
    let last = 0;
    for (const { start, end, rank } of spans) {
      if (start < last) continue; // overlaps a finding on its left, which wins
      if (rank >= 0) {
        const detector = this.detectors[rank] as Detector;
        out +=
          s.slice(last, start) + this.pseudonymise(detector.kind, detector.normalise(s.slice(start, end)));
        counts[detector.kind] = (counts[detector.kind] ?? 0) + 1;
      } else {
        out += s.slice(last, end);
      }
      last = end;
    }
    return out + s.slice(last);
  }

  /** Applies each custom pattern to the text between existing tokens. */
  private applyCustom(text: string, counts: RedactionCounts): string {
    let s = text;
    for (const { kind, regex } of this.custom) {
      regex.lastIndex = 0;
      if (!regex.test(s)) continue;
      const replace = (part: string): string =>
        part.replace(regex, (found: string) => {
          if (found.length === 0) return found;
          counts[kind] = (counts[kind] ?? 0) + 1;
          return this.pseudonymise(kind, found.trim());
        });
      const parts = s.split(this.tokenSplit);
      // split with a capturing group alternates text (even) and tokens (odd).
      s = parts.map((part, i) => (i % 2 === 0 ? replace(part) : part)).join('');
    }
    return s;
  }
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

/**
 * {@link setOwn} under `key`, or — when `target` already has that key (two keys redacted to the same
 * token, or a key equal to another's token) — under the first free `key#2`, `key#3`, …
 */
function setUnique(target: Record<string, unknown>, key: string, value: unknown): void {
  let k = key;
  for (let n = 2; Object.prototype.hasOwnProperty.call(target, k); n++) k = `${key}#${n}`;
  setOwn(target, k, value);
}

function isBinary(value: object): value is ArrayBufferView | ArrayBuffer {
  return (
    ArrayBuffer.isView(value) ||
    value instanceof ArrayBuffer ||
    (typeof SharedArrayBuffer === 'function' && value instanceof SharedArrayBuffer)
  );
}

/** `text` percent-decoded (and `+` as space when `plus`), or `text` itself when it is not valid. */
function decodePart(text: string, plus: boolean): string {
  const raw = plus ? text.replace(/\+/g, ' ') : text;
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/**
 * A URL as stored: user-info replaced by {@link CREDENTIALS}; host, path, each query key and value
 * and the fragment redacted after percent-decoding. A part with nothing found keeps its encoding.
 */
function redactUrl(url: URL, scan: (text: string) => string, counts: RedactionCounts): string {
  const part = (text: string, plus: boolean): string => {
    const decoded = decodePart(text, plus);
    const redacted = scan(decoded);
    return redacted === decoded ? text : redacted;
  };
  let out = url.protocol;
  if (url.href.startsWith(`${url.protocol}//`)) out += '//';
  if (url.username !== '' || url.password !== '') {
    out += `${CREDENTIALS}@`;
    counts.secret = (counts.secret ?? 0) + 1;
  }
  out +=
    scan(url.host) +
    url.pathname
      .split('/')
      .map((segment) => part(segment, false))
      .join('/');
  if (url.search.length > 1) {
    const pairs = url.search.slice(1).split('&');
    out += '?';
    for (let i = 0; i < pairs.length; i++) {
      const pair = pairs[i] as string;
      const eq = pair.indexOf('=');
      if (i > 0) out += '&';
      out += eq < 0 ? part(pair, true) : `${part(pair.slice(0, eq), true)}=${part(pair.slice(eq + 1), true)}`;
    }
  }
  if (url.hash.length > 1) out += `#${part(url.hash.slice(1), false)}`;
  return out;
}

/**
 * What JSON keeps of an error: its name and message, `cause` and `errors` (AggregateError) when
 * present, and its own enumerable fields (`code`, `status`, …) — never the stack.
 */
function errorFields(error: Error): Record<string, unknown> {
  const fields: Record<string, unknown> = { name: error.name, message: error.message };
  if ('cause' in error && error.cause !== undefined) fields.cause = error.cause;
  if (error instanceof AggregateError) fields.errors = error.errors as unknown;
  for (const key of Object.keys(error)) {
    if (key !== 'stack') setOwn(fields, key, (error as unknown as Record<string, unknown>)[key]);
  }
  return fields;
}

/**
 * Creates a redactor. Every detector is on by default; tokens are keyed HMACs, so give every
 * process the same `hmacKey` for tokens that correlate across the deployment.
 *
 * @throws ConfigError naming the offending field, e.g. `redact.custom[0].pattern`.
 * @example
 * const redactor = createRedactor({ hmacKey: process.env.KEEL_REDACT_KEY, names: { list: ['Jane Doe'] } });
 * const { text, counts } = redactor.redactString('Refund jane@example.com, card 4111 1111 1111 1111');
 * // text:   'Refund ⟨EMAIL:…⟩, card ⟨CARD:…⟩'
 * // counts: { email: 1, card: 1 }
 */
export function createRedactor(config: RedactorConfig = {}): Redactor {
  const resolved = resolveRedactorConfig(config);
  const detectors = builtinDetectors(resolved.builtins);
  const listed = listedNames(resolved.namesList);
  if (listed !== undefined) detectors.push(listed);
  if (resolved.namesDetect) detectors.push(...heuristicNames());
  const scanner = new StringScanner(detectors, resolved.custom, pseudonymiser(resolved.key));
  const maxDepth = resolved.maxDepth;

  /** The entries of `value` (own enumerable string keys) with keys and values redacted. */
  const walkFields = (
    value: Record<string, unknown>,
    depth: number,
    counts: RedactionCounts,
    seen: Seen,
    alwaysCopy: boolean,
  ): Record<string, unknown> => {
    const keys = Object.keys(value);
    let copy: Record<string, unknown> | undefined = alwaysCopy ? {} : undefined;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      const item = value[key];
      const next = walk(item, depth + 1, counts, seen);
      const nextKey = scanner.redact(key, counts);
      if (copy === undefined && (next !== item || nextKey !== key)) {
        copy = Object.getPrototypeOf(value) === null ? (Object.create(null) as Record<string, unknown>) : {};
        for (let j = 0; j < i; j++) setOwn(copy, keys[j] as string, value[keys[j] as string]);
      }
      if (copy !== undefined) setUnique(copy, nextKey, next);
    }
    return copy ?? value;
  };

  /** Whatever is not a string, primitive, array or plain object: its JSON form, walked. */
  const walkOther = (value: object, depth: number, counts: RedactionCounts, seen: Seen): unknown => {
    if (isBinary(value)) return `⟨BINARY:${value.byteLength} bytes⟩`;
    let json: unknown;
    try {
      const toJSON = (value as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function') json = (toJSON as () => unknown).call(value);
      else if (value instanceof String || value instanceof Number || value instanceof Boolean)
        json = value.valueOf();
      else if (value instanceof Map) json = [...(value as Map<unknown, unknown>).entries()];
      else if (value instanceof Set) json = [...(value as Set<unknown>).values()];
      else if (value instanceof Error) json = errorFields(value);
      else return walkFields(value as Record<string, unknown>, depth, counts, seen, true);
    } catch {
      return UNREADABLE;
    }
    return walk(json, depth + 1, counts, seen);
  };

  const walk = (value: unknown, depth: number, counts: RedactionCounts, seen: Seen): unknown => {
    if (typeof value === 'string') return scanner.redact(value, counts);
    if (typeof value !== 'object' || value === null) return value;
    const known = seen.get(value);
    if (known === IN_PROGRESS) return CIRCULAR;
    if (known !== undefined) return known;
    if (depth >= maxDepth) return DEPTH_LIMIT;

    seen.set(value, IN_PROGRESS);
    let result: unknown;
    if (Array.isArray(value)) {
      const items = value as unknown[];
      let copy: unknown[] | undefined;
      for (let i = 0; i < items.length; i++) {
        const item = items[i];
        const next = walk(item, depth + 1, counts, seen);
        if (copy === undefined && next !== item) copy = items.slice(0, i);
        copy?.push(next);
      }
      result = copy ?? value;
    } else if (isPlainObject(value) && typeof value.toJSON !== 'function') {
      result = walkFields(value, depth, counts, seen, false);
    } else {
      result = walkOther(value, depth, counts, seen);
    }
    seen.set(value, result);
    return result;
  };

  /** Objects met in the current walk (reused: a walk never starts inside another). */
  const seen: Seen = new Map();
  const redactInto = <T>(value: T, counts: RedactionCounts): T => {
    if (typeof value === 'string') return scanner.redact(value, counts) as T;
    if (typeof value !== 'object' || value === null) return value;
    try {
      return walk(value, 0, counts, seen) as T;
    } finally {
      seen.clear();
    }
  };
  return {
    redact<T>(value: T): RedactionResult<T> {
      const counts: RedactionCounts = {};
      return { value: redactInto(value, counts), counts };
    },
    redactInto,
    redactString(text: string): RedactedText {
      const counts: RedactionCounts = {};
      return { text: scanner.redact(text, counts), counts };
    },
  };
}
