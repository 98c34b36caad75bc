import fs from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { KEEL_APPLICATION_ID, SCHEMA_VERSION } from '../../src/eventlog/schema.js';
import { auditEvent, mixedEvents, open, tempDb } from './helpers.js';

/** A log written by the demos with schema version 1 (see test/replay/golden.test.ts). */
const GOLDEN = join(import.meta.dirname, '..', 'fixtures', 'golden.db');

describe('opening a store', () => {
  it('creates the schema at user_version 5, in WAL mode, with dictionary-coded rows, the query indexes and triggers', async () => {
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
    expect(raw.pragma('user_version', { simple: true })).toBe(5);
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(names('table')).toEqual(['events', 'keel_strings', 'retention_gate']);
    expect(names('view')).toEqual(['events_readable']);
    expect(raw.prepare("SELECT name FROM pragma_table_info('events') ORDER BY cid").pluck().all()).toEqual([
      'seq',
      'ts',
      'workflow',
      'type',
      'v',
      'class',
      'payload',
      'hash',
    ]);
    expect(names('index')).toEqual(['events_by_ts', 'events_by_workflow']);
    expect(names('trigger')).toEqual([
      'events_no_delete',
      'events_no_update',
      'keel_strings_no_delete',
      'keel_strings_no_update',
    ]);
    raw.close();
  });

  it('reads a version-1 log read-only as it is, and migrates it when opened writable', async () => {
    const path = tempDb();
    fs.copyFileSync(GOLDEN, path);
    const indexes = () => {
      const raw = new Database(path, { readonly: true });
      const out = {
        version: raw.pragma('user_version', { simple: true }),
        indexes: raw
          .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name",
          )
          .pluck()
          .all(),
      };
      raw.close();
      return out;
    };
    expect(indexes()).toEqual({
      version: 1,
      indexes: ['events_by_ts', 'events_by_type', 'events_by_workflow'],
    });

    const reader = open({ path, readonly: true });
    const all = reader.query();
    const started = reader.query({ type: 'workflow.started' });
    expect(started.length).toBeGreaterThan(0);
    expect(started).toEqual(all.filter((e) => e.type === 'workflow.started'));
    expect(reader.verify()).toMatchObject({ ok: true, events: all.length });
    await reader.close();
    expect(indexes().version).toBe(1);

    // A writable open migrates it, stamps it as Keel's, and says so in the log.
    const writer = open({ path });
    const after = writer.query();
    expect(after.slice(0, -1)).toEqual(all);
    expect(after.at(-1)).toMatchObject({
      workflowId: '_system',
      type: 'log.maintained',
      payload: { action: 'migrated', fromVersion: 1, toVersion: SCHEMA_VERSION },
    });
    expect(writer.verify()).toMatchObject({ ok: true, events: all.length + 1 });
    await writer.append([auditEvent(1)]);
    expect(writer.verify()).toMatchObject({ ok: true, events: all.length + 2 });
    await writer.close();
    expect(indexes()).toEqual({ version: SCHEMA_VERSION, indexes: ['events_by_ts', 'events_by_workflow'] });
    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('application_id', { simple: true })).toBe(KEEL_APPLICATION_ID);
    raw.close();
    // Reopening a migrated log logs nothing more.
    const again = open({ path });
    expect(again.query({ type: 'log.maintained' })).toHaveLength(1);
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
