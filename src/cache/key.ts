/**
 * Cache keys. A key names one agent version applied to one input, independent of how the input's
 * object keys happen to be ordered. Keys are keyed fingerprints (HMAC under the redaction key), so a
 * key stored in the log or in the cache file cannot be matched against a guessed input without it.
 */
import { canonicalJson } from '../core/json.js';
import { fingerprinter } from '../compliance/key.js';

/** Computes the cache key of an agent call under one redaction key. */
export type CacheKeyer = (agentName: string, agentVersion: string, input: unknown) => string;

/**
 * A cache-key function bound to `hmacKey` (the redaction key; derive it once, call it per lookup):
 * the hex HMAC-SHA256 of the canonical JSON of `[agentName, agentVersion, input]`. Object key order
 * does not matter; bumping the agent's version changes every key, which is how a changed agent stops
 * reading outputs cached by the old one. The same key gives the same cache keys in every process.
 *
 * @throws TypeError (from the returned function) when `input` holds a value JSON cannot represent
 * (bigint, non-finite number).
 * @example
 * const key = cacheKeyer(process.env.KEEL_REDACT_KEY ?? '');
 * cache.get(key('vendor_extraction', '2', { invoiceId: 'INV-2024-00042' }));
 */
export function cacheKeyer(hmacKey: string | Uint8Array): CacheKeyer {
  const fingerprint = fingerprinter(hmacKey);
  return (agentName, agentVersion, input) => fingerprint(canonicalJson([agentName, agentVersion, input]));
}

/**
 * The cache key of one agent call under `hmacKey` ({@link cacheKeyer} for one call).
 *
 * @throws TypeError when `input` holds a value JSON cannot represent (bigint, non-finite number).
 * @example
 * const key = cacheKey('vendor_extraction', '2', { invoiceId: 'INV-2024-00042' }, process.env.KEEL_REDACT_KEY ?? '');
 * cache.get(key);
 */
export function cacheKey(
  agentName: string,
  agentVersion: string,
  input: unknown,
  hmacKey: string | Uint8Array,
): string {
  return cacheKeyer(hmacKey)(agentName, agentVersion, input);
}
