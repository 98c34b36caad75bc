/**
 * Canonical JSON: object keys sorted, no whitespace, `undefined` members dropped. The same value
 * always gives the same text, so it can be hashed (event chain, cache keys).
 */
export function canonicalJson(value: unknown): string {
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
