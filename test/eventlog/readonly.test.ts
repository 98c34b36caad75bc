import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { ReadOnlyDatabaseError } from '../../src/eventlog/errors.js';
import { T0, auditEvent, mixedEvents, open, tempDb } from './helpers.js';

describe('read-only mode', () => {
  it('refuses appends and prunes, and still queries and verifies', async () => {
    const path = tempDb();
    const writer = open({ path });
    await writer.append(mixedEvents(30));
    await writer.prune({ olderThan: T0 + 10, class: 'operational' });
    const heads = writer.heads();
    await writer.close();
    const before = fs.readFileSync(path);

    const auditor = open({ path, readonly: true });

    expect(auditor.readonly).toBe(true);
    const error = await auditor.append([auditEvent(99)]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReadOnlyDatabaseError);
    expect((error as Error).message).toMatch(/opened with \{ readonly: true \}/);
    await expect(auditor.prune({ olderThan: T0 + 20, class: 'audit' })).rejects.toThrow(
      ReadOnlyDatabaseError,
    );
    expect(auditor.verify()).toEqual({ ok: true, events: 26, heads });
    expect(auditor.heads()).toEqual(heads);
    expect(auditor.lastSeq()).toBe(31);
    expect(auditor.query({ class: 'operational' })).toHaveLength(10);
    await auditor.close();
    expect(fs.readFileSync(path)).toEqual(before);
  });

  it('sees what a writer commits while it is open', async () => {
    const path = tempDb();
    const writer = open({ path });
    await writer.append(mixedEvents(5));
    const auditor = open({ path, readonly: true });
    expect(auditor.lastSeq()).toBe(5);

    await writer.append(mixedEvents(5, 5));

    expect(auditor.lastSeq()).toBe(10);
    expect(auditor.heads()).toEqual(writer.heads());
    expect(auditor.verify()).toMatchObject({ ok: true, events: 10 });
  });

  it('cannot be in-memory', () => {
    expect(() => open({ path: ':memory:', readonly: true })).toThrow(ConfigError);
  });
});
