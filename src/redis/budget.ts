/**
 * Daily budgets shared by every process of a fleet, kept on Redis. Same config, scopes, downgrade
 * policy and alert thresholds as the local budget (`createBudgets`); what changes is where the
 * figures live and who decides:
 *
 * - **Reserve** is one Lua script over every scope the call touches: it returns expired
 *   reservations, then checks `spent + reserved + estimate ≤ limit` in each scope and reserves in
 *   all of them or in none, saying which scope refused. Amounts are integer micro-USD, so no float
 *   drift accumulates however many processes add to them.
 * - **Settle** is one Lua script: it moves the reservation to spent (the actual cost, charged to the
 *   day the call finished) and marks each threshold newly reached with `HSETNX`, so an alert fires
 *   once per scope, threshold and day across the fleet, in the process whose settle crossed it.
 * - **Crashed holders**: each reservation carries a deadline (`reservationTtlMs`) in a sorted set
 *   per scope and day; the reserve script returns expired ones, so a dead process's holds come
 *   back. Keys expire two days after their day ends.
 *
 * Keys (after the connection's `keyPrefix`): `budget:<day>:spend:<scope>` (hash: `spent`,
 * `reserved`, `r:<id>` per held reservation, `a:<threshold>` per alerted threshold) and
 * `budget:<day>:held:<scope>` (sorted set of reservation ids by deadline).
 */
import { randomUUID } from 'node:crypto';
import type { TimerHandle } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import type { KeelEvent } from '../eventlog/events.js';
import type { BudgetDeps, BudgetView, Reservation, ReserveRequest, ReserveResult } from '../cost/budget.js';
import {
  TENANT_SCOPE_PREFIX,
  admitted,
  assertUsd,
  budgetPolicy,
  type BudgetConfig,
} from '../cost/budget-policy.js';
import { scopeView, startScopeActor, startScopeActors } from '../cost/budget-scopes.js';
import { BudgetExceededError, BudgetsClosedError, BudgetUnavailableError } from '../cost/errors.js';
import { withoutPassword } from '../core/url.js';
import { luaScript, type LuaScript, type RedisConnection } from './connection.js';

/** How a shared budget behaves around Redis. */
export interface SharedBudgetOptions {
  /**
   * How long a reservation is held if its process neither settles nor releases it (it crashed),
   * ms (default 300_000). Set it above your longest call, retries excluded (each attempt reserves
   * anew): a call that outlives its reservation is still charged, but no longer counts in flight.
   */
  reservationTtlMs?: number;
  /**
   * How long a reservation, settle or release waits for Redis, ms of the budget's clock (default
   * 2_000). A reservation that gets no reply in time is refused (see `onUnavailable`) and returned
   * at once should the script still run later.
   */
  timeoutMs?: number;
  /**
   * What a call gets when Redis cannot be reached (default `reject`): `reject` refuses it with a
   * {@link BudgetUnavailableError} rather than spend unguarded; `admit` lets it run without a
   * reservation (its actual cost is still charged when Redis is back) and reports the error to
   * `onError`.
   */
  onUnavailable?: 'reject' | 'admit';
  /**
   * Called when Redis did not take a write (settle or release), or a call was admitted unguarded
   * (default: ignored). Wire it to your logs: a lost settle means the fleet undercounts spend.
   */
  onError?(error: BudgetUnavailableError): void;
}

/** What a shared budget needs: the runtime's budget deps and the Redis options. */
export type SharedBudgetDeps = BudgetDeps & SharedBudgetOptions;

/** Outcome of {@link SharedBudgets.reserve}: as for a local budget, or refused because Redis is unavailable. */
export type SharedReserveResult = ReserveResult | { ok: false; scope: string; error: BudgetUnavailableError };

/**
 * Budgets shared by every process that points at the same Redis and key prefix. The figures
 * `spent()` and `state()` report are this process's view **as of the last script reply** (any
 * reserve, settle, release or {@link SharedBudgets.refresh}); Redis is the source of truth. A
 * tenant's scope is mirrored while this process has a script or reservation of it open and among
 * the `idleTenantActors` most recently used idle ones; an evicted tenant reads as unknown here
 * (`state()` undefined, `spent()` 0) until its next call.
 */
export interface SharedBudgets extends BudgetView {
  /**
   * Holds `estimateUsd` in every scope the call touches, atomically across processes, or says which
   * scope refused (downgrading first with `onExhausted: 'downgrade'`). Resolves with a
   * {@link BudgetUnavailableError} refusal when Redis does not answer within `timeoutMs`; never rejects.
   * @throws BudgetsClosedError after {@link SharedBudgets.stop} (synchronously, like a local budget).
   */
  reserve(request: ReserveRequest): Promise<SharedReserveResult>;
  /**
   * Reads today's figures of every scope from Redis (returning expired reservations first) into
   * the local view. The runtime calls it at startup (`rt.ready()` waits for it), so `spent()`/`state()` show the fleet's spend before the first call.
   * @throws BudgetUnavailableError when Redis does not answer within `timeoutMs`.
   */
  refresh(): Promise<void>;
  /** Resolves once every settle and release written so far was answered (or timed out). */
  flush(): Promise<void>;
  /**
   * Does nothing: Redis is the source of truth, and its spend includes every process's calls, so
   * reopening the local log would count only this one's. Kept so both budgets fit one interface.
   */
  restore(events: Iterable<KeelEvent>): void;
  /**
   * Stops the mirror actors; later reservations throw. Settles and releases of calls still in
   * flight are still written (the fleet must see that money): `await flush()` before closing the
   * Redis connection. Idempotent.
   */
  stop(): void;
}

/** Integer micro-USD per USD. */
const MICROS = 1_000_000;
const toMicros = (usd: number): number => Math.round(usd * MICROS);
/** Keys live this long after their day ends, so late settles and yesterday's dashboards still find them. */
const KEEP_AFTER_DAY_MS = 2 * 86_400_000;

/** Returns expired reservations of one scope and day to its budget (shared by the scripts). */
const PURGE_LUA = `
local function purge(h, z, now)
  local expired = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  if #expired == 0 then return end
  local total = 0
  for _, rid in ipairs(expired) do
    local held = redis.call('HGET', h, 'r:' .. rid)
    if held then
      total = total + tonumber(held)
      redis.call('HDEL', h, 'r:' .. rid)
    end
  end
  if total > 0 then redis.call('HINCRBY', h, 'reserved', -total) end
  redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
end
local function figures(h)
  local v = redis.call('HMGET', h, 'spent', 'reserved')
  return tonumber(v[1] or 0), tonumber(v[2] or 0)
end
`;

/**
 * KEYS: per scope, its totals hash and held set. ARGV: now, id, amount, deadline, key ttl, then the
 * limit of each scope (micro-USD). Reply: [refusing scope (1-based) or 0, spent1, reserved1, ...].
 */
const RESERVE_LUA = `${PURGE_LUA}
local now, id, amount, deadline, keep = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local n = #KEYS / 2
local reply = {0}
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  purge(h, z, now)
  local spent, reserved = figures(h)
  reply[2 * i], reply[2 * i + 1] = spent, reserved
  local limit = tonumber(ARGV[5 + i])
  if reply[1] == 0 and (spent >= limit or spent + reserved + amount > limit) then reply[1] = i end
end
if reply[1] == 0 then
  for i = 1, n do
    local h, z = KEYS[2 * i - 1], KEYS[2 * i]
    redis.call('HINCRBY', h, 'reserved', amount)
    redis.call('HSET', h, 'r:' .. id, amount)
    redis.call('ZADD', z, deadline, id)
    redis.call('PEXPIRE', h, keep)
    redis.call('PEXPIRE', z, keep)
    reply[2 * i + 1] = reply[2 * i + 1] + amount
  end
end
return reply
`;

/**
 * KEYS: per scope, the reservation day's totals and held set, and the settle day's totals. ARGV: id,
 * actual, settle-day key ttl, k, k threshold labels, then k threshold amounts per scope. Reply per
 * scope: spent, reserved (settle day) and a bit mask of the thresholds this settle crossed first.
 */
const SETTLE_LUA = `
local id, actual, keep, k = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local n = #KEYS / 3
local reply = {}
for i = 1, n do
  local rh, rz, sh = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local held = redis.call('HGET', rh, 'r:' .. id)
  if held then
    redis.call('HDEL', rh, 'r:' .. id)
    redis.call('HINCRBY', rh, 'reserved', -tonumber(held))
    redis.call('ZREM', rz, id)
  end
  local spent = redis.call('HINCRBY', sh, 'spent', actual)
  redis.call('PEXPIRE', sh, keep)
  local crossed = 0
  for j = 1, k do
    if spent >= tonumber(ARGV[4 + k + (i - 1) * k + j]) and redis.call('HSETNX', sh, 'a:' .. ARGV[4 + j], 1) == 1 then
      crossed = crossed + 2 ^ (j - 1)
    end
  end
  reply[3 * i - 2] = spent
  reply[3 * i - 1] = tonumber(redis.call('HGET', sh, 'reserved') or 0)
  reply[3 * i] = crossed
end
return reply
`;

/**
 * KEYS: per scope, its totals hash and held set. ARGV: id ('' for none), now. Returns the
 * reservation `id` and expired ones. Reply: [spent1, reserved1, ...].
 */
const RETURN_LUA = `${PURGE_LUA}
local id, now = ARGV[1], tonumber(ARGV[2])
local n = #KEYS / 2
local reply = {}
for i = 1, n do
  local h, z = KEYS[2 * i - 1], KEYS[2 * i]
  if id ~= '' then
    local held = redis.call('HGET', h, 'r:' .. id)
    if held then
      redis.call('HDEL', h, 'r:' .. id)
      redis.call('HINCRBY', h, 'reserved', -tonumber(held))
      redis.call('ZREM', z, id)
    end
  end
  purge(h, z, now)
  reply[2 * i - 1], reply[2 * i] = figures(h)
end
return reply
`;

const RESERVE = luaScript(RESERVE_LUA);
const SETTLE = luaScript(SETTLE_LUA);
const RETURN = luaScript(RETURN_LUA);

/** Raised inside when no reply came in time. */
class NoReply extends Error {}

/** A scope's Redis keys on one day. */
interface ScopeKeys {
  totals: string;
  held: string;
}

/**
 * Creates budgets shared across processes through `connection`. The config is validated exactly as
 * for `createBudgets` (a bad field throws a ConfigError naming it). One budget actor per scope
 * (`budget:<scope>` in the parent's system) mirrors the figures of the last reply, so the Stately
 * inspector still shows every budget level; alerts come from the scripts, not the actors. Idle
 * tenants' actors are evicted past `idleTenantActors` (least recently used first), so memory does
 * not grow with the number of tenants served.
 *
 * Nothing is awaited at creation: the connection opens on the first command. Call `refresh()` to
 * load the fleet's figures early, and `flush()` before closing the connection.
 *
 * @example
 * const redis = new RedisConnection('redis://127.0.0.1:6379', { keyPrefix: 'billing:' });
 * const budgets = createSharedBudgets(redis, { dailyUsd: 100, perModel: { 'gpt-4': 60 } }, {
 *   clock: realClock,
 *   pricing: createPricing(),
 *   onAlert: (a) => console.warn(`budget ${a.scope} at ${a.threshold * 100}% on ${a.day}`),
 *   onError: (e) => console.error(e.message),
 * });
 * const r = await budgets.reserve({ model: 'gpt-4', taskType: 'vendor', estimateUsd: 0.03 });
 * if (r.ok) {
 *   // call r.model, then:
 *   r.reservation.settle(0.028);
 * }
 * budgets.stop();
 * await budgets.flush();
 * await redis.close();
 */
export function createSharedBudgets(
  connection: RedisConnection,
  config: BudgetConfig,
  deps: SharedBudgetDeps,
): SharedBudgets {
  const policy = budgetPolicy(config, deps.pricing);
  const reservationTtlMs = positiveMs(deps.reservationTtlMs, 300_000, 'budget.shared.reservationTtlMs');
  const timeoutMs = positiveMs(deps.timeoutMs, 2_000, 'budget.shared.timeoutMs');
  const onUnavailable = deps.onUnavailable ?? 'reject';
  if (onUnavailable !== 'reject' && onUnavailable !== 'admit')
    throw new ConfigError('budget.shared.onUnavailable', "must be 'reject' or 'admit'");
  const { clock } = deps;
  const store = withoutPassword(connection.url);
  const report = (e: BudgetUnavailableError): void => deps.onError?.(e);

  let span = policy.calendar.spanOf(clock.now());
  let stopped = false;
  const actors = startScopeActors(policy, span.day, deps.parent);

  type ScopeLimit = { limitUsd: number; micros: number; thresholds: number[] };
  const limits = new Map<string, ScopeLimit>();
  const limitOf = (limitUsd: number): ScopeLimit => {
    const micros = toMicros(limitUsd);
    return { limitUsd, micros, thresholds: policy.thresholds.map((t) => Math.round(micros * t)) };
  };
  for (const [scope, limitUsd] of policy.limits) limits.set(scope, limitOf(limitUsd));
  // Tenant scopes come and go, as in the local budget: a tenant's mirror lives while this process
  // has a script or reservation of it open, then waits among the idle ones (least recently used
  // first) until `idleTenantActors` newer ones push it out. Nothing of an evicted tenant is kept
  // here: Redis holds its figures, and its next reply fills the new mirror.
  /** Scripts and reservations open by tenant scope. */
  const openOf = new Map<string, number>();
  /** Tenant scopes with a mirror and nothing open, least recently used first. */
  const idle = new Set<string>();
  /**
   * The scopes a call reserves in. A tenant's scope (`tenant:<id>`, limited by `perTenant`) gets
   * its limit and mirror actor here, on the tenant's first call in this process (or its first
   * since its mirror was evicted); the caller holds it (`hold`) until its script or reservation
   * is answered (`letGo`).
   */
  const scopesOf = (model: string, taskType: string, tenant: string | undefined): string[] => {
    const scopes = policy.scopesOf(model, taskType, tenant);
    const last = scopes[scopes.length - 1] as string;
    if (tenant !== undefined && !limits.has(last)) {
      const limitUsd = policy.limitOf(last) as number;
      limits.set(last, limitOf(limitUsd));
      actors.set(last, startScopeActor(last, limitUsd, policy, span.day, deps.parent));
    }
    return scopes;
  };
  /** The tenant scope of a call's scopes (the last one, when it is a tenant's), or undefined. */
  const tenantOf = (scopes: readonly string[]): string | undefined => {
    const last = scopes[scopes.length - 1] as string;
    return policy.limits.has(last) ? undefined : last;
  };
  const hold = (scope: string | undefined): void => {
    if (scope === undefined) return;
    openOf.set(scope, (openOf.get(scope) ?? 0) + 1);
    idle.delete(scope);
  };
  /** What held `scope` was answered: idle (most recently used) once nothing of it is open. */
  const letGo = (scope: string | undefined): void => {
    if (scope === undefined) return;
    const open = (openOf.get(scope) ?? 1) - 1;
    if (open > 0) {
      openOf.set(scope, open);
      return;
    }
    openOf.delete(scope);
    idle.delete(scope);
    idle.add(scope);
    if (idle.size > policy.idleTenantActors) evictIdle();
  };
  /** Drops the least recently used idle tenant mirrors past the bound (Redis keeps their figures). */
  const evictIdle = (): void => {
    for (const scope of idle) {
      if (idle.size <= policy.idleTenantActors) return;
      idle.delete(scope);
      limits.delete(scope);
      keysOfDay.delete(scope);
      const actor = actors.get(scope);
      actors.delete(scope);
      // Its final state: the actor leaves the system, so a later mirror may take its system id.
      if (actor !== undefined && !stopped) actor.send({ type: 'STOP' });
    }
  };
  const thresholdLabels = policy.thresholds.map(String);
  /** `alertedPrefix[k]`: the thresholds a scope has reached once its spend passed `k` of them. */
  const alertedPrefix = Array.from({ length: policy.thresholds.length + 1 }, (_, k) =>
    policy.thresholds.slice(0, k),
  );

  let keysDay = '';
  let keysOfDay = new Map<string, ScopeKeys>();
  const keysOf = (day: string, scope: string): ScopeKeys => {
    if (day !== keysDay) {
      keysDay = day;
      keysOfDay = new Map();
    }
    let keys = keysOfDay.get(scope);
    if (keys === undefined) {
      keys = {
        totals: connection.key('budget', day, 'spend', scope),
        held: connection.key('budget', day, 'held', scope),
      };
      keysOfDay.set(scope, keys);
    }
    return keys;
  };
  /** Key lifetime for `day` from now, ms (relative, so a simulated clock and Redis's clock need not agree). */
  const keepMs = (endMs: number): number => Math.max(1, endMs + KEEP_AFTER_DAY_MS - clock.now());

  /**
   * Moves to a new budget day once the clock passes midnight in the time zone (also after `stop`, so
   * a late settle is charged to the day it happened).
   */
  const rollDay = (): void => {
    const now = clock.now();
    if (now < span.endMs) return;
    span = policy.calendar.spanOf(now);
    if (!stopped) for (const actor of actors.values()) actor.send({ type: 'DAY', day: span.day });
  };

  /** Mirrors one scope's figures from a reply about `day` (ignored for another day). */
  const mirror = (scope: string, day: string, spentMicros: number, reservedMicros: number): void => {
    if (day !== span.day || stopped) return;
    const actor = actors.get(scope);
    const limit = limits.get(scope);
    if (!actor || !limit) return;
    let reached = 0;
    while (reached < limit.thresholds.length && spentMicros >= (limit.thresholds[reached] as number))
      reached++;
    actor.send({
      type: 'SYNC',
      day,
      spentUsd: spentMicros / MICROS,
      reservedUsd: reservedMicros / MICROS,
      alerted: alertedPrefix[reached] ?? policy.thresholds,
    });
  };

  /** Runs a script (loading it if Redis lacks it), failing with NoReply after `timeoutMs`. */
  const run = (s: LuaScript, keys: string[], args: (string | number)[]): Promise<number[]> => {
    const reply = connection.evalScript(s, keys, args).then(integers);
    return new Promise<number[]>((resolve, reject) => {
      const timer: TimerHandle = clock.setTimeout(() => reject(new NoReply()), timeoutMs);
      reply.then(
        (v) => {
          clock.clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clock.clearTimeout(timer);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  };
  const unavailable = (e: unknown): BudgetUnavailableError =>
    e instanceof NoReply
      ? new BudgetUnavailableError(store, `no reply within ${timeoutMs} ms`)
      : new BudgetUnavailableError(store, e instanceof Error ? e.message : String(e), { cause: e });
  /** Why the client is known to be disconnected (refuse at once rather than queue), or undefined. */
  const down = (): string | undefined => {
    try {
      const status = connection.client().status;
      return status === 'reconnecting' || status === 'end' ? `connection ${status}` : undefined;
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    }
  };

  const pending = new Set<Promise<void>>();
  const track = (p: Promise<void>): void => {
    pending.add(p);
    void p.then(() => pending.delete(p));
  };

  /** Returns reservation `id` (if any) and expired holds in `scopes` on `day`; mirrors the reply. */
  const returnHeld = (id: string, day: string, scopes: readonly string[]): Promise<void> => {
    const keys: string[] = [];
    for (const scope of scopes) {
      const k = keysOf(day, scope);
      keys.push(k.totals, k.held);
    }
    return run(RETURN, keys, [id, clock.now()]).then((r) => {
      for (let i = 0; i < scopes.length; i++)
        mirror(scopes[i] as string, day, r[2 * i] ?? 0, r[2 * i + 1] ?? 0);
    });
  };

  const instance = randomUUID(); // reservation ids must be unique across the fleet, not reproducible
  let nextId = 0;

  const makeReservation = (
    id: string,
    model: string,
    estimateUsd: number,
    scopes: readonly string[],
    day: string,
  ): Reservation => {
    let open = true;
    const tenantScope = tenantOf(scopes);
    hold(tenantScope);
    return {
      id,
      model,
      estimateUsd,
      settle(actualUsd) {
        if (!open) return;
        assertUsd('reservation.settle(actualUsd)', actualUsd);
        open = false;
        rollDay();
        const settleDay = span.day;
        const keys: string[] = [];
        const args: (string | number)[] = [
          id,
          toMicros(actualUsd),
          keepMs(span.endMs),
          thresholdLabels.length,
        ];
        args.push(...thresholdLabels);
        for (const scope of scopes) {
          const r = keysOf(day, scope);
          keys.push(r.totals, r.held, keysOf(settleDay, scope).totals);
          args.push(...(limits.get(scope)?.thresholds ?? []));
        }
        track(
          run(SETTLE, keys, args)
            .then(
              (r) => {
                for (let i = 0; i < scopes.length; i++) {
                  const scope = scopes[i] as string;
                  const spent = r[3 * i] ?? 0;
                  mirror(scope, settleDay, spent, r[3 * i + 1] ?? 0);
                  const crossed = r[3 * i + 2] ?? 0;
                  if (crossed === 0) continue;
                  const limitUsd = limits.get(scope)?.limitUsd ?? 0;
                  policy.thresholds.forEach((threshold, j) => {
                    if (crossed & (1 << j))
                      deps.onAlert({
                        scope,
                        threshold,
                        spentUsd: spent / MICROS,
                        limitUsd,
                        day: settleDay,
                        ...(scope.startsWith(TENANT_SCOPE_PREFIX)
                          ? { tenant: scope.slice(TENANT_SCOPE_PREFIX.length) }
                          : {}),
                      });
                  });
                }
              },
              (e: unknown) => report(unavailable(e)),
            )
            .finally(() => letGo(tenantScope)),
        );
      },
      release() {
        if (!open) return;
        open = false;
        track(
          returnHeld(id, day, scopes)
            .catch((e: unknown) => report(unavailable(e)))
            .finally(() => letGo(tenantScope)),
        );
      },
    };
  };

  type Attempt = { ok: true; reservation: Reservation } | Exclude<SharedReserveResult, { ok: true }>;
  const tryReserve = async (
    model: string,
    taskType: string,
    usd: number,
    tenant: string | undefined,
  ): Promise<Attempt> => {
    const id = `${instance}:${++nextId}`;
    const scopes = scopesOf(model, taskType, tenant);
    const tenantScope = tenantOf(scopes);
    hold(tenantScope); // until the script's reply is mirrored (a reservation holds it on its own)
    try {
      return await reserveIn(id, scopes, usd, model);
    } finally {
      letGo(tenantScope);
    }
  };

  const reserveIn = async (id: string, scopes: string[], usd: number, model: string): Promise<Attempt> => {
    const { day, endMs } = span;
    const isDown = down();
    if (isDown !== undefined)
      return { ok: false, scope: 'global', error: new BudgetUnavailableError(store, isDown) };
    const now = clock.now();
    const amount = toMicros(usd);
    const keys: string[] = [];
    const args: (string | number)[] = [now, id, amount, now + reservationTtlMs, keepMs(endMs)];
    for (const scope of scopes) {
      const k = keysOf(day, scope);
      keys.push(k.totals, k.held);
      args.push(limits.get(scope)?.micros ?? 0);
    }
    let r: number[];
    try {
      r = await run(RESERVE, keys, args);
    } catch (e) {
      // The script may still run once Redis answers: return its hold then (same connection, in order).
      const tenantScope = tenantOf(scopes);
      hold(tenantScope);
      track(
        returnHeld(id, day, scopes)
          .catch(() => undefined)
          .finally(() => letGo(tenantScope)),
      );
      return { ok: false, scope: 'global', error: unavailable(e) };
    }
    for (let i = 0; i < scopes.length; i++)
      mirror(scopes[i] as string, day, r[2 * i + 1] ?? 0, r[2 * i + 2] ?? 0);
    const refused = r[0] ?? 0;
    if (refused === 0) return { ok: true, reservation: makeReservation(id, model, usd, scopes, day) };
    const scope = scopes[refused - 1] as string;
    const error = new BudgetExceededError({
      scope,
      limitUsd: limits.get(scope)?.limitUsd ?? 0,
      spentUsd: (r[2 * refused - 1] ?? 0) / MICROS,
      reservedUsd: (r[2 * refused] ?? 0) / MICROS,
      requestedUsd: usd,
      day,
    });
    return { ok: false, scope, error };
  };

  const reserve = async (request: ReserveRequest): Promise<SharedReserveResult> => {
    let model = request.model;
    let usd = request.estimateUsd;
    let refusedScope: string | undefined;
    for (;;) {
      const r = await tryReserve(model, request.taskType, usd, request.tenant);
      if (r.ok) return admitted(r.reservation, request.model, refusedScope);
      if (r.error instanceof BudgetUnavailableError) {
        if (onUnavailable === 'reject') return r;
        report(r.error);
        const scopes = scopesOf(model, request.taskType, request.tenant);
        const unguarded = makeReservation(`${instance}:${++nextId}`, model, usd, scopes, span.day);
        return admitted(unguarded, request.model, refusedScope);
      }
      const next = policy.downgrade(model, usd, request.usage);
      if (next === undefined) return r;
      refusedScope ??= r.scope;
      ({ model, estimateUsd: usd } = next);
    }
  };

  return {
    reserve(request) {
      if (stopped) throw new BudgetsClosedError();
      assertUsd('reserve.estimateUsd', request.estimateUsd);
      rollDay();
      return reserve(request);
    },
    async refresh() {
      rollDay();
      const isDown = down();
      if (isDown !== undefined) throw new BudgetUnavailableError(store, isDown);
      try {
        await returnHeld('', span.day, [...limits.keys()]);
      } catch (e) {
        throw unavailable(e);
      }
    },
    async flush() {
      while (pending.size > 0) await Promise.all(pending);
    },
    ...scopeView(actors, rollDay, () => span),
    restore() {},
    stop() {
      if (stopped) return;
      stopped = true;
      for (const actor of actors.values()) actor.send({ type: 'STOP' });
    },
  };
}

/** A reply of integers, as the scripts return. */
function integers(reply: unknown): number[] {
  if (!Array.isArray(reply) || !reply.every((v): v is number => typeof v === 'number'))
    throw new Error(`unexpected reply from a budget script: ${JSON.stringify(reply)}`);
  return reply;
}

function positiveMs(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!(Number.isFinite(value) && value > 0))
    throw new ConfigError(field, `must be a number of milliseconds > 0, got ${String(value)}`);
  return value;
}
