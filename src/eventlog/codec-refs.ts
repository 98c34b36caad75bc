/**
 * Which dictionary ids a stored (schema 4+) payload refers to: what retention must keep of
 * `keel_strings` for a remaining row. Answered by the codec's own decoder with a dictionary that
 * records the ids it is asked for, so it follows `codec.ts` exactly (dict- and json-kind keys of a
 * key-coded row; nothing for a payload stored whole, an extras object or a verbatim BLOB).
 * Internal to src/eventlog.
 */
import { decodePayload, type Dictionary } from './codec.js';

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
 * Adds to `into` the dictionary ids the stored payload `stored` of a `type` row refers to. A BLOB
 * (a verbatim schema-3 payload) refers to none.
 *
 * @throws PayloadDecodeError when the row cannot be read (altered, or written by a newer Keel):
 *   what it refers to is then unknown, and the caller must keep every string.
 */
export function addPayloadRefs(type: string, stored: unknown, into: Set<number>): void {
  if (typeof stored !== 'string') return;
  // A payload stored whole (`{…}`) holds no ids: the common case of an unlisted type skips parsing.
  if (stored.charCodeAt(0) === 0x7b /* { */) return;
  recorder.ids = into;
  try {
    decodePayload(type, stored, recorder);
  } finally {
    recorder.ids = new Set();
  }
}
