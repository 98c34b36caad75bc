/**
 * How long the schema 3 → 4 migration takes (issue 26): writes `--events` (default 100,000) events
 * of the stub invoice workflow, rewrites them as a schema-3 file (text columns, JSON payloads,
 * the same hashes), and times the writable open that migrates it, then verify. Prints one line
 * (`--json` for JSON). The figure is quoted in src/eventlog/schema.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { logicalRow } from '../test/eventlog/raw-rows.js';
import { openSqliteStore } from '../src/eventlog/sqlite.js';
import { measureBytes } from './footprint-bytes.js';
import { SQLITE_V3 } from '../test/eventlog/old-schemas.js';
import { isMain, parseFlags } from './harness.js';

export interface MigrationTiming {
  events: number;
  migrateMs: number;
  verifyMs: number;
  /** verify() of the same log at schema 3 (read-only, before migrating). */
  verifyV3Ms: number;
  bytesV3: number;
  bytesV4: number;
}

export async function timeMigration(events = 100_000): Promise<MigrationTiming> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-migrate-'));
  try {
    const source = path.join(dir, 'v4.db');
    await measureBytes({ n: Math.ceil(events / 18), keepAt: source });
    const v3 = path.join(dir, 'v3.db');
    const db = new Database(v3);
    db.exec(SQLITE_V3);
    const insert = db.prepare('INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    const store = openSqliteStore({ path: source, readonly: true });
    db.transaction(() => {
      for (const { event: e, hash } of store.iterateChained()) {
        insert.run(...logicalRow(e, hash));
      }
    })();
    const n = store.lastSeq();
    await store.close();
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    const bytesV3 = fs.statSync(v3).size;
    const reader = openSqliteStore({ path: v3, readonly: true });
    let t = performance.now();
    const before = reader.verify();
    const verifyV3Ms = performance.now() - t;
    await reader.close();
    if (!before.ok) throw new Error(`the schema-3 log does not verify: ${before.detail}`);
    t = performance.now();
    const migrated = openSqliteStore({ path: v3 });
    const migrateMs = performance.now() - t;
    t = performance.now();
    const result = migrated.verify();
    const verifyMs = performance.now() - t;
    if (!result.ok) throw new Error(`the migrated log does not verify: ${result.detail}`);
    await migrated.close();
    return { events: n, migrateMs, verifyMs, verifyV3Ms, bytesV3, bytesV4: fs.statSync(v3).size };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const flags = parseFlags();
  const r = await timeMigration(flags.quick ? 20_000 : 100_000);
  if (flags.json) console.log(JSON.stringify(r));
  else
    console.log(
      `schema 3 → 4 migration: ${r.events} events in ${r.migrateMs.toFixed(0)} ms (${((r.events / r.migrateMs) * 1000).toFixed(0)} events/s); verify ${r.verifyMs.toFixed(0)} ms after (${r.verifyV3Ms.toFixed(0)} ms at schema 3); file ${r.bytesV3} → ${r.bytesV4} B (the old pages stay free until VACUUM)`,
    );
}
