/**
 * Several processes opening one new log path and one new cache path at the same moment: none
 * crashes, the schema is created once, and every file is private (0600).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { open, tempDir } from './helpers.js';

const CHILD = path.join(import.meta.dirname, 'create-child.ts');
const CHILDREN = 5;
const ROUNDS = 3;

interface Child {
  ready: Promise<void>;
  done: Promise<{ code: number | null; out: string }>;
  go(): void;
}

function startChild(log: string, cache: string, id: number): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, log, cache, String(id)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    if (out.includes('ready\n')) markReady();
  });
  const done = new Promise<{ code: number | null; out: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, out: out.replace('ready\n', '') })),
  );
  return { ready, done, go: () => child.stdin.end('go\n') };
}

describe('creating a log and a cache from several processes at once', () => {
  it(`never crashes: ${CHILDREN} processes, ${ROUNDS} rounds, each on new paths`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const dir = tempDir();
      const log = path.join(dir, 'keel.db');
      const cache = path.join(dir, 'keel.db.cache');
      const children = Array.from({ length: CHILDREN }, (_, i) => startChild(log, cache, i));
      await Promise.all(children.map((c) => c.ready));
      for (const c of children) c.go();
      const results = await Promise.all(children.map((c) => c.done));
      expect(results, `round ${round}`).toEqual(
        Array.from({ length: CHILDREN }, () => ({ code: 0, out: 'ok\n' })),
      );

      const store = open({ path: log, readonly: true });
      expect(store.verify()).toMatchObject({ ok: true, events: CHILDREN });
      await store.close();
      const raw = new Database(cache, { readonly: true });
      expect(raw.prepare('SELECT count(*) FROM keel_cache').pluck().get()).toBe(CHILDREN);
      raw.close();
      for (const f of [log, cache]) expect(fs.statSync(f).mode & 0o777).toBe(0o600);
    }
  }, 120_000);
});
