import { KEEL_ERROR } from './errors.js';

/**
 * A value has no canonical JSON form: a non-finite number, a bigint, a circular reference, a
 * `toJSON()` that throws (or, for {@link findUnstorable}, a function or symbol). `path` names it
 * (`$.items[2].price`). A `TypeError`, as `JSON.stringify` throws for the same values.
 */
export class JsonValueError extends TypeError {
  readonly [KEEL_ERROR] = true;
  readonly code = 'JSON_VALUE_INVALID';
  constructor(
    /** Where the value is, from `$` (the root). */
    readonly path: string,
    /** What is wrong with it, e.g. `is NaN; only finite numbers are JSON`. */
    readonly problem: string,
  ) {
    super(`canonicalJson: value at ${path} ${problem}`);
    this.name = 'JsonValueError';
  }
}

/** True when `e` is a {@link JsonValueError}. */
export function isJsonValueError(e: unknown): e is JsonValueError {
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as Record<symbol, unknown>)[KEEL_ERROR] === true &&
    (e as { code?: unknown }).code === 'JSON_VALUE_INVALID'
  );
}

/**
 * Canonical JSON: object keys sorted, no whitespace, `undefined` members dropped. The same value
 * always gives the same text, so it can be hashed (event chain, cache keys).
 *
 * @throws JsonValueError naming the path of a value JSON cannot hold (non-finite number, bigint,
 *   circular reference, throwing `toJSON()`), or of an `undefined` root.
 */
export function canonicalJson(value: unknown): string {
  try {
    const fast = writeValue(value);
    if (fast !== undefined) return fast;
  } catch {
    // fall through: the path-tracking writer names where the bad value is
  }
  const out = write(value, '$', []);
  if (out === undefined) throw new JsonValueError('$', 'is not JSON-serialisable (undefined)');
  return out;
}

/** The path-tracking writer: slow, cycle-safe, names the bad value. `ancestors` holds the open objects. */
function write(value: unknown, path: string, ancestors: object[]): string | undefined {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value))
        throw new JsonValueError(path, `is ${value}; only finite numbers are JSON`);
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    case 'bigint':
      throw new JsonValueError(path, 'is a bigint; convert it to a string or number first');
    case 'object':
      break;
  }
  if (ancestors.includes(value)) {
    throw new JsonValueError(path, 'is a circular reference (an object that contains itself)');
  }
  ancestors.push(value);
  try {
    if (Array.isArray(value)) {
      const items = value.map((v: unknown, i) => write(v, `${path}[${i}]`, ancestors) ?? 'null');
      return `[${items.join(',')}]`;
    }
    const obj = value as Record<string, unknown>;
    if (typeof (obj as { toJSON?: unknown }).toJSON === 'function') {
      let json: unknown;
      try {
        json = (obj as { toJSON: () => unknown }).toJSON();
      } catch (e) {
        throw new JsonValueError(
          path,
          `has a toJSON() that threw (${e instanceof Error ? e.message : String(e)})`,
        );
      }
      return write(json, path, ancestors);
    }
    const keys = Object.keys(obj).sort();
    const parts: string[] = [];
    for (const k of keys) {
      const v = write(obj[k], `${path}.${k}`, ancestors);
      if (v !== undefined) parts.push(`${JSON.stringify(k)}:${v}`);
    }
    return `{${parts.join(',')}}`;
  } finally {
    ancestors.pop();
  }
}

/**
 * Where `value` holds something the event log cannot store faithfully, or `undefined` when it can:
 * a non-finite number, a bigint, a circular reference, a `toJSON()` that throws, and — stricter
 * than canonical JSON, which silently drops them — a function or a symbol. An `undefined` root or
 * member is fine (it is stored as absent). Cycle-safe; allocates nothing on a storable value of
 * ordinary depth.
 *
 * @example
 * findUnstorable({ total: NaN }); // { path: '$.total', problem: 'is NaN; only finite numbers can be stored' }
 */
export function findUnstorable(value: unknown): { path: string; problem: string } | undefined {
  if (isStorable(value, 0)) return undefined;
  return unstorableAt(value, '$', []);
}

/** Past this depth the fast check hands over to the cycle-tracking one. */
const FAST_DEPTH = 64;

function isStorable(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object':
      break;
    default:
      return false; // bigint, function, symbol
  }
  if (value === null) return true;
  if (depth >= FAST_DEPTH) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isStorable(value[i], depth + 1)) return false;
    return true;
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  for (const k in value) {
    if (Object.hasOwn(value, k) && !isStorable((value as Record<string, unknown>)[k], depth + 1))
      return false;
  }
  return true;
}

function unstorableAt(
  value: unknown,
  path: string,
  ancestors: object[],
): { path: string; problem: string } | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return undefined;
    case 'number':
      return Number.isFinite(value)
        ? undefined
        : { path, problem: `is ${value}; only finite numbers can be stored` };
    case 'bigint':
      return { path, problem: 'is a bigint; convert it to a string or number' };
    case 'function':
      return { path, problem: 'is a function; only data can be stored' };
    case 'symbol':
      return { path, problem: 'is a symbol; only data can be stored' };
    case 'object':
      break;
  }
  if (value === null) return undefined;
  if (ancestors.includes(value)) {
    return { path, problem: 'is a circular reference (an object that contains itself)' };
  }
  ancestors.push(value);
  try {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const bad = unstorableAt(value[i], `${path}[${i}]`, ancestors);
        if (bad) return bad;
      }
      return undefined;
    }
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') {
      let json: unknown;
      try {
        json = (toJSON as () => unknown).call(value);
      } catch (e) {
        return { path, problem: `has a toJSON() that threw (${e instanceof Error ? e.message : String(e)})` };
      }
      return unstorableAt(json, path, ancestors);
    }
    for (const k of Object.keys(value)) {
      const bad = unstorableAt((value as Record<string, unknown>)[k], `${path}.${k}`, ancestors);
      if (bad) return bad;
    }
    return undefined;
  } finally {
    ancestors.pop();
  }
}

/**
 * {@link canonicalJson}, output for output, without tracking the path of every value: the hot path
 * of every append and cache key. Throws a bare TypeError on a value canonical JSON refuses.
 */
export function fastCanonicalJson(value: unknown): string {
  return writeValue(value) ?? 'null';
}

function writeValue(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return quoteString(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('non-finite number');
      return String(value); // what JSON.stringify writes for every finite number
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      return value === null ? 'null' : writeObject(value);
    case 'bigint':
      throw new TypeError('bigint');
    default:
      return undefined;
  }
}

function writeObject(value: object): string | undefined {
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      out += writeValue(value[i]) ?? 'null';
    }
    return out + ']';
  }
  const obj = value as Record<string, unknown>;
  const toJSON = obj.toJSON;
  if (typeof toJSON === 'function') return writeValue((toJSON as () => unknown).call(obj));
  const keys = Object.keys(obj);
  if (keys.length > 1) sortKeys(keys);
  let out = '{';
  let first = true;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    const v = writeValue(obj[k]);
    if (v === undefined) continue;
    const member = memberPrefixes(k);
    out += (first ? member.first : member.next) + v;
    first = false;
  }
  return out + '}';
}

/**
 * Sorts keys as `Array.prototype.sort()` does (by UTF-16 code units). Payloads have a handful of
 * keys: an insertion sort on them beats the builtin's setup; longer lists go to the builtin.
 */
function sortKeys(keys: string[]): void {
  const n = keys.length;
  if (n > 16) {
    keys.sort();
    return;
  }
  for (let i = 1; i < n; i++) {
    const k = keys[i] as string;
    let j = i - 1;
    while (j >= 0 && (keys[j] as string) > k) {
      keys[j + 1] = keys[j] as string;
      j--;
    }
    keys[j + 1] = k;
  }
}

/** `JSON.stringify(s)` for a string; plain strings (the usual case) skip the native call. */
function quoteString(s: string): string {
  if (s.length > 64) return JSON.stringify(s);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // Control characters, quote and backslash are escaped; surrogates may be (lone ones are).
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s);
  }
  return '"' + s + '"';
}

/** What goes before a member's value: `"key":` first, `,"key":` after another member. */
interface MemberPrefix {
  first: string;
  next: string;
}

/** Payload keys repeat across events: quote each once. Bounded so odd keys cannot grow it forever. */
const memberPrefixCache = new Map<string, MemberPrefix>();

function memberPrefixes(key: string): MemberPrefix {
  let prefix = memberPrefixCache.get(key);
  if (prefix === undefined) {
    const first = JSON.stringify(key) + ':';
    prefix = { first, next: ',' + first };
    if (memberPrefixCache.size >= 4096) memberPrefixCache.clear();
    memberPrefixCache.set(key, prefix);
  }
  return prefix;
}
