/**
 * The hand-wired baseline the agent benchmark compares `rt.run(agent)` against: what a careful
 * engineer would write without Keel to get the same guarantees for one model call — an XState actor
 * with the same idle → calling → done shape (and the same per-attempt timeout), a cockatiel 3
 * circuit breaker, and hash-chained events (sha256 chain over canonical JSON, the form Keel's log
 * uses) group-committed to better-sqlite3 in one transaction per tick, the call resolving only
 * after its events are committed.
 */
import { createHash, hash as oneShotHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { ConsecutiveBreaker, circuitBreaker, handleAll, type CircuitBreakerPolicy } from 'cockatiel';
import { createActor, setup } from 'xstate';
import { canonicalJson } from '../src/core/json.js';
import { encodePayload, type Dictionary } from '../src/eventlog/codec.js';
import { openSqliteStore } from '../src/eventlog/sqlite.js';

const sha256Hex: (text: string) => string =
  typeof oneShotHash === 'function'
    ? (text) => oneShotHash('sha256', text, 'hex')
    : (text) => createHash('sha256').update(text, 'utf8').digest('hex');

/** The same idle → calling → done | failed | timedOut shape as Keel's agent machine. */
const invocationMachine = setup({
  types: {
    input: {} as { timeoutMs: number },
    context: {} as { timeoutMs: number },
    events: {} as { type: 'START' } | { type: 'DONE' } | { type: 'FAIL' },
  },
  delays: { timeout: ({ context }) => context.timeoutMs },
}).createMachine({
  id: 'invocation',
  context: ({ input }) => ({ timeoutMs: input.timeoutMs }),
  initial: 'idle',
  states: {
    idle: { on: { START: 'calling' } },
    calling: { on: { DONE: 'done', FAIL: 'failed' }, after: { timeout: 'timedOut' } },
    done: { type: 'final' },
    failed: { type: 'final' },
    timedOut: { type: 'final' },
  },
});

/**
 * Keel's schema 4 stores strings once, in `keel_strings`, and rows by their ids: what a hand-wired
 * writer of the same rows does too — a Map in front of one insert-or-look-up of each new string
 * (inside the writer's transaction), as Keel's `SqliteStrings` does. Writers only (`lookup` is not needed).
 */
export function handDictionary(db: Database.Database): Dictionary {
  const ids = new Map<string, number>();
  const select = db.prepare<[string], number>('SELECT id FROM keel_strings WHERE value = ?').pluck();
  const insert = db
    .prepare<[string], number>('INSERT OR IGNORE INTO keel_strings (value) VALUES (?) RETURNING id')
    .pluck();
  return {
    code: (value) => {
      let id = ids.get(value);
      if (id === undefined) {
        id = insert.get(value) ?? select.get(value);
        if (id === undefined) throw new Error(`handDictionary: keel_strings neither took nor holds ${value}`);
        if (ids.size >= 20_000) ids.clear();
        ids.set(value, id);
      }
      return id;
    },
    lookup: (id) => {
      throw new Error(`handDictionary writes only (asked for id ${id})`);
    },
  };
}

/** Keel's `events` INSERT of schema 4 (ids for the workflow and type, 0/1 for the class, coded payload). */
export const INSERT_EVENT_SQL =
  'INSERT INTO events (seq, ts, workflow, type, v, class, payload, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)';

interface PendingEvent {
  ts: number;
  workflowId: string;
  type: string;
  payload: unknown;
}

/** A minimal group-committed, hash-chained log on better-sqlite3, written the plain way. */
class GroupCommitLog {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement<unknown[], unknown>;
  private readonly commit: Database.Transaction<(events: readonly PendingEvent[]) => void>;
  private pending: PendingEvent[] = [];
  private batch: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | undefined;
  private head = '0'.repeat(64);
  private seq = 0;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.insert = this.db.prepare(INSERT_EVENT_SQL);
    const dict = handDictionary(this.db);
    this.commit = this.db.transaction((events: readonly PendingEvent[]) => {
      for (const e of events) {
        const json = canonicalJson(e.payload);
        const seq = ++this.seq;
        const prev = this.head;
        const hash = sha256Hex(`${prev}\n${seq}\n${e.ts}\n${e.workflowId}\n${e.type}\n1\naudit\n${json}`);
        // Keel's schema (v4): strings as keel_strings ids, the payload coded, the hash as 32 raw
        // bytes, no prev_hash column (it is the previous row's).
        const payload = encodePayload(e.type, e.payload as Record<string, unknown>, dict);
        this.insert.run(
          seq,
          e.ts,
          dict.code(e.workflowId),
          dict.code(e.type),
          1,
          0,
          payload,
          Buffer.from(hash, 'hex'),
        );
        this.head = hash;
      }
    });
  }

  /** Queues an event; resolves once the transaction holding it committed. */
  append(event: PendingEvent): Promise<void> {
    this.pending.push(event);
    if (this.batch === undefined) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.batch = { promise, resolve, reject };
      setImmediate(this.flush);
    }
    return this.batch.promise;
  }

  private readonly flush = (): void => {
    const events = this.pending;
    const batch = this.batch;
    this.pending = [];
    this.batch = undefined;
    try {
      this.commit.immediate(events);
      batch?.resolve();
    } catch (e) {
      batch?.reject(e);
    }
  };

  /** Rows written so far. */
  count(): number {
    return this.seq;
  }

  close(): void {
    this.db.close();
  }
}

/** Output of the trivial agent both sides call. */
export interface TrivialOutput {
  value: string;
  confidence: number;
  usage: { inputTokens: number; outputTokens: number };
}

/** A hand-wired invoker: `invoke(input)` resolves after its events are committed. */
export interface HandWired {
  invoke(input: unknown): Promise<TrivialOutput>;
  /** Events committed so far. */
  events(): number;
  close(): void;
}

/**
 * Creates the hand-wired baseline on a new SQLite file with Keel's schema (so both sides write the
 * same table and indexes). `eventsPerCall` is 2 (started, succeeded: the baseline) or 5
 * (the events Keel writes for a one-agent workflow: workflow.started, agent.invoked, cost.incurred,
 * agent.succeeded, workflow.completed). `writeAhead`: the call is made only once its
 * `agent.invoked` (and `workflow.started`) is committed — Keel's default promise, "if the log cannot
 * record it, the model is not called" — so each invocation waits for two commits instead of one.
 */
export async function createHandWired(
  file: string,
  work: (input: unknown) => Promise<TrivialOutput>,
  eventsPerCall: 2 | 5,
  writeAhead = false,
): Promise<HandWired> {
  await openSqliteStore({ path: file }).close();
  const log = new GroupCommitLog(file);
  const breaker: CircuitBreakerPolicy = circuitBreaker(handleAll, {
    halfOpenAfter: 60_000,
    breaker: new ConsecutiveBreaker(5),
  });
  let n = 0;
  const invoke = async (input: unknown): Promise<TrivialOutput> => {
    const workflowId = `wf-${n++}`;
    const startedAt = Date.now();
    const actor = createActor(invocationMachine, { input: { timeoutMs: 30_000 } }).start();
    actor.send({ type: 'START' });
    if (eventsPerCall === 5) {
      void log.append({
        ts: startedAt,
        workflowId,
        type: 'workflow.started',
        payload: { name: 'bench', input },
      });
    }
    const invoked = log.append({
      ts: startedAt,
      workflowId,
      type: 'agent.invoked',
      payload: { agent: 'bench', model: 'bench-model', path: 'bench' },
    });
    try {
      // Write-ahead: no call the log has not recorded (a refusal rejects here, before the call).
      if (writeAhead) await invoked;
      const out = await breaker.execute(() => work(input));
      actor.send({ type: 'DONE' });
      const ts = Date.now();
      if (eventsPerCall === 5) {
        void log.append({
          ts,
          workflowId,
          type: 'cost.incurred',
          payload: { agent: 'bench', model: 'bench-model', usage: out.usage, costUsd: 0 },
        });
      }
      let committed = log.append({
        ts,
        workflowId,
        type: 'agent.succeeded',
        payload: {
          agent: 'bench',
          path: 'bench',
          output: out.value,
          confidence: out.confidence,
          usage: out.usage,
        },
      });
      if (eventsPerCall === 5) {
        committed = log.append({
          ts,
          workflowId,
          type: 'workflow.completed',
          payload: { output: out.value, latencyMs: ts - startedAt, costUsd: 0 },
        });
      }
      await committed;
      return out;
    } catch (e) {
      actor.send({ type: 'FAIL' });
      await log.append({ ts: Date.now(), workflowId, type: 'agent.failed', payload: { agent: 'bench' } });
      throw e;
    } finally {
      actor.stop();
    }
  };
  return { invoke, events: () => log.count(), close: () => log.close() };
}

/**
 * The floor under any durable-before-ack invocation on this machine: the call, then the 2
 * rows, prebuilt (Keel's table and indexes; no JSON, no hashing, no actor, no breaker), committed
 * by raw better-sqlite3 in one transaction per tick, the call resolving after the commit. What
 * neither Keel nor the hand-wired baseline can go below.
 */
export async function createCommitFloor(
  file: string,
  work: (input: unknown) => Promise<TrivialOutput>,
): Promise<HandWired> {
  await openSqliteStore({ path: file }).close();
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const insert = db.prepare(INSERT_EVENT_SQL);
  const hash = Buffer.from(sha256Hex('floor'), 'hex');
  const payload = canonicalJson({ agent: 'bench', path: 'bench', output: 'ok', confidence: 0.9 });
  // Schema 4: each new workflow id goes into keel_strings once; the two types' ids are prebuilt.
  const dict = handDictionary(db);
  const [invoked, succeeded] = db.transaction(() => [
    dict.code('agent.invoked'),
    dict.code('agent.succeeded'),
  ])();
  let seq = 0;
  let pending: string[] = [];
  let waiting: (() => void)[] = [];
  const newString = db.prepare<[string]>('INSERT INTO keel_strings (value) VALUES (?)');
  const commit = db.transaction((ids: readonly string[]) => {
    const ts = Date.now();
    for (const id of ids) {
      const workflow = Number(newString.run(id).lastInsertRowid);
      insert.run(++seq, ts, workflow, invoked, 1, 0, payload, hash);
      insert.run(++seq, ts, workflow, succeeded, 1, 0, payload, hash);
    }
  });
  const flush = (): void => {
    const ids = pending;
    const done = waiting;
    pending = [];
    waiting = [];
    commit.immediate(ids);
    for (const resolve of done) resolve();
  };
  let n = 0;
  const invoke = async (input: unknown): Promise<TrivialOutput> => {
    const out = await work(input);
    if (pending.length === 0) setImmediate(flush);
    pending.push(`wf-${n++}`);
    await new Promise<void>((resolve) => waiting.push(resolve));
    return out;
  };
  return { invoke, events: () => seq, close: () => db.close() };
}
