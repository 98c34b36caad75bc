import { readFileSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCache, type CacheConfig } from '../../src/cache/cache.js';
import {
  CacheClosedError,
  CacheForeignDatabaseError,
  CacheNotADatabaseError,
  CacheSchemaVersionError,
  CacheValueError,
  isCacheError,
} from '../../src/cache/errors.js';
import { simulatedClock } from '../../src/core/clock.js';
import { isConfigError } from '../../src/core/errors.js';
import { tempDir } from './helpers.js';

describe('cache errors', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(() => dir.cleanup());

  it('refuses a file that is not a database, says what to do, and leaves it alone', () => {
    const path = dir.path('notes.txt');
    const content = 'these are not the pages you are looking for\n'.repeat(200);
    writeFileSync(path, content);
    let error: unknown;
    try {
      createCache({ clock: simulatedClock(), path });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CacheNotADatabaseError);
    expect(isCacheError(error)).toBe(true);
    expect((error as Error).message).toMatch(/not a SQLite database.*Point cache\.path at a new file/);
    expect(readFileSync(path, 'utf8')).toBe(content);
  });

  it('refuses a database that holds something else, such as the event log', () => {
    const path = dir.path('keel.db');
    const db = new Database(path);
    db.exec('CREATE TABLE events (seq INTEGER PRIMARY KEY, body TEXT)');
    db.close();
    expect(() => createCache({ clock: simulatedClock(), path })).toThrow(CacheForeignDatabaseError);
    expect(() => createCache({ clock: simulatedClock(), path })).toThrow(
      /own file, apart from the event log/,
    );
  });

  it('refuses a cache written by a newer Keel', () => {
    const path = dir.path('c.db');
    createCache({ clock: simulatedClock(), path }).close();
    const db = new Database(path);
    db.pragma('user_version = 99');
    db.close();
    expect(() => createCache({ clock: simulatedClock(), path })).toThrow(CacheSchemaVersionError);
  });

  it('refuses values that are not JSON, storing nothing', () => {
    const cache = createCache({ clock: simulatedClock() });
    expect(() => cache.set('k', 'a', undefined, 1_000)).toThrow(CacheValueError);
    expect(() => cache.set('k', 'a', { n: 1n }, 1_000)).toThrow(CacheValueError);
    expect(cache.get('k')).toBeUndefined();
    cache.close();
  });

  it('throws CacheClosedError after close, and close is idempotent', () => {
    const cache = createCache({ clock: simulatedClock(), path: dir.path('c.db') });
    cache.close();
    cache.close();
    expect(() => cache.get('k')).toThrow(CacheClosedError);
    expect(() => cache.set('k', 'a', 1, 1_000)).toThrow(CacheClosedError);
    expect(() => cache.invalidate({ all: true })).toThrow(CacheClosedError);
  });

  it.each([
    [{ maxEntries: -1 }, 'cache.maxEntries'],
    [{ maxEntries: 1.5 }, 'cache.maxEntries'],
    [{ maxEntries: 0 }, 'cache.maxEntries'],
    [{ maxStaleMs: -5 }, 'cache.maxStaleMs'],
    [{ purgeBatch: Number.NaN }, 'cache.purgeBatch'],
    [{ clock: undefined }, 'cache.clock'],
  ])('rejects config %j naming the field', (patch, field) => {
    let error: unknown;
    try {
      createCache({ clock: simulatedClock(), ...patch } as CacheConfig);
    } catch (e) {
      error = e;
    }
    expect(isConfigError(error)).toBe(true);
    expect((error as { field: string }).field).toBe(field);
  });
});
