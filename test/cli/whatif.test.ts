import { afterEach, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/main.js';
import { parseDuration, parseVolume } from '../../src/cli/whatif.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { whatIfCascade } from '../../src/replay/whatif.js';
import { captureIo } from './io.js';
import { invoices, recordCascade, recordLookups, recordVote, tempDir, transactions } from './logs.js';

let tmp: ReturnType<typeof tempDir> | undefined;
afterEach(() => {
  tmp?.cleanup();
  tmp = undefined;
});
function dir(): ReturnType<typeof tempDir> {
  tmp = tempDir();
  return tmp;
}

describe('keel whatif', () => {
  it('prints the threshold tuning table from one recorded cascade run', async () => {
    const db = dir().path('keel.db');
    await recordCascade(db, 0.95, invoices(40));
    const c = captureIo();
    const code = await runCli(
      ['whatif', '--db', db, '--cascade-threshold', '0.95,0.9,0.85', '--volume', '20000/week'],
      c.io,
    );
    expect(code).toBe(EXIT.ok);
    const text = c.stdout();
    expect(text).toContain(
      'Cascade triage (workflow triage): 40 runs, screen (gpt-3.5-turbo) → escalate (gpt-4)',
    );
    expect(text).toMatch(
      /Threshold\s+Cheap \(screen\)\s+Escalated\s+Accuracy\s+Cost\/run\s+Cost\/week\s+Cost\/year/,
    );
    expect(text).toMatch(/^0\.90\s+\d+\.\d%\s+\d+\.\d%\s+\d+\.\d%\s+\$0\.\d{4}\s+\$[\d,]+\.\d\d/m);
    expect(text).toContain('Baseline (escalate only, estimated from');
    expect(text).toContain('$600.00/week, $31,200.00/year');
  });

  it('prints JSON equal to whatIfCascade over the same log', async () => {
    const db = dir().path('keel.db');
    await recordCascade(db, 0.95, invoices(20));
    const c = captureIo();
    const code = await runCli(
      ['whatif', '--db', db, '--cascade-threshold', '0.9,0.85', '--volume', '20,000', '--json'],
      c.io,
    );
    expect(code).toBe(EXIT.ok);
    const store = openSqliteStore({ path: db, readonly: true });
    const direct = whatIfCascade(store.iterate(), { thresholds: [0.9, 0.85], volumePerWeek: 20_000 });
    await store.close();
    expect(JSON.parse(c.stdout())).toEqual(JSON.parse(JSON.stringify({ whatIf: 'cascade', ...direct })));
  });

  it('evaluates vote stop rules and cache TTLs', async () => {
    const t = dir();
    await recordVote(t.path('votes.db'), 'all', transactions(10));
    let c = captureIo();
    expect(
      await runCli(['whatif', '--db', t.path('votes.db'), '--vote-stop', 'decided,all,3', '--json'], c.io),
    ).toBe(EXIT.ok);
    const votes = JSON.parse(c.stdout()) as {
      whatIf: string;
      sites: { path: string; rows: { stop: unknown; meanAgentsUsed: number }[] }[];
    };
    expect(votes.whatIf).toBe('vote');
    expect(votes.sites[0]?.path).toBe('fraud');
    expect(votes.sites[0]?.rows.map((r) => [r.stop, r.meanAgentsUsed])).toEqual([
      ['decided', 3.4],
      ['all', 5],
      [3, 3],
    ]);

    await recordLookups(t.path('cache.db'), 3_600_000);
    c = captureIo();
    expect(
      await runCli(
        ['whatif', '--db', t.path('cache.db'), '--cache-ttl', '10m,1h,3h', '--volume', '10000/week'],
        c.io,
      ),
    ).toBe(EXIT.ok);
    expect(c.stdout()).toContain('Cache: 20 lookups by 20 workflows (agents: vendor_validation)');
    expect(c.stdout()).toMatch(/^10m\s+20\s+0\s+0\.0%/m);
    expect(c.stdout()).toMatch(/^no cache\s+20\s+0\s+0\.0%/m);
  });

  it('exits 1 when the log holds nothing the policy applies to', async () => {
    const t = dir();
    await recordCascade(t.path('keel.db'), 0.9, invoices(3));
    const c = captureIo();
    expect(await runCli(['whatif', '--db', t.path('keel.db'), '--vote-stop', 'all'], c.io)).toBe(EXIT.failed);
    expect(c.stderr()).toContain('no vote runs in');
  });

  it('rejects bad arguments with exit 2 and a message naming the option', async () => {
    const db = dir().path('keel.db');
    await recordCascade(db, 0.9, invoices(3));
    const cases: [string[], string][] = [
      [['whatif', '--db', db], 'say what to change'],
      [['whatif', '--db', db, '--cascade-threshold', '0.9', '--vote-stop', 'all'], 'give one of'],
      [
        ['whatif', '--db', db, '--cascade-threshold', '1.2'],
        '--cascade-threshold values must be confidences in [0, 1]',
      ],
      [['whatif', '--db', db, '--cascade-threshold', ','], '--cascade-threshold needs at least one value'],
      [['whatif', '--db', db, '--vote-stop', '0'], '--vote-stop values must be decided, all or a number'],
      [['whatif', '--db', db, '--cache-ttl', '0h'], '--cache-ttl values must be durations greater than 0'],
      [
        ['whatif', '--db', db, '--cascade-threshold', '0.9', '--volume', 'lots'],
        '--volume must be runs per week',
      ],
      [
        ['whatif', '--db', db, '--cascade-threshold', '0.9', '--agent', 'x'],
        '--agent applies to --cache-ttl only',
      ],
    ];
    for (const [argv, message] of cases) {
      const c = captureIo();
      expect(await runCli(argv, c.io), argv.join(' ')).toBe(EXIT.usage);
      expect(c.stderr()).toContain(message);
    }
    const c = captureIo();
    expect(await runCli(['whatif', '--db', `${db}.missing`, '--cascade-threshold', '0.9'], c.io)).toBe(
      EXIT.error,
    );
  });

  it('parses volumes and durations the way the tutorial writes them', () => {
    expect(parseVolume('20000/week')).toBe(20_000);
    expect(parseVolume('20,000')).toBe(20_000);
    expect(parseVolume('3000/day')).toBe(21_000);
    expect(parseDuration('--cache-ttl', '24h')).toBe(86_400_000);
    expect(parseDuration('--cache-ttl', '90m')).toBe(5_400_000);
    expect(parseDuration('--cache-ttl', '1500')).toBe(1_500);
  });
});
