/**
 * The budget shared across processes on Redis, against the real test server: several connections
 * (and two OS processes) reserve and settle against one budget, which must never be exceeded, and
 * alert once per scope, threshold and day across all of them.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { isConfigError } from '../../src/core/errors.js';
import type { BudgetConfig } from '../../src/cost/budget.js';
import {
  BudgetsClosedError,
  isBudgetExceededError,
  isBudgetUnavailableError,
  type BudgetUnavailableError,
} from '../../src/cost/errors.js';
import { createPricing } from '../../src/cost/pricing.js';
import type { EventPayloads } from '../../src/eventlog/events.js';
import { createSharedBudgets, type SharedBudgetOptions, type SharedBudgets } from '../../src/redis/budget.js';
import { RedisConnection } from '../../src/redis/connection.js';
import { describeRedis, redisPrefix, redisUrl } from '../support/scaleout.js';
import { CHILD_BUDGET, CHILD_CALL_USD } from './shared-budget-config.js';

type Alert = EventPayloads['budget.alert'];

const pricing = createPricing();
/** Noon UTC, 2026-01-01: no day boundary unless a test moves the clock there. */
const NOON = Date.UTC(2026, 0, 1, 12);
const CHILD = fileURLToPath(new URL('./shared-budget-child.ts', import.meta.url));

let members: Member[] = [];
let connections: RedisConnection[] = [];
afterEach(async () => {
  const [ms, cs] = [members, connections];
  members = [];
  connections = [];
  for (const m of ms) m.b.stop();
  // A client that never reached its server would keep QUIT in its offline queue while it retries
  // (RedisConnection.close() would wait for the retries): drop such clients instead of closing
  // them, and let the timeouts of their queued writes pass in virtual time.
  const ready: RedisConnection[] = [];
  for (const c of cs) {
    const client = (() => {
      try {
        return c.client();
      } catch {
        return undefined; // already closed
      }
    })();
    if (client?.status === 'ready') ready.push(c);
    else client?.disconnect();
  }
  for (const m of ms) await m.clock.advanceAsync(60_000);
  await Promise.all(ms.map((m) => m.b.flush()));
  for (const c of ready) await c.close();
});

interface Member {
  b: SharedBudgets;
  clock: SimulatedClock;
  alerts: Alert[];
  connection: RedisConnection;
}

function connect(prefix: string, url = redisUrl()): RedisConnection {
  const c = new RedisConnection(url, { keyPrefix: prefix });
  connections.push(c);
  return c;
}

/** A member on a loopback port nothing listens on. */
function unreachableMember(port: number, options: SharedBudgetOptions & { user?: string }): Member {
  const { user, ...rest } = options;
  const m = member(
    redisPrefix(),
    { dailyUsd: 1 },
    { ...rest, url: `redis://${user ?? ''}127.0.0.1:${port}` },
  );
  return m;
}

/** One process of the fleet: its own connection and clock, on the fleet's key prefix. */
function member(
  prefix: string,
  config: BudgetConfig,
  { start = NOON, url, ...options }: SharedBudgetOptions & { start?: number; url?: string } = {},
): Member {
  const clock = simulatedClock(start);
  const alerts: Alert[] = [];
  const connection = connect(prefix, url);
  const b = createSharedBudgets(connection, config, {
    clock,
    pricing,
    onAlert: (a) => alerts.push(a),
    ...options,
  });
  const m = { b, clock, alerts, connection };
  members.push(m);
  return m;
}

function fleet(
  config: BudgetConfig,
  options: SharedBudgetOptions & { start?: number } = {},
): [Member, Member] {
  const prefix = redisPrefix();
  return [member(prefix, config, options), member(prefix, config, options)];
}

/** Reserves and settles `usd` through `m` (one call that cost exactly its estimate). */
async function spend(m: Member, usd: number, model = 'gpt-4', taskType = 'vendor'): Promise<void> {
  const r = await m.b.reserve({ model, taskType, estimateUsd: usd });
  if (!r.ok) throw r.error;
  r.reservation.settle(usd);
  await m.b.flush();
}

/** The figures Redis holds for a scope on a day, micro-USD. */
async function stored(
  m: Member,
  day: string,
  scope = 'global',
): Promise<{ spent: number; reserved: number }> {
  const [spent, reserved] = await m.connection
    .client()
    .hmget(m.connection.key('budget', day, 'spend', scope), 'spent', 'reserved');
  return { spent: Number(spent ?? 0), reserved: Number(reserved ?? 0) };
}

function configErrorField(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isConfigError(e)) return e.field;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('shared budget config', () => {
  it('validates the budget exactly like a local one, and its own options by field', () => {
    const c = connect('keel-test:config:', 'redis://127.0.0.1:1');
    const make = (config: BudgetConfig, options: SharedBudgetOptions = {}) =>
      createSharedBudgets(c, config, { clock: simulatedClock(), pricing, onAlert: () => {}, ...options });
    expect(configErrorField(() => make({ dailyUsd: 10, alertAt: 2 }))).toBe('budget.alertAt');
    expect(configErrorField(() => make({ dailyUsd: 10, perModel: { 'gpt-9000': 1 } }))).toBe(
      'budget.perModel.gpt-9000',
    );
    expect(configErrorField(() => make({ dailyUsd: 10 }, { reservationTtlMs: 0 }))).toBe(
      'budget.shared.reservationTtlMs',
    );
    expect(configErrorField(() => make({ dailyUsd: 10 }, { timeoutMs: Number.NaN }))).toBe(
      'budget.shared.timeoutMs',
    );
    expect(
      configErrorField(() =>
        make({ dailyUsd: 10 }, { onUnavailable: 'panic' as unknown as SharedBudgetOptions['onUnavailable'] }),
      ),
    ).toBe('budget.shared.onUnavailable');
    // Nothing was sent: the connection is lazy and config errors come first.
    expect(c.client().status).toBe('wait');
  });
});

describeRedis('shared budget on Redis', () => {
  it('200 concurrent reservations from two connections admit exactly what fits and never exceed it', async () => {
    const [a, b] = fleet({ dailyUsd: 1 });
    const attempt = (m: Member) => m.b.reserve({ model: 'gpt-4', taskType: 'fraud', estimateUsd: 0.03 });
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => attempt(i % 2 === 0 ? a : b)));

    const admitted = results.filter((r) => r.ok);
    expect(admitted).toHaveLength(33); // floor($1.00 / $0.03)
    for (const r of results) if (!r.ok) expect(isBudgetExceededError(r.error)).toBe(true);
    // Redis holds exactly the admitted reservations, whichever connection made them.
    const day = a.b.today().day;
    expect((await stored(a, day)).reserved).toBe(33 * 30_000);

    for (const r of admitted) if (r.ok) r.reservation.settle(0.03);
    await Promise.all([a.b.flush(), b.b.flush()]);
    expect(await stored(a, day)).toEqual({ spent: 990_000, reserved: 0 });
    // Nothing more fits, whichever process asks.
    expect((await attempt(b)).ok).toBe(false);
    await a.b.refresh();
    expect(a.b.state()).toMatchObject({ spentUsd: 0.99, reservedUsd: 0, level: 'warning', alerted: [0.8] });
  });

  it('a call reserves in every scope it touches; a refusal in one scope reserves in none', async () => {
    const [a, b] = fleet({ dailyUsd: 100, perModel: { 'gpt-4': 1 }, perTaskType: { fraud: 0.5 } });
    expect(a.b.scopes().sort()).toEqual(['global', 'model:gpt-4', 'taskType:fraud']);
    await spend(a, 0.45, 'gpt-4', 'fraud');

    const refused = await b.b.reserve({ model: 'gpt-4', taskType: 'fraud', estimateUsd: 0.1 });
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.scope).toBe('taskType:fraud');
    expect(refused.error).toMatchObject({
      category: 'budget_exceeded',
      scope: 'taskType:fraud',
      limitUsd: 0.5,
      spentUsd: 0.45,
      reservedUsd: 0,
      requestedUsd: 0.1,
      day: '2026-01-01',
    });
    const day = b.b.today().day;
    expect((await stored(b, day, 'global')).reserved).toBe(0);
    expect((await stored(b, day, 'model:gpt-4')).reserved).toBe(0);

    // Another task type is not held back by the fraud budget, and counts in global and gpt-4.
    const other = await b.b.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 0.1 });
    expect(other.ok).toBe(true);
    expect(b.b.state('global')).toMatchObject({ spentUsd: 0.45, reservedUsd: 0.1 });
    expect(b.b.state('model:gpt-4')).toMatchObject({ spentUsd: 0.45, reservedUsd: 0.1 });
    expect(await stored(b, day, 'taskType:fraud')).toEqual({ spent: 450_000, reserved: 0 });
    // The model limit holds across processes too.
    const gpt4 = await a.b.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 0.5 });
    expect(!gpt4.ok && gpt4.scope).toBe('model:gpt-4');
    if (other.ok) other.reservation.release();
    await b.b.flush();
    expect((await stored(b, day, 'global')).reserved).toBe(0);
    expect(b.b.state('nope')).toBeUndefined();
  });

  it("onExhausted: 'downgrade' moves a model exhausted by another process to its cheaper model", async () => {
    const [a, b] = fleet({
      dailyUsd: 100,
      perModel: { 'gpt-4': 1 },
      onExhausted: 'downgrade',
      downgradeTo: { 'gpt-4': 'gpt-4o-mini' },
    });
    await spend(a, 1, 'gpt-4');
    const usage = { inputTokens: 1_000, outputTokens: 500 };
    const r = await b.b.reserve({
      model: 'gpt-4',
      taskType: 'vendor',
      estimateUsd: pricing.price('gpt-4', usage),
      usage,
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r).toMatchObject({ model: 'gpt-4o-mini', downgradedFrom: 'gpt-4', downgradeScope: 'model:gpt-4' });
    expect(r.reservation.model).toBe('gpt-4o-mini');
    expect(r.estimateUsd).toBeCloseTo(pricing.price('gpt-4o-mini', usage), 12);
    const day = b.b.today().day;
    expect((await stored(b, day, 'model:gpt-4')).reserved).toBe(0);
    expect((await stored(b, day, 'global')).reserved).toBe(Math.round(r.estimateUsd * 1e6));
    // A model with no cheaper entry is refused.
    expect((await b.b.reserve({ model: 'gpt-4o', taskType: 'vendor', estimateUsd: 200 })).ok).toBe(false);
  });

  it('alerts at 80% and 100% exactly once across two processes', async () => {
    const [a, b] = fleet({ dailyUsd: 10, alertAt: 0.8 });
    const call = async (m: Member): Promise<boolean> => {
      const r = await m.b.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 0.1 });
      if (!r.ok) return false;
      r.reservation.settle(0.1);
      return true;
    };
    const caller = async (m: Member): Promise<number> => {
      let n = 0;
      for (let i = 0; i < 12; i++) if (await call(m)) n++;
      return n;
    };
    // 10 callers per process, 12 calls each: 240 attempts for 100 slots.
    const counts = await Promise.all(Array.from({ length: 20 }, (_, i) => caller(i % 2 === 0 ? a : b)));
    await Promise.all([a.b.flush(), b.b.flush()]);
    expect(counts.reduce((s, n) => s + n, 0)).toBe(100);

    const all = [...a.alerts, ...b.alerts].sort((x, y) => x.threshold - y.threshold);
    expect(all).toEqual([
      { scope: 'global', threshold: 0.8, spentUsd: 8, limitUsd: 10, day: '2026-01-01' },
      { scope: 'global', threshold: 1, spentUsd: 10, limitUsd: 10, day: '2026-01-01' },
    ]);
    await Promise.all([a.b.refresh(), b.b.refresh()]);
    for (const m of [a, b])
      expect(m.b.state()).toMatchObject({ level: 'exhausted', spentUsd: 10, alerted: [0.8, 1] });
    // Exhausted for the whole fleet: not even a zero estimate is admitted.
    expect((await b.b.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 0 })).ok).toBe(false);
  });

  it('starts a new day at midnight of the injected clock, and old days expire two days later', async () => {
    const start = Date.UTC(2026, 0, 1, 23, 59);
    const [a, b] = fleet({ dailyUsd: 1 }, { start });
    await spend(a, 1);
    expect((await b.b.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 0.01 })).ok).toBe(false);
    expect(a.alerts.map((x) => [x.day, x.threshold])).toEqual([
      ['2026-01-01', 0.8],
      ['2026-01-01', 1],
    ]);

    a.clock.advance(60_000);
    b.clock.advance(60_000);
    const r = await b.b.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 0.8 });
    expect(r.ok).toBe(true);
    expect(b.b.state()).toMatchObject({ day: '2026-01-02', spentUsd: 0, reservedUsd: 0.8, level: 'within' });
    if (r.ok) r.reservation.settle(0.8);
    await b.b.flush();
    expect(b.alerts).toEqual([
      { scope: 'global', threshold: 0.8, spentUsd: 0.8, limitUsd: 1, day: '2026-01-02' },
    ]);
    expect(await stored(b, '2026-01-02')).toEqual({ spent: 800_000, reserved: 0 });
    expect((await stored(b, '2026-01-01')).spent).toBe(1_000_000);

    // Day keys expire two days after their day ends, measured on the budget's clock.
    const ttl = await a.connection.client().pttl(a.connection.key('budget', '2026-01-01', 'spend', 'global'));
    expect(ttl).toBeLessThanOrEqual(Date.UTC(2026, 0, 4) - start);
    expect(ttl).toBeGreaterThan(Date.UTC(2026, 0, 4) - start - 60_000);
  });

  it("returns a dead holder's reservation after reservationTtlMs", async () => {
    const [a, b] = fleet({ dailyUsd: 1 }, { reservationTtlMs: 60_000 });
    const held = await a.b.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 0.9 });
    expect(held.ok).toBe(true);
    // Process a dies holding $0.90: it never settles nor releases.
    a.b.stop();
    await a.connection.close();

    const ask = () => b.b.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 0.2 });
    const refused = await ask();
    expect(!refused.ok && refused.error).toMatchObject({ reservedUsd: 0.9 });
    b.clock.advance(59_999);
    expect((await ask()).ok).toBe(false);
    b.clock.advance(1);
    const r = await ask();
    expect(r.ok).toBe(true);
    expect(b.b.state()).toMatchObject({ reservedUsd: 0.2, spentUsd: 0 });
    expect((await stored(b, '2026-01-01')).reserved).toBe(200_000);
  });

  it('refuses with BudgetUnavailableError when Redis is unreachable, without hanging', async () => {
    const port = await closedPort();
    const errors: BudgetUnavailableError[] = [];
    const m = unreachableMember(port, {
      user: 'user:secret@',
      timeoutMs: 2_000,
      onError: (e) => errors.push(e),
    });
    const pending = m.b.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 0.01 });
    await m.clock.advanceAsync(2_000);
    const r = await pending;
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(isBudgetUnavailableError(r.error)).toBe(true);
    expect(r.error).toMatchObject({ code: 'BUDGET_UNAVAILABLE', category: 'budget_exceeded' });
    expect(r.error.message).toContain(`redis://user@127.0.0.1:${port}`);
    expect(r.error.message).toContain('no reply within 2000 ms');
    expect(r.error.message).not.toContain('secret');

    // Once the client knows the server is down, calls are refused at once (the clock never moves).
    const client = m.connection.client();
    if (client.status !== 'reconnecting') await once(client, 'reconnecting');
    const fast = await m.b.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 0.01 });
    expect(!fast.ok && isBudgetUnavailableError(fast.error)).toBe(true);
    await expect(m.b.refresh()).rejects.toSatisfy(isBudgetUnavailableError);
    expect(errors).toEqual([]);
  });

  it("onUnavailable: 'admit' lets a call run unguarded and reports it", async () => {
    const port = await closedPort();
    const errors: BudgetUnavailableError[] = [];
    const m = unreachableMember(port, { onUnavailable: 'admit', onError: (e) => errors.push(e) });
    const pending = m.b.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 0.01 });
    await m.clock.advanceAsync(2_000);
    const r = await pending;
    expect(r.ok && r.model).toBe('gpt-4');
    expect(errors).toHaveLength(1);
    expect(isBudgetUnavailableError(errors[0])).toBe(true);
  });

  it('restore() is a no-op and stop() refuses later reservations', async () => {
    const [a, b] = fleet({ dailyUsd: 10 });
    await spend(a, 2);
    b.b.restore([]);
    await b.b.refresh();
    expect(b.b.spent()).toBe(2);
    b.b.stop();
    expect(() => b.b.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 1 })).toThrow(
      BudgetsClosedError,
    );
    expect(b.b.state()?.level).toBe('stopped');
  });

  it('two OS processes racing on one budget never exceed it and alert once per threshold', async () => {
    const prefix = redisPrefix();
    const children = [0, 1].map(() =>
      spawn(process.execPath, ['--import', 'tsx', CHILD, redisUrl(), prefix, '150', '10'], {
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
    );
    const outputs = children.map((child) => {
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const exited = once(child, 'exit').then(([code]) => ({
        code: code as number | null,
        out: () => out,
        err,
      }));
      const ready = new Promise<void>((resolve) => {
        const check = (): void => {
          if (out.includes('ready\n')) resolve();
        };
        child.stdout.on('data', check);
      });
      return { child, exited, ready };
    });
    await Promise.all(outputs.map((o) => o.ready));
    for (const o of outputs) o.child.stdin.end('go\n');
    const results = await Promise.all(outputs.map((o) => o.exited));

    for (const r of results) expect(r.code, r.err).toBe(0);
    const lines = results.flatMap((r) => r.out().trim().split('\n'));
    const done = lines.filter((l) => l.startsWith('admitted ')).map((l) => l.split(' '));
    const admitted = done.map(([, n]) => Number(n));
    expect(admitted).toHaveLength(2);
    expect(admitted.reduce((s, n) => s + n, 0)).toBe(Math.round(CHILD_BUDGET.dailyUsd / CHILD_CALL_USD));
    expect(admitted.every((n) => n > 0)).toBe(true);
    const alerts = lines.filter((l) => l.startsWith('alert ')).sort();
    expect(alerts).toEqual(['alert global 0.8 0.8', 'alert global 1 1']);

    const c = connect(prefix);
    const day = done[0]?.[2] ?? '';
    const [spent, reserved] = await c
      .client()
      .hmget(c.key('budget', day, 'spend', 'global'), 'spent', 'reserved');
    expect(Number(spent)).toBe(1_000_000);
    expect(Number(reserved)).toBe(0);
  }, 90_000);
});

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const address = srv.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}
