/**
 * Cache keys. A key names one agent version applied to one input, independent of how the input's
 * object keys happen to be ordered.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../core/json.js';

/**
 * The cache key of an agent call: hex sha256 of the canonical JSON of `[agentName, agentVersion,
 * input]`. Object key order does not matter; bumping the agent's version changes every key, which
 * is how a changed agent stops reading outputs cached by the old one.
 *
 * @throws TypeError when `input` holds a value JSON cannot represent (bigint, non-finite number).
 * @example
 * const key = cacheKey('vendor_extraction', '2', { invoiceId: 'INV-2024-00042' });
 * cache.get(key);
 */
export function cacheKey(agentName: string, agentVersion: string, input: unknown): string {
  return createHash('sha256')
    .update(canonicalJson([agentName, agentVersion, input]))
    .digest('hex');
}
