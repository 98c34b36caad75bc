/**
 * Sealing of the cache's durable tiers: values are kept in the file encrypted (AES-256-GCM under a
 * key derived from the redaction key), so the cache file — which holds raw, unredacted outputs —
 * shows none of them to someone who reads the file without the key. Internal to `src/cache`.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { CacheTier, StoredEntry } from './entry.js';

/** HKDF `info` of the sealing sub-key. */
const SEAL_INFO = 'keel cache seal v1';
/** Prefix of a sealed value: version, then base64 of iv (12) | tag (16) | ciphertext. */
const SEALED_PREFIX = 's1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Encrypts and decrypts cached values under one key. */
export interface Sealer {
  /** `json` encrypted, as text (`s1:` + base64). */
  seal(this: void, json: string): string;
  /** The JSON sealed in `stored`; `undefined` when it was not sealed under this key. */
  open(this: void, stored: string): string | undefined;
}

/**
 * A sealer under a key derived (HKDF) from `hmacKey`, the redaction key. Each value gets a random
 * IV; GCM's tag makes a value sealed under another key (or altered) fail to open.
 */
export function createSealer(hmacKey: string | Uint8Array): Sealer {
  const key = Buffer.from(hkdfSync('sha256', hmacKey, Buffer.alloc(0), SEAL_INFO, 32));
  return {
    seal(json) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([cipher.update(json, 'utf8'), cipher.final()]);
      return SEALED_PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
    },
    open(stored) {
      if (!stored.startsWith(SEALED_PREFIX)) return undefined;
      const raw = Buffer.from(stored.slice(SEALED_PREFIX.length), 'base64');
      if (raw.length < IV_BYTES + TAG_BYTES) return undefined;
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
        decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
        return Buffer.concat([
          decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)),
          decipher.final(),
        ]).toString('utf8');
      } catch {
        return undefined;
      }
    },
  };
}

/**
 * Wraps `tier` so every value is encrypted on `put` and decrypted on `get`. An entry that does not
 * decrypt under this key (written under another key, or before sealing) reads as a miss.
 */
export function sealedTier(tier: CacheTier, hmacKey: string | Uint8Array): CacheTier {
  const sealer = createSealer(hmacKey);
  return {
    get(k) {
      const entry = tier.get(k);
      if (entry === undefined) return undefined;
      const json = sealer.open(entry.json);
      return json === undefined ? undefined : { ...entry, json };
    },
    put(k, entry: StoredEntry) {
      tier.put(k, { ...entry, json: sealer.seal(entry.json) });
    },
    deleteKey: (k) => tier.deleteKey(k),
    deleteAgent: (agent) => tier.deleteAgent(agent),
    deleteAll: () => tier.deleteAll(),
    purge: (cutoff, limit) => tier.purge(cutoff, limit),
    close: () => tier.close(),
  };
}
