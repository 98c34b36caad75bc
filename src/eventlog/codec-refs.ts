/**
 * Which dictionary ids a stored (schema 4+) payload refers to: what retention must keep of
 * `keel_strings` for a remaining row. A key-coded row (`[mask, …values, extras?]`, `codec.ts`)
 * refers to an id exactly where a dict- or json-kind key's value is a bare integer; a payload stored
 * whole (`{…}` or `[-1, …]`), an extras object and a verbatim BLOB refer to none.
 *
 * Retention reads every remaining row, so this scans the text without building values: the
 * mask, then each present value skipped (strings, nested arrays and objects) and the integers of
 * coded keys kept. A row it does not recognise as exactly that shape goes to the codec's own decoder
 * with a dictionary that records the ids asked for ({@link decodedRefs}), which either answers or
 * throws. `test/eventlog/retention-strings.test.ts` checks the two agree on every row of real logs
 * (a row altered only in a plain key's value may scan though the decoder refuses it: its coded ids
 * are kept as found).
 * Internal to src/eventlog.
 */
import { PAYLOAD_KEYS, decodePayload, type Dictionary, type KeyKind } from './codec.js';

/** Per event type, per stored key position: whether a bare integer there is a dictionary id. */
const CODED: ReadonlyMap<string, readonly boolean[]> = new Map(
  Object.entries(PAYLOAD_KEYS).map(([type, keys]) => [
    type,
    Object.values(keys as Record<string, KeyKind>).map((kind) => kind === 'dict' || kind === 'json'),
  ]),
);

/** Records every id the decoder looks up; answers a string every key kind reads (`"0"` is JSON). */
class RecordingDictionary implements Dictionary {
  ids: Set<number> = new Set();

  code(value: string): number {
    throw new TypeError(
      `codec-refs: decoding never codes (asked to code ${JSON.stringify(value.slice(0, 40))})`,
    );
  }

  lookup(id: number): string {
    this.ids.add(id);
    return '0';
  }
}

const recorder = new RecordingDictionary();

/**
 * Adds to `into` the dictionary ids the stored payload `stored` of a `type` row refers to, by the
 * codec's decoder (exact, slower than {@link addPayloadRefs}).
 *
 * @throws PayloadDecodeError when the row cannot be read.
 */
export function decodedRefs(type: string, stored: string, into: Set<number>): void {
  recorder.ids = into;
  try {
    decodePayload(type, stored, recorder);
  } finally {
    recorder.ids = new Set();
  }
}

const COMMA = 0x2c;
const CLOSE_ARRAY = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const ZERO = 0x30;
const NINE = 0x39;

/**
 * Adds to `into` the dictionary ids the stored payload `stored` of a `type` row refers to. A BLOB
 * (a verbatim schema-3 payload) and a payload stored whole refer to none.
 *
 * @throws PayloadDecodeError when the row cannot be read (altered, or written by a newer Keel):
 *   what it refers to is then unknown, and the caller must keep every string.
 */
export function addPayloadRefs(type: string, stored: unknown, into: Set<number>): void {
  if (typeof stored !== 'string' || stored.charCodeAt(0) !== 0x5b /* [ */) {
    // `{…}` (stored whole) holds no ids; anything else is for the decoder to judge.
    if (typeof stored === 'string' && stored.charCodeAt(0) !== 0x7b) decodedRefs(type, stored, into);
    return;
  }
  const coded = CODED.get(type);
  if (coded === undefined || !scan(stored, coded, into)) decodedRefs(type, stored, into);
}

/**
 * The fast path: true when `text` is `[mask,v1,…]` or `[mask,v1,…,{extras}]` with a mask within
 * the type's keys, having added the integers at coded positions; false (nothing trusted) otherwise.
 */
function scan(text: string, coded: readonly boolean[], into: Set<number>): boolean {
  let at = 1;
  let mask = 0;
  const maskStart = at;
  for (let c = text.charCodeAt(at); c >= ZERO && c <= NINE; c = text.charCodeAt(++at)) {
    mask = mask * 10 + (c - ZERO);
  }
  if (at === maskStart || at - maskStart > 10 || mask >= 2 ** coded.length) return false;
  if (at - maskStart > 1 && text.charCodeAt(maskStart) === ZERO) return false;
  const found: number[] = [];
  for (let i = 0; i < coded.length; i++) {
    if ((mask & (1 << i)) === 0) continue;
    if (text.charCodeAt(at) !== COMMA) return false;
    const start = ++at;
    at = skipValue(text, at);
    if (at < 0) return false;
    if (coded[i] === true) {
      const id = idAt(text, start, at);
      if (id === undefined) return false;
      if (id >= 0) found.push(id);
    }
  }
  // Then the end, or the extras object (no ids) and the end.
  if (text.charCodeAt(at) === COMMA) {
    if (text.charCodeAt(at + 1) !== 0x7b /* { */) return false;
    at = skipValue(text, at + 1);
    if (at < 0) return false;
  }
  if (at !== text.length - 1 || text.charCodeAt(at) !== CLOSE_ARRAY) return false;
  for (const id of found) into.add(id);
  return true;
}

/**
 * What the coded key's value `text[start, end)` is: an id (plain digits, as the encoder writes
 * ids), -1 for a value that is no id (a string, a wrapped number or array, an object, a literal),
 * or `undefined` for anything else (a number written otherwise, whitespace): the decoder judges it.
 */
function idAt(text: string, start: number, end: number): number | undefined {
  const first = text.charCodeAt(start);
  if (first === QUOTE || first === 0x5b || first === 0x7b) return -1;
  if (first === 0x74 /* t */ || first === 0x66 /* f */ || first === 0x6e /* n */) return -1;
  if (end - start > 15 || (first === ZERO && end - start > 1)) return undefined;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < ZERO || c > NINE) return undefined;
  }
  return Number(text.slice(start, end));
}

/**
 * The index just after the JSON value starting at `at` (which must be followed by `,` or `]` of
 * the row), or -1 when it is not well formed enough to skip.
 */
function skipValue(text: string, at: number): number {
  let depth = 0;
  let i = at;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      for (i++; i < text.length; i++) {
        const s = text.charCodeAt(i);
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
      if (i >= text.length) return -1;
    } else if (c === 0x5b || c === 0x7b) depth++;
    else if (c === CLOSE_ARRAY || c === 0x7d) {
      if (depth === 0) break;
      depth--;
    } else if (c === COMMA && depth === 0) break;
  }
  if (depth !== 0 || i >= text.length || i === at) return -1;
  return i;
}
