import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { simulatedClock } from '../../src/core/clock.js';
import { openSqliteStore, type SqliteEventStore } from '../../src/eventlog/sqlite.js';
import { CONTRACT_NOW, storeContract } from './contract.js';

for (const writer of ['inline', 'thread'] as const) {
  storeContract(`SqliteEventStore (writer: '${writer}')`, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-contract-'));
    const file = path.join(dir, 'keel.db');
    const openStore = (): SqliteEventStore =>
      openSqliteStore({ path: file, clock: simulatedClock(CONTRACT_NOW), writer });
    let store = openStore();
    const raw = <T>(work: (db: Database.Database) => T): T => {
      const db = new Database(file);
      try {
        return work(db);
      } finally {
        db.close();
      }
    };
    return Promise.resolve({
      store,
      reopen: async () => {
        await store.close();
        store = openStore();
        return store;
      },
      tamper: (seq) => {
        raw((db) => {
          db.exec('DROP TRIGGER IF EXISTS events_no_update');
          db.prepare(`UPDATE events SET payload = payload || ' ' WHERE seq = ?`).run(seq);
        });
        return Promise.resolve();
      },
      rawWrite: (kind, seq) =>
        Promise.resolve().then(() =>
          raw((db) => {
            const sql =
              kind === 'update'
                ? `UPDATE events SET payload = payload WHERE seq = ?`
                : `DELETE FROM events WHERE seq = ?`;
            db.prepare(sql).run(seq);
          }),
        ),
      cleanup: async () => {
        await store.close();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    });
  });
}
