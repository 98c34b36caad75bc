/**
 * Leases and claims of durable execution on Postgres: `keel_owners` (one row per runtime instance,
 * renewed by its heartbeat) and `keel_claims` (one row per workflow a runtime resumes), in the
 * store's schema, outside the hash chain. Claiming locks the candidates' rows with
 * `FOR UPDATE SKIP LOCKED`: processes claiming at once each take rows the others have not locked,
 * so every workflow is claimed by one of them.
 */
import type pg from 'pg';
import type { ClaimCandidate, OwnerLease, OwnershipStore, WorkflowClaim } from './store.js';

/** How the Postgres store lends its connections. */
export interface PostgresOwnershipHost {
  /** The quoted schema name. */
  schema: string;
  readonly: boolean;
  /** Connects and checks the event log schema (the store's `ready`). */
  ready(): Promise<void>;
  /** Runs work on a pooled connection, mapping errors to the store's. */
  withClient<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  /** The store's error for a write on a read-only store. */
  readOnlyError(): Error;
  /** Maps a driver error to the store's named error. */
  toError(e: unknown): unknown;
}

/** The {@link OwnershipStore} of a Postgres event log. */
export function postgresOwnership(host: PostgresOwnershipHost): OwnershipStore {
  const s = host.schema;
  const owners = `${s}.keel_owners`;
  const claims = `${s}.keel_claims`;
  let created: Promise<void> | undefined;
  const create = (): Promise<void> =>
    (created ??= host
      .withClient(async (c) => {
        // Serialised by an advisory lock: concurrent CREATE TABLE IF NOT EXISTS can collide in pg_type.
        await c.query('BEGIN');
        try {
          await c.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`${s}.keel_ownership`]);
          await c.query(
            `CREATE TABLE IF NOT EXISTS ${owners} (owner text PRIMARY KEY, expires_at double precision NOT NULL)`,
          );
          await c.query(
            `CREATE TABLE IF NOT EXISTS ${claims} (workflow_id text PRIMARY KEY, owner text NOT NULL, claimed_at double precision NOT NULL)`,
          );
          await c.query('COMMIT');
        } catch (e) {
          await c.query('ROLLBACK').catch(() => undefined);
          throw e;
        }
      })
      .catch((e: unknown) => {
        created = undefined;
        throw e;
      }));
  const write = async <T>(work: (c: pg.PoolClient) => Promise<T>): Promise<T> => {
    if (host.readonly) throw host.readOnlyError();
    await host.ready();
    await create();
    return host.withClient(async (c) => {
      try {
        return await work(c);
      } catch (e) {
        throw host.toError(e);
      }
    });
  };
  const read = async <T>(work: (c: pg.PoolClient) => Promise<T>, none: T): Promise<T> => {
    await host.ready();
    return host.withClient(async (c) => {
      const exists = await c.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [claims]);
      if (exists.rows[0]?.ok !== true) return none;
      try {
        return await work(c);
      } catch (e) {
        throw host.toError(e);
      }
    });
  };
  const inTransaction = async <T>(c: pg.PoolClient, work: () => Promise<T>): Promise<T> => {
    await c.query('BEGIN');
    try {
      const out = await work();
      await c.query('COMMIT');
      return out;
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
  };
  return {
    heartbeat: (owner, expiresAt) =>
      write(async (c) => {
        await c.query(
          `INSERT INTO ${owners} (owner, expires_at) VALUES ($1, $2) ON CONFLICT (owner) DO UPDATE SET expires_at = excluded.expires_at`,
          [owner, expiresAt],
        );
      }),
    retire: (owner) =>
      write((c) =>
        inTransaction(c, async () => {
          await c.query(`DELETE FROM ${claims} WHERE owner = $1`, [owner]);
          await c.query(`DELETE FROM ${owners} WHERE owner = $1`, [owner]);
        }),
      ),
    claim: (claimant: string, candidates: readonly ClaimCandidate[], now: number, limit?: number) =>
      write(async (c) => {
        if (candidates.length === 0) return [];
        // Candidates whose recorded owner is alive are not orphans.
        const alive = new Set(
          (
            await c.query<{ owner: string }>(`SELECT owner FROM ${owners} WHERE expires_at > $1`, [now])
          ).rows.map((r) => r.owner),
        );
        const ids = candidates
          .filter((x) => x.owner === undefined || x.owner === claimant || !alive.has(x.owner))
          .map((x) => x.workflowId);
        if (ids.length === 0) return [];
        // Each candidate gets its claim row (unowned: '') outside the claiming transaction, so
        // processes claiming at once never wait on each other's inserts.
        await c.query(
          `INSERT INTO ${claims} (workflow_id, owner, claimed_at) SELECT unnest($1::text[]), '', 0 ON CONFLICT (workflow_id) DO NOTHING`,
          [ids],
        );
        return inTransaction(c, async () => {
          const taken = await c.query<{ workflow_id: string }>(
            `SELECT k.workflow_id FROM ${claims} k
              WHERE k.workflow_id = ANY($1::text[])
                AND (k.owner = '' OR k.owner = $2
                     OR NOT EXISTS (SELECT 1 FROM ${owners} o WHERE o.owner = k.owner AND o.expires_at > $3))
              ORDER BY array_position($1::text[], k.workflow_id)
              LIMIT $4
              FOR UPDATE OF k SKIP LOCKED`,
            [ids, claimant, now, limit ?? ids.length],
          );
          const got = taken.rows.map((r) => r.workflow_id);
          if (got.length > 0) {
            await c.query(
              `UPDATE ${claims} SET owner = $2, claimed_at = $3 WHERE workflow_id = ANY($1::text[])`,
              [got, claimant, now],
            );
          }
          return got;
        });
      }),
    release: (claimant, workflowIds) =>
      write(async (c) => {
        await c.query(`DELETE FROM ${claims} WHERE workflow_id = ANY($1::text[]) AND owner = $2`, [
          [...workflowIds],
          claimant,
        ]);
      }),
    leases: () =>
      read(
        async (c) =>
          (
            await c.query<{ owner: string; expires_at: number }>(
              `SELECT owner, expires_at FROM ${owners} ORDER BY owner`,
            )
          ).rows.map((r): OwnerLease => ({ owner: r.owner, expiresAt: Number(r.expires_at) })),
        [] as OwnerLease[],
      ),
    claims: () =>
      read(
        async (c) =>
          (
            await c.query<{ workflow_id: string; owner: string; claimed_at: number }>(
              `SELECT workflow_id, owner, claimed_at FROM ${claims} WHERE owner <> '' ORDER BY workflow_id`,
            )
          ).rows.map((r): WorkflowClaim => ({
            workflowId: r.workflow_id,
            owner: r.owner,
            claimedAt: Number(r.claimed_at),
          })),
        [] as WorkflowClaim[],
      ),
  };
}
