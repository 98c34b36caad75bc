import Database from 'better-sqlite3';
import { chmodSync, copyFileSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { simulatedClock } from '../../src/core/clock.js';
import { createRuntime } from '../../src/runtime.js';
import { agent, AgentError } from '../../src/supervisor/agent.js';
import { vote } from '../../src/supervisor/vote.js';
import { captureIo } from './io.js';
import { tempDir } from './logs.js';

const tmp = tempDir();
afterEach(() => undefined);
afterAll(() => tmp.cleanup());

/** A small log: votes, a failure with a category, spread over two days. */
async function record(db: string): Promise<{ workflowIds: string[] }> {
  const clock = simulatedClock(Date.UTC(2026, 0, 1));
  const rt = createRuntime({
    db,
    clock,
    seed: 1,
    pricing: { sim: { inputPer1K: 0.001, outputPer1K: 0.001 } },
  });
  const yes = agent({ name: 'screener', model: 'sim', run: () => Promise.resolve({ value: 'legit' }) });
  const ocr = agent({
    name: 'ocr',
    model: 'sim',
    run: () => Promise.reject(new AgentError('ocr_error', 'page 2 unreadable')),
  });
  const ids: string[] = [];
  ids.push((await rt.run(vote([yes, yes, yes]), {})).workflowId);
  // the input holds an email: its redaction is an operational event (90-day retention)
  await rt.run(ocr, { from: 'jane.doe@example.com' }).catch(() => undefined);
  clock.advance(86_400_000);
  ids.push((await rt.run(vote([yes, yes, yes]), {})).workflowId);
  await rt.close();
  return { workflowIds: ids };
}

describe('keel audit', () => {
  it('verify: exit 0 on an intact log; exit 1 naming the first bad seq of a tampered one', async () => {
    const db = tmp.path('verify.db');
    await record(db);
    const ok = captureIo();
    expect(await runCli(['audit', 'verify', '--db', db], ok.io)).toBe(0);
    expect(ok.stdout()).toMatch(/^OK: \d+ events/);
    const raw = new Database(db);
    raw.exec('DROP TRIGGER events_no_update');
    raw.prepare("UPDATE events SET payload = replace(payload, 'legit', 'fraud') WHERE seq = 5").run();
    raw.close();
    const bad = captureIo();
    expect(await runCli(['audit', 'verify', '--db', db, '--json'], bad.io)).toBe(1);
    expect(JSON.parse(bad.stdout())).toMatchObject({ ok: false, seq: 5, reason: 'modified' });
  });

  it('anchor + verify --anchor: passes while the log only grows, fails when anchored history is rewritten', async () => {
    const db = tmp.path('anchor.db');
    await record(db);
    const a = captureIo();
    expect(await runCli(['audit', 'anchor', '--db', db], a.io)).toBe(0);
    const anchorFile = tmp.path('anchor.json');
    writeFileSync(anchorFile, a.stdout());
    const anchored = JSON.parse(a.stdout()) as { heads: { audit: { seq: number } } };
    expect(anchored.heads.audit.seq).toBeGreaterThan(0);
    expect(await runCli(['audit', 'verify', '--db', db, '--anchor', anchorFile], captureIo().io)).toBe(0);
    // rewrite the whole chain consistently from a copy: the file alone looks fine, the anchor does not
    const forged = tmp.path('forged.db');
    copyFileSync(db, forged);
    const raw = new Database(forged);
    raw.exec('DROP TRIGGER events_no_delete');
    raw.prepare('DELETE FROM events WHERE seq >= ?').run(anchored.heads.audit.seq);
    raw.close();
    const out = captureIo();
    expect(await runCli(['audit', 'verify', '--db', forged, '--anchor', anchorFile], out.io)).toBe(1);
    expect(out.stdout()).toMatch(/anchored audit seq \d+ is missing/);
  });

  it('query filters by type, agent, category and time, as JSON lines, on a read-only file', async () => {
    const db = tmp.path('query.db');
    await record(db);
    chmodSync(db, 0o444);
    const q = captureIo();
    expect(
      await runCli(['audit', 'query', '--db', db, '--type', 'agent.failed', '--category', 'ocr_error'], q.io),
    ).toBe(0);
    const lines = q
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; payload: { category: string } });
    expect(lines).toHaveLength(1);
    expect(lines[0]?.payload.category).toBe('ocr_error');
    const day2 = captureIo();
    await runCli(
      ['audit', 'query', '--db', db, '--type', 'vote.decided', '--from', '2026-01-02T00:00:00Z'],
      day2.io,
    );
    expect(day2.stdout().trim().split('\n')).toHaveLength(1);
    const byAgent = captureIo();
    await runCli(['audit', 'query', '--db', db, '--agent', 'screener', '--limit', '2'], byAgent.io);
    expect(byAgent.stdout().trim().split('\n')).toHaveLength(2);
    chmodSync(db, 0o644);
  });

  it('trace shows every decision of a workflow in order', async () => {
    const db = tmp.path('trace.db');
    const { workflowIds } = await record(db);
    const t = captureIo();
    expect(await runCli(['audit', 'trace', workflowIds[0] as string, '--db', db], t.io)).toBe(0);
    const types = t
      .stdout()
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/).find((w) => /^[a-z]+\.[a-z_]+$/.test(w)));
    expect(types[0]).toBe('workflow.started');
    expect(types).toContain('vote.cast');
    expect(types).toContain('vote.early_stop');
    expect(types).toContain('vote.decided');
    expect(types.at(-1)).toBe('workflow.completed');
    expect(await runCli(['audit', 'trace', 'wf_nope', '--db', db], captureIo().io)).toBe(1);
  });

  it('bad arguments and files get clear messages and documented exit codes', async () => {
    const missing = captureIo();
    expect(await runCli(['audit', 'verify', '--db', tmp.path('nope.db')], missing.io)).toBe(3);
    expect(missing.stderr()).toMatch(/does not exist/);
    const text = tmp.path('notes.txt');
    writeFileSync(text, 'not a database');
    const notDb = captureIo();
    expect(await runCli(['audit', 'verify', '--db', text], notDb.io)).toBe(3);
    expect(notDb.stderr()).toMatch(/not a SQLite database/);
    const db = tmp.path('args.db');
    await record(db);
    const badType = captureIo();
    expect(await runCli(['audit', 'query', '--db', db, '--type', 'agent.exploded'], badType.io)).toBe(2);
    expect(badType.stderr()).toMatch(/not an event type/);
    expect(await runCli(['audit', 'query', '--db', db, '--from', 'yesterday'], captureIo().io)).toBe(2);
  });
});

describe('keel retention apply', () => {
  it('prunes past-retention events through the sanctioned path and the chain still verifies', async () => {
    const db = tmp.path('retention.db');
    await record(db);
    const out = captureIo();
    // the log is from 2026-01-01; everything operational is older than 1 day from now
    expect(
      await runCli(['retention', 'apply', '--db', db, '--operational-days', '1', '--json'], out.io),
    ).toBe(0);
    const result = JSON.parse(out.stdout()) as {
      results: { class: string; pruned: number }[];
      verified: boolean;
    };
    expect(result.verified).toBe(true);
    expect(result.results.find((r) => r.class === 'operational')?.pruned).toBeGreaterThan(0);
    expect(result.results.find((r) => r.class === 'audit')?.pruned).toBe(0);
    expect(await runCli(['audit', 'verify', '--db', db], captureIo().io)).toBe(0);
  });

  it('says in its text output how many dictionary strings went with the pruned events', async () => {
    const db = tmp.path('retention-text.db');
    await record(db);
    const out = captureIo();
    expect(await runCli(['retention', 'apply', '--db', db, '--operational-days', '1'], out.io)).toBe(0);
    expect(out.stdout()).toMatch(
      /^operational: pruned [1-9]\d* events \(through seq \d+\); \d+ dictionary strings no remaining event uses deleted$/m,
    );
    expect(out.stdout()).toMatch(/^audit: pruned 0 events \(through seq 0\)$/m);
    expect(out.stdout()).toMatch(/^verify: OK$/m);
  });
});
