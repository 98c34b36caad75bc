/**
 * `keel report` and `keel whatif` read a Postgres log by streaming its asynchronous `iterate()`
 * (page by page, never collected): the same events print the same output as from SQLite.
 */
import { afterEach, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/main.js';
import { openPostgresStore } from '../../src/eventlog/postgres.js';
import { openSqliteStore } from '../../src/eventlog/sqlite.js';
import { captureIo } from '../cli/io.js';
import { appendAll } from '../compliance/crash-log.js';
import { invoices, recordCascade, recordLookups, recordVote, tempDir, transactions } from '../cli/logs.js';
import { describePostgres, freshDatabase } from '../support/scaleout.js';

let tmp: ReturnType<typeof tempDir> | undefined;
afterEach(() => {
  tmp?.cleanup();
  tmp = undefined;
});

/** Copies a SQLite log into a Postgres schema, event for event; returns how many. */
async function copyToPostgres(db: string, url: string, schema: string): Promise<number> {
  const lite = openSqliteStore({ path: db, readonly: true });
  const pg = openPostgresStore({ url, schema });
  try {
    const events = lite.query();
    await appendAll(pg, events);
    return events.length;
  } finally {
    await pg.close();
    await lite.close();
  }
}

/** What `keel <args>` prints, and its exit code. */
async function keel(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const c = captureIo();
  const code = await runCli(args, c.io);
  return { code, stdout: c.stdout(), stderr: c.stderr() };
}

describePostgres('keel report and keel whatif over a Postgres log', () => {
  it('print from --store exactly what they print from --db for the same events', async () => {
    tmp = tempDir();
    const logs = { cascade: tmp.path('cascade.db'), vote: tmp.path('vote.db'), cache: tmp.path('cache.db') };
    await recordCascade(logs.cascade, 0.95, invoices(120));
    await recordVote(logs.vote, 'decided', transactions(40));
    await recordLookups(logs.cache, 3_600_000);
    const url = await freshDatabase();
    const copied = {
      cascade: await copyToPostgres(logs.cascade, url, 'cascade'),
      vote: await copyToPostgres(logs.vote, url, 'vote'),
      cache: await copyToPostgres(logs.cache, url, 'cache'),
    };
    expect(copied.cascade).toBeGreaterThan(1_000); // more than one page of Postgres's iterate()

    const runs: [keyof typeof logs, string[]][] = [
      ['cascade', ['report', '--json']],
      ['vote', ['report']],
      ['cache', ['report', '--json', '--sla-ms', '5000']],
      ['cascade', ['whatif', '--cascade-threshold', '0.95,0.9,0.85', '--volume', '20000/week', '--json']],
      ['cascade', ['whatif', '--cascade-threshold', '0.95,0.9', '--volume', '20000/week']],
      ['vote', ['whatif', '--vote-stop', 'decided,all,3', '--volume', '10000/week', '--json']],
      ['cache', ['whatif', '--cache-ttl', '10m,1h,3h', '--volume', '10000/week', '--json']],
    ];
    for (const [log, args] of runs) {
      const lite = await keel([...args, '--db', logs[log]]);
      const pg = await keel([...args, '--store', url, '--schema', log]);
      expect(lite.code, `${args.join(' ')} --db`).toBe(EXIT.ok);
      expect(pg.code, `${args.join(' ')} --store: ${pg.stderr}`).toBe(EXIT.ok);
      expect(pg.stdout, args.join(' ')).toBe(lite.stdout);
    }

    // The figures are the log's: every event read, every run re-evaluated.
    const report = JSON.parse(
      (await keel(['report', '--json', '--store', url, '--schema', 'cascade'])).stdout,
    ) as {
      span: { events: number };
      workflows: { name: string; completed: number }[];
    };
    expect(report.span.events).toBe(copied.cascade);
    expect(report.workflows).toMatchObject([{ name: 'triage', completed: 120 }]);
    const whatIf = JSON.parse(
      (await keel(['whatif', '--cascade-threshold', '0.9', '--json', '--store', url, '--schema', 'cascade']))
        .stdout,
    ) as { sites: { runs: number }[] };
    expect(whatIf.sites.map((s) => s.runs)).toEqual([120]);
  }, 120_000);
});
