/**
 * `keel audit verify` against forged retention anchors, and `--anchor` listing what was pruned
 * since an external anchor was taken.
 */
import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { simulatedClock, type SimulatedClock } from '../../src/core/clock.js';
import { chainHash, chainRowOf, type ChainRow } from '../../src/eventlog/chain.js';
import type { EventClass } from '../../src/eventlog/events.js';
import { createRuntime } from '../../src/runtime.js';
import { agent } from '../../src/supervisor/agent.js';
import { seq } from '../../src/supervisor/sequential.js';
import { insertRow } from '../eventlog/raw-rows.js';
import { captureIo } from './io.js';
import { tempDir } from './logs.js';

let tmp: ReturnType<typeof tempDir> | undefined;
afterEach(() => {
  tmp?.cleanup();
  tmp = undefined;
});

const DAY = 86_400_000;

/** Ten three-agent workflows, a few seconds apart, as a service writes them. */
async function serviceLog(
  db: string,
  clock: SimulatedClock,
  retention?: { operationalDays: number; auditDays: number },
) {
  const rt = createRuntime({
    db,
    clock,
    seed: 3,
    cache: false,
    metrics: false,
    tracing: false,
    pricing: { sim: { inputPer1K: 0.001, outputPer1K: 0.001 } },
    ...(retention ? { retention } : {}),
  });
  const step = (name: string) =>
    agent({
      name,
      model: 'sim',
      run: () => Promise.resolve({ value: name, usage: { inputTokens: 10, outputTokens: 10 } }),
    });
  for (let i = 0; i < 10; i++) {
    // the input holds an email: its redaction is an operational event
    await rt.run(seq(step('extract'), step('check'), step('route')), {
      invoice: i,
      from: 'jane.doe@example.com',
    });
    clock.advance(2_000);
  }
  return rt;
}

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const io = captureIo();
  const code = await runCli(args, io.io);
  return { code, out: io.stdout() + io.stderr() };
}

/**
 * What an attacker with write access does: opens the retention gate, deletes seqs 1..through
 * (only `classes`), appends a `log.anchor` per class with `olderThanTs: 0` and correct hashes.
 */
function forgeAnchors(db: string, through: number, classes: readonly string[]): void {
  const raw = new Database(db);
  // Coded rows (schema 4), read as text through the view; the previous hash is the class's previous row's.
  const rows = (
    raw
      .prepare(
        'SELECT seq, ts, workflow_id, type, v, class, payload, NULL, hash FROM events_readable ORDER BY seq',
      )
      .raw(true)
      .all() as unknown[][]
  ).map(chainRowOf);
  const doomed = rows.filter((r) => r[0] <= through && classes.includes(r[5]));
  raw.exec('UPDATE retention_gate SET open = 1');
  const del = raw.prepare('DELETE FROM events WHERE seq = ?');
  for (const r of doomed) del.run(r[0]);
  raw.exec('UPDATE retention_gate SET open = 0');
  const auditRows = rows.filter((r) => r[5] === 'audit');
  let prev = (auditRows[auditRows.length - 1] as ChainRow)[8];
  let nextSeq = (rows[rows.length - 1] as ChainRow)[0] + 1;
  const ts = (rows[rows.length - 1] as ChainRow)[1] + 1;
  for (const cls of classes) {
    const last = doomed.filter((r) => r[5] === cls).at(-1);
    if (last === undefined) throw new Error(`no ${cls} event among seqs 1..${through}`);
    const anchor = {
      lastPrunedHash: last[8],
      olderThanTs: 0,
      prunedClass: cls as EventClass,
      prunedCount: doomed.filter((r) => r[5] === cls).length,
      prunedThroughSeq: last[0],
    };
    const payload = JSON.stringify(anchor);
    const hash = chainHash(prev, nextSeq, ts, '_system', 'log.anchor', 1, 'audit', payload);
    const event = {
      seq: nextSeq,
      ts,
      workflowId: '_system',
      type: 'log.anchor',
      v: 1,
      class: 'audit',
      payload: anchor,
    } as const;
    insertRow(raw, event, hash);
    prev = hash;
    nextSeq++;
  }
  raw.close();
}

describe('verify and forged retention anchors', () => {
  it('fails a forged anchor that hides deleted seconds-old workflows (both classes deleted), naming why', async () => {
    tmp = tempDir();
    const db = tmp.path('keel.db');
    await (await serviceLog(db, simulatedClock())).close();
    expect((await cli(['audit', 'verify', '--db', db])).code).toBe(0);
    const taken = await cli(['audit', 'anchor', '--db', db]);
    const anchorFile = tmp.path('anchor.json');
    writeFileSync(anchorFile, taken.out);

    forgeAnchors(db, 20, ['audit', 'operational']);
    const verified = await cli(['audit', 'verify', '--db', db]);
    expect(verified.code).toBe(1);
    expect(verified.out).toMatch(
      /FAILED at seq \d+ \(anchor_implausible\): .*older than 1970-01-01T00:00:00.000Z.*workflow "[^"]+", whose workflow.started is gone, ended at seq \d+ after \d+ ms, so it started at 2026-/,
    );

    const withAnchor = await cli(['audit', 'verify', '--db', db, '--anchor', anchorFile]);
    expect(withAnchor.code).toBe(1);
    expect(withAnchor.out).toMatch(/Since the anchor \(taken .*\):/);
    expect(withAnchor.out).toMatch(
      /retention pruned \d+ audit event\(s\) in seqs 1\.\.\d+, all older than 1970-01-01T00:00:00\.000Z/,
    );
    expect(withAnchor.out).toMatch(/retention pruned \d+ operational event\(s\) in seqs 1\.\.\d+/);
  });

  it('fails a forged anchor when an event kept from before the pruned range is younger than it claims', async () => {
    tmp = tempDir();
    const db = tmp.path('keel.db');
    await (await serviceLog(db, simulatedClock())).close();
    forgeAnchors(db, 20, ['audit']); // operational events among seqs 1..20 stay
    const verified = await cli(['audit', 'verify', '--db', db, '--json']);
    expect(verified.code).toBe(1);
    expect(JSON.parse(verified.out)).toMatchObject({
      ok: false,
      reason: 'anchor_implausible',
      detail: expect.stringMatching(/kept and logged before them, is from 2026-/) as unknown,
    });
  });

  it('passes real retention, and --anchor lists each pruning since the anchor with its seqs, count and time bound', async () => {
    tmp = tempDir();
    const db = tmp.path('keel.db');
    const clock = simulatedClock();
    const rt = await serviceLog(db, clock, { operationalDays: 1, auditDays: 2 });
    const taken = await cli(['audit', 'anchor', '--db', db]);
    const anchorFile = tmp.path('anchor.json');
    writeFileSync(anchorFile, taken.out);
    clock.advance(3 * DAY);
    await rt.run(agent({ name: 'late', model: 'sim', run: () => Promise.resolve({ value: 1 }) }), {});
    const pruned = await rt.applyRetention();
    expect(pruned.map((p) => p.pruned).every((n) => n > 0)).toBe(true);
    await rt.close();

    const verified = await cli(['audit', 'verify', '--db', db, '--anchor', anchorFile]);
    expect(verified.out).toMatch(/^OK: \d+ events, chains intact, anchor matches/);
    expect(verified.code).toBe(0);
    const lines = verified.out.split('\n').filter((l) => l.includes('retention pruned'));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /retention pruned \d+ operational event\(s\) in seqs 1\.\.\d+, all older than 2026-/,
    );
    expect(lines[1]).toMatch(/retention pruned \d+ audit event\(s\) in seqs 1\.\.\d+, all older than 2026-/);
  });
});
