/**
 * The read-only commands work for an auditor who may only read the log (not write it or its
 * directory), while the service appends, and leave no file of theirs behind. Runs the real `keel`
 * binary as `nobody` (runuser); needs root, as CI has.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { demoRegistry } from '../../demos/index.js';
import { simulatedClock } from '../../src/core/clock.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { captureIo } from './io.js';

const run = promisify(execFile);
const KEEL = join(import.meta.dirname, '..', '..', 'bin', 'keel.js');
const NOBODY_UID = 65534;
const canSwitchUser = process.getuid?.() === 0 && fs.existsSync('/usr/sbin/runuser');
const SKIP_NOTE = canSwitchUser ? '' : ' (SKIPPED: needs root and runuser to run the commands as nobody)';

let dir: string | undefined;
afterEach(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A root-owned 0755 directory holding a root-owned 0644 demo log. */
async function demoLog(): Promise<string> {
  dir = fs.mkdtempSync(join(os.tmpdir(), 'keel-auditor-'));
  fs.chmodSync(dir, 0o755);
  const db = join(dir, 'keel.db');
  const c = captureIo();
  expect(
    await runCli(['demo', 'invoice', '--db', db, '--count', '3', '--quiet'], c.io, { demos: demoRegistry }),
  ).toBe(0);
  // The auditor may read it (a service would pass fileMode: 0o644 or 0o640 and a group).
  for (const f of [db, `${db}-wal`, `${db}-shm`]) if (fs.existsSync(f)) fs.chmodSync(f, 0o644);
  return db;
}

/** Runs `keel …args` as nobody; resolves with its exit code and output. */
async function asNobody(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('runuser', ['-u', 'nobody', '--', process.execPath, KEEL, ...args], {
      cwd: '/',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent' },
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: x.code ?? -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

function filesOwnedByNobody(root: string): string[] {
  return fs
    .readdirSync(root, { recursive: true, encoding: 'utf8' })
    .map((f) => join(root, f))
    .filter((f) => fs.lstatSync(f).uid === NOBODY_UID);
}

describe('read-only commands as a user who can only read the log', () => {
  it.skipIf(!canSwitchUser)(
    `report, audit verify|query|trace, replay, export and whatif succeed while the service appends, leaving no file of theirs${SKIP_NOTE}`,
    async () => {
      const db = await demoLog();
      const writer = openSqliteStore({ path: db, clock: simulatedClock() });
      const [started] = writer.query({ type: 'workflow.started', limit: 1 });
      const commands = [
        ['report', '--db', db, '--json'],
        ['audit', 'verify', '--db', db],
        ['audit', 'query', '--db', db, '--type', 'workflow.started'],
        ['audit', 'trace', started?.workflowId ?? '', '--db', db],
        ['replay', 'all', '--db', db, '--json'],
        ['export', '--db', db, '--format', 'ecs'],
        ['whatif', '--db', db, '--cache-ttl', '1h,24h'],
      ];
      let appended = 0;
      for (const args of commands) {
        let done = false;
        const child = asNobody(args).finally(() => {
          done = true;
        });
        // The service keeps appending while the auditor reads: every 20 ms for its first 100 events,
        // then every 500 ms. `export` prints each event it reads (~400 B as ECS), so at an even pace a
        // command slowed down by a loaded box (its tsx start alone can take tens of seconds) printed
        // more than execFile's 1 MiB maxBuffer; now even 180 s of appending adds under 200 kB.
        for (let k = 0; !done; k++) {
          await writer.append([
            { ts: 1, workflowId: `svc-${appended++}`, type: 'feedback.recorded', payload: { correct: true } },
          ]);
          // Paced so the reader gets the CPU (a throttle, not a timing assertion).
          await new Promise<void>((resolve) => setTimeout(resolve, k < 100 ? 20 : 500));
        }
        const result = await child;
        expect(result, args.join(' ')).toMatchObject({ code: 0 });
        expect(filesOwnedByNobody(dir as string), args.join(' ')).toEqual([]);
      }
      expect(appended).toBeGreaterThan(0);
      // The service's next append still works, and the chain is whole.
      await writer.append([
        { ts: 2, workflowId: 'after', type: 'feedback.recorded', payload: { correct: true } },
      ]);
      expect(writer.verify()).toMatchObject({ ok: true });
      await writer.close();
    },
    180_000,
  );

  it.skipIf(!canSwitchUser)(
    `reads a log no service has open, also from a directory the auditor could write, leaving nothing behind${SKIP_NOTE}`,
    async () => {
      const db = await demoLog();
      await openSqliteStore({ path: db }).close(); // the last connection removes -wal and -shm
      expect(fs.existsSync(`${db}-wal`)).toBe(false);
      expect(await asNobody(['audit', 'verify', '--db', db])).toMatchObject({ code: 0 });
      fs.chmodSync(dir as string, 0o1777); // world-writable (sticky), like /tmp
      expect(await asNobody(['audit', 'verify', '--db', db])).toMatchObject({
        code: 0,
        stdout: expect.stringMatching(/^OK/) as unknown,
      });
      expect(filesOwnedByNobody(dir as string)).toEqual([]);
      // The service (root) appends afterwards as usual.
      const writer = openSqliteStore({ path: db, clock: simulatedClock() });
      await writer.append([
        { ts: 1, workflowId: 'next', type: 'feedback.recorded', payload: { correct: true } },
      ]);
      expect(writer.verify()).toMatchObject({ ok: true });
      await writer.close();
    },
    60_000,
  );
});
