/**
 * `keel export`: streams the event log (opened read-only) as Elastic Common Schema JSON lines or
 * as an Elasticsearch `_bulk` request body, to stdout or a file, without loading it whole.
 *
 * Exit codes: 0 exported (also when nothing matched; the count goes to stderr) · 2 wrong arguments ·
 * 3 the log could not be read or the output file written.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { EventFilter, KeelEvent } from '../index.js';
import { toEcs, toEsBulk } from '../observability.js';
import { CliError, EXIT, STORE_OPTION_HELP, SCHEMA_OPTION_HELP, openLog, timeArg, type Io } from './io.js';
import { fileModeArg, protectedFiles, refuseClash, writeAtomically, type AtomicFile } from './output.js';

interface ExportFlags {
  db: string;
  store?: string;
  schema?: string;
  format: string;
  index?: string;
  service: string;
  out?: string;
  fileMode?: string;
  workflow?: string;
  from?: string;
  to?: string;
}

/** Events per write: bounds memory while keeping writes few. */
const CHUNK = 500;
/** What Elasticsearch accepts as an index or data stream name (lowercase, no separators it forbids). */
const INDEX = /^[a-z0-9][a-z0-9._+-]*$/;

/** Registers `keel export`. */
export function registerExport(program: Command, io: Io, setExit: (code: number) => void): void {
  program
    .command('export')
    .description('stream the log as ECS JSON lines or an Elasticsearch _bulk body (read-only)')
    .option('--db <file>', 'event log', 'keel.db')
    .option('--store <url>', STORE_OPTION_HELP)
    .option('--schema <name>', SCHEMA_OPTION_HELP)
    .option('--format <format>', 'ecs (one ECS document per line) or es-bulk (_bulk NDJSON)', 'ecs')
    .option('--index <name>', 'with --format es-bulk: target index or data stream (default keel)')
    .option('--service <name>', 'service.name of the documents', 'keel')
    .option(
      '--out <file>',
      'write to this file instead of stdout (never the log or its cache; replaced only once complete)',
    )
    .option('--file-mode <octal>', 'permission bits of a new --out file (default 600)')
    .option('--workflow <id>', 'only this workflow')
    .option('--from <time>', 'ISO time or ms since epoch (inclusive)')
    .option('--to <time>', 'ISO time or ms since epoch (exclusive)')
    .addHelpText(
      'after',
      '\nExit codes: 0 exported, 2 wrong arguments, 3 the log could not be read or the file written.',
    )
    .action(async (o: ExportFlags) => {
      if (o.format !== 'ecs' && o.format !== 'es-bulk')
        throw new CliError(`--format must be ecs or es-bulk, got "${o.format}"`);
      if (o.index !== undefined && o.format !== 'es-bulk')
        throw new CliError('--index applies to --format es-bulk only');
      const index = o.index ?? 'keel';
      if (!INDEX.test(index) || index.length > 255)
        throw new CliError(
          `--index "${index}" is not a valid Elasticsearch index name: use lowercase letters, digits, ".", "_", "+" or "-", e.g. keel-events`,
        );
      if (o.service.trim() === '')
        throw new CliError('--service must not be empty, e.g. --service invoice-service');
      const filter: EventFilter = {};
      if (o.workflow !== undefined) filter.workflowId = o.workflow;
      if (o.from !== undefined) filter.fromTs = timeArg('--from', o.from);
      if (o.to !== undefined) filter.toTs = timeArg('--to', o.to);
      if (filter.fromTs !== undefined && filter.toTs !== undefined && filter.toTs <= filter.fromTs)
        throw new CliError('--to must be later than --from');

      const fileMode = fileModeArg(o.fileMode);
      const outPath = o.out !== undefined ? resolve(o.out) : undefined;
      if (outPath !== undefined) refuseClash('--out', outPath, protectedFiles(o));
      const store = await openLog(o);
      let file: AtomicFile | undefined;
      const fail = (e: unknown): never => {
        throw new CliError(
          `could not write ${outPath ?? 'the export'}: ${e instanceof Error ? e.message : String(e)}. Pass --out with a writable path; no partial file was left.`,
          EXIT.error,
        );
      };
      const write = (text: string): void => {
        if (file === undefined) io.out(text);
        else {
          try {
            file.write(text);
          } catch (e) {
            fail(e);
          }
        }
      };
      const encode = (batch: readonly KeelEvent[]): string =>
        o.format === 'es-bulk'
          ? toEsBulk(batch, { index, serviceName: o.service })
          : `${batch.map((e) => JSON.stringify(toEcs(e, { serviceName: o.service }))).join('\n')}\n`;
      let count = 0;
      try {
        if (outPath !== undefined) {
          try {
            file = writeAtomically(outPath, fileMode);
          } catch (e) {
            fail(e);
          }
        }
        let batch: KeelEvent[] = [];
        for await (const e of store.iterate(filter)) {
          batch.push(e);
          if (batch.length === CHUNK) {
            write(encode(batch));
            count += batch.length;
            batch = [];
          }
        }
        if (batch.length > 0) {
          write(encode(batch));
          count += batch.length;
        }
        if (file !== undefined) {
          try {
            file.commit();
          } catch (e) {
            fail(e);
          }
        }
      } finally {
        file?.abort();
        await store.close();
      }
      if (outPath !== undefined || count === 0)
        io.err(`exported ${count} event(s)${outPath !== undefined ? ` to ${outPath}` : ''} as ${o.format}`);
      setExit(EXIT.ok);
    });
}
