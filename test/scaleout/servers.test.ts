import pg from 'pg';
import { Redis } from 'ioredis';
import { expect, it } from 'vitest';
import {
  describePostgres,
  describeRedis,
  freshDatabase,
  redisPrefix,
  redisUrl,
} from '../support/scaleout.js';

describePostgres('the test Postgres server', () => {
  it('gives each caller an empty database of its own on loopback', async () => {
    const a = await freshDatabase();
    const b = await freshDatabase();
    expect(a).not.toBe(b);
    expect(new URL(a).hostname).toBe('127.0.0.1');
    const client = new pg.Client({ connectionString: a });
    await client.connect();
    try {
      const r = await client.query<{ n: string }>(
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public'",
      );
      expect(r.rows[0]?.n).toBe('0');
    } finally {
      await client.end();
    }
  });
});

describeRedis('the test Redis server', () => {
  it('answers on loopback', async () => {
    const redis = new Redis(redisUrl(), { lazyConnect: true });
    await redis.connect();
    try {
      const key = `${redisPrefix()}ping`;
      await redis.set(key, 'pong', 'PX', 10_000);
      expect(await redis.get(key)).toBe('pong');
      expect(redis.options.host).toBe('127.0.0.1');
    } finally {
      redis.disconnect();
    }
  });
});
