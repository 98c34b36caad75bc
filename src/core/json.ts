/**
 * Canonical JSON: object keys sorted, no whitespace, `undefined` members dropped. The same value
 * always gives the same text, so it can be hashed (event chain, cache keys).
 */
export function canonicalJson(value: unknown): string {
  try {
    const fast = writeValue(value);
    if (fast !== undefined) return fast;
  } catch {
    // fall through: the path-tracking writer names where the bad value is
  }
  const out = write(value, '$');
  if (out === undefined)
    throw new TypeError('canonicalJson: value at $ is not JSON-serialisable (undefined)');
  return out;
}

function write(value: unknown, path: string): string | undefined {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value))
        throw new TypeError(`value at ${path} is ${value}; only finite numbers are JSON`);
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    case 'bigint':
      throw new TypeError(`value at ${path} is a bigint; convert it to a string or number first`);
    case 'object':
      break;
  }
  if (Array.isArray(value)) {
    const items = value.map((v: unknown, i) => write(v, `${path}[${i}]`) ?? 'null');
    return `[${items.join(',')}]`;
  }
  const obj = value as Record<string, unknown>;
  if (typeof (obj as { toJSON?: unknown }).toJSON === 'function') {
    return write((obj as { toJSON: () => unknown }).toJSON(), path);
  }
  const keys = Object.keys(obj).sort();
  const parts: string[] = [];
  for (const k of keys) {
    const v = write(obj[k], `${path}.${k}`);
    if (v !== undefined) parts.push(`${JSON.stringify(k)}:${v}`);
  }
  return `{${parts.join(',')}}`;
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
