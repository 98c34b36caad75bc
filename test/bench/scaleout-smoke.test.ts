/**
 * Smoke test of the scale-out benchmark (`bench/scaleout.bench.ts`): each measuring function runs
 * for a tiny count against the test servers and returns finite figures for the work it was given.
 * Nothing here asserts a speed — benchmarks print ratios, they are not timed tests.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Cost } from '../../bench/harness.js';
import {
  dropSchemas,
  filledSchema,
  freshSchema,
  makeEvents,
  rawAppend,
  rawScan,
  storeAppend,
  storeScan,
  storeVerify,
} from '../../bench/scaleout-postgres.js';
import { openRedisBench, redisSettings, type RedisBench } from '../../bench/scaleout-redis.js';
import { sizes } from '../../bench/scaleout.bench.js';
import {
  describePostgres,
  describeRedis,
  freshDatabase,
  redisPrefix,
  redisUrl,
} from '../support/scaleout.js';

function expectFiniteCost(c: Cost): void {
  expect(Number.isFinite(c.wallUs) && c.wallUs > 0).toBe(true);
  expect(Number.isFinite(c.cpuUs) && c.cpuUs >= 0).toBe(true);
}

it('keeps --quick runs far smaller than full ones', () => {
  const quick = sizes(true);
  const full = sizes(false);
  expect(quick.rawAppends).toBeLessThan(full.rawAppends);
  expect(quick.storeAppends(64, 1)).toBeLessThan(full.storeAppends(64, 1));
  expect(quick.scanEvents).toBeLessThan(full.scanEvents);
  expect(quick.redisConcurrent).toBeLessThan(full.redisConcurrent);
});

describePostgres('scale-out bench: Postgres', () => {
  let url = '';
  const schemas: string[] = [];
  beforeAll(async () => {
    url = await freshDatabase();
  });
  afterAll(() => dropSchemas(url, schemas));

  it('appends the same events raw and through the store, both committing every event', async () => {
    const events = makeEvents(24, 8);
    const rawSchema = await freshSchema(url);
    const storeSchema = await freshSchema(url);
    schemas.push(rawSchema, storeSchema);
    const raw = await rawAppend(url, rawSchema, events, 4, 2);
    expectFiniteCost(raw.cost);
    expect(raw.events).toBe(24);
    expect(raw.eventsPerCommit).toBe(2);
    const store = await storeAppend(url, storeSchema, events, 4, 2);
    expectFiniteCost(store.cost);
    expect(store.events).toBe(24);
    expect(store.eventsPerCommit).toBeGreaterThanOrEqual(2);
  });

  it('scans and verifies a log the raw side wrote, which chains like the store', async () => {
    const schema = await filledSchema(url, 1_234);
    schemas.push(schema);
    const raw = await rawScan(url, schema);
    const store = await storeScan(url, schema);
    const verified = await storeVerify(url, schema);
    for (const r of [raw, store, verified]) {
      expectFiniteCost(r.cost);
      expect(r.events).toBe(1_234);
    }
    expect(verified.ok).toBe(true);
  });
});

describeRedis('scale-out bench: Redis', () => {
  let bench: RedisBench | undefined;
  afterAll(() => bench?.close());

  it('measures cache hits, the miss path and the budget next to raw ioredis, then removes its keys', async () => {
    const prefix = redisPrefix();
    bench = await openRedisBench(redisUrl(), prefix);
    for (const inFlight of [1, 8]) {
      expectFiniteCost(await bench.cacheHit(20, inFlight));
      expectFiniteCost(await bench.rawGet(20, inFlight));
      expectFiniteCost(await bench.cacheMiss(20, inFlight));
      expectFiniteCost(await bench.rawMiss(20, inFlight));
      expectFiniteCost(await bench.budget(20, inFlight));
      expectFiniteCost(await bench.rawIncr(20, inFlight));
    }
    const redis = new Redis(redisUrl());
    try {
      expect((await redis.keys(`${prefix}*`)).length).toBeGreaterThan(0);
      const b = bench;
      bench = undefined;
      await b.close();
      expect(await redis.keys(`${prefix}*`)).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });

  it('reports the server version', async () => {
    const settings = await redisSettings(redisUrl());
    expect(settings.redis_version).toMatch(/^\d+\.\d+/);
  });
});
