/**
 * `keel audit open`, `keel audit interrupt` and `keel replay` over a log with workflows a crash cut
 * off: listing, dry run, marking, idempotence, bad durations, and replay's summary.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/main.js';
import type { KeelEvent } from '../../src/eventlog/events.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { appendAll, cutOff, workflowsWith } from '../compliance/crash-log.js';
import { captureIo } from './io.js';
import { invoices, recordCascade, tempDir } from './logs.js';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

let tmp: ReturnType<typeof tempDir> | undefined;
afterEach(() => {
  tmp?.cleanup();
  tmp = undefined;
});

/** What `keel <args>` printed, and its exit code. */
async function keel(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const c = captureIo();
  const code = await runCli(args, c.io);
  return { code, stdout: c.stdout(), stderr: c.stderr() };
}

/**
 * Six triage cascades recorded on 2026-01-01 (the simulated clock's start), two of them cut off by
 * a crash; with `recent`, one more workflow started a minute ago (wall clock) and still open.
 */
async function crashDb(recent: boolean): Promise<{ db: string; cut: string[] }> {
  tmp = tempDir();
  const recorded = tmp.path('recorded.db');
  await recordCascade(recorded, 0.95, invoices(6));
  const source = openSqliteStore({ path: recorded, readonly: true });
  const events = source.query();
  await source.close();
  const cut = workflowsWith(events, 'cascade.escalated').slice(0, 2);
  expect(cut).toHaveLength(2);
  const db = tmp.path('crash.db');
  const store = openSqliteStore({ path: db });
  await appendAll(store, cutOff(events, new Set(cut)));
  if (recent) {
    const started = events.find((e) => e.type === 'workflow.started') as KeelEvent;
    await appendAll(store, [{ ...started, workflowId: 'wf-recent', ts: Date.now() - 60_000 }]);
  }
  await store.close();
  return { db, cut };
}

function interruptions(db: string): KeelEvent<'workflow.interrupted'>[] {
  const store = openSqliteStore({ path: db, readonly: true });
  try {
    return store
      .query({ type: 'workflow.interrupted' })
      .filter((e): e is KeelEvent<'workflow.interrupted'> => e.type === 'workflow.interrupted');
  } finally {
    void store.close();
  }
}

describe('keel audit open', () => {
  it('lists every open workflow, or those older than --older-than, as text or JSON; exit 0', async () => {
    const { db, cut } = await crashDb(true);

    const all = await keel(['audit', 'open', '--db', db]);
    expect(all.code).toBe(EXIT.ok);
    for (const id of [...cut, 'wf-recent']) expect(all.stdout).toContain(`${id}  triage  started `);
    expect(all.stdout).toMatch(/3 open workflow\(s\): started, never ended/);
    expect(all.stdout).toMatch(/event\(s\), last seq \d+ agent\.succeeded/);

    const old = await keel(['audit', 'open', '--db', db, '--older-than', '1h', '--json']);
    expect(old.code).toBe(EXIT.ok);
    const parsed = JSON.parse(old.stdout) as { startedBefore: number; open: { workflowId: string }[] };
    expect(parsed.open.map((w) => w.workflowId)).toEqual(cut);
    expect(typeof parsed.startedBefore).toBe('number');
  });
});

describe('keel audit interrupt', () => {
  it('dry run exits 1 and writes nothing; --yes marks each once (exit 0); a second run finds nothing', async () => {
    const { db, cut } = await crashDb(true);

    const dry = await keel(['audit', 'interrupt', '--db', db, '--older-than', '2h']);
    expect(dry.code).toBe(EXIT.failed);
    expect(dry.stdout).toContain('dry run: would mark 2 workflow(s)');
    expect(dry.stdout).toContain('Rerun with --yes');
    expect(interruptions(db)).toEqual([]);

    const yes = await keel([
      'audit',
      'interrupt',
      '--db',
      db,
      '--older-than',
      '2h',
      '--reason',
      'node lost',
      '--yes',
    ]);
    expect(yes.code).toBe(EXIT.ok);
    expect(yes.stdout).toMatch(/marked 2 workflow\(s\) started before \S+ as interrupted/);
    const marks = interruptions(db);
    expect(marks.map((e) => e.workflowId)).toEqual(cut);
    expect(marks.every((e) => e.payload.reason === 'node lost' && e.payload.markedBy === 'cli')).toBe(true);
    expect((await keel(['audit', 'verify', '--db', db])).code).toBe(EXIT.ok);
    expect((await keel(['audit', 'trace', cut[0] as string, '--db', db])).stdout).toMatch(
      /workflow\.interrupted\s+reason=node lost lastSeq=\d+ markedBy=cli/,
    );

    const again = await keel(['audit', 'interrupt', '--db', db, '--older-than', '2h', '--yes']);
    expect(again).toMatchObject({
      code: EXIT.ok,
      stdout: expect.stringContaining('nothing to mark') as string,
    });
    expect((await keel(['audit', 'interrupt', '--db', db, '--older-than', '2h'])).code).toBe(EXIT.ok);
    expect(interruptions(db)).toHaveLength(2);
    // The recent one is younger than the cutoff: still open, still listed.
    const left = JSON.parse((await keel(['audit', 'open', '--db', db, '--json'])).stdout) as {
      open: { workflowId: string }[];
    };
    expect(left.open.map((w) => w.workflowId)).toEqual(['wf-recent']);
  });

  it('exits 2 naming --older-than when it is missing, malformed or zero, and writes nothing', async () => {
    const { db } = await crashDb(false);
    const missing = await keel(['audit', 'interrupt', '--db', db, '--yes']);
    expect(missing.code).toBe(EXIT.usage);
    expect(missing.stderr).toMatch(/--older-than is required.*e\.g\. --older-than 2h/);
    for (const bad of ['2x', 'soon', '0m', '-1h', '1.5']) {
      const r = await keel(['audit', 'interrupt', '--db', db, '--older-than', bad, '--yes']);
      expect(r.code).toBe(EXIT.usage);
      expect(r.stderr).toContain(`--older-than must be a duration`);
      expect(r.stderr).toContain('e.g. 30m, 2h or 1d');
    }
    expect((await keel(['audit', 'open', '--db', db, '--older-than', 'yesterday'])).code).toBe(EXIT.usage);
    expect(interruptions(db)).toEqual([]);
  });
});

describe('keel replay over interrupted workflows', () => {
  it('lists them as INTERRUPTED, counts them apart from divergences, and exits 0 for "all", 1 for the id', async () => {
    const { db, cut } = await crashDb(false);
    expect((await keel(['audit', 'interrupt', '--db', db, '--older-than', '1d', '--yes'])).code).toBe(
      EXIT.ok,
    );
    const topologies = ['--topologies', fixture('topologies.ts')];

    const all = await keel(['replay', 'all', '--db', db, ...topologies]);
    expect(all.code).toBe(EXIT.ok);
    for (const id of cut) expect(all.stdout).toContain(`INTERRUPTED  ${id}  triage`);
    expect(all.stdout).toMatch(
      /\[not_replayable\] workflow \S+ was interrupted at seq \d+ \(marked at seq \d+ by cli/,
    );
    expect(all.stdout).toContain(
      '4 workflow(s) replayed with 0 model calls: 4 identical, 0 diverged; 2 interrupted by a crash, not replayable',
    );

    const json = await keel(['replay', 'all', '--db', db, ...topologies, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({
      workflows: 6,
      ok: 4,
      diverged: 0,
      interrupted: 2,
      modelCalls: 0,
    });

    const one = await keel(['replay', cut[0] as string, '--db', db, ...topologies]);
    expect(one.code).toBe(EXIT.failed);
    expect(one.stdout).toContain(`INTERRUPTED  ${cut[0]}  triage`);
  });
});
