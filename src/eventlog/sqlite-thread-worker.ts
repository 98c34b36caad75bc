/**
 * The writer thread of a SQLite event log (`writer: 'thread'`): its own connection to the file,
 * chaining, inserting and committing the batches the store posts, one transaction per batch, and
 * answering each with the seqs it assigned. Started by ./sqlite-thread.ts; not an import target.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { ChainWriter } from './sqlite-chain.js';
import { SCHEMA_VERSION } from './schema.js';
import { SqliteStrings, storedRows } from './sqlite-strings.js';
import { sqliteDialectFor } from './sql/dialect.js';
import type { EventClass } from './events.js';
import type { PackedRows, ThreadReply, ThreadRequest, WriterThreadOptions } from './sqlite-thread.js';

const port = parentPort;
if (port === null) throw new Error('sqlite-thread-worker runs as a worker thread of the Keel event store');

const options = workerData as WriterThreadOptions;

/** What a failure tells the store: SQLite's code when it has one, so it maps to a named error. */
function failure(e: unknown): { code?: string; message: string } {
  if (e instanceof Database.SqliteError) return { code: e.code, message: e.message };
  return { message: e instanceof Error ? e.message : String(e) };
}

function post(reply: ThreadReply): void {
  (port as NonNullable<typeof port>).postMessage(reply);
}

let db: Database.Database;
let chain: ChainWriter;
let write: Database.Transaction<(rows: PackedRows) => number>;
try {
  db = new Database(options.path, { fileMustExist: true, timeout: options.busyTimeoutMs });
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${options.durability === 'fsync' ? 'FULL' : 'NORMAL'}`);
  if (options.maxPageCount !== undefined) db.pragma(`max_page_count = ${options.maxPageCount}`);
  const statements = new Map<string, Database.Statement<unknown[], unknown>>();
  const strings = new SqliteStrings(db);
  chain = new ChainWriter(
    (sql, raw = false) => {
      const key = raw ? `raw:${sql}` : sql;
      let s = statements.get(key);
      if (s === undefined) {
        s = db.prepare<unknown[], unknown>(sql);
        if (raw) s.raw(true);
        statements.set(key, s);
      }
      return s;
    },
    // The store migrated the file before starting this thread.
    sqliteDialectFor(SCHEMA_VERSION, storedRows(strings)),
    strings,
  );
  write = db.transaction(({ nums, lens, text }: PackedRows): number => {
    chain.sync();
    // A prune by another connection may have deleted strings this one caches (sqlite-strings.ts).
    strings.synced(chain.seq);
    const first = chain.seq + 1;
    for (let o = 0, at = 0; o < nums.length; o += 3) {
      const workflowId = text.slice(at, (at += lens[o] as number));
      const type = text.slice(at, (at += lens[o + 1] as number));
      const payload = text.slice(at, (at += lens[o + 2] as number));
      const cls: EventClass = nums[o + 2] === 0 ? 'audit' : 'operational';
      chain.append(nums[o] as number, workflowId, type, nums[o + 1] as number, cls, payload);
    }
    chain.flushRows();
    strings.wroteThrough(chain.seq);
    return first;
  });
  // Seen by the store at once, even while its event loop is busy (the message may wait).
  if (options.openedFlag) Atomics.store(new Int32Array(options.openedFlag), 0, 1);
  post({ t: 'ready' });
} catch (e) {
  post({ t: 'failed', ...failure(e) });
  process.exit(0);
}

port.on('message', (m: ThreadRequest) => {
  switch (m.t) {
    case 'write': {
      const saved = chain.save();
      const startedAt = performance.now(); // commit duration for metrics only
      try {
        const firstSeq = write.immediate(m.rows);
        post({ t: 'written', firstSeq, state: chain.save(), commitMs: performance.now() - startedAt });
      } catch (e) {
        chain.restore(saved);
        post({ t: 'error', ...failure(e) });
      }
      return;
    }
    case 'pages':
      try {
        db.pragma(`max_page_count = ${m.pages}`);
      } catch {
        // The store already applied it on its own connection and answered from there.
      }
      return;
    case 'close':
      try {
        db.close();
      } finally {
        post({ t: 'closed' });
        port.close();
      }
      return;
  }
});
