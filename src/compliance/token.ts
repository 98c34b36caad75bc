/**
 * Pseudonymous tokens: `⟨EMAIL:1f3a9c2b4d5e⟩` is the kind plus the first 48 bits of
 * HMAC-SHA256(key, kind NUL normalised value). With the same key the same value always gives the
 * same token, so "the same customer in 40 events" survives redaction; without the key the value
 * cannot be recovered or confirmed by hashing guesses. Internal to `src/compliance`.
 */
import { createHmac } from 'node:crypto';

/** Hex digits of the HMAC kept in a token (48 bits: collisions stay rare across millions of values). */
export const TOKEN_HEX_LENGTH = 12;

/** Regex source of a token, so already-redacted text is recognised and left alone. */
export const TOKEN_SOURCE = String.raw`⟨[A-Z][A-Z0-9_]*:[0-9a-f]{${TOKEN_HEX_LENGTH}}⟩`;

/** Tokens remembered per pseudonymiser: the same few values recur across a workflow's events. */
const MEMO_LIMIT = 4096;

/** Turns a finding into its token. */
export type Pseudonymise = (kind: string, normalised: string) => string;

/** A pseudonymiser bound to one key, with a small memo (cleared when full, so memory stays bounded). */
export function pseudonymiser(key: Buffer): Pseudonymise {
  const memo = new Map<string, string>();
  return (kind, normalised) => {
    const memoKey = `${kind}\u0000${normalised}`;
    const hit = memo.get(memoKey);
    if (hit !== undefined) return hit;
    const hex = createHmac('sha256', key).update(memoKey).digest('hex').slice(0, TOKEN_HEX_LENGTH);
    const token = `⟨${kind.toUpperCase()}:${hex}⟩`;
    if (memo.size >= MEMO_LIMIT) memo.clear();
    memo.set(memoKey, token);
    return token;
  };
}
