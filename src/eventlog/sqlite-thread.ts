/**
 * The store's side of its writer thread (`writer: 'thread'`): starts ./sqlite-thread-worker, posts
 * batches of rows to it and hands back, in order, the seqs and chain state of each committed batch.
 * While a batch is in flight the thread keeps the process alive; idle, it does not. Internal to
 * src/eventlog.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ConfigError } from '../core/errors.js';
import { EventLogError } from './errors.js';
import type { EventClass } from './events.js';
import type { ChainState } from './sqlite-chain.js';

/** What the writer thread needs to open its own connection. */
export interface WriterThreadOptions {
  path: string;
  durability: 'normal' | 'fsync';
  busyTimeoutMs: number;
  maxPageCount: number | undefined;
  /** One Int32 the thread sets to 1 once its connection is open (read without a message). */
  openedFlag?: SharedArrayBuffer;
}

/**
 * A batch of rows on its way to the thread. Per event: ts, v and class (0 audit, 1 operational) in
 * `nums`; the lengths of its workflowId, type and payload JSON in `lens`; those strings one after
 * another in `text`. Two typed arrays and one string clone faster than six values per event (~4%
 * more workflows/s at 1,000 in flight, where the clone was ~5% of this thread's time).
 */
export interface PackedRows {
  nums: Float64Array;
  lens: Uint32Array;
  text: string;
}

/** Packs events (and their payload JSON, same order) for {@link WriterThread.write}. */
export function packRows(
  events: readonly { ts: number; v: number; class: EventClass; workflowId: string; type: string }[],
  payloadJson: readonly string[],
): PackedRows {
  const n = events.length;
  const nums = new Float64Array(n * 3);
  const lens = new Uint32Array(n * 3);
  let text = '';
  for (let i = 0, o = 0; i < n; i++, o += 3) {
    const e = events[i] as (typeof events)[number];
    const payload = payloadJson[i] as string;
    nums[o] = e.ts;
    nums[o + 1] = e.v;
    nums[o + 2] = e.class === 'audit' ? 0 : 1;
    lens[o] = e.workflowId.length;
    lens[o + 1] = e.type.length;
    lens[o + 2] = payload.length;
    text += e.workflowId + e.type + payload;
  }
  return { nums, lens, text };
}

/** Store → thread. */
export type ThreadRequest = { t: 'write'; rows: PackedRows } | { t: 'pages'; pages: number } | { t: 'close' };

/** Thread → store. */
export type ThreadReply =
  | { t: 'ready' }
  | { t: 'failed'; code?: string; message: string }
  | { t: 'written'; firstSeq: number; state: ChainState; commitMs: number }
  | { t: 'error'; code?: string; message: string }
  | { t: 'closed' };

/** A committed batch: the seq of its first event (the rest follow) and the heads after it. */
export interface Written {
  firstSeq: number;
  state: ChainState;
  commitMs: number;
}

/** Turns a failure the thread reported (SQLite's code, if any) into the store's named error. */
export type FailureMapper = (failure: { code?: string; message: string }) => Error;

interface Waiter {
  resolve: (w: Written) => void;
  reject: (e: Error) => void;
}

/**
 * Starts the worker: the compiled `.js` next to this module, or — when Keel runs from its TypeScript
 * sources (its own tests, tsx) — the `.ts` file, after registering tsx's ESM loader in the worker
 * (a worker does not inherit the parent's loader hooks).
 */
function startWorker(workerData: WriterThreadOptions): Worker {
  const js = new URL('./sqlite-thread-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(js))) return new Worker(js, { workerData });
  const ts = new URL('./sqlite-thread-worker.ts', import.meta.url).href;
  const tsx = tsxEsmApi();
  if (tsx === undefined) {
    throw new ConfigError(
      'writer',
      `'thread' found neither the compiled ${fileURLToPath(js)} nor tsx to load its TypeScript source: build Keel (npm run build) or install tsx`,
    );
  }
  const boot = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(ts)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

/** The URL of tsx's ESM API (`tsx/esm/api`, import condition), if tsx is installed. */
function tsxEsmApi(): string | undefined {
  try {
    const manifest = createRequire(import.meta.url).resolve('tsx/package.json');
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as {
      exports?: Record<string, { import?: { default?: string } } | string>;
    };
    const entry = pkg.exports?.['./esm/api'];
    const file = typeof entry === 'object' ? entry.import?.default : undefined;
    return file === undefined ? undefined : pathToFileURL(join(dirname(manifest), file)).href;
  } catch {
    return undefined;
  }
}

/** One writer thread and the batches waiting for its answer, oldest first. */
export class WriterThread {
  private readonly worker: Worker;
  private readonly waiting: Waiter[] = [];
  private dead: Error | undefined;
  private closing: Promise<void> | undefined;
  private readonly opened = new Int32Array(new SharedArrayBuffer(4));
  private used = false;

  constructor(
    private readonly options: WriterThreadOptions,
    private readonly toError: FailureMapper,
  ) {
    this.worker = startWorker({ ...options, openedFlag: this.opened.buffer });
    this.worker.unref();
    this.worker.on('message', (m: ThreadReply) => this.onReply(m));
    this.worker.on('error', (e: Error) => this.die(`it threw: ${e.message}`));
    this.worker.on('exit', (code) => {
      if (this.closing === undefined) this.die(`it exited with code ${code}`);
    });
  }

  /** Batches posted and not yet answered. */
  get inFlight(): number {
    return this.waiting.length;
  }

  /**
   * True once the thread has opened its connection (a batch posted earlier waits for that). Read
   * from memory the thread shares: a busy event loop that has not handled its messages still sees it.
   */
  get ready(): boolean {
    return Atomics.load(this.opened, 0) === 1 && this.dead === undefined;
  }

  /** True once the thread has stopped: every write is refused. */
  get stopped(): boolean {
    return this.dead !== undefined;
  }

  /** Commits `rows` ({@link packRows}) in one transaction; resolves with the seqs assigned. */
  write(rows: PackedRows): Promise<Written> {
    if (this.dead) return Promise.reject(this.dead);
    this.used = true;
    return new Promise<Written>((resolve, reject) => {
      if (this.waiting.length === 0) this.worker.ref();
      this.waiting.push({ resolve, reject });
      this.worker.postMessage({ t: 'write', rows } satisfies ThreadRequest);
    });
  }

  /** Applies a new page cap on the thread's connection before its next batch. */
  setPages(pages: number): void {
    if (!this.dead) this.worker.postMessage({ t: 'pages', pages } satisfies ThreadRequest);
  }

  /** Closes the thread's connection after the batches already posted, and ends the thread. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      // Never written to (still starting, or stopped): nothing of the log's is on it.
      if (this.dead || !this.used) {
        void this.worker.terminate().then(() => resolve());
        return;
      }
      this.worker.ref();
      this.worker.once('exit', () => resolve());
      this.worker.postMessage({ t: 'close' } satisfies ThreadRequest);
    });
    return this.closing;
  }

  private onReply(m: ThreadReply): void {
    switch (m.t) {
      case 'ready':
      case 'closed':
        return;
      case 'failed':
        this.die(`it could not open ${this.options.path}: ${m.message}`, this.toError(m));
        return;
      case 'written':
      case 'error': {
        const w = this.waiting.shift();
        if (this.waiting.length === 0 && this.closing === undefined) this.worker.unref();
        if (!w) return;
        if (m.t === 'written') w.resolve(m);
        else w.reject(this.toError(m));
        return;
      }
    }
  }

  private die(reason: string, cause?: Error): void {
    if (this.dead) return;
    this.dead = new EventLogError(
      'EVENTLOG_WRITER_STOPPED',
      `${this.options.path}: the event log's writer thread stopped (${reason}). Acknowledged events are in the log; the appends this error rejects may or may not have been committed before it stopped (query the log by workflow to know). The next appends go to a new thread (writer: 'thread', up to 3 times; after that, close the store and open it again) or inline (writer: 'auto').`,
      cause ? { cause } : {},
    );
    for (const w of this.waiting.splice(0)) w.reject(this.dead);
    this.worker.unref();
  }
}
