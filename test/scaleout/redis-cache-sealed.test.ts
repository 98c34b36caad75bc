/**
 * The Redis cache keeps no raw output: values (and single-flight announcements) are sealed under a
 * key derived from the redaction key, keys are keyed HMACs; processes with the same key share hits.
 */
import { afterEach, expect, it } from 'vitest';
import { simulatedClock } from '../../src/core/clock.js';
import { createRuntime } from '../../src/runtime.js';
import { redis } from '../../src/redis/index.js';
import { agent } from '../../src/supervisor/agent.js';
import { describeRedis, redisPrefix, redisUrl } from '../support/scaleout.js';
import { redisCaches } from './redis-cache-helpers.js';

const EMAIL = 'jane.doe@example.co.uk';
const SSN = '078-05-1120';
const KEY = 'fleet-redaction-key-0123456789abcdef';

describeRedis('the Redis cache holds no raw output', () => {
  const caches = redisCaches();
  const closing: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closing.splice(0)) await close();
    await caches.closeAll();
  });

  function runtime(prefix: string, hmacKey: string, calls: { n: number }) {
    const rt = createRuntime({
      db: ':memory:',
      clock: simulatedClock(),
      pricing: { sim: { inputPer1K: 0.001, outputPer1K: 0.002 } },
      cache: redis(redisUrl(), { keyPrefix: prefix }),
      redact: { hmacKey },
      metrics: false,
      tracing: false,
    });
    closing.push(() => rt.close());
    const lookup = agent({
      name: 'lookup',
      model: 'sim',
      cache: { ttlMs: 86_400_000 },
      run: (input: { ssn: string }) => {
        calls.n++;
        return Promise.resolve({ value: { owner: EMAIL, ssn: input.ssn } });
      },
    });
    return { rt, lookup };
  }

  it('stores sealed values under keyed keys; the same key hits across processes, another misses', async () => {
    const prefix = redisPrefix();
    const calls = { n: 0 };
    const a = runtime(prefix, KEY, calls);
    expect((await a.rt.run(a.lookup, { ssn: SSN })).value).toEqual({ owner: EMAIL, ssn: SSN });
    const raw = caches.raw();
    const keys = await raw.keys(`${prefix}*`);
    expect(keys.length).toBeGreaterThan(0);
    const values = await Promise.all(
      keys.map(async (k) => ((await raw.type(k)) === 'string' ? raw.get(k) : '')),
    );
    const everything = keys.join('\n') + values.join('\n');
    expect(everything).toContain('lookup'); // the entry is there …
    expect(everything).not.toContain(EMAIL); // … sealed
    expect(everything).not.toContain(SSN);

    const b = runtime(prefix, KEY, calls);
    expect((await b.rt.run(b.lookup, { ssn: SSN })).value).toEqual({ owner: EMAIL, ssn: SSN });
    expect(calls.n).toBe(1); // a hit in the second "process"
    const c = runtime(prefix, 'another-key-0123456789abcdef', calls);
    await c.rt.run(c.lookup, { ssn: SSN });
    expect(calls.n).toBe(2); // another key: its own keys, no hit
  });
});
