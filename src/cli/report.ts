/**
 * `keel report`: rebuilds workflows, latency, cost, error rates, alerts, breakers, votes, cascades
 * and root causes from the event log alone (opened read-only, streamed once from SQLite or Postgres,
 * never held in memory), and prints them as
 * tables or JSON; `--html FILE` also writes a self-contained HTML report.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { isConfigError } from '../index.js';
import { createReportFold, foldEvents, formatReport, renderHtml, type Report } from '../analysis.js';
import { CliError, EXIT, STORE_OPTION_HELP, SCHEMA_OPTION_HELP, openLog, type Io } from './io.js';
import { fileModeArg, protectedFiles, refuseClash, writeAtomically } from './output.js';

interface ReportFlags {
  db: string;
  store?: string;
  schema?: string;
  json?: boolean;
  html?: string;
  fileMode?: string;
  slaMs?: string;
  budgetUsd?: string;
  timeZone?: string;
  tenant?: string;
}

/** A number option > 0, naming the option and an example when it is not. */
function positiveNumber(name: string, value: string, example: string): number {
  const x = Number(value);
  if (value.trim() === '' || !Number.isFinite(x) || x <= 0) {
    throw new CliError(`${name} must be a number > 0, e.g. ${example}; got "${value}"`);
  }
  return x;
}

/** Registers `keel report`. */
export function registerReport(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('report')
    .description(
      'latency vs SLA, cost vs budget, error rates, alerts, breakers, votes, cascades and root causes',
    )
    .option('--db <file>', 'event log', 'keel.db')
    .option('--store <url>', STORE_OPTION_HELP)
    .option('--schema <name>', SCHEMA_OPTION_HELP)
    .option('--json', 'print the report as JSON instead of tables')
    .option(
      '--html <file>',
      'also write a self-contained HTML report to this file (never the log or its cache; replaced only once complete)',
    )
    .option('--file-mode <octal>', 'permission bits of a new --html file (default 600)')
    .option('--sla-ms <n>', 'latency SLA: P95 target in ms (default 10000)')
    .option('--budget-usd <n>', 'daily budget in USD to compare spend with')
    .option('--time-zone <tz>', 'IANA time zone of days and times (default UTC)')
    .option('--tenant <id>', "only this tenant's workflows (rt.run(…, { tenant })), e.g. acme")
    .action(async (o: ReportFlags) => {
      const slaP95Ms = o.slaMs === undefined ? undefined : positiveNumber('--sla-ms', o.slaMs, '10000');
      const budgetUsd =
        o.budgetUsd === undefined ? undefined : positiveNumber('--budget-usd', o.budgetUsd, '100');
      const fileMode = fileModeArg(o.fileMode);
      if (o.html !== undefined) refuseClash('--html', resolve(o.html), protectedFiles(o));
      const store = await openLog(o);
      let report: Report;
      try {
        const fold = createReportFold({
          ...(slaP95Ms !== undefined ? { slaP95Ms } : {}),
          ...(budgetUsd !== undefined ? { budgetUsd } : {}),
          ...(o.timeZone !== undefined ? { timeZone: o.timeZone } : {}),
          ...(o.tenant !== undefined ? { tenant: o.tenant } : {}),
        });
        report = await foldEvents(fold, store.iterate());
      } catch (e) {
        if (isConfigError(e) && e.field === 'tenant') {
          throw new CliError(
            `--tenant ${JSON.stringify(o.tenant ?? '')} is not a tenant id: ${e.message.replace(/^Invalid Keel config at "tenant": /, '')}`,
          );
        }
        if (isConfigError(e) && e.field === 'timeZone') {
          throw new CliError(
            `--time-zone "${o.timeZone ?? ''}" is not an IANA time zone; use e.g. UTC, Europe/Paris or America/New_York`,
          );
        }
        throw e;
      } finally {
        await store.close();
      }
      if (o.json) io.out(JSON.stringify(report, null, 2));
      else io.out(formatReport(report, { color: io.tty }));
      if (o.html !== undefined) {
        const path = resolve(o.html);
        try {
          const file = writeAtomically(path, fileMode);
          try {
            file.write(renderHtml(report));
            file.commit();
          } finally {
            file.abort();
          }
        } catch (e) {
          throw new CliError(
            `could not write the HTML report to ${path}: ${e instanceof Error ? e.message : String(e)}. Pass --html with a writable path.`,
            EXIT.error,
          );
        }
        // Keep stdout pure JSON when --json is given.
        const note = `HTML report written to ${path}`;
        if (o.json) io.err(note);
        else io.out(note);
      }
      setExit(EXIT.ok);
    });
}
