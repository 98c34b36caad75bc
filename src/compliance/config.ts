/**
 * Redactor configuration: the public shape, its validation (zod, reported as a
 * {@link ConfigError} naming the field and the fix) and the resolved form the redactor runs on.
 */
import { randomBytes } from 'node:crypto';
import { isSupportedCountry } from 'libphonenumber-js/max';
import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { DEFAULT_PHONE_REGIONS, type BuiltinSelection } from './detectors.js';

/** Person-name redaction. */
export interface NameRedactionConfig {
  /** Names to redact wherever they appear, whole-word and case-insensitively (default none). */
  list?: readonly string[];
  /**
   * Also detect names from context: after an honorific (`Dr. Jane Smith`), after a label opening a
   * line (`Name: Jane Smith`), alone on the line after a sign-off (`Regards,\nJane`). Tuned for
   * precision over recall (default `true`).
   */
  detect?: boolean;
}

/** Phone-number redaction. */
export interface PhoneRedactionConfig {
  /**
   * Regions (ISO 3166-1 alpha-2, e.g. `'US'`, `'GB'`) whose national formats are recognised, such
   * as `030 1234567` for `'DE'` or `(415) 555-0132` for `'US'`: a number written without a country
   * code is redacted when libphonenumber-js finds it valid in one of these regions. Numbers written
   * with `+` (E.164) are redacted whatever their country. `[]` = international numbers only.
   * Each region adds one library search per digit run that looks like a phone number.
   * Default `['US', 'GB', 'DE', 'FR', 'IN']` (`'US'` covers the NANP countries, Canada included).
   */
  regions?: readonly string[];
}

/** A deployment-specific pattern, e.g. employee ids. */
export interface CustomPattern {
  /** Kind of value: the key in `counts` and, upper-cased, the token label. Letters, digits, `_`. */
  name: string;
  /** What to redact. A string is compiled with `new RegExp(pattern, 'g')`. */
  pattern: RegExp | string;
}

/** Which PII the redactor removes. Every detector is on unless set to `false`. */
export interface RedactorConfig {
  /** Email addresses (default `true`). */
  email?: boolean;
  /**
   * Phone numbers, found by libphonenumber-js: every number written with `+` (or `00`), and the
   * national formats of `regions`. `true` = the default regions (default `true`).
   */
  phone?: boolean | PhoneRedactionConfig;
  /**
   * Payment card numbers: 13–19 digits in an issuer range validator.js knows (Visa, Mastercard,
   * Amex, Diners, Discover, JCB, UnionPay incl. `81…`), Luhn-valid, unseparated or grouped with
   * spaces, dashes or dots (default `true`).
   */
  card?: boolean;
  /**
   * IBANs of every country ibantools lists, with that country's length and a valid mod-97
   * checksum, in any case, grouped with spaces or dashes or not at all (default `true`).
   */
  iban?: boolean;
  /** US social security numbers `NNN-NN-NNNN` or `NNN NN NNNN`, issued ranges only (default `true`). */
  ssn?: boolean;
  /** IPv4 and IPv6 addresses (default `true`). */
  ip?: boolean;
  /**
   * Credentials: provider keys in the formats of gitleaks' rules (OpenAI/Anthropic `sk-…`, AWS
   * access key ids and secret access keys, GitHub, GitLab, Slack, Stripe, Google, npm, PyPI,
   * SendGrid, Twilio, Hugging Face, DigitalOcean, Shopify, Databricks, Postman, Mailgun, Bedrock),
   * PEM private keys, JWTs, `Bearer …`, and high-entropy values of keys named like a secret
   * (`api_key=…`, `"client_secret": …`, `password=…`) (default `true`).
   */
  secrets?: boolean;
  /** Person names: `true` = context detection only, or a list plus detection (default `true`). */
  names?: boolean | NameRedactionConfig;
  /** Extra patterns, applied before the built-in detectors (default none). */
  custom?: readonly CustomPattern[];
  /**
   * Key of the HMAC that turns values into tokens, at least 16 bytes; the runtime also derives from
   * it the keys of `inputHash`, cache keys and the cache file's encryption. Give every process of a
   * deployment the same key (from a secret store) so tokens and hashes correlate across restarts.
   * Default in `createRuntime`: `KEEL_REDACT_KEY`, else a key file `<db>.key` (created once, mode
   * 0600), else a random key per process; in a standalone `createRedactor`: a random key.
   */
  hmacKey?: string | Buffer;
  /** Nesting depth walked by `redact`; deeper values are replaced by `⟨DEPTH_LIMIT⟩` (default 64). */
  maxDepth?: number;
}

/** Built-in kinds; custom pattern names must differ from these. */
const BUILTIN_KINDS = ['email', 'phone', 'card', 'iban', 'ssn', 'ip', 'secret', 'name'];

const flag = z.boolean({ error: 'must be true or false' }).optional();

const region = z
  .string({ error: 'must be a string' })
  .transform((r) => r.toUpperCase())
  .refine((r) => isSupportedCountry(r), {
    error: "must be a region code libphonenumber-js knows (ISO 3166-1 alpha-2 such as 'US', 'GB', 'DE')",
  });

const schema = z.strictObject(
  {
    email: flag,
    phone: z
      .union(
        [
          z.boolean(),
          z.strictObject({
            regions: z
              .array(region, { error: "must be an array of region codes such as ['US', 'GB']" })
              .optional(),
          }),
        ],
        { error: "must be true or false, or { regions: ['US', 'GB', …] }" },
      )
      .optional(),
    card: flag,
    iban: flag,
    ssn: flag,
    ip: flag,
    secrets: flag,
    names: z
      .union(
        [
          z.boolean(),
          z.strictObject({
            list: z.array(z.string({ error: 'must be a string' })).optional(),
            detect: flag,
          }),
        ],
        { error: 'must be true, false or { list?: string[], detect?: boolean }' },
      )
      .optional(),
    custom: z
      .array(
        z.strictObject({
          name: z
            .string({ error: 'must be a string' })
            .regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'must start with a letter and use only letters, digits and _')
            .refine((n) => !BUILTIN_KINDS.includes(n.toLowerCase()), {
              error: `must differ from the built-in kinds (${BUILTIN_KINDS.join(', ')})`,
            }),
          pattern: z.union([z.instanceof(RegExp), z.string().min(1)], {
            error: 'must be a RegExp or a non-empty string',
          }),
        }),
        { error: 'must be an array of { name, pattern }' },
      )
      .optional(),
    hmacKey: z
      .union([z.string(), z.instanceof(Uint8Array)], { error: 'must be a string or a Buffer' })
      .refine((k) => (typeof k === 'string' ? Buffer.byteLength(k) : k.byteLength) >= 16, {
        error: 'must be at least 16 bytes; use a random secret of 32 bytes from your secret store',
      })
      .optional(),
    maxDepth: z
      .number({ error: 'must be a number' })
      .int('must be a whole number')
      .min(1, 'must be at least 1')
      .optional(),
  },
  { error: 'must be an object of redaction options' },
);

/** A custom pattern ready to run. */
export interface ResolvedCustomPattern {
  kind: string;
  regex: RegExp;
}

/** Validated configuration with every default applied. */
export interface ResolvedRedactorConfig {
  builtins: BuiltinSelection;
  namesList: string[];
  namesDetect: boolean;
  custom: ResolvedCustomPattern[];
  key: Buffer;
  maxDepth: number;
}

function fieldOf(path: readonly PropertyKey[]): string {
  let out = 'redact';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `.${String(p)}`;
  return out;
}

function compileCustom(pattern: RegExp | string, field: string): RegExp {
  let regex: RegExp;
  if (typeof pattern === 'string') {
    try {
      regex = new RegExp(pattern, 'g');
    } catch (e) {
      throw new ConfigError(
        field,
        `is not a valid regular expression (${(e as Error).message}); escape special characters or pass a RegExp`,
      );
    }
  } else {
    regex = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, '') + 'g');
  }
  if (new RegExp(regex.source, regex.flags.replace('g', '')).test('')) {
    throw new ConfigError(field, 'matches the empty string; make it require at least one character');
  }
  return regex;
}

/** The field and message of a zod issue; for a union, the branch that got furthest into the value. */
function explain(issue: z.core.$ZodIssue, base: readonly PropertyKey[] = []): ConfigError {
  const path = [...base, ...issue.path];
  if (issue.code === 'unrecognized_keys') {
    const known = path.length === 0 ? Object.keys(schema.shape).join(', ') : 'see RedactorConfig';
    return new ConfigError(
      fieldOf([...path, issue.keys[0] ?? '?']),
      `is not a redaction option; known options: ${known}`,
    );
  }
  if (issue.code === 'invalid_union') {
    const deeper = issue.errors.flat().find((sub) => sub.path.length > 0);
    if (deeper !== undefined) return explain(deeper, path);
  }
  return new ConfigError(fieldOf(path), issue.message);
}

/**
 * Validates a redactor config and applies the defaults.
 *
 * @throws ConfigError naming the offending field (e.g. `redact.custom[0].pattern`).
 */
export function resolveRedactorConfig(config: RedactorConfig = {}): ResolvedRedactorConfig {
  const parsed = schema.safeParse(config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw issue === undefined ? new ConfigError('redact', 'is invalid') : explain(issue);
  }
  const c = parsed.data;
  const names = c.names ?? true;
  const phone = c.phone ?? true;
  const key = c.hmacKey === undefined ? randomBytes(32) : Buffer.from(c.hmacKey);
  return {
    builtins: {
      email: c.email ?? true,
      phone:
        phone === false
          ? false
          : {
              regions:
                phone === true
                  ? [...DEFAULT_PHONE_REGIONS]
                  : [...new Set(phone.regions ?? DEFAULT_PHONE_REGIONS)],
            },
      card: c.card ?? true,
      iban: c.iban ?? true,
      ssn: c.ssn ?? true,
      ip: c.ip ?? true,
      secrets: c.secrets ?? true,
    },
    namesList: typeof names === 'object' ? (names.list ?? []) : [],
    namesDetect: typeof names === 'object' ? (names.detect ?? true) : names,
    custom: (c.custom ?? []).map((p, i) => ({
      kind: p.name,
      regex: compileCustom(p.pattern, `redact.custom[${i}].pattern`),
    })),
    key,
    maxDepth: c.maxDepth ?? 64,
  };
}
