/**
 * Leases and claims of durable execution on SQLite: two small tables beside `events`, outside the
 * hash chain (`keel_owners`: one row per runtime instance, renewed by its heartbeat; `keel_claims`:
 * one row per resumed workflow). Created on first write; a claim runs in one `BEGIN IMMEDIATE`
 * transaction, so two processes sharing the file never claim the same workflow.
 */
import type Database from 'better-sqlite3';
import type { ClaimCandidate, OwnerLease, OwnershipStore, WorkflowClaim } from './store.js';

/** The tables, created on first write (the classifier accepts a log with or without them). */
export const OWNERSHIP_TABLES_SQL = `
CREATE TABLE IF NOT EXISTS keel_owners (
  owner      TEXT    PRIMARY KEY,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS keel_claims (
  workflow_id TEXT    PRIMARY KEY,
  owner       TEXT    NOT NULL,
  claimed_at  INTEGER NOT NULL
) WITHOUT ROWID;
`;

/** Names of the ownership tables (what `classifyLog` accepts beside the event tables). */
export const OWNERSHIP_TABLES: readonly string[] = ['keel_claims', 'keel_owners'];

/** How the SQLite store lends its connection: `run` maps SQLite errors to the store's errors. */
export interface SqliteOwnershipHost {
  db: Database.Database;
  /** Throws the store's error when it is closed or read-only. */
  assertWritable(): void;
  /** Throws the store's error when it is closed. */
  assertOpen(): void;
  /** Runs SQLite work, turning its errors into the store's (busy, full, read-only). */
  run<T>(work: () => T): T;
}

/** The {@link OwnershipStore} of a SQLite event log. */
export function sqliteOwnership(host: SqliteOwnershipHost): OwnershipStore {
  const { db } = host;
  let created = false;
  const writable = <T>(work: () => T): Promise<T> => {
    try {
      host.assertWritable();
      return Promise.resolve(
        host.run(() => {
          if (!created) {
            db.exec(OWNERSHIP_TABLES_SQL);
            created = true;
          }
          return work();
        }),
      );
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  };
  const exists = (): boolean =>
    db
      .prepare<[], number>(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('keel_owners', 'keel_claims')",
      )
      .pluck()
      .get() === 2;
  const readable = <T>(work: () => T, none: T): Promise<T> => {
    try {
      host.assertOpen();
      return Promise.resolve(host.run(() => (created || exists() ? work() : none)));
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  };
  const liveLease = (owner: string, now: number): boolean =>
    (db.prepare<[string], number>('SELECT expires_at FROM keel_owners WHERE owner = ?').pluck().get(owner) ??
      Number.NEGATIVE_INFINITY) > now;
  return {
    heartbeat: (owner, expiresAt) =>
      writable(() => {
        db.prepare(
          'INSERT INTO keel_owners (owner, expires_at) VALUES (?, ?) ON CONFLICT (owner) DO UPDATE SET expires_at = excluded.expires_at',
        ).run(owner, Math.round(expiresAt));
      }),
    retire: (owner) =>
      writable(() => {
        db.transaction(() => {
          db.prepare('DELETE FROM keel_claims WHERE owner = ?').run(owner);
          db.prepare('DELETE FROM keel_owners WHERE owner = ?').run(owner);
        }).immediate();
      }),
    claim: (claimant: string, candidates: readonly ClaimCandidate[], now: number, limit = Infinity) =>
      writable(() =>
        db
          .transaction(() => {
            const claimed: string[] = [];
            const current = db
              .prepare<[string], string>('SELECT owner FROM keel_claims WHERE workflow_id = ?')
              .pluck();
            const upsert = db.prepare(
              'INSERT INTO keel_claims (workflow_id, owner, claimed_at) VALUES (?, ?, ?) ON CONFLICT (workflow_id) DO UPDATE SET owner = excluded.owner, claimed_at = excluded.claimed_at',
            );
            for (const c of candidates) {
              if (claimed.length >= limit) break;
              if (c.owner !== undefined && c.owner !== claimant && liveLease(c.owner, now)) continue;
              const holder = current.get(c.workflowId);
              if (holder !== undefined && holder !== claimant && liveLease(holder, now)) continue;
              upsert.run(c.workflowId, claimant, Math.round(now));
              claimed.push(c.workflowId);
            }
            return claimed;
          })
          .immediate(),
      ),
    release: (claimant, workflowIds) =>
      writable(() => {
        const del = db.prepare('DELETE FROM keel_claims WHERE workflow_id = ? AND owner = ?');
        db.transaction(() => {
          for (const id of workflowIds) del.run(id, claimant);
        }).immediate();
      }),
    leases: () =>
      readable(
        () =>
          db
            .prepare<[], OwnerLease>('SELECT owner, expires_at AS expiresAt FROM keel_owners ORDER BY owner')
            .all(),
        [] as OwnerLease[],
      ),
    claims: () =>
      readable(
        () =>
          db
            .prepare<[], WorkflowClaim>(
              'SELECT workflow_id AS workflowId, owner, claimed_at AS claimedAt FROM keel_claims ORDER BY workflow_id',
            )
            .all(),
        [] as WorkflowClaim[],
      ),
  };
}
