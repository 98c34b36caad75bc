/**
 * The CLI never overwrites the log: `export --out` and `report --html` refuse any path that resolves
 * to the log, its side files or its cache, and write other files atomically (0600 by default).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { simulatedClock } from '../../src/core/clock.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { mixedEvents } from '../eventlog/helpers.js';
import { captureIo } from './io.js';
import { tempDir } from './logs.js';

let tmp: ReturnType<typeof tempDir> | undefined;
afterEach(() => {
  tmp?.cleanup();
  tmp = undefined;
});

const sha256 = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** A log of `n` events, plus its cache file, in a fresh directory. */
async function logOf(n: number): Promise<{ db: string; dir: string }> {
  tmp = tempDir();
  const db = tmp.path('keel.db');
  const store = openSqliteStore({ path: db, clock: simulatedClock() });
  await store.append(mixedEvents(n));
  await store.close();
  fs.writeFileSync(`${db}.cache`, 'cache stand-in');
  return { db, dir: tmp.dir };
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo();
  const code = await runCli(args, io.io);
  return { code, out: io.stdout(), err: io.stderr() };
}

describe('output files of the keel command', () => {
  it('refuses export --out and report --html onto the log, its side files and its cache, also through a symlink or ..', async () => {
    const { db, dir } = await logOf(20);
    const before = sha256(db);
    fs.symlinkSync(db, join(dir, 'link.html'));
    fs.linkSync(db, join(dir, 'hard.ndjson'));
    fs.mkdirSync(join(dir, 'sub'));
    const targets = [
      db,
      join(dir, 'link.html'),
      join(dir, 'hard.ndjson'),
      join(dir, 'sub', '..', 'keel.db'),
      `${db}-wal`,
      `${db}-shm`,
      `${db}.cache`,
    ];
    for (const target of targets) {
      const exported = await cli(['export', '--db', db, '--format', 'ecs', '--out', target]);
      expect(exported.code, target).toBe(2);
      expect(exported.err).toMatch(/--out .* resolves to .*must not overwrite.*nothing was written/);
      const html = await cli(['report', '--db', db, '--html', target]);
      expect(html.code, target).toBe(2);
      expect(html.err).toMatch(/--html .* resolves to /);
    }
    expect(sha256(db)).toBe(before);
    expect(fs.readFileSync(`${db}.cache`, 'utf8')).toBe('cache stand-in');
    expect(await cli(['audit', 'verify', '--db', db])).toMatchObject({ code: 0 });
  });

  it('refuses through a symlinked log path too (the log named by a link, the output by its target)', async () => {
    const { db, dir } = await logOf(5);
    fs.symlinkSync(db, join(dir, 'alias.db'));
    const before = sha256(db);
    const r = await cli(['export', '--db', join(dir, 'alias.db'), '--out', db]);
    expect(r.code).toBe(2);
    expect(sha256(db)).toBe(before);
  });

  it('writes new files 0600 (or --file-mode), and a failed export leaves the previous file whole and no temp file', async () => {
    const { db, dir } = await logOf(700);
    const out = join(dir, 'export.ndjson');
    expect((await cli(['export', '--db', db, '--out', out])).code).toBe(0);
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    const good = fs.readFileSync(out, 'utf8');
    expect(good.trim().split('\n')).toHaveLength(700);

    const html = join(dir, 'report.html');
    expect((await cli(['report', '--db', db, '--html', html, '--json'])).code).toBe(0);
    expect(fs.statSync(html).mode & 0o777).toBe(0o600);
    const shared = join(dir, 'shared.ndjson');
    expect((await cli(['export', '--db', db, '--out', shared, '--file-mode', '640'])).code).toBe(0);
    expect(fs.statSync(shared).mode & 0o777).toBe(0o640);

    // A row past the first chunk that cannot be read: the export fails after writing 500 events.
    const raw = new Database(db);
    raw.exec("DROP TRIGGER events_no_update; UPDATE events SET payload = 'not json' WHERE seq = 650;");
    raw.close();
    const failed = await cli(['export', '--db', db, '--out', out]);
    expect(failed.code).toBe(3);
    expect(fs.readFileSync(out, 'utf8')).toBe(good);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
