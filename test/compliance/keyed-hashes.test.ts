import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CacheBackend } from '../../src/backends.js';
import { isRedactionKeyFileError, loadOrCreateKeyFile } from '../../src/compliance/key.js';
import { simulatedClock } from '../../src/core/clock.js';
import { isConfigError } from '../../src/core/errors.js';
import { canonicalJson } from '../../src/core/json.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';
import type { SqliteEventStore } from '../../src/eventlog/sqlite.js';

const PRICING = { sim: { inputPer1K: 0.001, outputPer1K: 0.002 } };
const SSN = '078-05-1120';
let dir: string;
const open: Runtime<SqliteEventStore>[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'keel-keyed-'));
  vi.stubEnv('KEEL_REDACT_KEY', '');
});
afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

function runtime(db: string, hmacKey?: string): Runtime<SqliteEventStore> {
  const rt = createRuntime({
    db,
    clock: simulatedClock(),
    seed: 1,
    pricing: PRICING,
    metrics: false,
    tracing: false,
    ...(hmacKey !== undefined ? { redact: { hmacKey } } : {}),
  });
  open.push(rt);
  return rt;
}

function screener(calls: { n: number }) {
  return agent({
    name: 'ssn_screen',
    model: 'sim',
    cache: { ttlMs: 86_400_000 },
    run: (input: { ssn: string }) => {
      calls.n++;
      return Promise.resolve({
        value: { holder: `record for ${input.ssn}` },
        usage: { inputTokens: 10, outputTokens: 5 },
      });
    },
  });
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The attack from the issue: hash every SSN of an area with plain SHA-256 until one matches. */
function bruteForceSsn(target: string, shape: (ssn: string) => string): string | undefined {
  for (let group = 1; group <= 99; group++) {
    for (let serial = 1100; serial <= 1199; serial++) {
      const ssn = `078-${String(group).padStart(2, '0')}-${serial}`;
      if (sha256(shape(ssn)) === target) return ssn;
    }
  }
  return undefined;
}

async function closeAll(): Promise<void> {
  for (const r of open.splice(0)) await r.close();
}

describe('every hash of user content is keyed', () => {
  it("an SSN input's inputHash and cache key cannot be brute-forced with plain SHA-256", async () => {
    const rt = runtime(join(dir, 'k.db'));
    const input = { ssn: SSN };
    await rt.run(screener({ n: 0 }), input);
    const [started] = rt.store.query({ type: 'workflow.started' });
    const [miss] = rt.store.query({ type: 'cache.miss' });
    if (started?.type !== 'workflow.started' || miss?.type !== 'cache.miss')
      throw new Error('events missing');
    // the attack works on an unkeyed hash of this input …
    expect(bruteForceSsn(sha256(canonicalJson(input)), (s) => canonicalJson({ ssn: s }))).toBe(SSN);
    // … and fails on what Keel stored
    expect(bruteForceSsn(started.payload.inputHash, (s) => canonicalJson({ ssn: s }))).toBeUndefined();
    expect(
      bruteForceSsn(miss.payload.key, (s) => canonicalJson(['ssn_screen', '1', { ssn: s }])),
    ).toBeUndefined();
    expect(started.payload.inputHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('keeps the default key in a 0600 file beside the db: equal hashes and cache hits across a restart', async () => {
    const db = join(dir, 'k.db');
    const calls = { n: 0 };
    const first = runtime(db);
    await first.run(screener(calls), { ssn: SSN });
    await closeAll();
    const keyFile = `${db}.key`;
    expect(existsSync(keyFile)).toBe(true);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(keyFile, 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);

    const second = runtime(db);
    const result = await second.run(screener(calls), { ssn: SSN });
    expect(calls.n).toBe(1); // served by the cache file across the restart
    expect(result.value).toEqual({ holder: `record for ${SSN}` }); // the real value, not a token
    const started = second.store.query({ type: 'workflow.started' });
    const hashes = started.map((e) => (e.type === 'workflow.started' ? e.payload.inputHash : ''));
    expect(hashes).toHaveLength(2);
    expect(hashes[1]).toBe(hashes[0]);
    const [miss] = second.store.query({ type: 'cache.miss' });
    const [hit] = second.store.query({ type: 'cache.hit' });
    expect(
      hit?.type === 'cache.hit' && miss?.type === 'cache.miss' && hit.payload.key === miss.payload.key,
    ).toBe(true);
  });

  it('two logs given the same hmacKey hash alike; another key hashes differently', async () => {
    const key = 'deployment-secret-0123456789abcdef';
    const hashOf = async (db: string, k: string): Promise<string> => {
      const rt = runtime(db, k);
      await rt.run(screener({ n: 0 }), { ssn: SSN });
      const [e] = rt.store.query({ type: 'workflow.started' });
      return e?.type === 'workflow.started' ? e.payload.inputHash : '';
    };
    const a = await hashOf(join(dir, 'a.db'), key);
    const b = await hashOf(join(dir, 'b.db'), key);
    const c = await hashOf(join(dir, 'c.db'), 'another-secret-0123456789abcdef');
    expect(b).toBe(a);
    expect(c).not.toBe(a);
    expect(existsSync(join(dir, 'a.db.key'))).toBe(false); // a given key writes no key file
  });

  it('keeps hashes keyed when redaction is turned off', async () => {
    const rt = createRuntime({
      db: join(dir, 'off.db'),
      clock: simulatedClock(),
      pricing: PRICING,
      redact: false,
    });
    open.push(rt);
    const input = { ssn: SSN };
    await rt.run(screener({ n: 0 }), input);
    const [started] = rt.store.query({ type: 'workflow.started' });
    expect(started?.type === 'workflow.started' && started.payload.inputHash).not.toBe(
      sha256(canonicalJson(input)),
    );
  });

  it('stores cached outputs sealed: the cache file does not hold the raw value', async () => {
    const db = join(dir, 'k.db');
    const rt = runtime(db);
    await rt.run(screener({ n: 0 }), { ssn: SSN });
    await closeAll();
    const bytes = ['', '-wal', '-shm']
      .map((s) => (existsSync(`${db}.cache${s}`) ? readFileSync(`${db}.cache${s}`).toString('latin1') : ''))
      .join('');
    expect(bytes).toContain('ssn_screen'); // the file was written
    expect(bytes).not.toContain(SSN);
    expect(bytes).not.toContain('record for');
  });

  it('refuses a shared cache without a key: each process would key entries differently', () => {
    const backend: CacheBackend = {
      openCache: () => {
        throw new Error('not reached');
      },
    } as unknown as CacheBackend;
    let error: unknown;
    try {
      createRuntime({ db: ':memory:', pricing: PRICING, cache: backend, metrics: false });
    } catch (e) {
      error = e;
    }
    expect(isConfigError(error)).toBe(true);
    expect(String(error)).toContain('redact.hmacKey');
    expect(String(error)).toContain('same');
  });

  it('refuses a KEEL_REDACT_KEY shorter than 16 bytes', () => {
    vi.stubEnv('KEEL_REDACT_KEY', 'short');
    expect(() => createRuntime({ db: ':memory:', pricing: PRICING })).toThrow(/KEEL_REDACT_KEY.*16 bytes/);
  });

  it('names a damaged key file instead of silently making a new key', () => {
    const path = join(dir, 'bad.key');
    writeFileSync(path, 'not a key\n');
    let error: unknown;
    try {
      loadOrCreateKeyFile(path);
    } catch (e) {
      error = e;
    }
    expect(isRedactionKeyFileError(error)).toBe(true);
    expect(String(error)).toContain(path);
    expect(String(error)).toContain('redact.hmacKey');
    expect(readFileSync(path, 'utf8')).toBe('not a key\n');
  });

  it('two processes creating the key file at once agree on one key', async () => {
    const path = join(dir, 'race.key');
    const script = `import('${join(process.cwd(), 'src/compliance/key.ts')}').then((m) => process.stdout.write(m.loadOrCreateKeyFile(${JSON.stringify(path)}).toString('hex')))`;
    const { execFile } = await import('node:child_process');
    const run = (): Promise<string> =>
      new Promise((resolve, reject) =>
        execFile(process.execPath, ['--import', 'tsx', '-e', script], (e, out) =>
          e ? reject(new Error(e.message)) : resolve(out),
        ),
      );
    const [a, b] = await Promise.all([run(), run()]);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(b).toBe(a);
    expect(readFileSync(path, 'utf8').trim()).toBe(a);
  });
});
