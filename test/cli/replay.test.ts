import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/main.js';
import { captureIo } from './io.js';
import { invoices, recordCascade, tempDir } from './logs.js';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const counter = globalThis as { keelFixtureModelCalls?: number };

let tmp: ReturnType<typeof tempDir> | undefined;
afterEach(() => {
  tmp?.cleanup();
  tmp = undefined;
});

async function recorded(): Promise<{ db: string; ids: string[] }> {
  tmp = tempDir();
  const db = tmp.path('keel.db');
  const results = await recordCascade(db, 0.95, invoices(6));
  return { db, ids: results.map((r) => r.workflowId) };
}

describe('keel replay', () => {
  it('replays every workflow from the log with zero model calls and exits 0', async () => {
    const { db } = await recorded();
    counter.keelFixtureModelCalls = 0;
    const c = captureIo();
    const code = await runCli(
      ['replay', 'all', '--db', db, '--topologies', fixture('topologies.ts'), '--json'],
      c.io,
    );
    expect(code).toBe(EXIT.ok);
    expect(counter.keelFixtureModelCalls).toBe(0);
    const out = JSON.parse(c.stdout()) as {
      workflows: number;
      ok: number;
      diverged: number;
      modelCalls: number;
      reports: { ok: boolean; name: string; divergences: unknown[] }[];
    };
    expect(out).toMatchObject({ workflows: 6, ok: 6, diverged: 0, modelCalls: 0 });
    expect(out.reports.every((r) => r.ok && r.name === 'triage' && r.divergences.length === 0)).toBe(true);
  });

  it('with "all", prints the summary and only what differs; --verbose lists identical ones too', async () => {
    const { db, ids } = await recorded();
    let c = captureIo();
    expect(await runCli(['replay', 'all', '--db', db, '--topologies', fixture('topologies.ts')], c.io)).toBe(
      EXIT.ok,
    );
    expect(c.stdout()).not.toContain('OK ');
    expect(c.stdout().trim()).toBe('6 workflow(s) replayed with 0 model calls: 6 identical, 0 diverged');
    c = captureIo();
    expect(
      await runCli(
        ['replay', 'all', '--verbose', '--db', db, '--topologies', fixture('topologies.ts')],
        c.io,
      ),
    ).toBe(EXIT.ok);
    for (const id of ids) expect(c.stdout()).toContain(`OK        ${id}  triage`);
  });

  it('replays one workflow by id and prints a summary', async () => {
    const { db, ids } = await recorded();
    const c = captureIo();
    const code = await runCli(
      ['replay', ids[2] as string, '--db', db, '--topologies', fixture('topologies.ts')],
      c.io,
    );
    expect(code).toBe(EXIT.ok);
    expect(c.stdout()).toContain(`OK        ${ids[2]}  triage`);
    expect(c.stdout()).toContain('1 workflow(s) replayed with 0 model calls: 1 identical, 0 diverged');
  });

  it('exits 1 when a workflow diverges, listing each divergence with both values', async () => {
    const { db } = await recorded();
    const c = captureIo();
    const code = await runCli(['replay', '--db', db, '--topologies', fixture('changed-topologies.ts')], c.io);
    expect(code).toBe(EXIT.failed);
    const text = c.stdout();
    expect(text).toContain('DIVERGED');
    expect(text).toContain('[topology_changed]');
    // an invoice with confidence 0.84 was escalated at 0.95 but is accepted at 0.8
    expect(text).toMatch(/\[decision\] triage: recorded cascade\.escalated .*replay gave cascade\.accepted/);
    expect(text).toMatch(/recorded: \{"type":"cascade\.escalated","fromStage":0,"toStage":1\}/);
    expect(text).toMatch(/replayed: \{"type":"cascade\.accepted","stage":0\}/);
    expect(text).toMatch(/6 workflow\(s\) replayed with 0 model calls: \d identical, [1-6] diverged/);
  });

  it('exits 1 for an unknown workflow id and 3 when the topologies cannot be loaded', async () => {
    const { db } = await recorded();
    let c = captureIo();
    expect(
      await runCli(['replay', 'wf_nope', '--db', db, '--topologies', fixture('topologies.ts')], c.io),
    ).toBe(EXIT.failed);
    expect(c.stderr()).toContain('no workflow "wf_nope"');

    c = captureIo();
    expect(await runCli(['replay', '--db', db, '--topologies', fixture('missing.ts')], c.io)).toBe(
      EXIT.error,
    );
    expect(c.stderr()).toContain('does not exist');

    c = captureIo();
    expect(await runCli(['replay', '--db', db, '--topologies', fixture('not-a-registry.ts')], c.io)).toBe(
      EXIT.error,
    );
    expect(c.stderr()).toContain('exports neither demoTopologies() nor a topologies object');

    c = captureIo();
    expect(
      await runCli(['replay', '--db', `${db}.missing`, '--topologies', fixture('topologies.ts')], c.io),
    ).toBe(EXIT.error);
    expect(c.stderr()).toContain('does not exist');
  });

  it('documents its exit codes in --help', async () => {
    const c = captureIo();
    expect(await runCli(['replay', '--help'], c.io)).toBe(EXIT.ok);
    expect(c.stdout()).toContain('Exit codes: 0 identical, 1 a workflow diverged');
  });
});
