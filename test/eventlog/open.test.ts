import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { auditEvent, mixedEvents, open, tempDb } from './helpers.js';

describe('opening a store', () => {
  it('creates the schema at user_version 1, in WAL mode, with the query indexes and triggers', async () => {
    const path = tempDb();
    await open({ path }).close();

    const raw = new Database(path, { readonly: true });
    const names = (type: string) =>
      (
        raw
          .prepare('SELECT name FROM sqlite_master WHERE type = ? ORDER BY name')
          .pluck()
          .all(type) as string[]
      ).filter((n) => !n.startsWith('sqlite_'));
    expect(raw.pragma('user_version', { simple: true })).toBe(1);
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(names('table')).toEqual(['events', 'retention_gate']);
    expect(names('index')).toEqual(['events_by_ts', 'events_by_type', 'events_by_workflow']);
    expect(names('trigger')).toEqual(['events_no_delete', 'events_no_update']);
    raw.close();
  });

  it('reopens an existing log without migrating it again', async () => {
    const path = tempDb();
    const first = open({ path });
    await first.append(mixedEvents(3));
    await first.close();
    const second = open({ path, durability: 'fsync' });
    await second.append([auditEvent(3)]);
    expect(second.query().map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(second.verify()).toMatchObject({ ok: true });
  });

  it('keeps one chain when two connections append to the same file', async () => {
    const path = tempDb();
    const a = open({ path });
    const b = open({ path });
    await a.append(mixedEvents(3));
    await b.append(mixedEvents(3, 3));
    await a.append(mixedEvents(3, 6));
    expect(a.query().map((e) => e.workflowId)).toEqual(Array.from({ length: 9 }, (_, i) => `wf-${i}`));
    expect(a.verify()).toMatchObject({ ok: true, events: 9 });
    expect(b.heads()).toEqual(a.heads());
  });

  it.each([
    ['path', { path: '' }],
    ['durability', { path: ':memory:', durability: 'paranoid' }],
    ['busyTimeoutMs', { path: ':memory:', busyTimeoutMs: -1 }],
    ['maxBatch', { path: ':memory:', maxBatch: 0 }],
    ['maxPageCount', { path: ':memory:', maxPageCount: 1.5 }],
  ])('names the bad option %s', (field, options) => {
    expect(() => open(options as Parameters<typeof open>[0])).toThrow(ConfigError);
    expect(() => open(options as Parameters<typeof open>[0])).toThrow(`"${field}"`);
  });
});
