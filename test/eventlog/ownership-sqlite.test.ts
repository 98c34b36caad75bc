import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { ReadOnlyDatabaseError } from '../../src/eventlog/errors.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { ownershipContract } from './ownership-contract.js';

ownershipContract('SqliteEventStore', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-owners-'));
  const file = path.join(dir, 'keel.db');
  const [a, b, c] = [0, 1, 2].map(() => openSqliteStore({ path: file, busyTimeoutMs: 5000 })) as [
    ReturnType<typeof openSqliteStore>,
    ReturnType<typeof openSqliteStore>,
    ReturnType<typeof openSqliteStore>,
  ];
  return Promise.resolve({
    a,
    b,
    c,
    cleanup: async () => {
      await Promise.all([a.close(), b.close(), c.close()]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  });
});

it('a log with ownership tables still opens as a Keel log, read-only too, and verifies', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-owners-'));
  const file = path.join(dir, 'keel.db');
  try {
    const store = openSqliteStore({ path: file });
    await store.append([{ ts: 1, workflowId: 'wf', type: 'feedback.recorded', payload: { correct: true } }]);
    await store.ownership().heartbeat('A', 10);
    await store.close();
    const reader = openSqliteStore({ path: file, readonly: true });
    expect(reader.verify()).toMatchObject({ ok: true, events: 1 });
    expect(await reader.ownership().leases()).toEqual([{ owner: 'A', expiresAt: 10 }]);
    await expect(reader.ownership().heartbeat('B', 1)).rejects.toBeInstanceOf(ReadOnlyDatabaseError);
    await reader.close();
    const writer = openSqliteStore({ path: file });
    expect(writer.query()).toHaveLength(1); // reopened writable: no migration, no maintenance event
    await writer.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
