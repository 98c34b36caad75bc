/**
 * The redaction key and the keyed fingerprints made with it. Every hash Keel keeps of user content
 * (`workflow.started.inputHash`, cache keys) is an HMAC under a key derived from the redaction key,
 * so equal inputs still match — across restarts when the key is kept — but nobody without the key
 * can confirm a guess (an SSN cannot be brute-forced out of a fingerprint).
 *
 * Where the key comes from, first match wins: `redact.hmacKey`, `KEEL_REDACT_KEY`, a key file beside
 * the SQLite log (`<db>.key`, 32 random bytes created once, mode 0600), or — for a log with no file
 * (`':memory:'`, Postgres) — a random key per process.
 */
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { createHmac, hash, hkdfSync, randomBytes } from 'node:crypto';
import { KeelError, isKeelError } from '../core/errors.js';

/** Bytes of a generated key. */
const KEY_BYTES = 32;
/** A key file holds the key as 64 lower-case hex digits and a newline. */
const KEY_FILE_FORMAT = /^[0-9a-f]{64}$/;
/** HKDF `info` of the fingerprint sub-key: fingerprints never equal a token's HMAC of the same text. */
const FINGERPRINT_INFO = 'keel fingerprint v1';

/** The key file cannot be read, created or understood. */
export class RedactionKeyFileError extends KeelError {
  constructor(
    /** The key file's path. */
    readonly path: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(
      'REDACTION_KEY_FILE',
      `Redaction key file ${path}: ${problem}. Give the key from your secret store instead ` +
        `(redact.hmacKey or KEEL_REDACT_KEY, at least 16 bytes), or restore the file Keel created (64 hex digits)`,
      options,
    );
  }
}

/** True when `e` is a {@link RedactionKeyFileError}. */
export function isRedactionKeyFileError(e: unknown): e is RedactionKeyFileError {
  return isKeelError(e) && (e as { code?: unknown }).code === 'REDACTION_KEY_FILE';
}

function errnoCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function readKeyFile(path: string): Buffer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new RedactionKeyFileError(path, `cannot be read (${errnoCode(e) ?? String(e)})`, { cause: e });
  }
  const hex = text.trim();
  if (!KEY_FILE_FORMAT.test(hex))
    throw new RedactionKeyFileError(path, 'does not hold a key of 64 hex digits');
  return Buffer.from(hex, 'hex');
}

/**
 * The key kept in `path`, created (32 random bytes, mode 0600) when the file does not exist yet.
 * Two processes creating it at once agree on one key: each writes a temporary file and links it
 * into place, and the one that loses the race reads the winner's.
 *
 * @throws RedactionKeyFileError when the file cannot be read or created, or holds no key.
 */
export function loadOrCreateKeyFile(path: string): Buffer {
  try {
    return readKeyFile(path);
  } catch (e) {
    if (errnoCode((e as { cause?: unknown }).cause) !== 'ENOENT') throw e;
  }
  const key = randomBytes(KEY_BYTES);
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, `${key.toString('hex')}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, path);
      return key;
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw e;
      return readKeyFile(path); // another process created it first: use its key
    }
  } catch (e) {
    if (isRedactionKeyFileError(e)) throw e;
    throw new RedactionKeyFileError(path, `cannot be created (${errnoCode(e) ?? String(e)})`, { cause: e });
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // never created, or already gone
    }
  }
}

/** The random key of this process, shared by its runtimes that have no key file and no given key. */
let processKey: Buffer | undefined;

/** Where a runtime's redaction key came from. */
export type RedactionKeySource = 'config' | 'env' | 'file' | 'process';

/** A redaction key and where it came from. */
export interface ResolvedRedactionKey {
  key: Buffer;
  source: RedactionKeySource;
  /** The key file, when `source` is `'file'`. */
  path?: string;
}

/**
 * Resolves the redaction key: `given` (from config), else `env` (KEEL_REDACT_KEY), else the key file
 * at `keyFile` (created when missing), else one random key per process.
 *
 * @throws RedactionKeyFileError when the key file is unusable.
 */
export function resolveRedactionKey(
  given: string | Uint8Array | undefined,
  env: string | undefined,
  keyFile: string | undefined,
): ResolvedRedactionKey {
  if (given !== undefined) return { key: Buffer.from(given), source: 'config' };
  if (env !== undefined && env !== '') return { key: Buffer.from(env), source: 'env' };
  if (keyFile !== undefined) return { key: loadOrCreateKeyFile(keyFile), source: 'file', path: keyFile };
  processKey ??= randomBytes(KEY_BYTES);
  return { key: processKey, source: 'process' };
}

/** A keyed fingerprint of a text: hex HMAC-SHA256 (64 digits). */
export type Fingerprint = (text: string) => string;

/**
 * The keyed fingerprint of user content under `key`: HMAC-SHA256 with a sub-key derived by HKDF,
 * so it never coincides with a redaction token's HMAC of the same text. Equal texts give equal
 * fingerprints under the same key; without the key a guess cannot be checked.
 *
 * @example
 * const fingerprint = fingerprinter(process.env.KEEL_REDACT_KEY ?? '');
 * fingerprint('{"ssn":"078-05-1120"}'); // 64 hex digits, not sha256 of the text
 */
export function fingerprinter(key: string | Uint8Array): Fingerprint {
  const subKey = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), FINGERPRINT_INFO, 32));
  return pooledHmac(subKey);
}

/** HMAC-SHA256 of `text` (UTF-8) under `key`, as hex, by `createHmac`. */
function hmacHex(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text).digest('hex');
}

/** SHA-256's block size: an HMAC key (here the 32-byte sub-key) is padded to it. */
const BLOCK = 64;
/** Texts up to this many UTF-16 units are hashed in the pooled buffer; longer ones by `createHmac`. */
const POOLED_MAX_LENGTH = 4096;

/**
 * {@link hmacHex} under `key` (≤ 64 bytes), computed as RFC 2104 defines HMAC — SHA-256((K ⊕ opad)
 * ‖ SHA-256((K ⊕ ipad) ‖ text)) — by two one-shot `crypto.hash` calls (Node ≥ 20.12, as the event
 * log's chain hash) over two buffers made once per fingerprinter (12.4 KB): ~0.9 µs instead of
 * ~1.6 µs per short input on Node 20, where `createHmac` builds a Hash object and runs the key
 * schedule on every call. The text's UTF-8 is written behind the inner pad (a lone surrogate
 * becomes U+FFFD, as `Hmac.update` writes it); the inner digest goes in as hex written back to
 * bytes, because a `'buffer'` digest costs more than a hex one. The buffers are only used
 * synchronously. Texts over {@link POOLED_MAX_LENGTH} go to `createHmac`, whose fixed cost no
 * longer matters there.
 */
function pooledHmac(key: Buffer): Fingerprint {
  const inner = Buffer.alloc(BLOCK + POOLED_MAX_LENGTH * 3, 0x36);
  const outer = Buffer.alloc(BLOCK + 32, 0x5c);
  for (let i = 0; i < key.length; i++) {
    inner[i] = 0x36 ^ (key[i] as number);
    outer[i] = 0x5c ^ (key[i] as number);
  }
  return (text) => {
    if (text.length > POOLED_MAX_LENGTH) return hmacHex(key, text);
    const n = inner.write(text, BLOCK, 'utf8');
    outer.write(hash('sha256', inner.subarray(0, BLOCK + n), 'hex'), BLOCK, 'hex');
    return hash('sha256', outer, 'hex');
  };
}
