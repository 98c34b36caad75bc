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
  if (keys.length > 1) keys.sort();
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    const v = writeValue(obj[k]);
    if (v === undefined) continue;
    out += (out.length > 1 ? ',' : '') + quoteKey(k) + ':' + v;
  }
  return out + '}';
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

/** Payload keys repeat across events: quote each once. Bounded so odd keys cannot grow it forever. */
const quotedKeys = new Map<string, string>();

function quoteKey(key: string): string {
  let q = quotedKeys.get(key);
  if (q === undefined) {
    q = JSON.stringify(key);
    if (quotedKeys.size >= 4096) quotedKeys.clear();
    quotedKeys.set(key, q);
  }
  return q;
}
