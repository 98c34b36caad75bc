/**
 * Stand-in for `./codec.ts` (branch i26-codec) with its exact contract, until that lands: the
 * identity codec (stored form = canonical JSON). Deleted when the real codec is merged.
 */
import { canonicalJson } from '../core/json.js';

/** Dictionary of a schema-4 file: strings <-> small integer ids (ids are >= 1, assigned by the store). */
export interface Dictionary {
  /** Id of `value`; assigns one when new (writer side, inside the append transaction). */
  code(value: string): number;
  /** String of `id`; throws (the store's CorruptLogError naming the id) when the file has none. */
  lookup(id: number): string;
}

/** Whether a string may be dictionary-coded (well-formed UTF-16, no NUL, <= 256 code units). */
export function codable(value: string): boolean {
  return value.length <= 256 && value.isWellFormed() && !value.includes('\0');
}

/** Stored form (TEXT) of an event's payload. */
export function encodePayload(
  _type: string,
  payload: Readonly<Record<string, unknown>>,
  _dict: Dictionary,
): string {
  return canonicalJson(payload);
}

/** Inverse of {@link encodePayload}. */
export function decodePayload(type: string, stored: string, _dict: Dictionary): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(stored);
  } catch (e) {
    throw new Error(`${type} payload: stored text is not JSON (${(e as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${type} payload: stored text is not a JSON object`);
  }
  return value as Record<string, unknown>;
}
