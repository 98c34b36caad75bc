/**
 * The redactor's hot-path work (issue 26: the required-character pre-check, the walk's table of
 * objects met, the memo lookup split from the scan) must not change a single output: every value
 * here is redacted by the current redactor and by the one before that work
 * (`./redact-oracle.ts`, kept unmodified), and both must give the same value and the same counts.
 * Inputs: the public fixtures the recall and false-positive suites measure, in their sentences,
 * each provider's secret format, and fast-check values no simulator produces (lone surrogates,
 * NUL, emails as object keys, URLs with user-info and percent-encoding, class instances, `Map`,
 * `Set`, `Error`, binary, shared references and cycles, walks past the linear table's size),
 * under the default configuration and under custom patterns and a names list.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RedactorConfig } from '../../src/compliance/config.js';
import { createRedactor, type Redactor } from '../../src/compliance/redact.js';
import { LISTED, filler, pii } from './arbitraries.js';
import { createRedactor as createOracle } from './redact-oracle.js';

const HMAC_KEY = 'equivalence-suite-key-0123456789';

function fixture<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`../fixtures/pii/${name}`, import.meta.url), 'utf8')) as T;
}

const flat = (v: string[] | Record<string, string[]>): string[] =>
  Array.isArray(v) ? v : Object.values(v).flat();

/** Every public fixture value: validator.js's lists, the names, the non-PII business values. */
const FIXTURE_VALUES = [
  ...flat(fixture('validator-js/emails.json')),
  ...flat(fixture('validator-js/cards.json')),
  ...flat(fixture('validator-js/ibans.json')),
  ...flat(fixture('validator-js/ips.json')),
  ...flat(fixture('validator-js/mobile-phones.json')),
  ...flat(fixture('names.json')),
  ...flat(fixture('non-pii.json')),
];

/** One made-up value per secret format the detectors know (every alternative of the prefixed rule). */
const SECRETS = [
  'sk-proj-a1B2c3D4e5F6g7H8i9J0k1L2',
  'sk_live_a1B2c3D4e5F6g7H8',
  'rk_test_0a1B2c3D4e5F6g7H8',
  'pk_prod_9z8Y7x6W5v4U3t2S',
  'ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R',
  'github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMN',
  'glpat-x1y2z3A4B5C6D7E8F9G0',
  'xoxb-1234567890-abcdefghij',
  'xapp-1-A0123456789-abcdefghij0123',
  'AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q',
  'npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8',
  'pypi-AgEIcHlwaS5vcmcCJDEyMzQ1Njc4LTkwYWItY2RlZi0xMjM0LTU2Nzg5MGFiY2RlZgACKlszLCJhYmMiXQAABiA',
  'SG.a1B2c3D4e5F6g7H8i9J0.k1L2m3N4o5P6q7R8s9T0u1V2',
  'SK0123456789abcdef0123456789abcdef',
  'hf_abcdefghijklmnopqrstuvwxyzABCDEFGH',
  'dop_v1_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
  'shpat_0123456789abcdef0123456789abcdef',
  'dapi0123456789abcdef0123456789abcdef',
  'PMAK-0123456789abcdef01234567-0123456789abcdef0123456789abcdef01',
  'key-0123456789abcdef0123456789abcdef',
  `ABSK${'A1b2'.repeat(30)}`,
  'AKIAIOSFODNN7EXAMPLE',
  'ASIAY34FZKBOKMUTVV7A',
  'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
  'https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX',
  'Authorization: Bearer a1B2c3D4e5F6g7H8i9J0k1L2',
  'api_key = "Zx8Qp2Lm9Vr4Tn6Ws1Yb"',
  'AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  'password: hunter2!x',
  'PASSWD=Sup3rS3cret',
  `-----BEGIN RSA PRIVATE KEY-----\n${'MIIEowIBAAKCAQEA'.repeat(6)}\n-----END RSA PRIVATE KEY-----`,
];

/** The sentences the recall suite puts values in, and the names suite's contexts. */
const SENTENCES = [
  (v: string) => v,
  (v: string) => `Please forward ${v} to the billing team.`,
  (v: string) => `Details:\n${v}\nSee attachment.`,
  (v: string) => `Reply within 24 hours (${v}), thanks!`,
  (v: string) => `Dr. ${v} approved the refund.`,
  (v: string) => `Name: ${v}\nAmount: 12.00`,
  (v: string) => `Name：${v}`, // a full-width colon: the label detector's only required character here
  (v: string) => `Dear ${v},\nthe invoice is attached.`,
  (v: string) => `Thanks for your help.\n\nBest regards,\n${v}`,
  (v: string) => `Yesterday ${v} approved the refund.`,
];

/** Configurations compared: the runtime's default, and ones with custom patterns and a names list. */
const CONFIGS: Record<string, RedactorConfig> = {
  default: {},
  'custom patterns and listed names': {
    names: { list: [...LISTED, 'Ana', 'Zoë Åkesson'] },
    custom: [
      { name: 'employee', pattern: /\bEMP-\d{4,6}\b/g },
      { name: 'matter', pattern: 'M#[a-f0-9]{6}' },
      { name: 'codename', pattern: /bench|in/g },
    ],
  },
  'phone and secrets off, no names': { phone: false, secrets: false, names: false },
};

function pair(config: RedactorConfig): [Redactor, Redactor] {
  return [createRedactor({ ...config, hmacKey: HMAC_KEY }), createOracle({ ...config, hmacKey: HMAC_KEY })];
}

/** Both redactors on `value`: equal value and counts; an untouched input returned as itself by both. */
function expectSame(current: Redactor, oracle: Redactor, value: unknown): void {
  const a = current.redact(value);
  const b = oracle.redact(value);
  expect(a.value).toStrictEqual(b.value);
  expect(a.counts).toEqual(b.counts);
  expect(a.value === value).toBe(b.value === value);
}

// ── hostile values ────────────────────────────────────────────────────────────────────────────

/** Characters that decide which detectors may match, and some that decide none. */
const DECISIVE = [...'@:.-_ /\n\t0123456789kKtTsSuUrRPpAJBwMDHFSeyx%?#=&+：èëÅ\u00a0⟨⟩'];

const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }), // lone surrogates, NUL, any code unit
  fc.string({ unit: fc.constantFrom(...DECISIVE), maxLength: 40 }),
  fc.string({ unit: 'grapheme-ascii', maxLength: 60 }),
  pii.map((p) => p.text),
  fc
    .tuple(pii, filler, fc.string({ unit: 'binary', maxLength: 6 }))
    .map(([p, f, junk]) => `${f}${junk}${p.text}`),
  fc.constantFrom(...SECRETS, ...FIXTURE_VALUES.slice(0, 200)),
  fc.webUrl({ withQueryParameters: true, withFragments: true }),
  fc
    .tuple(fc.emailAddress(), fc.webUrl())
    .map(
      ([e, u]) => u.replace('://', `://${encodeURIComponent(e)}:p%40ss@`) + `?to=${encodeURIComponent(e)}`,
    ),
);

class Customer {
  constructor(
    readonly email: string,
    readonly note: string,
  ) {}
}
class WithToJSON {
  constructor(private readonly inner: unknown) {}
  toJSON(): unknown {
    return { wrapped: this.inner };
  }
}

const { value: hostileValue } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileString,
    fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant(undefined)),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(hostileString, tie('value'), { maxKeys: 5 }), // emails and URLs as object keys
    fc.tuple(fc.emailAddress(), hostileString).map(([e, n]) => new Customer(e, n)),
    tie('value').map((v) => new WithToJSON(v)),
    fc.array(fc.tuple(hostileString, tie('value')), { maxLength: 3 }).map((entries) => new Map(entries)),
    fc.array(hostileString, { maxLength: 3 }).map((items) => new Set(items)),
    fc
      .tuple(hostileString, tie('value'))
      .map(([message, cause]) => Object.assign(new Error(message, { cause }), { code: message })),
    fc.webUrl().map((u) => new URL(u)),
    fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)),
    fc.date({ noInvalidDate: true }),
  ),
}));

/** A value holding `shared` twice (counted once), and itself (a cycle), in `extra` objects. */
function withSharedAndCycle(shared: unknown, extra: number): unknown {
  const root: Record<string, unknown> = { first: shared, list: [] as unknown[] };
  for (let i = 0; i < extra; i++) (root.list as unknown[]).push({ i, shared, note: `item ${i}` });
  root.again = shared;
  root.self = root;
  return root;
}

describe('redaction output is identical to the redactor before issue 26', () => {
  for (const [label, config] of Object.entries(CONFIGS)) {
    it(`public fixtures and secret formats in every sentence (${label})`, () => {
      const [current, oracle] = pair(config);
      for (const v of [...FIXTURE_VALUES, ...SECRETS]) {
        for (const sentence of SENTENCES) {
          const text = sentence(v);
          const a = current.redactString(text);
          const b = oracle.redactString(text);
          if (a.text !== b.text || JSON.stringify(a.counts) !== JSON.stringify(b.counts))
            expect({ text: a.text, counts: a.counts }, JSON.stringify(text)).toEqual({
              text: b.text,
              counts: b.counts,
            });
        }
      }
    });

    it(`hostile values, shared references and cycles (${label})`, () => {
      const [current, oracle] = pair(config);
      fc.assert(
        fc.property(hostileValue, fc.integer({ min: 0, max: 40 }), (value, extra) => {
          expectSame(current, oracle, value);
          expectSame(current, oracle, withSharedAndCycle(value, extra));
          // Again: the second pass reads the memo of strings found clean.
          expectSame(current, oracle, value);
        }),
        { numRuns: 300 },
      );
    });
  }

  it('the runtime’s own events (keys, names, paths, model ids, hex hashes, numbers) and user text', () => {
    const [current, oracle] = pair({});
    const events = (input: unknown, output: unknown, hash: string) => [
      {
        name: 'bench',
        topology: { kind: 'agent', name: 'bench', version: '1', model: 'bench-model', taskType: 'bench' },
        input,
        inputHash: hash,
        owner: 'vm/2fa51eff:6245:e82b1f08',
      },
      {
        path: 'bench/ticket_triage',
        agent: 'bench',
        agentVersion: '1',
        taskType: 'bench',
        model: 'gpt-4o-mini',
      },
      { path: 'bench', attempt: 1, usage: { inputTokens: 10, outputTokens: 5 }, costUsd: 0.00002 },
      { path: 'bench', output, confidence: 0.9, attempts: 1, latencyMs: 1 },
    ];
    fc.assert(
      fc.property(hostileValue, hostileValue, fc.stringMatching(/^[0-9a-f]{64}$/), (input, output, hash) => {
        for (const e of events(input, output, hash)) expectSame(current, oracle, e);
      }),
      { numRuns: 300 },
    );
  });
});

describe('the one deliberate difference: a walk started inside another', () => {
  it('a toJSON that redacts with the same redactor no longer wipes the outer walk’s table', () => {
    const shared = { email: 'erin@corp.example' };
    const make = (redactor: Redactor) => {
      const root: Record<string, unknown> = { first: shared };
      root.nested = { toJSON: () => redactor.redact({ other: 'ok' }).value };
      root.second = shared;
      root.self = root;
      return root;
    };
    const current = createRedactor({ hmacKey: HMAC_KEY });
    const { value, counts } = current.redact(make(current));
    const out = value;
    // The shared object is walked once (one finding, one copy) and the cycle is still a cycle.
    expect(counts).toEqual({ email: 1 });
    expect(out.second).toBe(out.first);
    expect(out.self).toBe('⟨CIRCULAR⟩');
    expect(out.nested).toEqual({ other: 'ok' });

    // Before, the nested walk cleared the shared table: the shared object was counted again and
    // the cycle was walked once more before it was seen.
    const oracle = createOracle({ hmacKey: HMAC_KEY });
    const old = oracle.redact(make(oracle));
    expect(old.counts.email).toBeGreaterThan(1);
    expect(old.value.self).not.toBe('⟨CIRCULAR⟩');
  });
});
