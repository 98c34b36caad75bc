/**
 * The stored form of event payloads in a schema-4 SQLite log (issue 26): a payload shrinks to a
 * JSON array of its values, without key names, and Keel's own repeated strings (agent names, paths,
 * models, the workflow's topology) shrink to ids of the file's string dictionary.
 *
 * The hash chain stays over `canonicalJson(payload)` (see `chain.ts`), so the one requirement is an
 * exact round trip of that canonical form, for every payload: `canonicalJson(decodePayload(type,
 * encodePayload(type, p, d), d)) === canonicalJson(p)`. What is stored is free to be as small as we
 * can make it; the tests in `test/eventlog/codec.test.ts` hold both.
 *
 * ## Stored form
 * - A known event type: `[mask, ...values, extras?]`. {@link PAYLOAD_KEYS} lists the known
 *   top-level keys of each type in a fixed order; bit `i` of `mask` says the `i`-th key is present
 *   (its canonical form is not absent: `undefined`, functions and symbols are absent, as canonical
 *   JSON drops them); the values of the present keys follow in list order, each coded by its key's
 *   {@link KeyKind}; `extras` is a trailing object of every other key, present only when there are
 *   some (an array one element longer than the mask says). Lists are append-only: a later Keel may
 *   add keys at the end, and a mask bit beyond this Keel's list is a clear "written by a newer Keel".
 * - A payload that is stored whole (an event type without a key list, or one whose canonical form is
 *   no object): its canonical JSON when that is an object (`{…}`), else `[-1, canonical]`. Every type
 *   decodes a `{…}` row, so a type a newer Keel learns keeps reading rows written before it knew it.
 * - Values nested in a payload (a user's `input` or `output`, `data`, `args`) are stored as their
 *   canonical JSON, never key-coded: their shape is the user's.
 *
 * Why a mask rather than positions with a placeholder for absent keys: JSON has no value that cannot
 * also be a payload value (`null` is one), so a placeholder would need escaping on every value; the
 * mask costs a digit or four per row.
 *
 * @module
 */
import { JsonValueError, canonicalJson, fastCanonicalJson, isJsonValueError } from '../core/json.js';
import { EventLogError } from './errors.js';
import type { EventPayloads, KeelEventType } from './events.js';

/** Dictionary of a schema-4 file: strings <-> small integer ids (ids are >= 1, assigned by the store). */
export interface Dictionary {
  /**
   * Id of `value`; assigns one when new (writer side, inside the append transaction). The codec
   * passes {@link codable} strings and canonical JSON texts (a topology) of up to
   * {@link MAX_CODED_JSON_LENGTH} code units, both well-formed and free of NUL.
   */
  code(value: string): number;
  /**
   * String of `id`; throws (the store's CorruptLogError naming the id) when the file has none.
   * Decoding calls only this, never {@link Dictionary.code}.
   */
  lookup(id: number): string;
}

/**
 * How one top-level payload key's value is stored:
 * - `plain`: its canonical JSON.
 * - `dict`: a {@link codable} string as its dictionary id (an integer); any other value as its
 *   canonical JSON, except numbers and arrays, which are wrapped in a one-element array (`[5]`) so
 *   they cannot be read as an id. For Keel's low-cardinality strings: names, paths, models, owners,
 *   tenants, categories. Never for user data or unique ids (each would add a dictionary row).
 * - `json`: an object or array of at most {@link MAX_CODED_JSON_LENGTH} characters of canonical JSON
 *   as the dictionary id of that JSON text; anything else as for `dict`. For `workflow.started`'s
 *   `topology`: one dictionary entry shared by every workflow of that topology.
 * - `usage`: `{ inputTokens, outputTokens }` with exactly those keys as `[input, output]`; any other
 *   value as for `dict`.
 * - `hash`: a lowercase hex SHA-256 (64 characters) as its 43 characters of base64url; any other value
 *   wrapped in a one-element array.
 */
export type KeyKind = 'plain' | 'dict' | 'json' | 'usage' | 'hash';

/** Every key of every event type's payload, tenant included, so a key added to a type must be listed. */
type KeyLists = { readonly [K in KeelEventType]: { readonly [F in keyof EventPayloads[K]]-?: KeyKind } };

const P = 'plain';
const D = 'dict';

/**
 * The known top-level keys of each event type's payload, in stored order, with how each is coded.
 * APPEND-ONLY: the order is the stored format (mask bits and value positions). A key new to a type
 * goes at the END of its list (after `tenant`); never reorder, rename or remove one — a renamed key
 * is a new key, the old one stays listed. `test/fixtures/codec-keys.json` pins the lists written so
 * far. Keys a payload usually has come first (they keep the mask small).
 */
export const PAYLOAD_KEYS = {
  'workflow.started': {
    name: D,
    topology: 'json',
    input: P,
    inputHash: 'hash',
    owner: D,
    // The sha256 of `topology`: one per topology, so a dictionary id is a 64-byte saving per workflow.
    structureHash: D,
    tenant: D,
  },
  'workflow.waiting': { name: D, path: D, timeoutAt: P, tenant: D },
  'workflow.signalled': { name: D, path: D, value: P, owner: D, tenant: D },
  'workflow.resumed': {
    owner: D,
    previousOwner: D,
    startedSeq: P,
    lastSeq: P,
    reason: D,
    rerun: P,
    tenant: D,
  },
  'workflow.completed': { output: P, confidence: P, latencyMs: P, costUsd: P, agentsCalled: P, tenant: D },
  'workflow.failed': {
    category: D,
    message: P,
    path: D,
    latencyMs: P,
    costUsd: P,
    agentsCalled: P,
    tenant: D,
  },
  // `reason` is the caller's text (rt.cancel(id, reason)): not coded.
  'workflow.cancelled': { reason: P, latencyMs: P, costUsd: P, tenant: D },
  'workflow.interrupted': { reason: P, startedSeq: P, lastSeq: P, markedBy: D, tenant: D },
  'agent.invoked': {
    path: D,
    agent: D,
    agentVersion: D,
    taskType: D,
    model: D,
    provider: D,
    tenant: D,
    firstAttempt: P,
  },
  'agent.succeeded': {
    path: D,
    agent: D,
    taskType: D,
    model: D,
    output: P,
    confidence: P,
    attempts: P,
    latencyMs: P,
    usage: 'usage',
    costUsd: P,
    cached: P,
    tenant: D,
  },
  'agent.failed': {
    path: D,
    agent: D,
    taskType: D,
    model: D,
    category: D,
    message: P,
    attempts: P,
    latencyMs: P,
    costUsd: P,
    output: P,
    tenant: D,
  },
  'agent.retried': {
    path: D,
    agent: D,
    attempt: P,
    category: D,
    message: P,
    delayMs: P,
    retryAfterMs: P,
    tenant: D,
  },
  'agent.timed_out': { path: D, agent: D, attempt: P, timeoutMs: P, tenant: D },
  // `reason` is the rejection's message (it may carry figures): not coded.
  'agent.rejected': { path: D, agent: D, taskType: D, category: D, reason: P, tenant: D },
  'agent.first_token': { path: D, agent: D, model: D, attempt: P, ttftMs: P, tenant: D },
  'tool.called': { path: D, agent: D, tool: D, callId: P, step: P, args: P, tenant: D },
  'tool.succeeded': {
    path: D,
    agent: D,
    tool: D,
    callId: P,
    step: P,
    result: P,
    latencyMs: P,
    attempts: P,
    tenant: D,
  },
  'tool.failed': {
    path: D,
    agent: D,
    tool: D,
    callId: P,
    step: P,
    category: D,
    message: P,
    latencyMs: P,
    attempts: P,
    tenant: D,
  },
  'cost.reserved': {
    path: D,
    agent: D,
    model: D,
    taskType: D,
    estimateUsd: P,
    attempt: P,
    step: P,
    tenant: D,
  },
  'cost.incurred': {
    path: D,
    agent: D,
    model: D,
    taskType: D,
    attempt: P,
    step: P,
    usage: 'usage',
    costUsd: P,
    estimateUsd: P,
    estimated: P,
    tenant: D,
  },
  'budget.alert': { scope: D, threshold: P, spentUsd: P, limitUsd: P, day: D, tenant: D },
  'budget.overrun': {
    path: D,
    agent: D,
    model: D,
    taskType: D,
    attempt: P,
    step: P,
    reservedUsd: P,
    actualUsd: P,
    overrunUsd: P,
    capped: P,
    tenant: D,
  },
  'budget.downgraded': { path: D, agent: D, fromModel: D, toModel: D, scope: D, tenant: D },
  'pricing.unknown_model': {
    model: D,
    requestedModel: D,
    answeredModel: D,
    pricedAs: D,
    agent: D,
    tenant: D,
  },
  'cache.hit': { path: D, agent: D, key: 'hash', ageMs: P, savedUsd: P, tenant: D },
  'cache.miss': { path: D, agent: D, key: 'hash', tenant: D },
  'cache.stale_served': { path: D, agent: D, key: 'hash', ageMs: P, reason: D, tenant: D },
  // `reason` says why in words, with figures: not coded.
  'breaker.transitioned': {
    breaker: D,
    from: D,
    to: D,
    reason: P,
    failures: P,
    resetTimeoutMs: P,
    tenant: D,
  },
  'ratelimit.waited': { path: D, agent: D, key: D, waitedMs: P, tenant: D },
  'ratelimit.shed': { path: D, agent: D, key: D, reason: D, waitedMs: P, tenant: D },
  'bulkhead.rejected': { path: D, agent: D, reason: D, waitedMs: P, tenant: D },
  'vote.cast': { path: D, agent: D, value: P, weight: P, index: P, tenant: D },
  'vote.early_stop': { path: D, cast: P, total: P, leader: P, skipped: P, tenant: D },
  'vote.decided': {
    path: D,
    value: P,
    confidence: P,
    agentsUsed: P,
    total: P,
    savedUsd: P,
    tenant: D,
  },
  'cascade.escalated': {
    path: D,
    fromStage: P,
    toStage: P,
    fromAgent: D,
    toAgent: D,
    confidence: P,
    reason: P,
    tenant: D,
  },
  'cascade.accepted': { path: D, stage: P, agent: D, confidence: P, savedUsd: P, tenant: D },
  'alert.raised': { id: P, kind: D, severity: D, title: P, data: P, tenant: D },
  'alert.resolved': { id: P, kind: D, title: P, data: P, tenant: D },
  'canary.rolled_back': { canary: D, reason: P, data: P, path: D, tenant: D },
  'canary.promoted': { canary: D, path: D, tenant: D },
  'canary.observed': {
    canary: D,
    path: D,
    arm: D,
    success: P,
    latencyMs: P,
    costUsd: P,
    tenant: D,
  },
  'feedback.recorded': { correct: P, expected: P, tenant: D },
  'redaction.applied': { counts: P, tenant: D },
  'log.anchor': {
    prunedClass: D,
    prunedThroughSeq: P,
    lastPrunedHash: 'hash',
    prunedCount: P,
    olderThanTs: P,
    tenant: D,
  },
  'log.maintained': { action: D, details: P, fromVersion: P, toVersion: P, tenant: D },
} as const satisfies KeyLists;

/** Longest string {@link codable} accepts, in UTF-16 code units: longer ones are stored inline. */
export const MAX_CODED_STRING_LENGTH = 2048;

/** Longest canonical JSON a `json` key ({@link KeyKind}) stores as a dictionary id, in UTF-16 code units. */
export const MAX_CODED_JSON_LENGTH = 262_144;

/**
 * Whether a string may be dictionary-coded: well-formed UTF-16 (a lone surrogate has no UTF-8 form,
 * so a dictionary row could not hold it), no NUL (C string APIs stop at it) and at most
 * {@link MAX_CODED_STRING_LENGTH} code units (the dictionary is for short repeated strings). Strings
 * it refuses are stored inline, escaped by JSON.
 */
export function codable(value: string): boolean {
  return value.length <= MAX_CODED_STRING_LENGTH && codableText(value);
}

function codableText(value: string): boolean {
  return value.isWellFormed() && !value.includes('\0');
}

/**
 * A stored payload cannot be read: not JSON, not the shape its type is stored in, a mask bit this
 * Keel has no key for (a newer Keel wrote it), or a dictionary id the file lacks. The store reports
 * the row as corrupt; `type` and `problem` say what is wrong.
 */
export class PayloadDecodeError extends EventLogError {
  constructor(
    /** The event type of the row. */
    readonly type: string,
    /** What is wrong, e.g. `mask bit 9 is beyond the 7 keys this Keel knows`. */
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(
      'EVENTLOG_PAYLOAD_UNREADABLE',
      `The stored payload of a "${type}" event cannot be read: ${problem}.`,
      options,
    );
  }
}

/** True when `e` is a {@link PayloadDecodeError}. */
export function isPayloadDecodeError(e: unknown): e is PayloadDecodeError {
  return e instanceof EventLogError && e.code === 'EVENTLOG_PAYLOAD_UNREADABLE';
}

// ── compiled key lists ───────────────────────────────────────────────────────────────────────────

const KIND_PLAIN = 0;
const KIND_DICT = 1;
const KIND_JSON = 2;
const KIND_USAGE = 3;
const KIND_HASH = 4;
const KIND_CODES: { readonly [K in KeyKind]: number } = {
  plain: KIND_PLAIN,
  dict: KIND_DICT,
  json: KIND_JSON,
  usage: KIND_USAGE,
  hash: KIND_HASH,
};

interface Layout {
  keys: readonly string[];
  kinds: readonly number[];
  /** Position of each key in `keys`. */
  index: ReadonlyMap<string, number>;
  /** Positions in `keys`, in canonical (sorted) key order. */
  sorted: readonly number[];
  /** `"key":` of each key. */
  members: readonly string[];
  /** Positions in `keys` of the keys of each length (the text scanner's look-up). */
  byLength: readonly (readonly number[] | undefined)[];
}

/** Masks are read with 32-bit operators: a list may not outgrow them. */
const MAX_KEYS = 30;

const LAYOUTS: ReadonlyMap<string, Layout> = new Map(
  Object.entries(PAYLOAD_KEYS).map(([type, fields]) => {
    const keys = Object.keys(fields);
    if (keys.length > MAX_KEYS) throw new Error(`codec: ${type} lists more than ${MAX_KEYS} keys`);
    const kinds = keys.map((k) => KIND_CODES[(fields as Record<string, KeyKind>)[k] as KeyKind]);
    const sorted = keys.map((_, i) => i).sort((a, b) => ((keys[a] as string) < (keys[b] as string) ? -1 : 1));
    const members = keys.map((k) => `${JSON.stringify(k)}:`);
    const byLength: number[][] = [];
    keys.forEach((k, i) => (byLength[k.length] ??= []).push(i));
    const index = new Map(keys.map((k, i) => [k, i]));
    return [type, { keys, kinds, index, sorted, members, byLength }];
  }),
);

/** The stored key order of `type`'s payload, or `undefined` for a type without a key list. */
export function payloadKeys(type: string): readonly string[] | undefined {
  return LAYOUTS.get(type)?.keys;
}

// ── encode ───────────────────────────────────────────────────────────────────────────────────────

/**
 * Stored form (TEXT) of an event's payload. `payload` is the object whose canonicalJson is the
 * hashed form; `dict` assigns ids to the strings it codes (call inside the append's transaction).
 *
 * @throws JsonValueError when `payload` has no canonical JSON form (as `canonicalJson` throws).
 * @example
 * encodePayload('agent.invoked', { path: 'invoice/vendor', agent: 'vendor', taskType: 'vendor', model: 'gpt-4' }, dict);
 * // '[27,1,2,2,3]' (ids from the dictionary)
 */
export function encodePayload(
  type: string,
  payload: Readonly<Record<string, unknown>>,
  dict: Dictionary,
): string {
  const layout = LAYOUTS.get(type);
  const root = resolve(payload);
  if (typeof root !== 'object' || root === null || Array.isArray(root) || layout === undefined) {
    return storedWhole(root);
  }
  const obj = root as Record<string, unknown>;
  const names = Object.keys(obj);
  const slots: (string | undefined)[] = new Array<string | undefined>(layout.keys.length);
  let extras: [string, unknown][] | undefined;
  let mask = 0;
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    const value = resolve(obj[name]);
    if (value === undefined || typeof value === 'function' || typeof value === 'symbol') continue;
    const at = layout.index.get(name);
    if (at === undefined) {
      (extras ??= []).push([name, value]);
      continue;
    }
    mask |= 1 << at;
    slots[at] = encodeValue(layout.kinds[at] as number, value, name, dict);
  }
  let out = '[' + String(mask);
  for (let i = 0; i < slots.length; i++) {
    const slot = slots[i];
    if (slot !== undefined) out += ',' + slot;
  }
  if (extras !== undefined) {
    extras.sort(byName);
    let members = '';
    for (const [name, value] of extras) {
      members += (members === '' ? '' : ',') + JSON.stringify(name) + ':' + json(value, name);
    }
    out += ',{' + members + '}';
  }
  return out + ']';
}

/** Orders members as canonical JSON does: by UTF-16 code units of the name (names are unique). */
function byName(a: [string, unknown], b: [string, unknown]): number {
  return a[0] < b[0] ? -1 : 1;
}

/** A payload stored without a key list: its canonical JSON when an object, else wrapped. */
function storedWhole(root: unknown): string {
  const text = canonicalJson(root);
  return text.charCodeAt(0) === 0x7b /* { */ ? text : `[-1,${text}]`;
}

/** A value after `toJSON()`, as canonical JSON sees it (bounded, so a toJSON chain cannot spin). */
function resolve(value: unknown): unknown {
  let v = value;
  for (let i = 0; i < 16; i++) {
    if (typeof v !== 'object' || v === null) return v;
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON !== 'function') return v;
    v = (toJSON as () => unknown).call(v);
  }
  return v;
}

/** Canonical JSON of a present member value; a bad value's path is named from the payload. */
function json(value: unknown, key: string): string {
  // The usual members, a finite number or a short string, skip the path-tracking fallback.
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'string') return fastCanonicalJson(value);
  try {
    return canonicalJson(value);
  } catch (e) {
    if (isJsonValueError(e)) throw new JsonValueError(`$.${key}${e.path.slice(1)}`, e.problem);
    throw e;
  }
}

function encodeValue(kind: number, value: unknown, key: string, dict: Dictionary): string {
  switch (kind) {
    case KIND_DICT:
      if (typeof value === 'string' && codable(value)) return String(dict.code(value));
      return escaped(value, key);
    case KIND_JSON:
      if (typeof value === 'object' && value !== null) {
        const text = json(value, key);
        if (text.length <= MAX_CODED_JSON_LENGTH && codableText(text)) return String(dict.code(text));
        return Array.isArray(value) ? `[${text}]` : text;
      }
      return escaped(value, key);
    case KIND_USAGE:
      return usage(value) ?? escaped(value, key);
    case KIND_HASH:
      if (typeof value === 'string' && value.length === 64 && HEX_64.test(value)) {
        return '"' + Buffer.from(value, 'hex').toString('base64url') + '"';
      }
      return `[${json(value, key)}]`;
    default:
      return json(value, key);
  }
}

const HEX_64 = /^[0-9a-f]{64}$/;
const BASE64URL_43 = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

/** Canonical JSON of a value a coded key could not code: numbers and arrays wrapped (`[v]`). */
function escaped(value: unknown, key: string): string {
  const text = json(value, key);
  return typeof value === 'number' || Array.isArray(value) ? `[${text}]` : text;
}

/**
 * `[input, output]` for a usage whose canonical form has exactly the keys `inputTokens` and
 * `outputTokens` (members canonical JSON drops do not count), else undefined.
 */
function usage(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const u = value as Record<string, unknown>;
  let input: unknown;
  let output: unknown;
  for (const name of Object.keys(u)) {
    const v = resolve(u[name]);
    if (!isJsonValue(v)) continue;
    if (name === 'inputTokens') input = v;
    else if (name === 'outputTokens') output = v;
    else return undefined;
  }
  if (input === undefined || output === undefined) return undefined;
  return `[${json(input, 'usage.inputTokens')},${json(output, 'usage.outputTokens')}]`;
}

/** Whether canonical JSON keeps a member with this (resolved) value. */
function isJsonValue(v: unknown): boolean {
  return v !== undefined && typeof v !== 'function' && typeof v !== 'symbol';
}

// ── encode from the hashed text ──────────────────────────────────────────────────────────────────

/**
 * `encodePayload(type, JSON.parse(text), dict)`, byte for byte and with the same dictionary calls in
 * the same order, for a `text` written by `canonicalJson` / `fastCanonicalJson` (the hashed form of a
 * payload), without parsing it: the writer's hot path. Canonical JSON has sorted keys and no
 * whitespace, so each top-level member's value text is already that value's canonical JSON: a
 * `plain` value and an extra member are copied, a `dict` value needs only its string, a `json` value
 * is coded as its own text.
 *
 * A text it does not expect (a root that is no object, a type without a key list, whitespace, keys
 * out of order, nesting deeper than {@link MAX_SCAN_DEPTH}, an escape in a key that is not
 * `JSON.stringify`'s) takes the parse path, which gives the same result or throws as before. Nested
 * values are copied, not checked: a text that is JSON but not canonical there (`1.0`, a space
 * inside `input`) is stored as given, and the strict read (`decodePayloadJson`) refuses that row, as
 * the chain over the given text could not verify anyway. `ChainWriter` passes only canonical texts.
 *
 * @throws as {@link encodePayload} (and `JSON.parse`: a SyntaxError when `text` is no JSON).
 * @example
 * encodeCanonicalPayload('agent.invoked', '{"agent":"vendor","model":"gpt-4","path":"p","taskType":"vendor"}', dict);
 * // '[27,1,2,2,3]', as encodePayload of the object
 */
export function encodeCanonicalPayload(type: string, text: string, dict: Dictionary): string {
  const layout = LAYOUTS.get(type);
  if (layout !== undefined) {
    const stored = encodeScanned(layout, text, dict);
    if (stored !== undefined) return stored;
  }
  return encodePayload(type, JSON.parse(text) as Record<string, unknown>, dict);
}

/** Nesting the scanner follows (the parse path takes deeper texts, as it always did). */
const MAX_SCAN_DEPTH = 64;

const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACKET = 0x5b;
const BACKSLASH = 0x5c;
const RBRACKET = 0x5d;
const LBRACE = 0x7b;
const RBRACE = 0x7d;

const USAGE_INPUT = '{"inputTokens":';
const USAGE_OUTPUT = ',"outputTokens":';

/**
 * The stored row of a canonical object text, or undefined (before any dictionary call) when the
 * text is not one the scan expects. The whole text is scanned first; the strings to code are then
 * coded in canonical key order, the order in which `encodePayload` meets them in a parsed object
 * (its keys are never integer-like, the only keys `Object.keys` puts first).
 */
function encodeScanned(layout: Layout, text: string, dict: Dictionary): string | undefined {
  const n = text.length;
  if (n < 2 || text.charCodeAt(0) !== LBRACE) return undefined;
  if (n === 2) return text.charCodeAt(1) === RBRACE ? '[0]' : undefined;
  const { keys, kinds, byLength } = layout;
  /** Stored text of each present key by position, or the string (JSON text) to code as its id. */
  const slots = new Array<string | undefined>(kinds.length);
  /** The keys whose slot holds the string to code. */
  let coded = 0;
  let extras: string | undefined;
  let mask = 0;
  let previous = '';
  let at = 1;
  for (;;) {
    // `"name":value` then `,` or the closing `}`.
    if (text.charCodeAt(at) !== QUOTE) return undefined;
    const keyEnd = stringEnd(text, at);
    if (keyEnd < 0 || text.charCodeAt(keyEnd) !== COLON) return undefined;
    // A listed key is found without slicing the name out (a Map look-up would hash a new string).
    let i = -1;
    const candidates = byLength[keyEnd - at - 2];
    if (candidates !== undefined) {
      for (let c = 0; c < candidates.length; c++) {
        const k = candidates[c] as number;
        if (text.startsWith(keys[k] as string, at + 1)) {
          i = k;
          break;
        }
      }
    }
    const name = i >= 0 ? (keys[i] as string) : stringAt(text, at, keyEnd);
    if (name === undefined) return undefined;
    // A listed key written with escapes (`"\u0070ath"`): canonical JSON never writes one.
    if (i < 0) i = layout.index.get(name) ?? -1;
    if (at > 1 && !(previous < name)) return undefined;
    previous = name;
    const start = keyEnd + 1;
    const end = valueEnd(text, start);
    if (end < 0) return undefined;
    if (i < 0) {
      // An extra member: `JSON.stringify(name):value`, as encodePayload writes it, if the key is
      // quoted as JSON.stringify quotes it (canonical JSON's keys always are).
      if (JSON.stringify(name) !== text.slice(at, keyEnd)) return undefined;
      extras = (extras === undefined ? '' : extras + ',') + text.slice(at, end);
    } else {
      mask |= 1 << i;
      const c = text.charCodeAt(start);
      switch (kinds[i]) {
        case KIND_DICT:
          if (c === QUOTE) {
            const s = stringAt(text, start, end);
            if (s === undefined) return undefined;
            if (codable(s)) {
              slots[i] = s;
              coded |= 1 << i;
            } else slots[i] = text.slice(start, end);
          } else slots[i] = escapedText(text, start, end, c);
          break;
        case KIND_JSON:
          if (c === LBRACE || c === LBRACKET) {
            const t = text.slice(start, end);
            if (t.length <= MAX_CODED_JSON_LENGTH && codableText(t)) coded |= 1 << i;
            slots[i] = (coded & (1 << i)) !== 0 || c === LBRACE ? t : `[${t}]`;
          } else slots[i] = escapedText(text, start, end, c);
          break;
        case KIND_USAGE:
          slots[i] =
            (c === LBRACE ? usageText(text, start, end) : undefined) ?? escapedText(text, start, end, c);
          break;
        case KIND_HASH: {
          const hex = c === QUOTE && end - start === 66 ? text.slice(start + 1, end - 1) : '';
          slots[i] = HEX_64.test(hex)
            ? '"' + Buffer.from(hex, 'hex').toString('base64url') + '"'
            : `[${text.slice(start, end)}]`;
          break;
        }
        default:
          slots[i] = text.slice(start, end);
      }
    }
    const next = text.charCodeAt(end);
    if (next === COMMA) at = end + 1;
    else if (next === RBRACE && end === n - 1) break;
    else return undefined;
  }
  if (coded !== 0) {
    const { sorted } = layout;
    for (let s = 0; s < sorted.length; s++) {
      const i = sorted[s] as number;
      if ((coded & (1 << i)) !== 0) slots[i] = String(dict.code(slots[i] as string));
    }
  }
  let out = '[' + String(mask);
  for (let i = 0; i < slots.length; i++) {
    const slot = slots[i];
    if (slot !== undefined) out += ',' + slot;
  }
  return (extras === undefined ? out : out + ',{' + extras + '}') + ']';
}

/** Index after the string whose opening quote is at `at` (escaped quotes skipped), or -1. */
function stringEnd(text: string, at: number): number {
  let q = text.indexOf('"', at + 1);
  while (q > 0 && text.charCodeAt(q - 1) === BACKSLASH) {
    let b = q - 2;
    while (text.charCodeAt(b) === BACKSLASH) b--;
    // An even run of backslashes escapes itself, not the quote.
    if ((q - 1 - b) % 2 === 0) break;
    q = text.indexOf('"', q + 1);
  }
  return q < 0 ? -1 : q + 1;
}

/** The string of the JSON string text `text[start, end)`, or undefined when it is no JSON string. */
function stringAt(text: string, start: number, end: number): string | undefined {
  const s = text.slice(start + 1, end - 1);
  if (!s.includes('\\')) return s;
  try {
    return JSON.parse(text.slice(start, end)) as string;
  } catch {
    return undefined;
  }
}

/** Index after the JSON value that starts at `at`, or -1 (nothing there, or nested too deep). */
function valueEnd(text: string, at: number): number {
  const c = text.charCodeAt(at);
  if (c === QUOTE) return stringEnd(text, at);
  if (c === LBRACE || c === LBRACKET) {
    let depth = 0;
    for (let i = at; i < text.length; i++) {
      const d = text.charCodeAt(i);
      if (d === QUOTE) {
        const after = stringEnd(text, i);
        if (after < 0) return -1;
        i = after - 1;
      } else if (d === LBRACE || d === LBRACKET) {
        if (++depth > MAX_SCAN_DEPTH) return -1;
      } else if (d === RBRACE || d === RBRACKET) {
        if (--depth === 0) return i + 1;
      }
    }
    return -1;
  }
  // A number, true, false or null: up to the next `,`, `}` or `]`.
  let i = at;
  while (i < text.length) {
    const d = text.charCodeAt(i);
    if (d === COMMA || d === RBRACE || d === RBRACKET) break;
    i++;
  }
  return i === at ? -1 : i;
}

/** What {@link escaped} writes for the value text `text[start, end)`: numbers and arrays wrapped. */
function escapedText(text: string, start: number, end: number, c: number): string {
  const t = text.slice(start, end);
  return c === LBRACKET || c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39) ? `[${t}]` : t;
}

/** What {@link usage} writes for the object text `text[start, end)`, or undefined when it has other keys. */
function usageText(text: string, start: number, end: number): string | undefined {
  if (!text.startsWith(USAGE_INPUT, start)) return undefined;
  const a = start + USAGE_INPUT.length;
  const aEnd = valueEnd(text, a);
  if (aEnd < 0 || !text.startsWith(USAGE_OUTPUT, aEnd)) return undefined;
  const b = aEnd + USAGE_OUTPUT.length;
  if (valueEnd(text, b) !== end - 1) return undefined;
  return '[' + text.slice(a, aEnd) + ',' + text.slice(b, end - 1) + ']';
}

// ── decode ───────────────────────────────────────────────────────────────────────────────────────

/**
 * Inverse of {@link encodePayload}: `canonicalJson(decodePayload(type, encodePayload(type, p, d),
 * d)) === canonicalJson(p)` for every payload `p`. Key order of the result is not canonical (hash
 * it through `canonicalJson`, or use {@link decodePayloadJson}).
 *
 * @throws PayloadDecodeError naming the type and what is wrong (not JSON, a bad shape, a mask bit
 *   beyond the type's key list, a dictionary id the file lacks — with the dictionary's error as cause).
 *   Like `JSON.parse` it reads `1e999` as `Infinity` (only an altered row holds one: the encoder
 *   refuses non-finite numbers); {@link decodePayloadJson} refuses it.
 */
export function decodePayload(type: string, stored: string, dict: Dictionary): Record<string, unknown> {
  const read = readRow(type, stored);
  if (read.layout === undefined) return read.whole;
  const { layout, row, mask } = read;
  const out = read.extras ?? {};
  const { keys, kinds } = layout;
  let at = 1;
  for (let i = 0; i < keys.length; i++) {
    if ((mask & (1 << i)) === 0) continue;
    const key = keys[i] as string;
    out[key] = decodeValue(kinds[i] as number, row[at++], type, key, dict);
  }
  return out;
}

/**
 * `canonicalJson(decodePayload(type, stored, dict))`, the hashed form of a stored payload (what
 * `keel audit verify` hashes), written straight from the stored row: no payload object is built,
 * and a dictionary-coded topology is copied as its stored canonical text, not parsed.
 *
 * Strict, so that the chain over stored rows detects every change of a row's bytes as schema 3
 * did: a row must be exactly what {@link encodePayload} writes for the payload it decodes to
 * (values of one payload have one stored form); any other row — a space added, a number written
 * `1.0`, a codable string left uncoded, extra keys out of order — is refused.
 *
 * @throws PayloadDecodeError as {@link decodePayload}, when the row is not stored as Keel writes it,
 *   and when it holds a number JSON reads as infinite (`1e999`: only an altered row does).
 */
export function decodePayloadJson(type: string, stored: string, dict: Dictionary): string {
  try {
    return writeCanonical(type, stored, dict);
  } catch (e) {
    if (isPayloadDecodeError(e)) throw e;
    // A number JSON.parse read as Infinity (`1e999`): no canonical form. Name where it is.
    let problem = e instanceof Error ? e.message : String(e);
    try {
      canonicalJson(decodePayload(type, stored, dict));
    } catch (named) {
      if (isJsonValueError(named)) problem = named.message;
    }
    throw new PayloadDecodeError(type, `it holds a value with no canonical JSON form (${problem})`, {
      cause: e,
    });
  }
}

function writeCanonical(type: string, stored: string, dict: Dictionary): string {
  const read = readRow(type, stored);
  if (read.layout === undefined) {
    if (storedWhole(read.whole) !== stored) throw notAsWritten(type);
    return canonicalJson(read.whole);
  }
  if (read.extras !== undefined) return strictSlow(type, stored, dict);
  const { layout, row, mask } = read;
  const { keys, kinds, sorted, members } = layout;
  // The row as the encoder would write it, rebuilt from the values as they are read.
  const written = new Array<string>(keys.length);
  let out = '{';
  for (let s = 0; s < sorted.length; s++) {
    const i = sorted[s] as number;
    const bit = 1 << i;
    if ((mask & bit) === 0) continue;
    const value = row[1 + popcount(mask & (bit - 1))];
    out += (out.length === 1 ? '' : ',') + (members[i] as string);
    const kind = kinds[i] as number;
    if (kind === KIND_PLAIN) {
      const text = fastCanonicalJson(value);
      out += text;
      written[i] = text;
    } else if (typeof value === 'number' && (kind === KIND_DICT || kind === KIND_JSON)) {
      const text = lookup(value, type, keys[i] as string, dict);
      // A coded topology is its stored canonical text: copied, not parsed (the chain checks it).
      out += kind === KIND_DICT ? fastCanonicalJson(text) : text;
      written[i] = String(value);
    } else if (kind === KIND_USAGE && Array.isArray(value) && value.length === 2) {
      const input = fastCanonicalJson(value[0]);
      const output = fastCanonicalJson(value[1]);
      out += `{"inputTokens":${input},"outputTokens":${output}}`;
      written[i] = `[${input},${output}]`;
    } else if (kind === KIND_HASH && typeof value === 'string') {
      // decodeValue checks it is 43 characters of base64url: its stored form is itself, quoted.
      out += `"${decodeValue(kind, value, type, keys[i] as string, dict) as string}"`;
      written[i] = `"${value}"`;
    } else {
      const key = keys[i] as string;
      const decoded = decodeValue(kind, value, type, key, dict);
      out += fastCanonicalJson(decoded);
      // Not coded: the encoder would have written it so only if it could not code it.
      try {
        written[i] = encodeValue(kind, decoded, key, UNCODED);
      } catch (e) {
        if (e === UNCODED_MARK) throw notAsWritten(type);
        throw e;
      }
    }
  }
  let again = '[' + String(mask);
  for (let i = 0; i < written.length; i++) if ((mask & (1 << i)) !== 0) again += ',' + (written[i] as string);
  if (again + ']' !== stored) throw notAsWritten(type);
  return out + '}';
}

/** Thrown by {@link UNCODED} when the encoder would have coded a value the row holds uncoded. */
const UNCODED_MARK = new Error('the encoder would code this value');
/** The dictionary of a value the row holds uncoded: the encoder must not have coded it. */
const UNCODED: Dictionary = {
  code() {
    throw UNCODED_MARK;
  },
  lookup(id) {
    throw new RangeError(`no dictionary id ${id} while re-encoding an uncoded value`);
  },
};

/** A row with extra keys: decoded to an object, re-encoded with the ids it used, compared. */
function strictSlow(type: string, stored: string, dict: Dictionary): string {
  const used = new Map<string, number>();
  const payload = decodePayload(type, stored, {
    code: (value) => dict.code(value),
    lookup(id) {
      const value = dict.lookup(id);
      used.set(value, id);
      return value;
    },
  });
  const again = encodePayload(type, payload, {
    code: (value) => used.get(value) ?? -1,
    lookup: (id) => dict.lookup(id),
  });
  if (again !== stored) throw notAsWritten(type);
  return canonicalJson(payload);
}

function notAsWritten(type: string): PayloadDecodeError {
  return new PayloadDecodeError(
    type,
    'it is not stored as Keel writes it (the same values have one stored form: the row was altered)',
  );
}

/** Bits set in a 32-bit integer. */
function popcount(x: number): number {
  let v = x - ((x >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** A stored payload, checked: stored whole, or a key-coded row of a known layout. */
type ReadRow =
  | { layout: undefined; whole: Record<string, unknown> }
  | { layout: Layout; row: unknown[]; mask: number; extras: Record<string, unknown> | undefined };

function readRow(type: string, stored: string): ReadRow {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stored);
  } catch (e) {
    throw new PayloadDecodeError(type, `it is not JSON (${(e as Error).message})`, { cause: e });
  }
  if (!Array.isArray(parsed)) {
    if (typeof parsed === 'object' && parsed !== null) {
      return { layout: undefined, whole: parsed as Record<string, unknown> };
    }
    throw new PayloadDecodeError(type, `it is ${describe(parsed)}, neither an object nor an array`);
  }
  const row = parsed as unknown[];
  const mask = row[0];
  if (mask === -1 && row.length === 2) return { layout: undefined, whole: row[1] as Record<string, unknown> };
  const layout = LAYOUTS.get(type);
  if (layout === undefined) {
    throw new PayloadDecodeError(
      type,
      'it is key-coded, but this Keel has no key list for the type (a newer Keel wrote it: upgrade Keel to read it)',
    );
  }
  if (typeof mask !== 'number' || !Number.isInteger(mask) || mask < 0) {
    throw new PayloadDecodeError(type, `its key mask is ${describe(mask)}, not a non-negative integer`);
  }
  const n = layout.keys.length;
  if (mask >= 2 ** n) {
    const bit = Math.floor(Math.log2(mask));
    throw new PayloadDecodeError(
      type,
      `key mask bit ${bit} is beyond the ${n} keys this Keel knows for the type (a newer Keel wrote it: upgrade Keel to read it)`,
    );
  }
  const count = popcount(mask);
  if (row.length === count + 1) return { layout, row, mask, extras: undefined };
  if (row.length === count + 2) {
    const extras = row[count + 1];
    if (typeof extras !== 'object' || extras === null || Array.isArray(extras)) {
      throw new PayloadDecodeError(
        type,
        `its last element is ${describe(extras)}, not the object of extra keys`,
      );
    }
    return { layout, row, mask, extras: extras as Record<string, unknown> };
  }
  throw new PayloadDecodeError(
    type,
    `it holds ${row.length - 1} values where its key mask ${mask} names ${count} (truncated or altered)`,
  );
}

function decodeValue(kind: number, value: unknown, type: string, key: string, dict: Dictionary): unknown {
  switch (kind) {
    case KIND_PLAIN:
      return value;
    case KIND_HASH:
      if (typeof value === 'string') {
        if (!BASE64URL_43.test(value)) {
          throw new PayloadDecodeError(type, `key "${key}" holds ${describe(value)}, not a coded SHA-256`);
        }
        return Buffer.from(value, 'base64url').toString('hex');
      }
      return unwrap(value, type, key);
    case KIND_USAGE:
      if (Array.isArray(value) && value.length === 2) {
        return { inputTokens: value[0] as unknown, outputTokens: value[1] as unknown };
      }
      return uncoded(value, type, key);
    case KIND_JSON:
      if (typeof value === 'number') {
        const text = lookup(value, type, key, dict);
        try {
          return JSON.parse(text) as unknown;
        } catch (e) {
          throw new PayloadDecodeError(
            type,
            `key "${key}" refers to dictionary id ${value}, which is not JSON`,
            {
              cause: e,
            },
          );
        }
      }
      return uncoded(value, type, key);
    default:
      return typeof value === 'number' ? lookup(value, type, key, dict) : uncoded(value, type, key);
  }
}

/** A coded key's value that was not coded: wrapped when it is a number or an array, else itself. */
function uncoded(value: unknown, type: string, key: string): unknown {
  return Array.isArray(value) ? unwrap(value, type, key) : value;
}

function unwrap(value: unknown, type: string, key: string): unknown {
  if (Array.isArray(value) && value.length === 1) return value[0] as unknown;
  throw new PayloadDecodeError(type, `key "${key}" holds ${describe(value)}, not a value wrapped in [ ]`);
}

function lookup(id: number, type: string, key: string, dict: Dictionary): string {
  if (!Number.isSafeInteger(id) || id < 1) {
    throw new PayloadDecodeError(type, `key "${key}" holds ${id}, not a dictionary id (an integer >= 1)`);
  }
  try {
    return dict.lookup(id);
  } catch (e) {
    throw new PayloadDecodeError(
      type,
      `key "${key}" refers to dictionary id ${id}, which the file's dictionary cannot give (${e instanceof Error ? e.message : String(e)})`,
      { cause: e },
    );
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  const text = JSON.stringify(v);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}
